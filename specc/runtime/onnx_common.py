"""What `specc export` and `specc predict` share: metadata keys and ONNX Runtime sessions.

ONNX Runtime 1.32 persists a telemetry device id in a SQLite file under
`$XDG_CACHE_HOME` (or `~/.cache`)`/Microsoft/DeveloperTools/.onnxruntime/` as soon as it is
imported, unless `ORT_DISABLE_TELEMETRY` is set before the import; an unwritable home only
costs a warning, which the session's error-level logging hides. This module sets the variable
(unless the user set it) before importing onnxruntime, so export and predict write nothing
outside the files they are asked to write. Import it before anything else imports onnxruntime.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from specc.exitcodes import EXIT_USAGE

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime as ort  # noqa: E402  (after the environment variable above)

INPUT_NAME = "input"
OUTPUT_NAME = "output"

META_NAME = "specc.name"
META_SPEC = "specc.spec"
META_LABELS = "specc.labels"
META_FEATURES = "specc.features"
META_TASK = "specc.task"
META_VERSION = "specc.version"
META_TARGETS = "specc.targets"

TASKS = ("regression", "binary", "multilabel", "multiclass", "reconstruct", "encoder")
"""reconstruct: an autoencoder's reconstruction; encoder: a VAE's encoder (export.onnx.part)."""


@dataclass(frozen=True)
class Interface:
    """A model's interface: what export writes into the graph's metadata and predict reads."""

    name: str
    task: str
    input_shape: tuple[int, ...]
    units: int
    labels: list[str] | None
    features: list[str] | None
    targets: list[str] | None


class CommandError(Exception):
    """A failure `specc export`/`predict` reports as one message with an exit status."""

    default_status = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = self.default_status if status is None else status


def output_file(given: str | Path, default_name: str) -> Path:
    """The file `-o` names: `given`, or `given/default_name` when `given` is a directory (one
    that exists, or any path spelled with a trailing slash)."""
    text = os.fspath(given)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / default_name
    return path


class _Checked:
    """A file object whose write errors (disk full, file too large) become CommandErrors."""

    def __init__(self, fh: IO, path: Path, error: type[CommandError]) -> None:
        self._fh, self._path, self._error = fh, path, error

    def write(self, data):  # noqa: ANN001, ANN201  (str or bytes, as the file's mode says)
        try:
            return self._fh.write(data)
        except OSError as exc:
            raise cannot_write(self._path, exc, self._error) from None


def cannot_write(path: Path, exc: OSError, error: type[CommandError]) -> CommandError:
    """`PATH: cannot write: REASON; nothing was written` (exit 2)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return error(f"{path}: cannot write: {reason}; nothing was written", EXIT_USAGE)


def _make_parent(path: Path, error: type[CommandError]) -> None:
    """Create the folder `path` goes into; a one-line CommandError when it cannot exist."""
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists() and not folder.is_dir():
            raise error(
                f"{path}: cannot write: {folder} is a file, not a folder; nothing was written",
                EXIT_USAGE,
            )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(path, exc, error) from None


@contextmanager
def atomic_output(path: Path, error: type[CommandError], binary: bool = False) -> Iterator[IO]:
    """A temporary file beside `path` to write; renamed over `path` when the block finishes,
    removed when it fails, so `path` is the complete new file or left as it was.

    An OSError of the output itself (read-only or missing folder, disk full, file too large)
    is raised as `error(..., 2)` naming `path`; errors inside the block pass unchanged.
    """
    _make_parent(path, error)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:  # not `with open()` here: only the open's own OSError is a write error
            fh = open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise cannot_write(path, exc, error) from None
        try:
            yield _Checked(fh, path, error)  # type: ignore[misc]
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise cannot_write(path, exc, error) from None
        finally:
            with suppress(OSError):  # a failed write leaves bytes that close cannot flush
                fh.close()
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise cannot_write(path, exc, error) from None
    finally:
        with suppress(OSError):  # nothing was created, or the folder is gone
            tmp.unlink(missing_ok=True)


_ERROR = 3  # ONNX Runtime log severity: 0 verbose ... 3 error, 4 fatal

ort.set_default_logger_severity(_ERROR)


def session(model: bytes | str, threads: int = 0) -> ort.InferenceSession:
    """A CPU inference session for a serialized model or a path, logging errors only.

    No optimized-model file and no profile are written; `threads` 0 lets ONNX Runtime choose.
    """
    options = ort.SessionOptions()
    options.log_severity_level = _ERROR
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def specc_metadata(sess: ort.InferenceSession) -> dict[str, str]:
    """The model's `specc.*` metadata properties (empty for a model specc did not export)."""
    props = sess.get_modelmeta().custom_metadata_map
    return {key: value for key, value in props.items() if key.startswith("specc.")}


def json_list(meta: dict[str, str], key: str) -> list[str] | None:
    """A metadata property holding a JSON list of strings, or None when absent or malformed."""
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    return [str(item) for item in value]
