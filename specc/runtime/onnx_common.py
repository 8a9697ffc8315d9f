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
from dataclasses import dataclass

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

TASKS = ("regression", "binary", "multilabel", "multiclass")


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
