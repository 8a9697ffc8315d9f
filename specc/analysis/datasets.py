"""Data sources: the bundled scikit-learn datasets as a table, and header-only file checks.

Nothing here loads data: a CSV is read up to its header line, a Parquet file's schema only
(pyarrow, imported lazily), an NPZ archive's member list and `.npy` headers (zipfile; no numpy).
"""

from __future__ import annotations

import ast
import csv
import errno
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, Literal

from specc.analysis.ir import AUGMENT_OPTIONS, AugmentIR, DataIR, Task
from specc.analysis.report import Finding, error, fmt_shape, plural
from specc.diagnostics import did_you_mean


@dataclass(frozen=True)
class Dataset:
    """A bundled scikit-learn dataset: features, rows, and classes (or regression targets)."""

    features: int
    rows: int
    classes: tuple[str, ...] = ()
    """Class names of a classification dataset; empty for regression."""
    targets: int = 1
    """Regression targets (1 for classification: one label column)."""


SKLEARN: dict[str, Dataset] = {
    "iris": Dataset(4, 150, ("setosa", "versicolor", "virginica")),
    "digits": Dataset(64, 1797, tuple(str(d) for d in range(10))),
    "wine": Dataset(13, 178, ("class_0", "class_1", "class_2")),
    "breast_cancer": Dataset(30, 569, ("malignant", "benign")),
    "diabetes": Dataset(10, 442),
    "linnerud": Dataset(3, 20, targets=3),
}
"""scikit-learn's `load_<name>()` datasets that a spec may name as `sklearn:<name>`."""

READ_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    KeyError,
    TypeError,
    IndexError,
    zipfile.BadZipFile,
)
"""What reading a damaged header may raise (UnicodeDecodeError is a ValueError)."""

FileKind = Literal["csv", "parquet", "npz"]
FORMATS: dict[str, FileKind] = {".csv": "csv", ".parquet": "parquet", ".npz": "npz"}
"""File extensions of the data formats specc reads."""


@dataclass(frozen=True)
class Columns:
    """What a data file tells about itself without being loaded."""

    names: tuple[str, ...]
    """Column names (csv/parquet) or array keys (npz)."""
    shapes: dict[str, tuple[int, ...]]
    """npz only: each array's shape, from its .npy header."""
    objects: frozenset[str] = frozenset()
    """npz only: arrays of Python objects (or records), which load only as pickles."""
    nested: tuple[tuple[str, str], ...] = ()
    """parquet only: (column, type) of the columns that hold lists, structs or maps."""


# --- the output unit a dataset needs ------------------------------------------------------


def output_fits(ds: Dataset, activation: str, units: int) -> bool:
    """Whether the output unit suits the dataset (binary: sigmoid/1 or softmax/2)."""
    if not ds.classes:
        return activation == "linear" and units == ds.targets
    k = len(ds.classes)
    return (
        (activation, units) in {("softmax", k), ("sigmoid", 1)}
        if k == 2
        else (activation == "softmax" and units == k)
    )


def suggested_output(ds: Dataset) -> str:
    """The output mapping to propose in a hint."""
    if not ds.classes:
        return f"output: {{units: {ds.targets}, activation: linear}}"
    if len(ds.classes) == 2:
        return "output: {units: 1, activation: sigmoid}"
    return f"output: {{units: {len(ds.classes)}, activation: softmax}}"


def unit_text(out: Any) -> str:
    """'softmax with 3 units' for messages."""
    return f"{out.activation} with {plural(out.units, 'unit')}"


def describe(name: str, ds: Dataset) -> str:
    """'sklearn:iris has 3 classes (setosa, versicolor, virginica)'."""
    if ds.classes:
        return f"sklearn:{name} has {plural(len(ds.classes), 'class')} ({', '.join(ds.classes)})"
    return f"sklearn:{name} is a regression dataset with {plural(ds.targets, 'target')}"


# --- checks -------------------------------------------------------------------------------


def check_sklearn(name: str, spec: Any) -> list[Finding]:
    """Feature count and output unit against a bundled dataset (unknown names get did-you-mean)."""
    ds = SKLEARN.get(name)
    if ds is None:
        msg = f"unknown scikit-learn dataset '{name}'"
        known = "known: " + ", ".join(SKLEARN)
        return [
            error(("data", "source"), "unknown-dataset", msg, did_you_mean(name, SKLEARN), known)
        ]
    found = _input_count(f"sklearn:{name}", ds.features, spec)
    out = spec.output
    if not output_fits(ds, out.activation, out.units):
        msg = f"{describe(name, ds)}, but the output unit is {unit_text(out)}"
        found.append(error(("output",), "data-output-mismatch", msg, f"use {suggested_output(ds)}"))
    for key in ("target", "features"):
        if getattr(spec.data, key) is not None:
            msg = f"data.{key} applies to csv, parquet and npz files, not to sklearn:{name}"
            found.append(error(("data", key), "data-not-applicable", msg, f"remove data.{key}"))
    return found


def _input_count(source: str, features: int, spec: Any, what: str = "feature") -> list[Finding]:
    """`data-input-mismatch` when prod(input.shape) differs from the feature count."""
    shape = tuple(spec.input.shape)
    if math.prod(shape) == features:
        return []
    size = math.prod(shape)
    msg = f"{source} has {plural(features, what)}, but input.shape {fmt_shape(shape)}"
    msg += f" holds {size}"
    hint = f"use input: {{shape: [{features}]}} (any shape whose sizes multiply to {features})"
    return [error(("input", "shape"), "data-input-mismatch", msg, hint)]


def read_columns(path: FsPath, kind: str) -> Columns:
    """Column names (or npz keys and shapes) from the file's header; raises OSError/ValueError."""
    if kind == "csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            try:
                header = next(csv.reader(fh), [])
            except csv.Error as exc:
                if "field larger than field limit" not in str(exc):
                    raise ValueError(str(exc)) from None
                limit = csv.field_size_limit()
                msg = f"a cell is longer than {limit} characters (an unclosed quote?)"
                raise ValueError(msg) from None
        return Columns(tuple(h.strip() for h in header), {})
    if kind == "parquet":
        import pyarrow as pa  # lazily: only parquet sources need it
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        nested = tuple((f.name, str(f.type)) for f in schema if pa.types.is_nested(f.type))
        return Columns(tuple(schema.names), {}, nested=nested)
    with zipfile.ZipFile(path) as zf:
        headers = {
            name[: -len(".npy")]: _npy_header(zf, name)
            for name in zf.namelist()
            if name.endswith(".npy")
        }
    shapes = {key: shape for key, (shape, _) in headers.items()}
    objects = frozenset(key for key, (_, plain) in headers.items() if not plain)
    return Columns(tuple(shapes), shapes, objects)


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], bool]:
    """A .npy member's shape and whether its dtype is plain (not object/record), from its
    header (format versions 1-3), read without numpy."""
    with zf.open(member) as fh:
        head = fh.read(10)
        if head[:6] != b"\x93NUMPY":
            raise ValueError(f"{member} is not a .npy array")
        if head[6] == 1:
            size, extra = int.from_bytes(head[8:10], "little"), b""
        else:
            extra = fh.read(2)
            size = int.from_bytes(head[8:10] + extra, "little")
        meta = ast.literal_eval(fh.read(size).decode("latin-1"))
    descr = meta["descr"]
    plain = isinstance(descr, str) and not descr.lstrip("<>|=").startswith(("O", "V"))
    return tuple(int(n) for n in meta["shape"]), plain


def file_kind(source: str) -> FileKind | None:
    """csv, parquet or npz by the file's extension; None for anything else."""
    return FORMATS.get(FsPath(source).suffix.lower())


def check_file(path: FsPath, kind: str, spec: Any) -> list[Finding]:
    """The file exists and its header has the columns (or arrays) the spec names."""
    source = spec.data.source
    try:
        path.stat()  # follows symlinks: a loop fails here, not as a missing file
    except FileNotFoundError:
        pass
    except OSError as exc:
        msg = f"cannot read '{source}': {exc.strerror or exc}"
        hint = (
            "a symbolic link that points (through others) back to itself" if _is_loop(exc) else None
        )
        return [error(("data", "source"), "data-file-unreadable", msg, hint)]
    if not path.is_file():
        msg = f"data file '{source}' does not exist"
        hint = "paths are relative to the spec file's folder"
        return [error(("data", "source"), "data-file-missing", msg, hint)]
    try:
        cols = read_columns(path, kind)
    except READ_ERRORS as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        msg = f"cannot read the header of '{source}': {exc}"
        return [error(("data", "source"), "data-file-unreadable", msg)]
    if not cols.names:
        what = "arrays" if kind == "npz" else "header row"
        msg = f"'{source}' has no {what}"
        return [error(("data", "source"), "data-file-unreadable", msg)]
    return _check_npz(cols, spec) if kind == "npz" else _check_table(cols, spec)


def _is_loop(exc: OSError) -> bool:
    """Whether an OSError is ELOOP (too many levels of symbolic links)."""
    return exc.errno == errno.ELOOP


def _check_table(cols: Columns, spec: Any) -> list[Finding]:
    """csv/parquet: target and feature columns exist; counts match input and output (task:
    reconstruct has no target column: its target is the input)."""
    data = spec.data
    reconstruct = is_reconstruct(spec)
    if data.target is None and not reconstruct:
        msg = f"data.target must name the target column of '{data.source}'"
        hint = f"add target: <column>; columns: {', '.join(cols.names[:12])}"
        return [error(("data",), "data-target-required", msg, hint)]
    if reconstruct and data.target is not None:
        return []  # reconstruct-target says so; the columns are counted once it is gone
    targets = [] if reconstruct else as_list(data.target)
    odd = _odd_header(cols.names) if file_kind(data.source) == "csv" else None
    found = _named(targets, cols.names, "target", data.target, "column", odd)
    if data.features is not None:
        found += _named(data.features, cols.names, "features", data.features, "column", odd)
        overlap = sorted(set(targets) & set(data.features))
        if overlap:
            msg = f"column '{overlap[0]}' is both a target and a feature"
            found.append(
                error(
                    ("data", "features"),
                    "data-target-in-features",
                    msg,
                    "remove it from data.features",
                )
            )
    if found:
        return found
    used = set(targets) | (set(data.features) if data.features is not None else set(cols.names))
    for name, kind in cols.nested:
        if name in used:
            msg = f"column '{name}' of '{data.source}' holds {kind} values, not one value per row"
            hint = "store one number (or label) per cell: one column per element of the list"
            found.append(error(("data", "source"), "data-file-unreadable", msg, hint))
    if found:
        return found
    # the default features leave out the target columns and the heads' targets (heads:)
    heads = {h.target for h in spec.heads.values()} & set(cols.names) - set(targets)
    default = len(cols.names) - len(targets) - len(heads)
    n_features = len(data.features) if data.features is not None else default
    found += _input_count(f"'{data.source}'", n_features, spec, "feature column")
    return found + ([] if reconstruct else _target_count(len(targets), spec))


def is_reconstruct(spec: Any) -> bool:
    """task: reconstruct (an autoencoder): the data has features only."""
    return getattr(spec, "task", None) == "reconstruct"


def _target_count(n: int, spec: Any) -> list[Finding]:
    """Multi-target/multi-label sources need one output unit per target column."""
    out = spec.output
    if n > 1 and (out.activation == "softmax" or out.units != n):
        msg = f"data.target names {plural(n, 'column')}, but the output unit is {unit_text(out)}"
        hint = (
            f"use output: {{units: {n}, activation: sigmoid}} for {n} labels,"
            f" or activation: linear for {n} regression targets"
        )
        return [error(("output",), "data-output-mismatch", msg, hint)]
    if n == 1 and out.activation == "linear" and out.units != 1:
        msg = f"data.target names 1 column, but the linear output unit has {out.units} units"
        return [error(("output", "units"), "data-output-mismatch", msg, "use output.units: 1")]
    return []


def _odd_header(names: tuple[str, ...]) -> str | None:
    """Why a csv header may not name the columns: it is a data row, or not comma-separated."""
    try:
        [float(name) for name in names]
    except ValueError:
        pass
    else:
        return "the first row holds numbers: a csv file needs a header row naming its columns"
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        return "the header is one column: specc reads comma-separated files"
    return None


def _named(
    names: list[str],
    available: tuple[str, ...],
    key: str,
    raw: Any,
    kind: str,
    extra: str | None = None,
) -> list[Finding]:
    """`data-column-missing` for each listed name the file lacks (did-you-mean hint)."""
    found = []
    for i, name in enumerate(names):
        if name in available:
            continue
        path = ("data", key) if isinstance(raw, str) else ("data", key, i)
        msg = f"the data file has no {kind} '{name}'"
        shown = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "")
        close = None if extra else did_you_mean(name, available)
        hints = (close, f"{kind}s: {shown}", extra)
        found.append(error(path, "data-column-missing", msg, *hints))
    return found


def _check_npz(cols: Columns, spec: Any) -> list[Finding]:
    """npz: the feature array (x or features[0]) and target array (y or target) exist and fit."""
    data = spec.data
    found = []
    for key in ("features", "target"):
        raw = getattr(data, key)
        if raw is not None and not isinstance(raw, str) and len(raw) != 1:
            msg = f"data.{key} of an npz source names one array key, got {len(raw)}"
            fix = f"[{raw[0]}]" if key == "features" else raw[0]  # features is always a list
            found.append(error(("data", key), "data-npz-key", msg, f"write {key}: {fix}"))
    if found:
        return found
    x_key, y_key = npz_keys(data)
    reconstruct = is_reconstruct(spec)  # no target array: the target is the input
    keys = (x_key,) if reconstruct else tuple(dict.fromkeys((x_key, y_key)))
    found += _named([x_key], cols.names, "features", data.features, "array")
    if not reconstruct:
        found += _named([y_key], cols.names, "target", data.target, "array")
    if found:
        return found
    for key in keys:
        if key in cols.objects:
            msg = f"array '{key}' holds Python objects, which load only by unpickling"
            hint = "save it with a numeric (or, for labels, string) dtype"
            found.append(error(("data", "source"), "data-file-unreadable", msg, hint))
    shapes = {key: cols.shapes[key] for key in keys}
    x_shape, y_shape = shapes[x_key], shapes.get(y_key, shapes[x_key])
    scalar = [k for k, shape in shapes.items() if not shape]
    empty = [k for k, shape in shapes.items() if shape and shape[0] == 0]
    if scalar or empty or x_shape[0] != y_shape[0]:
        if scalar:
            msg = f"array '{scalar[0]}' is a single value, not one row per example"
        elif empty:
            msg = f"array '{empty[0]}' has no rows (shape {fmt_shape(cols.shapes[empty[0]])})"
        else:
            msg = f"array '{x_key}' has {x_shape[0]} rows but '{y_key}' has {y_shape[0]}"
        hint = "the first axis of both arrays counts the examples: make them equal"
        if empty and not scalar:
            hint = "the first axis counts the examples: training needs at least one"
        found.append(error(("data", "source"), "data-row-mismatch", msg, hint))
    if found:
        return found
    found += _input_count(f"array '{x_key}' {fmt_shape(x_shape[1:])}", math.prod(x_shape[1:]), spec)
    if reconstruct:
        return found
    targets = math.prod(y_shape[1:]) if len(y_shape) > 1 else 1
    return found + _target_count(targets, spec)


def as_list(value: str | list[str] | None) -> list[str]:
    """A name or list of names as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def npz_keys(data: Any) -> tuple[str, str]:
    """(features key, targets key) of an npz source: features[0] or x, target or y."""
    x_key = as_list(data.features)[0] if data.features else "x"
    y_key = as_list(data.target)[0] if data.target else "y"
    return x_key, y_key


def check_data(spec: Any, spec_dir: FsPath) -> list[Finding]:
    """All data-source problems: unknown dataset, missing file, format, columns, counts."""
    source = spec.data.source
    if source.startswith("sklearn:"):
        return check_sklearn(source.removeprefix("sklearn:"), spec)
    kind = file_kind(source)
    if kind is None:
        msg = f"cannot read '{source}': data files must be .csv, .parquet or .npz"
        hint = "or name a bundled dataset, e.g. source: sklearn:iris"
        return [error(("data", "source"), "data-format", msg, hint)]
    return check_file(data_path(source, spec_dir), kind, spec)


def data_path(source: str, spec_dir: FsPath) -> FsPath:
    """The absolute path of a data file named relative to the spec's folder (symlinks
    resolved, unless they loop: then the path as written, which check_file reports)."""
    try:
        return (spec_dir / source).resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a symlink loop
        return FsPath(os.path.abspath(spec_dir / source))


def data_ir(spec: Any, spec_dir: FsPath, task: Task) -> DataIR:
    """The resolved data section (call only after `check_data` found no errors)."""
    data = spec.data
    source = data.source
    kind: Literal["sklearn"] | FileKind
    dataset: str | None
    target: tuple[str, ...]
    features: tuple[str, ...] | None
    if source.startswith("sklearn:"):
        kind, dataset, path = "sklearn", source.removeprefix("sklearn:"), None
        target, features = (), None
    else:
        known = file_kind(source)
        assert known is not None, "check_data accepts only known file formats"
        kind, dataset, path = known, None, str(data_path(source, spec_dir))
        target = () if task == "reconstruct" else tuple(as_list(data.target))
        features = tuple(data.features) if data.features is not None else None
        if kind == "npz":
            x_key, y_key = npz_keys(data)
            target, features = ((), (x_key,)) if task == "reconstruct" else ((y_key,), (x_key,))
    augment = tuple(
        AugmentIR(kind, AUGMENT_OPTIONS[kind](**getattr(item, kind).model_dump(mode="python")))
        for item in data.augment
        for kind in type(item).model_fields
    )
    return DataIR(
        kind=kind,
        dataset=dataset,
        path=path,
        target=target,
        features=features,
        val=data.split.val,
        test=data.split.test,
        split_seed=data.split.seed,
        stratify=data.split.stratify and task in ("binary", "multiclass"),
        normalize=data.normalize,
        augment=augment,
    )
