"""Data files that used to crash `specc check` or the generated data.py (issue 8, item 11).

Each bad file is given to the real commands: `specc check` / `specc train` (which check first)
and the generated `train.py --data FILE` (which reads with code/data.py, past any check). Every
one must end in one clear line and exit 1 (a spec error at check time) or 2 (bad data at train
time), never a traceback. A wide CSV (thousands of columns) must read correctly: the speed of
that path is measured, not timed here (docs/decisions.md, "Wide CSV files"). Runs of the
generated train.py (a torch import each) are marked slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import specc
from test_train_codegen import compile_to, import_data, write_spec

SPEC = """\
name: wide_{kind}
data:
  source: {source}
{target}  split: {{val: 0.2, test: 0.2, seed: 0}}
input: {{shape: [{features}]}}
output: {{units: 1, activation: linear}}
training: {{epochs: 1, batch_size: 8}}
"""
ROWS = 30
BIG = 200_000
"""A header cell longer than csv's default field size limit (131072 characters)."""


def spec_for(folder: Path, source: str, kind: str, features: int = 3, name: str = "") -> Path:
    """A small regression spec on `source` (target column y for csv/parquet)."""
    target = "  target: y\n" if kind != "npz" else ""
    text = SPEC.format(kind=kind, source=source, target=target, features=features)
    return write_spec(folder, text, name or f"{kind}.yaml")


def good_files(folder: Path) -> dict[str, Path]:
    """Readable csv, parquet and npz files with features a, b, c and target y."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 3)).round(4)
    y = x.sum(axis=1)
    csv = folder / "good.csv"
    lines = [",".join(map(str, [*r, v])) for r, v in zip(x, y, strict=True)]
    csv.write_text("a,b,c,y\n" + "\n".join(lines) + "\n")
    parquet = folder / "good.parquet"
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}), parquet)
    npz = folder / "good.npz"
    np.savez(npz, x=x.astype(np.float32), y=y.astype(np.float32))
    return {"csv": csv, "parquet": parquet, "npz": npz}


def bad_file(folder: Path, case: str) -> Path:
    """The file of one bad case."""
    if case == "csv-long-header-cell":
        path = folder / "long.csv"
        path.write_text(f"a,{'b' * BIG},c,y\n1,2,3,4\n")
    elif case == "csv-long-row-cell":
        path = folder / "long_row.csv"
        path.write_text(f'a,b,c,y\n1,2,3,4\n1,"{"9" * BIG}",3,4\n')
    elif case.endswith("symlink-loop"):
        path = folder / f"loop.{case.split('-')[0]}"
        path.symlink_to(path.name)  # points at itself
    elif case == "npz-zero-rows":
        path = folder / "empty.npz"
        np.savez(path, x=np.zeros((0, 3), np.float32), y=np.zeros((0,), np.float32))
    elif case == "npz-object-dtype":
        path = folder / "objects.npz"
        np.savez(path, x=np.array([[1, 2, 3]] * ROWS, dtype=object), y=np.arange(ROWS, dtype=float))
    elif case == "parquet-list-column":
        path = folder / "lists.parquet"
        table = {"a": [[1.0, 2.0]] * ROWS, "b": [1.0] * ROWS, "c": [2.0] * ROWS, "y": [0.5] * ROWS}
        pq.write_table(pa.table(table), path)
    else:
        raise AssertionError(case)
    return path


CHECK_CASES = {
    "csv-long-header-cell": "a cell is longer than 131072 characters (an unclosed quote?)",
    "csv-symlink-loop": "cannot read 'loop.csv': Too many levels of symbolic links",
    "npz-symlink-loop": "cannot read 'loop.npz': Too many levels of symbolic links",
    "npz-zero-rows": "array 'x' has no rows (shape [0, 3])",
    "npz-object-dtype": "array 'x' holds Python objects, which load only by unpickling",
    "parquet-list-column": "column 'a' of 'lists.parquet' holds list<element: double> values",
}


@pytest.mark.parametrize("case", list(CHECK_CASES))
def test_check_and_train_report_bad_files_as_spec_errors(tmp_path, case):
    """`specc check` and `specc train`: exit 1, the diagnostic at data.source, no traceback."""
    kind = case.split("-")[0]
    path = bad_file(tmp_path, case)
    spec = spec_for(tmp_path, path.name, kind)
    for verb in ("check", "train"):
        args = (
            (verb, str(spec)) if verb == "check" else (verb, str(spec), "-o", str(tmp_path / "r"))
        )
        done = specc(*args)
        assert done.returncode == 1, (verb, done.stdout, done.stderr)
        output = done.stdout + done.stderr
        assert "Traceback" not in output
        assert f"{spec}:3:11: error[data-" in output, output
        assert CHECK_CASES[case] in output, output


TRAIN_CASES = {
    "csv-long-header-cell": ("csv", "the header has a cell longer than 131072 characters"),
    "csv-long-row-cell": ("csv", "row 2 has a cell longer than 131072 characters"),
    "csv-symlink-loop": ("csv", "cannot read the file: Too many levels of symbolic links"),
    "npz-symlink-loop": ("npz", "cannot read the file: Too many levels of symbolic links"),
    "parquet-symlink-loop": ("parquet", "cannot read the file: Too many levels of symbolic links"),
    "npz-zero-rows": ("npz", "array 'x' has no rows (shape [0, 3])"),
    "npz-object-dtype": ("npz", "array 'x' holds Python objects, which load only by unpickling"),
    "parquet-list-column": ("parquet", "column 'a' holds list<element: double> values"),
}


@pytest.fixture(scope="module")
def codes(tmp_path_factory) -> dict[str, Path]:
    """Generated code for a good csv, parquet and npz spec (the bad files replace the data)."""
    folder = tmp_path_factory.mktemp("good")
    files = good_files(folder)
    return {
        kind: compile_to(spec_for(folder, path.name, kind), folder / f"code_{kind}")
        for kind, path in files.items()
    }


@pytest.mark.parametrize("case", list(TRAIN_CASES))
@pytest.mark.slow
def test_generated_train_py_reports_bad_files_in_one_line(codes, tmp_path, case):
    """`python code/train.py --data BAD`: exit 2, `error: FILE: ...`, one line."""
    kind, expected = TRAIN_CASES[case]
    path = bad_file(tmp_path, case)
    done = subprocess.run(
        [sys.executable, str(codes[kind] / "train.py"), "--out", str(tmp_path / "run"),
         "--data", str(path), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and expected in line, line


def test_good_files_still_load(codes):
    """The same code reads its good files (the checks above are not false alarms)."""
    for kind, code in codes.items():
        splits = import_data(code).load()
        assert len(splits.x_train) + len(splits.x_val) + len(splits.x_test) == ROWS, kind


def test_parquet_list_column_not_used_is_fine(tmp_path):
    """A list column the spec does not read (not a feature, not the target) is no error."""
    path = tmp_path / "extra.parquet"
    x = np.arange(ROWS * 3, dtype=float).reshape(ROWS, 3)
    table = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": x.sum(1), "tags": [[1, 2]] * ROWS}
    pq.write_table(pa.table(table), path)
    text = SPEC.format(kind="p", source=path.name, target="  target: y\n", features=3)
    spec = write_spec(tmp_path, text.replace("  split:", "  features: [a, b, c]\n  split:"))
    done = specc("check", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr


def test_wide_csv_reads_every_column_in_order(tmp_path):
    """5,000 feature columns: check passes and data.load() returns them in file order.

    Reading used to be quadratic in the number of columns (a duplicate-name scan); the
    figures before and after are in docs/decisions.md.
    """
    n = 5000
    rng = np.random.default_rng(1)
    x = rng.integers(-999, 999, size=(ROWS, n))
    names = [f"f{i}" for i in range(n)]
    lines = [",".join([*names, "y"])] + [",".join(map(str, [*r, r[0]])) for r in x]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    spec = spec_for(tmp_path, "wide.csv", "csv", features=n, name="wide.yaml")
    done = specc("check", str(spec))
    assert done.returncode == 0, done.stdout + done.stderr
    splits = import_data(compile_to(spec, tmp_path / "code")).load()
    assert splits.features == names
    every = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    assert every.shape == (ROWS, n)
    by_row = lambda m: m[np.lexsort(m.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(by_row(every), by_row(x.astype(np.float32)))


def test_duplicate_wide_header_names_the_columns(tmp_path):
    """A repeated name far into a wide header: both positions, as before (now in one pass)."""
    n = 3000
    names = [f"f{i}" for i in range(n)] + ["f17", "y"]
    row = ",".join(["1"] * (n + 2))
    (tmp_path / "dup.csv").write_text(",".join(names) + "\n" + (row + "\n") * 5)
    code = compile_to(spec_for(tmp_path, "dup.csv", "csv", features=n + 1), tmp_path / "code")
    data = import_data(code)
    with pytest.raises(data.DataError, match=r"column 'f17' appears twice \(columns 18 and 3001\)"):
        data.load()
