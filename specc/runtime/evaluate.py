"""`specc evaluate RUN_DIR_OR_MODEL.onnx DATA [--format text|json]`: metrics on a labelled file.

The model is an exported ONNX file (for a run directory: RUN_DIR/model.onnx, which `specc train`
writes when the spec has `export.onnx` and `specc export RUN_DIR` writes otherwise); it runs with
ONNX Runtime, so evaluate needs no torch and scores exactly what is deployed. DATA is read as
`specc predict` reads it (the same feature matching, row numbers and refusals), plus the target
column(s) the resolved spec in the model's `specc.spec` metadata names (`data.target`; `target`
for scikit-learn sources, as `load_<name>(as_frame=True)` names it; npz: that key, else `y`).

Metrics are the task's (contract §5), computed as train.py's `evaluate()` computes them:
classification `loss`, `accuracy` (multi-label: averaged over labels and rows); regression `loss`,
`mae`, `rmse`, `r2` (r2 per output, averaged). `loss` is the spec's loss without penalties (as in
summary.json and metrics.csv), label smoothing included, and for data.normalize_target on the
standardised targets (the graph's `specc.target_scale` metadata); the graph outputs
probabilities, so the cross-entropies are computed from them clipped to [1e-7, 1 - 1e-7], as
Keras's `model.evaluate`
computes them for a probability output. That equals training's loss from the logits unless some
probability of the true class is below 1e-7, where the clipped loss is the smaller. Classifiers
also get per-class precision, recall, F1 and support and (not multi-label) the confusion matrix.

Exit status: 0 evaluated; 2 a bad model, data or target (one line naming file, column and row);
1 ONNX Runtime failed while running a batch.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from specc.exitcodes import EXIT_OK
from specc.runtime import onnx_common as oc
from specc.runtime import predict as pr
from specc.runtime import target_scale

CLIP = 1e-7
"""Probabilities are clipped to [CLIP, 1 - CLIP] before a logarithm (Keras's epsilon)."""
BATCH_ROWS = 4096
"""Rows per ONNX Runtime call."""
SKLEARN_TARGETS = {"linnerud": ["Weight", "Waist", "Pulse"]}
"""Target columns of scikit-learn sources with several targets (the rest have `target`)."""
DEFAULT_LOSS = {
    "multiclass": "cross_entropy",
    "binary": "binary_cross_entropy",
    "multilabel": "binary_cross_entropy",
}
"""The loss a spec without `loss` implies, by task (regression: mse)."""


class EvaluateError(pr.PredictError):
    """A problem with the model, the data or its targets (exit 2 unless said otherwise)."""


@dataclass(frozen=True)
class Loss:
    """The spec's loss: its name and options."""

    name: str
    label_smoothing: float = 0.0
    delta: float = 1.0
    standardised: bool = False
    """data.normalize_target: the loss is on the standardised targets (the metrics are not)."""

    def describe(self) -> str:
        """`cross_entropy, label smoothing 0.05` for the text report."""
        extra = f", label smoothing {self.label_smoothing:g}" if self.label_smoothing else ""
        if self.name == "huber":
            extra = f", delta {self.delta:g}"
        if self.standardised:
            extra += ", on standardised targets"
        return self.name + extra


@dataclass(frozen=True)
class Report:
    """What evaluate found: the JSON document's fields (see docs/deployment.md)."""

    model: Path
    data: Path
    name: str
    task: str
    loss: Loss
    rows: int
    metrics: dict[str, float]
    per_class: list[dict[str, Any]] | None
    confusion: dict[str, Any] | None

    def document(self) -> dict[str, Any]:
        """The `--format json` object; non-finite numbers (r2 of a constant target) are null."""
        loss: dict[str, Any] = {"name": self.loss.name}
        if self.loss.label_smoothing:
            loss["label_smoothing"] = self.loss.label_smoothing
        if self.loss.name == "huber":
            loss["delta"] = self.loss.delta
        if self.loss.standardised:
            loss["targets"] = "standardised"
        return _finite(
            {
                "model": str(self.model),
                "data": str(self.data),
                "name": self.name,
                "task": self.task,
                "loss": loss,
                "rows": self.rows,
                "metrics": self.metrics,
                "per_class": self.per_class,
                "confusion": self.confusion,
            }
        )


def _finite(value: Any) -> Any:
    """The value with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- the model and its spec -------------------------------------------------------------------


def model_path(source: str | Path) -> Path:
    """The ONNX file: `source` itself, or RUN_DIR/model.onnx for a run directory."""
    path = Path(source)
    if not path.is_dir():
        return path
    onnx_file = path / "model.onnx"
    if not onnx_file.is_file():
        raise EvaluateError(
            f"{path}: the run directory has no model.onnx; write it with `specc export {path}`"
        )
    return onnx_file


def read_spec(model: pr.Model) -> dict[str, Any]:
    """The resolved spec in the model's `specc.spec` metadata."""
    raw = oc.specc_metadata(model.session).get(oc.META_SPEC)
    try:
        spec = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), dict):
        raise EvaluateError(
            f"{model.path}: no readable specc.spec metadata (the resolved spec names the "
            "target columns); export the run again with `specc export RUN_DIR`"
        )
    return spec


def spec_loss(spec: dict[str, Any], task: str) -> Loss:
    """The spec's loss with its options (the task's default when the spec has none)."""
    raw = spec.get("loss")
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raw = {"name": DEFAULT_LOSS.get(task, "mse")}
    return Loss(
        raw["name"], float(raw.get("label_smoothing") or 0.0), float(raw.get("delta") or 1.0)
    )


def target_names(spec: dict[str, Any]) -> list[str]:
    """The target column(s) the spec names: data.target, or scikit-learn's frame names."""
    data = spec["data"]
    source = str(data.get("source", ""))
    if source.startswith("sklearn:"):
        return SKLEARN_TARGETS.get(source.partition(":")[2], ["target"])
    target = data.get("target")
    if isinstance(target, str):
        return [target]
    if isinstance(target, list) and target:
        return [str(name) for name in target]
    return ["y"]  # an npz source's default key


# --- reading the targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The target cells of every data row: one list per target column, and the row numbers."""

    columns: list[str]
    cells: list[list[Any]]
    rows: list[int]
    where: str
    """`column` or `array`, for messages."""


def read_targets(data: Path, names: list[str], model: pr.Model) -> Targets:
    """The target cells of DATA (an existing .csv, .parquet or .npz file, as read_chunks has
    checked), the same rows `specc predict` reads."""
    suffix = data.suffix.lower()
    if suffix == ".csv":
        return _csv_targets(data, names)
    if suffix == ".npz":
        return _npz_targets(data, names, model)
    return _parquet_targets(data, names)


def _missing(data: Path, missing: list[str], columns: list[str]) -> Any:
    """The error for target columns DATA lacks, with a did-you-mean."""
    names = ", ".join(f"'{n}'" for n in missing)
    lines = [
        f"{data}: no target column{'s' * (len(missing) > 1)} {names} (the model's spec names "
        f"{'them' if len(missing) > 1 else 'it'}); the file's columns: {pr.quoted(columns)}"
    ]
    for name in missing[:5]:
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
        if close:
            lines.append(f"  hint: for '{name}', did you mean '{close[0]}'?")
    raise EvaluateError("\n".join(lines))


def _csv_targets(data: Path, names: list[str]) -> Targets:
    """The target columns of a csv file, row by row as predict (and train) read its rows."""
    try:
        with open(data, newline="", encoding="utf-8-sig") as fh:
            return _csv_target_records(csv.reader(fh), data, names)
    except OSError as exc:
        raise EvaluateError(f"{data}: cannot read the file: {exc.strerror or exc}") from None


def _csv_target_records(reader: Any, data: Path, names: list[str]) -> Targets:
    """The target cells of an open csv reader."""
    header = pr.next_record(reader, data)
    if header is None:
        raise EvaluateError(f"{data}: the file is empty (a header row is expected)")
    columns = [cell.strip() for cell in header]
    if columns and all(_label_key(c)[1] is not None for c in columns):
        raise EvaluateError(
            f"{data}: no header row (the first line is all numbers), but evaluate finds the "
            f"target column {pr.quoted(names)} by its name"
        )
    missing = [n for n in names if n not in columns]
    if missing:
        _missing(data, missing, columns)
    for name in names:
        if columns.count(name) > 1:
            first = columns.index(name)
            again = columns.index(name, first + 1)
            raise EvaluateError(
                f"{data}: column '{name}' appears twice (columns {first + 1} and {again + 1})"
            )
    index = [columns.index(n) for n in names]
    cells: list[list[Any]] = [[] for _ in names]
    rows: list[int] = []
    number = 0
    while (record := pr.next_record(reader, data, number + 1)) is not None:
        number += 1
        if pr.is_blank(record):
            continue
        if len(record) != len(columns):
            raise EvaluateError(
                f"{data}: row {number} has {len(record)} cells, the header {len(columns)} columns"
            )
        for k, i in enumerate(index):
            cells[k].append(record[i])
        rows.append(number)
    return Targets(names, cells, rows, "column")


def _parquet_targets(data: Path, names: list[str]) -> Targets:
    """The target columns of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(data)
        columns = list(file.schema_arrow.names)
        missing = [n for n in names if n not in columns]
        if missing:
            _missing(data, missing, columns)
        table = file.read(columns=names)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EvaluateError(f"{data}: cannot read the target columns: {first}") from None
    cells = [table.column(n).to_pylist() for n in names]
    return Targets(names, cells, list(range(1, table.num_rows + 1)), "column")


def _npz_targets(data: Path, names: list[str], model: pr.Model) -> Targets:
    """The target array of an npz file: the spec's target key, else `y`; [N] or [N, units]."""
    try:
        with zipfile.ZipFile(data) as zf:
            keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise EvaluateError(f"{data}: not an .npz file ({exc})") from None
    key = next((k for k in (names[0], "y") if k in keys), None)
    if key is None:
        wanted = "'y'" if names[0] == "y" else f"'{names[0]}' (the spec's target) or 'y'"
        raise EvaluateError(
            f"{data}: no target array {wanted}; the file's arrays: {pr.quoted(keys) or 'none'}"
        )
    try:
        with np.load(data, allow_pickle=False) as npz:
            y = npz[key]
    except ValueError:
        raise EvaluateError(
            f"{data}: array '{key}' holds Python objects, which load only by unpickling; "
            "save it with a numeric (or, for labels, string) dtype"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise EvaluateError(f"{data}: cannot read array '{key}': {exc}") from None
    per_row = 1 if y.ndim == 1 else math.prod(y.shape[1:])
    width = model.units if model.task in ("multilabel", "regression") else 1
    if y.ndim == 0 or per_row != width:
        shape = f"[N, {width}]" if width > 1 else "[N] (or [N, 1])"
        raise EvaluateError(
            f"{data}: array '{key}' has shape {list(y.shape)}, but the model's targets are {shape}"
        )
    y = y.reshape(len(y), width)
    columns = [key] if width == 1 else [f"{key}[:, {k}]" for k in range(width)]
    cells = [y[:, k].tolist() for k in range(width)]
    return Targets(columns, cells, list(range(1, len(y) + 1)), "array")


# --- encoding the targets ---------------------------------------------------------------------


def _empty(cell: Any) -> bool:
    """A missing cell: None, NaN, or blank text."""
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str | bytes) and not str(cell).strip()


def _label_key(cell: Any) -> tuple[str, float | None]:
    """A target cell as train's encode_labels names it ('1.0' -> '1'), and its number (if any)."""
    if isinstance(cell, bytes):
        cell = cell.decode("utf-8", "replace")
    text = str(cell).strip()
    try:
        value = float(text)
    except ValueError:
        return text, None
    if not math.isfinite(value):
        return text, None
    return (str(int(value)) if value.is_integer() else str(value)), value


def class_indices(targets: Targets, labels: list[str], data: Path) -> np.ndarray:
    """Class indices of the (one) label column: a cell names a class as train encoded it; when
    no class name is a number, an integer 0..k-1 is the class index (scikit-learn's codes)."""
    index = {label: k for k, label in enumerate(labels)}
    codes = not any(_label_key(label)[1] is not None for label in labels)
    column = targets.columns[0]
    out = np.empty(len(targets.rows), dtype=np.int64)
    for i, (cell, row) in enumerate(zip(targets.cells[0], targets.rows, strict=True)):
        if _empty(cell):
            raise EvaluateError(
                f"{data}: row {row}, {targets.where} '{column}': empty cell (a class label is "
                "needed)"
            )
        name, value = _label_key(cell)
        if name in index:
            out[i] = index[name]
        elif codes and value is not None and value.is_integer() and 0 <= value < len(labels):
            out[i] = int(value)
        else:
            raise EvaluateError(
                f"{data}: row {row}, {targets.where} '{column}': {pr.shorten(name)!r} is not one "
                f"of the model's classes ({pr.quoted(labels, 10)})"
            )
    return out


def numbers(targets: Targets, data: Path, zero_one: bool = False) -> np.ndarray:
    """The target cells as float64 [N, columns]; 0/1 only when `zero_one` (multi-label)."""
    out = np.empty((len(targets.rows), len(targets.columns)), dtype=np.float64)
    for k, column in enumerate(targets.columns):
        for i, (cell, row) in enumerate(zip(targets.cells[k], targets.rows, strict=True)):
            value = pr.as_float(cell)
            where = f"{data}: row {row}, {targets.where} '{column}'"
            if not math.isfinite(value):
                raise EvaluateError(f"{where}: {pr.describe_cell(cell)}")
            if zero_one and value not in (0.0, 1.0):
                raise EvaluateError(f"{where}: {cell!r} is not a 0/1 label")
            out[i, k] = value
    return out


# --- metrics ----------------------------------------------------------------------------------


def _xlogy(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """t * log(p) with p clipped to [CLIP, 1 - CLIP]."""
    return t * np.log(np.clip(p, CLIP, 1.0 - CLIP))


def classification_loss(loss: Loss, p: np.ndarray, t: np.ndarray) -> float:
    """Cross-entropy of probabilities p against (smoothed) targets t, averaged as train does:
    over rows (softmax) or over every output (sigmoid)."""
    eps = loss.label_smoothing
    if loss.name == "cross_entropy":
        k = p.shape[1]
        smooth = np.where(t > 0.5, 1.0 - eps, eps / (k - 1)) if eps else t
        p = p / p.sum(axis=1, keepdims=True)
        return float(-_xlogy(smooth, p).sum(axis=1).mean())
    smooth = t * (1.0 - 2.0 * eps) + eps
    return float(-(_xlogy(smooth, p) + _xlogy(1.0 - smooth, 1.0 - p)).mean())


def regression_loss(loss: Loss, y: np.ndarray, t: np.ndarray) -> float:
    """mse, mae or huber over every output, averaged."""
    d = np.abs(y - t)
    if loss.name == "mae":
        return float(d.mean())
    if loss.name == "huber":
        delta = loss.delta
        return float(np.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta)).mean())
    return float((d**2).mean())


def scores(label: str, truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1 and support of one class from boolean truth and prediction
    vectors (0 where undefined, as scikit-learn's zero_division=0)."""
    tp = int(np.sum(truth & predicted))
    n_pred, support = int(np.sum(predicted)), int(np.sum(truth))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"label": label, "precision": precision, "recall": recall, "f1": f1, "support": support}


def score(
    model: pr.Model,
    loss: Loss,
    y: np.ndarray,
    targets: Targets,
    data: Path,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple:
    """(metrics, per_class, confusion) of outputs y [N, units] against the targets; `scale`:
    the target scale of data.normalize_target, which the regression loss is computed on."""
    labels = model.labels or []
    if model.task in ("multiclass", "binary"):
        truth = class_indices(targets, labels, data)
        if model.task == "multiclass":
            predicted = np.argmax(y, axis=1)
            onehot = np.eye(len(labels))[truth]
        else:  # one sigmoid unit: p(labels[1]), the positive class
            predicted = (y[:, 0] >= pr.THRESHOLD).astype(np.int64)
            onehot = truth[:, None].astype(np.float64)
        metrics = {
            "loss": classification_loss(loss, y.astype(np.float64), onehot),
            "accuracy": float(np.mean(predicted == truth)),
        }
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(matrix, (truth, predicted), 1)
        confusion = {"labels": labels, "matrix": matrix.tolist()}
        classes = [scores(label, truth == k, predicted == k) for k, label in enumerate(labels)]
        return metrics, classes, confusion
    if model.task == "multilabel":
        t = numbers(targets, data, zero_one=True)
        hits = y >= pr.THRESHOLD
        metrics = {
            "loss": classification_loss(loss, y.astype(np.float64), t),
            "accuracy": float(np.mean(hits == (t > 0.5))),
        }
        rows = []
        for k, label in enumerate(labels):  # each label a binary problem of its own
            row = scores(label, t[:, k] > 0.5, hits[:, k])
            row["accuracy"] = float(np.mean(hits[:, k] == (t[:, k] > 0.5)))
            rows.append(row)
        return metrics, rows, None
    return regression_metrics(loss, y, numbers(targets, data), scale), None, None


def regression_metrics(
    loss: Loss, y: np.ndarray, t: np.ndarray, scale: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, float]:
    """loss, mae, rmse and r2 (per output, averaged) of outputs y against targets t [N, units];
    `scale`: data.normalize_target's, which the loss alone is computed on."""
    out = y.astype(np.float64)
    error = out - t
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant target: r2 is nan / -inf
        r2 = 1.0 - (error**2).sum(axis=0) / ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    return {
        "loss": regression_loss(loss, *target_scale.standardise(scale, out, t)),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": float(r2.mean()),
    }


def outputs(model: pr.Model, chunks: Iterator[pr.Chunk]) -> np.ndarray:
    """The model's outputs [N, units] for every chunk of rows."""
    parts = [pr.run_chunk(model, chunk) for chunk in chunks]
    if not parts:
        return np.zeros((0, model.units), dtype=np.float32)
    return np.concatenate(parts)


def evaluate(source: str | Path, data_path: str | Path) -> Report:
    """Evaluate the model (an ONNX file or a run directory) on a labelled data file."""
    model = pr.open_model(model_path(source))
    data = Path(data_path)
    spec = read_spec(model)
    if spec.get("task") == "reconstruct":
        raise EvaluateError(f"{model.path}: evaluate does not support task: reconstruct")
    chunks = pr.read_chunks(data, model, BATCH_ROWS)  # a missing file or unknown type: here
    targets = read_targets(data, target_names(spec), model)
    y = outputs(model, chunks)
    if len(y) != len(targets.rows):  # pragma: no cover  (both readers skip the same rows)
        raise EvaluateError(f"{data}: {len(y)} feature rows but {len(targets.rows)} target rows")
    if len(y) == 0:
        raise EvaluateError(f"{data}: no data rows to evaluate")
    loss = spec_loss(spec, model.task)
    scale = None
    if model.task == "regression":
        scale = target_scale.read(oc.specc_metadata(model.session), model.units)
        loss = replace(loss, standardised=scale is not None)
    metrics, classes, confusion = score(model, loss, y, targets, data, scale)
    return Report(
        model.path, data, model.name, model.task, loss, len(y), metrics, classes, confusion
    )


# --- rendering --------------------------------------------------------------------------------


def _number(value: float) -> str:
    """Four decimals for metrics near 1, six significant digits for the rest."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.6g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, two spaces apart."""
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    return [
        "  ".join(
            cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j]) for j, cell in enumerate(r)
        ).rstrip()
        for r in [header, *rows]
    ]


def render_text(report: Report) -> str:
    """The readable report: metrics, the per-class table and the confusion matrix."""
    lines = [
        f"{report.name} ({report.task}) on {report.data}: {report.rows} rows",
        f"loss: {report.loss.describe()} (without penalties)",
        "",
    ]
    rows = [[name, _number(value)] for name, value in report.metrics.items()]
    lines += _table(["metric", "value"], rows)
    if report.per_class is not None:
        extra = ["accuracy"] if report.task == "multilabel" else []
        header = ["label" if extra else "class", "precision", "recall", "f1", *extra, "support"]
        shown = ["precision", "recall", "f1", *extra]
        table = [
            [str(c["label"]), *(f"{c[k]:.4f}" for k in shown), str(c["support"])]
            for c in report.per_class
        ]
        lines += ["", *_table(header, table)]
    if report.confusion is not None:
        labels = report.confusion["labels"]
        matrix = report.confusion["matrix"]
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
        body = [[label, *map(str, row)] for label, row in zip(labels, matrix, strict=True)]
        lines += _table(["", *labels], body)
    return "\n".join(lines)


def run_evaluate(source: str, data: str, fmt: str) -> int:
    """CLI entry of `specc evaluate`: print the report; the exit status."""
    try:
        report = evaluate(source, data)
    except pr.PredictError as exc:
        print(f"specc evaluate: error: {exc}", file=sys.stderr)
        return exc.status
    if fmt == "json":
        print(json.dumps(report.document(), indent=2))
    else:
        print(render_text(report))
    return EXIT_OK
