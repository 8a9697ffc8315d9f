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

import csv
import difflib
import math
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from specc.exitcodes import EXIT_ERRORS, EXIT_OK, EXIT_USAGE
from specc.runtime import onnx_common as oc

DEFAULT_OUTPUT = "predictions.csv"
"""The file `-o DIR/` writes into DIR."""
THRESHOLD = 0.5
"""Sigmoid outputs at or above this probability count as the positive class."""
FLOAT_FORMAT = "%.7g"
"""Enough digits for float32 outputs."""
CHUNK_CELLS = 1 << 22
"""At most this many input cells per batch (fewer rows than --batch-size for wide files)."""
SUGGEST_FROM = 10_000
"""Did-you-mean hints for a missing feature look at this many of the file's other columns."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Text cells starting with these are formulas to a spreadsheet (OWASP, CSV injection)."""


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
    shape, units = _interface_shape(sess, path)
    task = meta[oc.META_TASK]
    return Model(
        name=meta[oc.META_NAME],
        task=task,
        input_shape=shape,
        units=units,
        labels=_labels(oc.json_list(meta, oc.META_LABELS), task, int(units)),
        features=oc.json_list(meta, oc.META_FEATURES),
        targets=oc.json_list(meta, oc.META_TARGETS),
        path=path,
        session=sess,
    )


def _interface_shape(sess: Any, path: Path) -> tuple[tuple[int, ...], int]:
    """The input shape (without batch) and output units of a graph that has specc's interface:
    one float input `input` [batch, ...] and a float output `output` [batch, units]."""
    inputs = sess.get_inputs()
    output = next((o for o in sess.get_outputs() if o.name == oc.OUTPUT_NAME), None)
    if len(inputs) != 1 or inputs[0].name != oc.INPUT_NAME or output is None:
        found = ", ".join(i.name for i in inputs) or "none"
        raise PredictError(
            f"{path}: not a specc export: it needs one input '{oc.INPUT_NAME}' and an output "
            f"'{oc.OUTPUT_NAME}' (inputs: {found})"
        )
    in_shape, out_shape = list(inputs[0].shape), list(output.shape)
    fixed = [*in_shape[1:], *out_shape[1:]]
    if (
        len(in_shape) < 2
        or len(out_shape) != 2
        or not all(isinstance(d, int) and d > 0 for d in fixed)
        or inputs[0].type != "tensor(float)"
        or output.type != "tensor(float)"
    ):
        raise PredictError(
            f"{path}: not a specc export: input {_dims(in_shape)} {inputs[0].type} and output "
            f"{_dims(out_shape)} {output.type}, but a specc export takes float [batch, ...] and "
            "gives float [batch, units]"
        )
    return tuple(in_shape[1:]), int(out_shape[1])


def _dims(shape: list) -> str:
    """[batch, 4] for messages (symbolic dimensions by name, unknown ones as ?)."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _labels(labels: list[str] | None, task: str, units: int) -> list[str] | None:
    """Class labels, defaulting to `0`, `1`, ... when the metadata has none that fit."""
    if task in ("regression", "reconstruct", "encoder"):
        return None
    expected = 2 if task == "binary" else units
    if labels is None or len(labels) != expected:
        return [str(i) for i in range(expected)]
    return labels


# --- matching columns ---------------------------------------------------------------------------


def match_columns(names: list[str], model: Model, data: Path) -> list[str] | None:
    """The file's columns to read, in input order; None means every column, by position."""
    features = model.features or []
    present = set(names)  # sets, not lists: a file may have a million columns
    if features and all(f in present for f in features):
        return list(features)
    matched = [f for f in features if f in present]
    if not matched and len(names) == model.n_features:
        return None
    if not features:
        raise PredictError(
            f"{data}: {len(names)} columns, but the model takes {model.n_features} features "
            "(it stores no feature names, so columns are taken by position)"
        )
    missing = [f for f in features if f not in present]
    known = set(features)
    spare = [n for n in names if n not in known][:SUGGEST_FROM]
    found = f"{len(matched)} of {len(features)} features found"
    if not matched:
        found += f"; the file's columns: {quoted(names)}"
    lines = [
        f"{data}: missing feature column{'s' * (len(missing) > 1)} {quoted(missing)} ({found})"
    ]
    for name in missing[:5]:
        close = difflib.get_close_matches(name, spare, n=1, cutoff=0.6)
        if close:
            lines.append(f"  hint: for '{name}', did you mean '{close[0]}'?")
    return _raise("\n".join(lines))


def quoted(names: list[str], limit: int = 5) -> str:
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
            values = np.array([as_float(cell) for cell in raw], dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise PredictError(
                f"{data}: row {first_row + i}, column '{column}': {describe_cell(raw.iloc[i])}"
            )
        out[:, j] = values
    return out


def as_float(cell: Any) -> float:
    """A cell as a float; nan for anything that is not a number (a list, text, None)."""
    if not isinstance(cell, str | int | float | np.number | np.bool_):
        return math.nan
    try:
        return float(cell)
    except (TypeError, ValueError):
        return math.nan


def cells_to_matrix(
    rows: list[list[str]], index: list[int] | None, names: list[str], numbers: list[int], data: Path
) -> np.ndarray:
    """CSV rows (text cells) as float32 [n, features], the columns `index` (None: all), in
    order; PredictError naming the row and column of the first bad cell."""
    picked = rows if index is None else [[row[i] for i in index] for row in rows]
    try:
        values = np.asarray(picked, dtype=np.float64)  # the parse train's data.py uses too
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values.astype(np.float32)
    columns = index if index is not None else range(len(names))
    for j, c in enumerate(columns):  # the slow path, only to name the bad cell
        for r, row in enumerate(picked):
            value = as_float(row[j])
            if not math.isfinite(value):
                raise PredictError(
                    f"{data}: row {numbers[r]}, column '{names[c]}': {describe_cell(row[j])}"
                )
    raise AssertionError("unreachable: a bad cell was expected")  # pragma: no cover


def describe_cell(cell: Any) -> str:
    """What is wrong with a cell that is not a finite number."""
    missing = cell is None or (isinstance(cell, float) and math.isnan(cell))
    if not missing and not isinstance(cell, str | int | float | np.number):
        kind = "a list" if isinstance(cell, list | tuple | np.ndarray) else type(cell).__name__
        return f"{kind} where a number is needed ({shorten(str(cell))})"
    text = "" if missing else str(cell).strip()
    if text == "":
        return "empty cell (a number is needed)"
    if _is_number(text):
        return f"non-finite value {shorten(text)}"
    return f"non-numeric value {shorten(text)!r}"


def shorten(text: str, limit: int = 60) -> str:
    """At most `limit` characters of a cell, for one-line messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    """CSV rows, read by Python's csv module as train's data.py reads them: the same cells, the
    same row numbers (1-based records after the header; blank lines skipped, still counted),
    and the same refusal of a row whose cell count differs from the header's."""
    try:
        with open(data, newline="", encoding="utf-8-sig") as fh:  # a byte-order mark is skipped
            yield from _csv_records(csv.reader(fh), data, model, batch_size)
    except OSError as exc:
        raise PredictError(f"{data}: cannot read the file: {exc.strerror or exc}") from None


def _csv_records(reader: Any, data: Path, model: Model, batch_size: int) -> Iterator[Chunk]:
    """The chunks of an open csv reader (see _csv_chunks)."""
    header = next_record(reader, data)
    if header is None:
        raise PredictError(f"{data}: the file is empty (a header row is expected)")
    names = [cell.strip() for cell in header]
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        separator = "';'" if ";" in names[0] else "a tab"
        raise PredictError(
            f"{data}: the first line is one column {shorten(names[0])!r}: its cells are "
            f"separated by {separator}, but a csv file needs commas"
        )
    headerless = bool(names) and all(_is_number(n) for n in names)
    if headerless:  # the first line is data: columns are taken by position
        if len(names) != model.n_features:
            raise PredictError(
                f"{data}: no header row and {len(names)} columns, but the model takes "
                f"{model.n_features} features"
            )
        index, names = None, [str(i + 1) for i in range(len(names))]
    else:
        index = _column_index(names, match_columns(names, model, data), data)
    per_chunk = max(1, min(batch_size, CHUNK_CELLS // max(1, len(names))))
    rows, numbers = ([header], [1]) if headerless else ([], [])
    number = 1 if headerless else 0
    while True:
        record = next_record(reader, data, number + 1)
        if record is None:
            break
        number += 1
        if is_blank(record):
            continue
        if len(record) != len(names):
            other = "row 1" if headerless else "the header"
            raise PredictError(
                f"{data}: row {number} has {len(record)} cells, {other} {len(names)} columns"
            )
        rows.append(record)
        numbers.append(number)
        if len(rows) == per_chunk:
            yield Chunk(numbers[0], cells_to_matrix(rows, index, names, numbers, data))
            rows, numbers = [], []
    if rows:
        yield Chunk(numbers[0], cells_to_matrix(rows, index, names, numbers, data))


def is_blank(record: list[str]) -> bool:
    """A blank line of a csv file: skipped (but counted in row numbers), as train skips it."""
    return not "".join(record).strip() and len(record) <= 1


def next_record(reader: Any, data: Path, row: int = 0) -> list[str] | None:
    """The next csv record (None at the end); PredictError for undecodable text or a cell
    over csv's field size limit (usually an unclosed quote)."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except UnicodeDecodeError as exc:
        where = f"row {row}" if row else "the header"
        raise PredictError(f"{data}: {where} is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        where = f"row {row}" if row else "the header"
        if "field larger than field limit" in str(exc):
            raise PredictError(
                f"{data}: {where} has a cell longer than {csv.field_size_limit()} characters "
                "(an unclosed quote?)"
            ) from None
        raise PredictError(f"{data}: {where}: cannot parse as CSV: {exc}") from None


def _column_index(names: list[str], columns: list[str] | None, data: Path) -> list[int] | None:
    """Positions of the wanted columns (None: every column, in order); a wanted name that
    appears twice in the header is ambiguous."""
    if columns is None:
        return None
    position: dict[str, int] = {}
    wanted = set(columns)
    for i, name in enumerate(names):
        first = position.setdefault(name, i)
        if first != i and name in wanted:
            raise PredictError(
                f"{data}: column '{shorten(name)}' appears twice (columns {first + 1} and {i + 1})"
            )
    index = [position[name] for name in columns]
    return None if index == list(range(len(names))) else index


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
    batches = file.iter_batches(batch_size=batch_size, columns=wanted)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PredictError(f"{data}: cannot read rows from {row} on: {first}") from None
        if batch is None:
            break
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
    shape, _, dtype = shapes[key]
    if dtype.hasobject:
        raise PredictError(
            f"{data}: array '{key}' holds Python objects ({dtype}), which load only by "
            "unpickling; save it with a numeric dtype"
        )
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
    order: Literal["F", "C"] = "F" if fortran else "C"
    return np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


# --- output -----------------------------------------------------------------------------------


def output_frame(model: Model, y: np.ndarray) -> pd.DataFrame:
    """The output columns for a batch of model outputs y [n, units]."""
    cols: dict[str, Any] = {}
    labels = model.labels or []
    shown = [safe_cell(label) for label in labels]  # class labels as cells
    if model.task == "multiclass":
        cols["prediction"] = np.asarray(shown, dtype=object)[np.argmax(y, axis=1)]
        cols.update({f"p_{label}": y[:, k] for k, label in enumerate(labels)})
    elif model.task == "binary":
        p = y[:, 0]
        cols["prediction"] = np.where(p >= THRESHOLD, shown[1], shown[0])
        cols[f"p_{labels[0]}"], cols[f"p_{labels[1]}"] = 1 - p, p
    elif model.task == "multilabel":
        hits = (y >= THRESHOLD).astype(np.int8)
        cols.update({f"prediction_{label}": hits[:, k] for k, label in enumerate(labels)})
        cols.update({f"p_{label}": y[:, k] for k, label in enumerate(labels)})
    elif model.task == "reconstruct":  # the input again, one column per input feature
        names = model.features if model.features and len(model.features) == model.units else None
        for k in range(model.units):
            cols[f"reconstruction_{names[k] if names else k}"] = y[:, k]
    elif model.task == "encoder":  # export.onnx.part: encoder: the latent mean
        cols.update({f"z_{k}": y[:, k] for k in range(model.units)})
    elif model.units == 1:
        cols["prediction"] = y[:, 0]
    else:
        names = model.targets if model.targets and len(model.targets) == model.units else None
        cols.update({f"prediction_{names[k] if names else k}": y[:, k] for k in range(y.shape[1])})
    frame = pd.DataFrame(cols)
    frame.columns = [safe_cell(name) for name in frame.columns]
    return frame


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that starts like a formula (`=`, `+`,
    `-`, `@`, tab, carriage return) gets a leading `'` (OWASP's CSV-injection advice), unless
    it is a number (`-1` stays -1)."""
    if not text.startswith(FORMULA_START) or _is_number(text):
        return text
    return "'" + text


def run_chunk(model: Model, chunk: Chunk) -> np.ndarray:
    """The model's output [n, units] for one chunk; PredictError (exit 1) when ONNX Runtime
    fails or the graph returns another shape than it declares."""
    x = chunk.x.reshape(len(chunk.x), *model.input_shape)
    last = chunk.first_row + len(x) - 1
    try:
        y = model.session.run([oc.OUTPUT_NAME], {oc.INPUT_NAME: x})[0]
    except Exception as exc:
        raise PredictError(
            f"{model.path}: ONNX Runtime failed on rows {chunk.first_row}..{last}: {exc}",
            EXIT_ERRORS,
        ) from None
    if not isinstance(y, np.ndarray) or y.shape != (len(x), model.units):
        got = list(getattr(y, "shape", ()))
        raise PredictError(
            f"{model.path}: the graph returned an output of shape {got} for rows "
            f"{chunk.first_row}..{last}, not [{len(x)}, {model.units}]",
            EXIT_ERRORS,
        )
    return y


def predict_to(model: Model, chunks: Iterator[Chunk], out: IO[str]) -> int:
    """Run every chunk through ONNX Runtime and write CSV rows; the number of rows."""
    rows, first = 0, True
    for chunk in chunks:
        frame = output_frame(model, run_chunk(model, chunk))
        out.write(
            frame.to_csv(header=first, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        )
        rows, first = rows + len(frame), False
    if first:  # no rows at all: still write the header
        empty = output_frame(model, np.zeros((0, model.units), dtype=np.float32))
        out.write(empty.to_csv(index=False, lineterminator="\n"))
    return rows


def _write_file(model: Model, chunks: Iterator[Chunk], output: Path) -> int:
    """Predict into `output` atomically: a temporary file renamed only when all rows are done."""
    with oc.atomic_output(output, PredictError) as fh:
        return predict_to(model, chunks, fh)


def _write_stdout(model: Model, chunks: Iterator[Chunk]) -> None:
    """Predict to standard output; a write error there (a full disk behind `>`) is one line."""
    try:
        predict_to(model, chunks, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        reason = exc.strerror or str(exc)
        raise PredictError(f"cannot write to standard output: {reason}") from None


def run_predict(model_path: str, data_path: str, output: str | None, batch_size: int) -> int:
    """CLI entry of `specc predict`: write predictions as CSV; the exit status."""
    try:
        if batch_size < 1:
            raise PredictError(f"--batch-size must be at least 1, not {batch_size}")
        model = open_model(model_path)
        chunks = read_chunks(Path(data_path), model, batch_size)
        if output is None:
            _write_stdout(model, chunks)
        else:
            path = oc.output_file(output, DEFAULT_OUTPUT)
            rows = _write_file(model, chunks, path)
            print(f"wrote {path} ({rows} rows, {model.name}: {model.task})", file=sys.stderr)
    except PredictError as exc:
        print(f"specc predict: error: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:  # e.g. `specc predict ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
