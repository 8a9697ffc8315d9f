"""`specc export RUN_DIR`: the trained model as one verified, self-contained ONNX file.

The graph computes the generated model's `predict` (probabilities for softmax/sigmoid output
units, values for linear ones) from raw features: input `input` float32 [batch, *input_shape],
output `output` float32 [batch, units], the batch dimension dynamic. It is traced with
PyTorch's TorchScript exporter (`dynamo=False`); docs/deployment.md gives the measurements
behind that choice. Before anything is written the model must pass `onnx.checker` (full check)
and ONNX Runtime must agree with PyTorch within TOLERANCE at three batch sizes of inputs drawn
from the run's own data; the file is then written atomically (temporary file + os.replace).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import math
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import torch
import yaml
from onnx import helper

from specc import __version__
from specc.exitcodes import EXIT_ERRORS, EXIT_OK, EXIT_USAGE
from specc.runtime import onnx_common as oc
from specc.runtime import target_scale
from specc.runtime.ensemble import is_ensemble
from specc.runtime.ensemble import load_members as load_ensemble

TOLERANCE = 1e-4
"""Largest |ONNX Runtime - PyTorch| allowed on an output value, relative to max(1, |PyTorch|)
(contract §6): absolute for probabilities and small values, float32's relative precision for
large regression outputs."""
DEFAULT_FILE = "model.onnx"
"""The file export writes into RUN_DIR, or into DIR for `-o DIR/`."""
DEFAULT_OPSET = 18
OPSET_RANGE = (13, 23)
ODD_BATCH = 7
LARGE_BATCH = (64, 1024)
"""The large batch: every sample row, at least 64 (rows repeat) and at most 1024."""
SAMPLE_SEED = 0


class ExportError(oc.CommandError):
    """The export cannot be made or failed verification; the message says why.

    `status` is the CLI exit status: 2 for an unusable run directory or argument, 1 for an
    export that failed (exporter, checker, ONNX Runtime or the parity check).
    """

    default_status = EXIT_ERRORS


@dataclass(frozen=True)
class BatchCheck:
    """One parity check: the batch size and the largest |onnx - torch| on it."""

    size: int
    max_diff: float


@dataclass(frozen=True)
class ExportReport:
    """What `export_run` wrote and how it was verified."""

    path: Path
    size_bytes: int
    opset: int
    checks: tuple[BatchCheck, ...]
    samples: str
    """Where the verification inputs came from: `test split`, `train split` or `random`."""
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def max_diff(self) -> float:
        """The largest difference over every checked batch."""
        return max(check.max_diff for check in self.checks)

    def line(self) -> str:
        """The one-line summary `specc export` prints."""
        kb = self.size_bytes / 1000
        return (
            f"wrote {self.path} ({kb:.1f} kB, opset {self.opset}); "
            f"max |onnx - torch| = {self.max_diff:.1e} over {len(self.checks)} batches "
            f"({', '.join(str(c.size) for c in self.checks)} rows of the {self.samples})"
        )


@dataclass
class Run:
    """A training run directory, read: its spec, summary, code and final weights."""

    path: Path
    spec: dict[str, Any]
    summary: dict[str, Any]
    model_file: Path
    data_file: Path | None
    weights: Path


# --- reading the run ------------------------------------------------------------------------


def read_run(run_dir: str | Path) -> Run:
    """Check that a run directory holds what export needs; ExportError(status 2) if not."""
    path = Path(run_dir)
    if not path.exists():
        raise ExportError(f"{path}: no such run directory", EXIT_USAGE)
    if not path.is_dir():
        raise ExportError(f"{path}: not a run directory (expected a directory)", EXIT_USAGE)
    spec_file, model_file = path / "spec.yaml", path / "code" / "model.py"
    weights = path / "model.pt"
    if (path / "members").is_dir() and not weights.exists():  # an ensemble: members/K/model.pt
        weights = path / "members"
    for needed in (spec_file, model_file):
        if not needed.is_file():
            raise ExportError(
                f"{path}: incomplete run directory: {needed.relative_to(path)} is missing "
                "(make one with `specc train SPEC -o RUN_DIR`)",
                EXIT_USAGE,
            )
    if not weights.exists():
        partial = [n for n in ("last.pt", "best.pt") if (path / n).is_file()]
        hint = (
            f"; training has not finished ({' and '.join(partial)} exist: "
            f"resume with `specc train SPEC -o {path} --resume`)"
            if partial
            else ""
        )
        raise ExportError(
            f"{path}: incomplete run directory: model.pt is missing{hint}", EXIT_USAGE
        )
    spec = _read_yaml(spec_file)
    summary = _read_summary(path / "summary.json")
    data_file = path / "code" / "data.py"
    return Run(path, spec, summary, model_file, data_file if data_file.is_file() else None, weights)


def _read_yaml(path: Path) -> dict[str, Any]:
    """The resolved spec; ExportError(2) when it is not a YAML mapping."""
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExportError(f"{path}: cannot read the resolved spec: {exc}", EXIT_USAGE) from None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ExportError(f"{path}: not a resolved spec (no `name`)", EXIT_USAGE)
    return value


SUMMARY_FIELDS: dict[str, str] = {
    "task": "text",
    "output_activation": "text",
    "labels": "a list of labels",
    "features": "a list of names",
    "input_shape": "a list of positive integers",
    "output_units": "a positive integer",
}
"""The summary.json keys export reads, and what each must hold (each may be absent)."""


def _read_summary(path: Path) -> dict[str, Any]:
    """summary.json as a mapping ({} when the file is absent); ExportError(2) when it is not
    JSON, not an object, or holds a key export reads with a value of the wrong type."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: cannot read: {exc}", EXIT_USAGE) from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: not a JSON object (a tampered run directory?)", EXIT_USAGE)
    for key, expected in SUMMARY_FIELDS.items():
        if value.get(key) is not None and not _fits(value[key], expected):
            shown = json.dumps(value[key])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ExportError(f"{path}: '{key}' is {shown}, not {expected}", EXIT_USAGE)
    return value


def _fits(value: Any, expected: str) -> bool:
    """Whether a summary.json value is what SUMMARY_FIELDS says it must be."""
    if expected == "text":
        return isinstance(value, str)
    if expected == "a positive integer":
        return type(value) is int and value > 0
    if not isinstance(value, list):
        return False
    if expected == "a list of positive integers":
        return all(type(n) is int and n > 0 for n in value)
    return all(isinstance(item, str | int | float) for item in value)


def import_file(path: Path, role: str) -> ModuleType:
    """Import a generated file by path under a unique module name (never `model`/`data`)."""
    name = f"_specc_run_{role}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path}: cannot be imported", EXIT_USAGE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ExportError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    return module


def load_model(run: Run) -> tuple[torch.nn.Module, tuple[int, ...], int]:
    """build_model() from code/model.py with model.pt loaded, in eval mode; its INPUT_SHAPE
    and OUTPUT_UNITS (falling back to summary.json's input_shape and output_units). For an
    ensemble (weights: RUN_DIR/members), the members' vote as one model."""
    if is_ensemble(run.spec) and run.weights.is_dir():
        return load_ensemble(run)
    module = import_file(run.model_file, "model")
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise ExportError(f"{run.model_file}: defines no build_model()", EXIT_USAGE)
    try:
        model = build()
    except Exception as exc:
        raise ExportError(f"{run.model_file}: build_model() failed: {exc}") from None
    if not callable(getattr(model, "predict", None)):
        raise ExportError(f"{run.model_file}: the model has no predict() method", EXIT_USAGE)
    state = _read_weights(run.weights)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"{run.weights}: does not fit code/model.py: {first}") from None
    shape = getattr(module, "INPUT_SHAPE", None) or run.summary.get("input_shape") or ()
    units = getattr(module, "OUTPUT_UNITS", None) or run.summary.get("output_units") or 0
    if not shape or not units:
        raise ExportError(f"{run.model_file}: defines no INPUT_SHAPE / OUTPUT_UNITS", EXIT_USAGE)
    return model.eval(), tuple(int(n) for n in shape), int(units)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in model.pt (a plain state dict, or one under a `model` key)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"{path}: cannot read the weights: {exc}", EXIT_USAGE) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ExportError(f"{path}: not a state dict", EXIT_USAGE)
    return state


# --- what the graph carries -------------------------------------------------------------------


def interface(run: Run, shape: tuple[int, ...], units: int, splits: Any | None) -> oc.Interface:
    """Task, labels and feature names from summary.json, the spec and the data."""
    spec, summary = run.spec, run.summary
    activation = summary.get("output_activation") or (spec.get("output") or {}).get("activation")
    task = summary.get("task") or _task_of(activation, units)
    if task not in oc.TASKS:
        raise ExportError(f"{run.path}: unknown task {task!r} in summary.json", EXIT_USAGE)
    labels = _labels(task, units, summary.get("labels", getattr(splits, "labels", None)), run.path)
    features = summary.get("features", getattr(splits, "features", None))
    if features is not None and len(features) != math.prod(shape):
        features = None  # names that do not describe the input cannot match columns
    features = [str(f) for f in features] if features is not None else None
    return oc.Interface(
        spec["name"], task, shape, units, labels, features, _targets(spec, task, units)
    )


def _task_of(activation: Any, units: int) -> str:
    """The task the output unit implies (contract §1's table)."""
    if activation == "softmax":
        return "multiclass"
    if activation == "sigmoid":
        return "binary" if units == 1 else "multilabel"
    return "regression"


def _labels(task: str, units: int, labels: Any, run_dir: Path) -> list[str] | None:
    """The class labels as strings (defaults `0`, `1`, ...), or None for regression."""
    if task in ("regression", "reconstruct", "encoder"):
        return None
    expected = 2 if task == "binary" else units
    if labels is None:
        return [str(i) for i in range(expected)]
    labels = [str(label) for label in labels]
    if len(labels) != expected:
        raise ExportError(
            f"{run_dir}: {len(labels)} labels in summary.json, but a {task} model with "
            f"{units} output units needs {expected}",
            EXIT_USAGE,
        )
    return labels


def _targets(spec: dict[str, Any], task: str, units: int) -> list[str] | None:
    """Regression target names from data.target, when there is one per output unit."""
    target = (spec.get("data") or {}).get("target")
    names = [target] if isinstance(target, str) else target
    if task != "regression" or not isinstance(names, list) or len(names) != units:
        return None
    return [str(name) for name in names]


def metadata(iface: oc.Interface, spec: dict[str, Any]) -> dict[str, str]:
    """The `specc.*` metadata properties (contract §6 plus features, task, version)."""
    props = {
        oc.META_NAME: iface.name,
        oc.META_SPEC: json.dumps(spec, sort_keys=False, default=str),
        oc.META_TASK: iface.task,
        oc.META_VERSION: __version__,
    }
    if iface.labels is not None:
        props[oc.META_LABELS] = json.dumps(iface.labels)
    if iface.features is not None:
        props[oc.META_FEATURES] = json.dumps(iface.features)
    if iface.targets is not None:
        props[oc.META_TARGETS] = json.dumps(iface.targets)
    return props


# --- tracing ----------------------------------------------------------------------------------


def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The generated model's `predict(x)`: the output unit applied to its logits."""
    method: Callable[[torch.Tensor], torch.Tensor] = getattr(model, "predict")  # noqa: B009
    return method(x)


class EncoderPart(torch.nn.Module):
    """export.onnx.part: encoder: a VAE's encoder, raw input -> the gaussian_latent's mu."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
        encode = getattr(self.model, "encode")  # noqa: B009 - a generated model's method
        return encode(x)[0]


def select_part(
    run: Run, model: torch.nn.Module, shape: tuple[int, ...], units: int
) -> tuple[torch.nn.Module, int]:
    """The module whose predict() is exported and its output width: the model, or with
    export.onnx.part: encoder its encoder (the latent's width)."""
    onnx_options = (run.spec.get("export") or {}).get("onnx") or {}
    if not isinstance(onnx_options, dict) or onnx_options.get("part") != "encoder":
        return model, units
    if not callable(getattr(model, "encode", None)):
        raise ExportError(f"{run.model_file}: part: encoder needs a gaussian_latent", EXIT_USAGE)
    part = EncoderPart(model).eval()
    with torch.no_grad():
        width = part.predict(torch.zeros(1, *shape))
    return part, int(width.shape[-1])


class Predict(torch.nn.Module):
    """Exports `model.predict`: the output unit applied to the logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return predict(self.model, x)


@contextmanager
def _quiet_exporter(tracer: list[str]) -> Iterator[None]:
    """Silence the exporter's warnings, keeping TracerWarnings (they explain bad traces)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            tracer.append(f"{Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]}")


def trace(model: torch.nn.Module, input_shape: tuple[int, ...], opset: int, tracer: list[str]):
    """The ONNX ModelProto of `Predict(model)` with a dynamic batch dimension."""
    example = torch.zeros(2, *input_shape)
    buffer = io.BytesIO()
    try:
        with _quiet_exporter(tracer), torch.no_grad():
            torch.onnx.export(
                Predict(model).eval(),
                (example,),
                buffer,  # type: ignore[arg-type]  # the TorchScript exporter takes file objects
                dynamo=False,  # see docs/deployment.md, "Exporter"
                opset_version=opset,
                input_names=[oc.INPUT_NAME],
                output_names=[oc.OUTPUT_NAME],
                dynamic_axes={oc.INPUT_NAME: {0: "batch"}, oc.OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"the ONNX exporter failed at opset {opset}: {first}") from None
    return onnx.load_from_string(buffer.getvalue())


def pin_same_padding(model: onnx.ModelProto) -> int:
    """Replace Conv's `auto_pad=SAME_*` by the explicit pads PyTorch uses; returns the count.

    The exporter writes padding='same' as auto_pad=SAME_UPPER, which the ONNX spec keeps only
    for legacy use and ONNX Runtime rejects together with dilation > 1. PyTorch pads
    d * (k - 1) in total per spatial axis at stride 1, the odd element at the end.
    """
    changed = 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        mode = attrs.get("auto_pad", b"NOTSET")
        if node.op_type != "Conv" or mode not in (b"SAME_UPPER", b"SAME_LOWER"):
            continue
        kernel = list(attrs["kernel_shape"])
        if any(s != 1 for s in attrs.get("strides", [1] * len(kernel))):
            continue  # ONNX Runtime handles SAME with strides; PyTorch never emits it
        dilations = list(attrs.get("dilations", [1] * len(kernel)))
        total = [d * (k - 1) for d, k in zip(dilations, kernel, strict=True)]
        small = [t // 2 for t in total]
        big = [t - s for t, s in zip(total, small, strict=True)]
        begin, end = (small, big) if mode == b"SAME_UPPER" else (big, small)
        keep = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend([*keep, helper.make_attribute("pads", begin + end)])
        changed += 1
    return changed


def finish(model: onnx.ModelProto, props: dict[str, str], units: int) -> onnx.ModelProto:
    """Pin padding, name the output's shape [batch, units], set producer and metadata."""
    pin_same_padding(model)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2 and not dims[1].dim_param and dims[1].dim_value in (0, units):
        dims[1].dim_value = units
    model.producer_name, model.producer_version = "specc", __version__
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    return model


def check(model: onnx.ModelProto) -> bytes:
    """onnx.checker with full_check (strict shape inference); the serialized model."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"onnx.checker rejected the exported model: {exc}") from None
    return model.SerializeToString()


# --- verification -------------------------------------------------------------------------------


def sample_rows(run: Run, input_shape: tuple[int, ...]) -> tuple[np.ndarray, str, Any, str | None]:
    """Rows to verify on: (x, where from, the Splits or None, a note when data is missing)."""
    splits, note = None, None
    if run.data_file is not None:
        try:
            splits = import_file(run.data_file, "data").load()
        except ExportError as exc:
            note = str(exc)
        except Exception as exc:  # DataError or any failure while reading the data
            note = f"{run.data_file}: load() failed: {exc}"
    else:
        note = f"{run.path}: code/data.py is missing"
    for split in ("test", "train"):
        x = getattr(splits, f"x_{split}", None)
        if x is not None and len(x) > 0:
            x = np.asarray(x, dtype=np.float32).reshape(len(x), *input_shape)
            return x, f"{split} split", splits, None
    rng = np.random.default_rng(SAMPLE_SEED)
    x = rng.standard_normal((LARGE_BATCH[0], *input_shape)).astype(np.float32)
    note = (note or "the data has no rows") + "; verified on random inputs"
    return x, "random inputs", splits, note


def batches(x: np.ndarray) -> list[np.ndarray]:
    """Batches of 1, ODD_BATCH and many rows: consecutive sample rows, cycling when few."""
    large = min(max(len(x), LARGE_BATCH[0]), LARGE_BATCH[1])
    out, start = [], 0
    for size in (1, ODD_BATCH, large):
        out.append(x[np.arange(start, start + size) % len(x)])
        start += size
    return out


def verify(
    model_bytes: bytes, torch_model: torch.nn.Module, inputs: list[np.ndarray], tracer: list[str]
) -> tuple[BatchCheck, ...]:
    """Run ONNX Runtime and PyTorch on each batch; ExportError when any value is off by more
    than TOLERANCE * max(1, |PyTorch's value|)."""
    try:
        sess = oc.session(model_bytes)
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot load the exported model: {exc}") from None
    checks = []
    for x in inputs:
        with torch.no_grad():
            expected = predict(torch_model, torch.from_numpy(x)).numpy()
        try:
            got = sess.run([oc.OUTPUT_NAME], {oc.INPUT_NAME: x})[0]
        except Exception as exc:
            raise ExportError(f"ONNX Runtime failed on a batch of {len(x)}: {exc}") from None
        diff, worst = parity(expected, got)
        checks.append(BatchCheck(len(x), diff))
        if worst is not None:
            raise ExportError(_parity_message(len(x), diff, worst, tracer))
    return tuple(checks)


def parity(expected: np.ndarray, got: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    """max |expected - got|, and the (torch, onnx) pair furthest outside the tolerance (None
    when every value passes).

    A value passes when |onnx - torch| <= TOLERANCE * max(1, |torch|); a nan on either side
    fails, and mismatched shapes give (inf, (nan, nan)).
    """
    if expected.shape != got.shape:
        return math.inf, (math.nan, math.nan)
    if expected.size == 0:
        return 0.0, None
    a, b = expected.astype(np.float64).ravel(), got.astype(np.float64).ravel()
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        excess = np.nan_to_num(diff / np.maximum(1.0, np.abs(a)), nan=np.inf)
    if not np.max(excess) > TOLERANCE:
        return float(np.max(diff)), None
    i = int(np.argmax(excess))
    return float(np.max(diff)), (float(a[i]), float(b[i]))


def _parity_message(size: int, diff: float, worst: tuple[float, float], tracer: list[str]) -> str:
    """Why the export was refused, with the tracer's warnings as hints."""
    if diff == math.inf:
        figure = "different output shapes"
    else:
        figure = (
            f"max |onnx - torch| = {diff:.3g} > {TOLERANCE:g} * max(1, |torch|) "
            f"(PyTorch {worst[0]:.7g}, ONNX Runtime {worst[1]:.7g})"
        )
    lines = [
        f"ONNX Runtime and PyTorch disagree on a batch of {size} rows: {figure}; "
        "nothing was written"
    ]
    lines += [f"  hint: the tracer warned: {w}" for w in dict.fromkeys(tracer)]
    if tracer:
        lines.append("  hint: predict() must not branch on tensor values or the batch size")
    return "\n".join(lines)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to path via a temporary file in the same directory and os.replace;
    ExportError(2) naming the path when it cannot be written (nothing partial is left)."""
    with oc.atomic_output(path, ExportError, binary=True) as fh:
        fh.write(data)


# --- the command ------------------------------------------------------------------------------


def default_opset(spec: dict[str, Any]) -> int:
    """export.onnx.opset of the resolved spec, else DEFAULT_OPSET."""
    onnx_options = (spec.get("export") or {}).get("onnx") or {}
    opset = onnx_options.get("opset") if isinstance(onnx_options, dict) else None
    return int(opset) if isinstance(opset, int) else DEFAULT_OPSET


def export_run(
    run_dir: str | Path, out_path: str | Path | None = None, opset: int | None = None
) -> ExportReport:
    """Export a run's final weights to a verified ONNX file; raises ExportError."""
    started = time.perf_counter()
    run = read_run(run_dir)
    opset = default_opset(run.spec) if opset is None else opset
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise ExportError(
            f"opset {opset} is outside {OPSET_RANGE[0]}..{OPSET_RANGE[1]}", EXIT_USAGE
        )
    out = (
        oc.output_file(out_path, "model.onnx") if out_path is not None else run.path / "model.onnx"
    )
    model, shape, units = load_model(run)
    exported, units = select_part(run, model, shape, units)  # export.onnx.part
    x, samples, splits, note = sample_rows(run, shape)
    iface = interface(run, shape, units, splits)
    if exported is not model:  # the encoder: the latent's mu, one column per latent unit
        iface = dataclasses.replace(iface, task="encoder", features=iface.features)
    tracer: list[str] = []
    proto = trace(exported, iface.input_shape, opset, tracer)
    props = {**metadata(iface, run.spec), **target_scale.metadata(model)}
    data = check(finish(proto, props, iface.units))
    checks = verify(data, exported, batches(x), tracer)
    write_atomic(out, data)
    seconds = time.perf_counter() - started
    return ExportReport(out, len(data), opset, checks, samples, seconds, (note,) if note else ())


def run_export(run_dir: str, output: str | None, opset: int | None) -> int:
    """CLI entry of `specc export`: print the report line or the error; the exit status."""
    try:
        report = export_run(run_dir, output, opset)
    except ExportError as exc:
        print(f"specc export: error: {exc}", file=sys.stderr)
        return exc.status
    for note in report.notes:
        print(f"specc export: warning: {note}", file=sys.stderr)
    print(report.line())
    return EXIT_OK
