"""`specc train`: compile a spec into a run directory, then train with the generated code.

The training itself runs in a child process, `python RUN_DIR/code/train.py --out RUN_DIR` (or,
with training.devices: N > 1, torchrun's N processes of it, specc.runtime.launch), the exact
standalone script a user could run without specc; this module only prepares the run
directory (a lock, code/, spec.yaml), relays signals to the child and its exit status and, when
the spec asks for it and training succeeded, exports model.onnx.

Exit statuses (docs/training.md): 0 trained, 1 spec errors, 2 bad data or run-directory problems,
3 the loss became nan/inf, 130 interrupted; anything else is the child's own status.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no run-directory lock
    fcntl = None  # type: ignore[assignment]

from specc.exitcodes import EXIT_ERRORS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Interrupted
from specc.runtime import launch

RESTARTABLE = frozenset({"spec.yaml", "code", ".lock"})
"""What a run directory holds before its first checkpoint: such a directory is reused."""

GROWABLE = "training.epochs"
"""The one spec key --resume accepts a change of (a larger value: train on)."""


class Signals:
    """SIGINT, SIGTERM and SIGHUP of `specc train` and `specc tune`: before a child runs they stop
    this process (exitcodes.Interrupted: exit 130); while children run (train.py, tune's worker
    processes) they are relayed to each as SIGTERM, and each ends by itself (train.py writes
    last.pt and exits 130). A child starts with SIGINT ignored, so a Ctrl-C while it imports
    torch cannot print a traceback; until its own handlers are armed SIGTERM ends it silently."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[Any]] = []
        self.starting = False
        self.received = False

    def install(self) -> None:
        """Handle the three signals from now on (a SIGHUP ignored by nohup stays ignored)."""
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and (name != "SIGHUP" or signal.getsignal(sig) != signal.SIG_IGN):
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        first, self.received = not self.received, True
        if self.children:
            for child in list(self.children):
                child.send_signal(signal.SIGTERM)  # nothing when it has ended
        elif first and not self.starting:
            raise Interrupted

    def start(self, command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a child (Popen's keywords) and relay the signals to it until `wait`."""
        self.starting = True
        try:
            ignore = _ignore_sigint if os.name == "posix" else None
            child = subprocess.Popen(command, preexec_fn=ignore, **kwargs)
            self.children.append(child)
        finally:
            self.starting = False
        if self.received:  # a signal came while it was being started
            child.send_signal(signal.SIGTERM)
        return child

    def wait(self, child: subprocess.Popen[Any]) -> int:
        """Wait for a child of `start`; its exit status (negative: killed by that signal)."""
        try:
            return child.wait()
        finally:
            self.children.remove(child)

    def run(self, command: list[str]) -> int:
        """Run the child to its end, relaying signals; its exit status (negative: killed)."""
        return self.wait(self.start(command))


SIGNALS = Signals()


def _ignore_sigint() -> None:
    """In the child before exec: an ignored SIGINT stays ignored through exec, so Python does not
    install its KeyboardInterrupt handler; train.py arms its own once torch is imported."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_run_dir(name: str, root: Path = Path("runs"), now: float | None = None) -> Path:
    """`runs/<name>-<YYYYMMDD-HHMMSS>`, with -2, -3, ... appended when that already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = root / f"{name}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def _error(message: str) -> None:
    print(f"specc train: error: {message}", file=sys.stderr)


def _run_child(command: list[str]) -> int:
    """Run the training script with inherited stdio (tests replace this function)."""
    return SIGNALS.run(command)


def _restartable(out: Path) -> bool:
    """Whether `out` holds nothing a run would lose: no checkpoint, only what specc wrote first
    (code/, spec.yaml, the lock) and temporary files a kill left behind."""
    return all(p.name in RESTARTABLE or _is_tmp(p) for p in out.iterdir())


def _is_tmp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _target_problem(out: Path, resume: bool) -> str | None:
    """Why `out` cannot hold this run, or None."""
    if out.exists() and not out.is_dir():
        return f"{out} exists and is not a directory"
    if resume and not _has_checkpoint(out):
        again = (
            "; run it without --resume to start it" if out.is_dir() and _restartable(out) else ""
        )
        return f"{out / 'last.pt'} does not exist; nothing to resume{again}"
    if not resume and out.is_dir() and not _restartable(out):
        return f"{out} already exists and is not empty; pick another -o, or add --resume"
    return None


def _has_checkpoint(out: Path) -> bool:
    """Whether a run directory holds something to resume: last.pt, or a member's (ensemble:
    RUN_DIR/members/K/last.pt)."""
    return (out / "last.pt").is_file() or any((out / "members").glob("*/last.pt"))


def lock_run_dir(out: Path) -> Any:
    """An exclusive lock on out/.lock, held while the returned file stays open (to the end of
    `specc train` or `specc tune`); None when another process holds it. OSError when it cannot
    be made."""
    handle = open(out / ".lock", "a")  # noqa: SIM115 - held for the whole run
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
    return handle


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths (the --set spelling: layers.0.dense.units) to the leaves of a spec."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def resume_problem(saved: Path, resolved: dict[str, Any]) -> str | None:
    """Why the resolved spec may not resume the run whose spec.yaml is `saved`, or None: every
    key must be as it was, except that training.epochs may grow."""
    import yaml

    try:
        old = _flatten(yaml.safe_load(saved.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"cannot read {saved} ({type(exc).__name__}): cannot check the spec is unchanged"
    new = _flatten(yaml.safe_load(yaml.safe_dump(resolved, sort_keys=False)))
    missing = object()
    changed = [k for k in dict.fromkeys([*old, *new]) if old.get(k, missing) != new.get(k, missing)]
    grows = isinstance(old.get(GROWABLE), int) and isinstance(new.get(GROWABLE), int)
    if changed == [GROWABLE] and grows and new[GROWABLE] > old[GROWABLE]:
        return None
    if not changed:
        return None
    shown = ", ".join(
        f"{k} ({_short(old.get(k, '(none)'))} -> {_short(new.get(k, '(none)'))})"
        for k in changed[:5]
    )
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    return (
        f"--resume needs the spec the run started with; these keys differ from {saved}: "
        f"{shown}{more} (only {GROWABLE} may grow)"
    )


def _export(run_dir: Path, opset: int) -> int:
    """Write run_dir/model.onnx with specc.runtime.export (absent from a build without it)."""
    try:
        from specc.runtime.export import export_run
    except ImportError:
        print("note: ONNX export is not available in this build; no model.onnx", file=sys.stderr)
        return EXIT_OK
    try:
        report = export_run(run_dir, run_dir / "model.onnx", opset)
    except Exception as exc:  # report any export failure as one line, never a traceback
        _error(f"training succeeded but the ONNX export failed: {exc}")
        return EXIT_ERRORS
    print(report.line())
    return EXIT_OK


def _train_ensemble(
    out: Path, members: int, resume: bool, grown: bool, quiet: bool, devices: int
) -> int:
    """Train the members of an ensemble (specc.runtime.ensemble), then write its summary.json;
    `grown`: a resumed spec whose training.epochs grew, so finished members train on too."""
    from specc.runtime import ensemble

    interrupted = lambda: SIGNALS.received  # noqa: E731
    status = ensemble.train_members(
        out, members, resume, resume and grown, quiet, _run_child, interrupted, devices
    )
    if status < 0:
        status = 128 - status
    if status != EXIT_OK or SIGNALS.received:
        return status if status != EXIT_OK else EXIT_INTERRUPTED
    try:
        ensemble.combine(out)
    except Exception as exc:  # an unreadable member or data: one line, never a traceback
        _error(f"the members trained, but combining them failed: {exc}")
        return EXIT_ERRORS
    return EXIT_OK


def run_train(
    spec_path: str, run_dir: str | None, overrides: list[str], resume: bool, quiet: bool = False
) -> int:
    """Compile `spec_path` (with --set overrides) into a run directory and train; exit status."""
    import yaml

    from specc.codegen.render import compile_program, write_files
    from specc.diagnostics import has_errors, render_text
    from specc.pipeline import load_program

    program, diagnostics = load_program(spec_path, overrides)
    if diagnostics:
        print(render_text(diagnostics), file=sys.stderr)
    if program is None or has_errors(diagnostics):
        return EXIT_ERRORS
    if resume and run_dir is None:
        _error("--resume needs the run directory: specc train SPEC -o RUN_DIR --resume")
        return EXIT_USAGE
    out = Path(run_dir) if run_dir is not None else default_run_dir(program.name)
    code = out / "code"
    spec_text = yaml.safe_dump(program.resolved, sort_keys=False, allow_unicode=True)

    try:
        # lock a directory that is a run's (it has a lock file) or is to become one: never a
        # stranger's; then check it again, now that no other specc train can change it
        if (out / ".lock").is_file() or not _target_problem(out, resume):
            out.mkdir(parents=True, exist_ok=True)
            lock = lock_run_dir(out)
            if lock is None:
                _error(f"{out} is in use by another specc train; wait for it, or pick another -o")
                return EXIT_USAGE
        if problem := _target_problem(out, resume):
            _error(problem)
            return EXIT_USAGE
        if resume and (problem := resume_problem(out / "spec.yaml", program.resolved)):
            _error(problem)
            return EXIT_USAGE
        for tmp in filter(_is_tmp, out.iterdir()):  # left by a kill: never a file of this run
            tmp.unlink()
        same = resume and (out / "spec.yaml").read_text(encoding="utf-8") == spec_text
        if not (same and (code / "train.py").is_file()):  # a resumed run keeps the code that ran
            write_files(compile_program(program, code), code)
            tmp = out / ".spec.yaml.tmp"
            tmp.write_text(spec_text, encoding="utf-8")
            os.replace(tmp, out / "spec.yaml")
    except OSError as exc:
        _error(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
        return EXIT_USAGE
    if not quiet:
        print(f"run directory: {out}", file=sys.stderr)

    args = ["--out", str(out), *["--resume"] * resume, *["--quiet"] * quiet]
    devices = program.training.devices  # more than one: torchrun (specc.runtime.launch)
    if program.ensemble is not None:  # the members one after another, then their vote
        members = program.ensemble.members
        status = _train_ensemble(out, members, resume, not same, quiet, devices)
    else:
        status = _run_child(launch.command(code / "train.py", args, devices))
    if status < 0:  # killed by a signal
        status = 128 - status
    if SIGNALS.received and status == 128 + signal.SIGTERM:  # relayed before the child armed
        status = EXIT_INTERRUPTED
    if SIGNALS.received and status == EXIT_OK and program.onnx_opset is not None:
        _error(f"interrupted after training, before the ONNX export: specc export {out}")
        return EXIT_INTERRUPTED
    if status == EXIT_INTERRUPTED and _has_checkpoint(out):
        again = ["specc", "train", spec_path, "-o", str(out), "--resume"]
        again += [arg for o in overrides for arg in ("--set", o)]
        print(f"resume with: {shlex.join(again)}", file=sys.stderr)
    elif status == EXIT_INTERRUPTED:
        print(
            "specc train: interrupted before the first checkpoint; nothing to resume "
            "(the same command starts the run again)",
            file=sys.stderr,
        )
    if status == EXIT_OK and program.onnx_opset is not None:
        return _export(out, program.onnx_opset)
    return status
