"""`specc predict MODEL.onnx DATA [-o OUT.csv]`: run an exported model with ONNX Runtime.

DATA is a .csv, .parquet or .npz file, read in batches of `batch_size` rows so memory stays
bounded (csv in pandas chunks, parquet by record batches, npz memory-mapped when the member is
stored uncompressed). Features are matched to the model's input by the names in the model's
`specc.features` metadata (other columns, such as the target, are ignored), or by position when
the file has exactly as many columns as the model has features and none of the names match.

The output is CSV (to -o, written atomically, or to standard output), one row per input row:
- multiclass: `prediction` (the argmax's label), then `p_<label>` for every class;
- binary: `prediction` (labels[1] when p >= 0.5, else labels[0]), `p_<labels[0]>`, `p_<labels[1]>`;
- multilabel: `prediction_<label>` (1 when p >= 0.5, else 0) for every label, then `p_<label>`;
- regression: `prediction` for one output, else `prediction_<target>` (or `prediction_<i>`).

Exit status: 0 written, 2 a problem with the inputs (missing file, not a specc export, missing
or non-numeric columns, empty cells, wrong feature count), 1 ONNX Runtime failed while running.
Messages name the file, the column and the row (1-based, header excluded); never a traceback.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from specc.runtime import onnx_common as oc

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
THRESHOLD = 0.5
"""Sigmoid outputs at or above this probability count as the positive class."""
FLOAT_FORMAT = "%.7g"
"""Enough digits for float32 outputs."""


class PredictError(oc.CommandError):
    """A problem with the model or the data; the message names file, column and row."""

    default_status = EXIT_USAGE


@dataclass(frozen=True)
class Model(oc.Interface):
    """An exported specc model: its interface, read back from the graph and metadata, and the
    ONNX Runtime session that runs it."""

    path: Path
    session: Any

    @property
    def n_features(self) -> int:
        """Values per example: the product of the input shape."""
        return math.prod(self.input_shape)


@dataclass(frozen=True)
class Chunk:
    """A batch of input rows: the 1-based number of its first row and its values [n, F]."""

    first_row: int
    x: np.ndarray


# --- the model --------------------------------------------------------------------------------


def open_model(path: str | Path) -> Model:
    """Load an exported model; PredictError when it is missing or not a specc export."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        sess = oc.session(str(path))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PredictError(f"{path}: not an ONNX model ({first})") from None
    meta = oc.specc_metadata(sess)
    if oc.META_NAME not in meta or meta.get(oc.META_TASK) not in oc.TASKS:
        raise PredictError(
            f"{path}: not a specc export (no specc.name / specc.task metadata); "
            "make one with `specc export RUN_DIR`"
        )
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    shape, units = list(inputs[0].shape[1:]), outputs[0].shape[-1]
    if len(inputs) != 1 or not all(isinstance(d, int) for d in [*shape, units]):
        raise PredictError(f"{path}: the graph's input or output shape is not [batch, ...] fixed")
    task = meta[oc.META_TASK]
    return Model(
        name=meta[oc.META_NAME],
        task=task,
        input_shape=tuple(shape),
        units=int(units),
        labels=_labels(oc.json_list(meta, oc.META_LABELS), task, int(units)),
        features=oc.json_list(meta, oc.META_FEATURES),
        targets=oc.json_list(meta, oc.META_TARGETS),
        path=path,
        session=sess,
    )


def _labels(labels: list[str] | None, task: str, units: int) -> list[str] | None:
    """Class labels, defaulting to `0`, `1`, ... when the metadata has none that fit."""
    if task == "regression":
        return None
    expected = 2 if task == "binary" else units
    if labels is None or len(labels) != expected:
        return [str(i) for i in range(expected)]
    return labels


# --- matching columns ---------------------------------------------------------------------------


def match_columns(names: list[str], model: Model, data: Path) -> list[str] | None:
    """The file's columns to read, in input order; None means every column, by position."""
    features = model.features or []
    if features and all(f in names for f in features):
        return list(features)
    matched = [f for f in features if f in names]
    if not matched and len(names) == model.n_features:
        return None
    if not features:
        raise PredictError(
            f"{data}: {len(names)} columns, but the model takes {model.n_features} features "
            "(it stores no feature names, so columns are taken by position)"
        )
    missing = [f for f in features if f not in names]
    spare = [n for n in names if n not in features]
    found = f"{len(matched)} of {len(features)} features found"
    if not matched:
        found += f"; the file's columns: {_quoted(names)}"
    lines = [
        f"{data}: missing feature column{'s' * (len(missing) > 1)} {_quoted(missing)} ({found})"
    ]
    for name in missing[:5]:
        close = difflib.get_close_matches(name, spare, n=1, cutoff=0.6)
        if close:
            lines.append(f"  hint: for '{name}', did you mean '{close[0]}'?")
    return _raise("\n".join(lines))


def _quoted(names: list[str], limit: int = 5) -> str:
    """'a', 'b', 'c' and N more."""
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _raise(message: str) -> Any:
    """Raise a PredictError (usable where an expression is expected)."""
    raise PredictError(message)


def to_matrix(frame: pd.DataFrame, first_row: int, data: Path) -> np.ndarray:
    """The frame's cells as float32 [n, columns]; PredictError at the first bad cell."""
    out = np.empty((len(frame), frame.shape[1]), dtype=np.float32)
    for j, column in enumerate(frame.columns):
        raw = frame.iloc[:, j]
        if raw.dtype.kind in "biuf":
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise PredictError(
                f"{data}: row {first_row + i}, column '{column}': {_describe(raw.iloc[i])}"
            )
        out[:, j] = values
    return out


def _describe(cell: Any) -> str:
    """What is wrong with a cell that is not a finite number."""
    missing = cell is None or (isinstance(cell, float) and math.isnan(cell))
    text = "" if missing else str(cell).strip()
    if text == "":
        return "empty cell (a number is needed)"
    return f"non-finite value {text}" if _is_number(text) else f"non-numeric value {text!r}"


# --- readers ----------------------------------------------------------------------------------


def read_chunks(data: Path, model: Model, batch_size: int) -> Iterator[Chunk]:
    """Input rows in batches, by the file's extension."""
    if not data.exists():
        raise PredictError(f"{data}: no such file")
    if not data.is_file():
        raise PredictError(f"{data}: not a file")
    suffix = data.suffix.lower()
    if suffix == ".csv":
        return _csv_chunks(data, model, batch_size)
    if suffix in (".parquet", ".pq"):
        return _parquet_chunks(data, model, batch_size)
    if suffix == ".npz":
        return _npz_chunks(data, model, batch_size)
    raise PredictError(f"{data}: unsupported file type '{suffix}' (use .csv, .parquet or .npz)")


def _csv_chunks(data: Path, model: Model, batch_size: int) -> Iterator[Chunk]:
    """CSV rows, read with every cell as text so that bad cells can be named."""
    try:
        first = pd.read_csv(data, header=None, nrows=1, dtype=str, keep_default_na=False)
        names = [str(c) for c in first.iloc[0]] if len(first) else []
    except pd.errors.EmptyDataError:
        raise PredictError(f"{data}: the file is empty (a header row is expected)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictError(f"{data}: cannot parse as CSV: {exc}") from None
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        separator = "';'" if ";" in names[0] else "a tab"
        raise PredictError(
            f"{data}: the first line is one column '{names[0]}': its cells are separated by "
            f"{separator}, but a csv file needs commas"
        )
    headerless = bool(names) and all(_is_number(n) for n in names)
    if headerless:  # the first line is data: columns are taken by position
        names = [str(i + 1) for i in range(len(names))]
        if len(names) != model.n_features:
            raise PredictError(
                f"{data}: no header row and {len(names)} columns, but the model takes "
                f"{model.n_features} features"
            )
    columns = None if headerless else match_columns(names, model, data)
    wanted = columns if columns is not None else names
    reader = pd.read_csv(
        data,
        header=None if headerless else 0,
        names=names if headerless else None,
        usecols=wanted,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        chunksize=batch_size,
    )
    row = 1
    try:
        for frame in reader:
            yield Chunk(row, to_matrix(frame[wanted], row, data))
            row += len(frame)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictError(f"{data}: cannot parse as CSV near row {row}: {exc}") from None


def _is_number(text: str) -> bool:
    """True when a header cell reads as a number (so the 'header' is really data)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parquet_chunks(data: Path, model: Model, batch_size: int) -> Iterator[Chunk]:
    """Parquet rows by record batches of the needed columns only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(data)
    except (pa.ArrowException, OSError) as exc:
        raise PredictError(f"{data}: not a Parquet file ({exc})") from None
    names = list(file.schema_arrow.names)
    columns = match_columns(names, model, data)
    wanted = columns if columns is not None else names
    row = 1
    for batch in file.iter_batches(batch_size=batch_size, columns=wanted):
        frame = batch.to_pandas()[wanted]
        yield Chunk(row, to_matrix(frame, row, data))
        row += len(frame)


def _npz_chunks(data: Path, model: Model, batch_size: int) -> Iterator[Chunk]:
    """Rows of the npz array `x` (or the only array shaped like the input)."""
    key, array = npz_array(data, model)
    if array.dtype.kind not in "biuf":
        raise PredictError(f"{data}: array '{key}' holds {array.dtype}, not numbers")
    for start in range(0, len(array), batch_size):
        x = np.asarray(array[start : start + batch_size], dtype=np.float32)
        x = x.reshape(len(x), model.n_features)
        bad = ~np.isfinite(x)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            name = f" ({model.features[j]})" if model.features else ""
            raise PredictError(
                f"{data}: array '{key}', row {start + i + 1}, feature {j + 1}{name}: "
                f"non-finite value {x[i, j]}"
            )
        yield Chunk(start + 1, x)


def npz_array(data: Path, model: Model) -> tuple[str, np.ndarray]:
    """The npz member to predict on, memory-mapped when stored uncompressed."""
    try:
        with zipfile.ZipFile(data) as zf:
            shapes = {n[:-4]: _npy_header(zf, n) for n in zf.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise PredictError(f"{data}: not an .npz file ({exc})") from None
    fits = [k for k, (shape, _, _) in shapes.items() if _rows_fit(shape, model)]
    if "x" in shapes:
        key = "x"
    elif len(fits) == 1:
        key = fits[0]
    else:
        listing = ", ".join(f"'{k}' {list(s)}" for k, (s, _, _) in shapes.items()) or "none"
        why = "several arrays" if fits else "no array"
        raise PredictError(
            f"{data}: no array 'x', and {why} shaped [N, {', '.join(map(str, model.input_shape))}]"
            f" or [N, {model.n_features}] (arrays: {listing})"
        )
    shape = shapes[key][0]
    if not _rows_fit(shape, model):
        raise PredictError(
            f"{data}: array '{key}' has shape {list(shape)}, but the model takes rows of "
            f"{list(model.input_shape)} ({model.n_features} features)"
        )
    return key, _npz_member(data, key)


def _npy_header(zf: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a .npy member, read from its header only."""
    with zf.open(name) as fh:
        return _read_header(fh)


def _read_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read a .npy header (any version) from fh, leaving fh at the first data byte."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _rows_fit(shape: tuple[int, ...], model: Model) -> bool:
    """True when an array's rows are examples of the model's input."""
    rows = tuple(shape[1:])
    return len(shape) >= 2 and (rows == model.input_shape or rows == (model.n_features,))


def _npz_member(data: Path, key: str) -> np.ndarray:
    """A member as a read-only memmap when stored uncompressed, else loaded into memory."""
    with zipfile.ZipFile(data) as zf:
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as fh:
            shape, fortran, dtype = _read_header(fh)
            header_len = fh.tell()
    if info.compress_type != zipfile.ZIP_STORED or dtype.hasobject:
        with np.load(data, allow_pickle=False) as npz:
            return npz[key]
    with open(data, "rb") as raw:  # the member's data starts after its local file header
        raw.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(raw.read(4), dtype="<u2")
    offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_len
    order = "F" if fortran else "C"
    return np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


# --- output -----------------------------------------------------------------------------------


def output_frame(model: Model, y: np.ndarray) -> pd.DataFrame:
    """The output columns for a batch of model outputs y [n, units]."""
    cols: dict[str, Any] = {}
    labels = model.labels or []
    if model.task == "multiclass":
        cols["prediction"] = np.asarray(labels, dtype=object)[np.argmax(y, axis=1)]
        cols.update({f"p_{label}": y[:, k] for k, label in enumerate(labels)})
    elif model.task == "binary":
        p = y[:, 0]
        cols["prediction"] = np.where(p >= THRESHOLD, labels[1], labels[0])
        cols[f"p_{labels[0]}"], cols[f"p_{labels[1]}"] = 1 - p, p
    elif model.task == "multilabel":
        hits = (y >= THRESHOLD).astype(np.int8)
        cols.update({f"prediction_{label}": hits[:, k] for k, label in enumerate(labels)})
        cols.update({f"p_{label}": y[:, k] for k, label in enumerate(labels)})
    elif model.units == 1:
        cols["prediction"] = y[:, 0]
    else:
        names = model.targets if model.targets and len(model.targets) == model.units else None
        cols.update({f"prediction_{names[k] if names else k}": y[:, k] for k in range(y.shape[1])})
    return pd.DataFrame(cols)


def predict_to(model: Model, chunks: Iterator[Chunk], out: IO[str]) -> int:
    """Run every chunk through ONNX Runtime and write CSV rows; the number of rows."""
    rows, first = 0, True
    for chunk in chunks:
        x = chunk.x.reshape(len(chunk.x), *model.input_shape)
        try:
            y = model.session.run([oc.OUTPUT_NAME], {oc.INPUT_NAME: x})[0]
        except Exception as exc:
            raise PredictError(
                f"{model.path}: ONNX Runtime failed on rows {chunk.first_row}.."
                f"{chunk.first_row + len(x) - 1}: {exc}",
                EXIT_FAILED,
            ) from None
        frame = output_frame(model, y)
        frame.to_csv(out, header=first, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        rows, first = rows + len(frame), False
    if first:  # no rows at all: still write the header
        empty = output_frame(model, np.zeros((0, model.units), dtype=np.float32))
        empty.to_csv(out, index=False, lineterminator="\n")
    return rows


def _write_file(model: Model, chunks: Iterator[Chunk], output: Path) -> int:
    """Predict into `output` atomically: a temporary file renamed only when all rows are done."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            rows = predict_to(model, chunks, fh)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def run_predict(model_path: str, data_path: str, output: str | None, batch_size: int) -> int:
    """CLI entry of `specc predict`: write predictions as CSV; the exit status."""
    try:
        if batch_size < 1:
            raise PredictError(f"--batch-size must be at least 1, not {batch_size}")
        model = open_model(model_path)
        chunks = read_chunks(Path(data_path), model, batch_size)
        if output is None:
            predict_to(model, chunks, sys.stdout)
            sys.stdout.flush()
        else:
            rows = _write_file(model, chunks, Path(output))
            print(f"wrote {output} ({rows} rows, {model.name}: {model.task})", file=sys.stderr)
    except PredictError as exc:
        print(f"specc predict: error: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:  # e.g. `specc predict ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
