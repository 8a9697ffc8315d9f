"""A throwaway PostgreSQL server for tests (pytest plugin, registered in conftest.py).

`postgres_server` starts one server per test session (under pytest-xdist: one per worker,
each on its own free port and directory) from Debian's `postgresql` package, which
`.ci/install` installs: initdb into a temporary directory, trust authentication, listening on
127.0.0.1 only; at the end it stops the server and removes the directory. `postgres_url`
gives each test a new empty database on it: `postgresql://postgres@127.0.0.1:PORT/specc_N`.
PostgreSQL refuses to run as root, so as root (CI) the server runs as the package's `postgres`
system user, through `runuser`. Without the binaries (under /usr/lib/postgresql/*/bin) the
tests that use it are skipped, except under CI=true, where that is a failure: CI must test the
database storage.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
"""Where Debian's postgresql-NN packages put initdb, pg_ctl and the server."""
DATABASE = "specc"
STARTS = 3
"""Attempts to start on a free port (another process may take the port between the pick and
the bind)."""


def _version(bin_dir: Path) -> tuple[int, ...]:
    """The version in /usr/lib/postgresql/VERSION/bin: 17 -> (17,), 9.6 -> (9, 6)."""
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def pg_bin() -> Path | None:
    """The bin directory of the newest installed PostgreSQL, or None."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").is_file()]
    return max(found, key=_version, default=None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true (where the server must be there)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/install installs Debian's postgresql package)")
    pytest.skip(reason)


class Server:
    """One PostgreSQL cluster in `root`, run as `user` (None: the current user)."""

    def __init__(self, bin_dir: Path, root: Path, user: str | None) -> None:
        self.bin, self.root, self.user = bin_dir, root, user
        self.data, self.log = root / "data", root / "server.log"
        self.port = 0
        self.databases = 0  # made so far, for their names

    def _run(self, tool: str, *args: str) -> None:
        """Run a PostgreSQL program as the server's user; its output in the error if it fails."""
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stderr}\n{log}")

    def init(self) -> None:
        """A new cluster: superuser postgres, trust authentication (local test use only)."""
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """Start on a free port of 127.0.0.1 (its Unix socket in `root`) and wait until ready."""
        for attempt in range(STARTS):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", options, "start")  # fmt: skip
                return
            except RuntimeError:
                if attempt == STARTS - 1:
                    raise

    def create_database(self, name: str) -> None:
        """An empty database owned by postgres."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are closed)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A running server of this test session (or xdist worker), stopped and removed at the end."""
    bin_dir = pg_bin()
    if bin_dir is None:
        _unavailable(f"no PostgreSQL server binaries under {BIN_GLOB} (Debian: postgresql)")
    user = owner = None
    if os.geteuid() == 0:  # postgres will not run as root: the package's system user runs it
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root, and there is no `postgres` user to run the server")
        user = owner.pw_name
    # not under pytest's tmp_path: its parents are private to this user, the server's is other
    root = Path(tempfile.mkdtemp(prefix="specc-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = Server(bin_dir, root, user)
    try:
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """`postgresql://postgres@127.0.0.1:PORT/specc_N`: a new, empty database for each test, so
    that studies of the same name in two tests never meet."""
    postgres_server.databases += 1
    name = f"{DATABASE}_{postgres_server.databases}"
    postgres_server.create_database(name)
    return f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"
