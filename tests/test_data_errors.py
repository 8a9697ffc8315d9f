"""Bad data: one clear message naming the file, the column and the row; exit 2; no traceback.

Tests that run the generated train.py in a subprocess (a torch import each) are marked slow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train_codegen import DATA, compile_to, import_data, write_spec

IRIS_CSV = DATA / "iris_string_labels.csv"
NPZ_SPEC = """\
name: diab
data: {source: %s}
input: {shape: [10]}
output: {units: 1, activation: linear}
training: {epochs: 1}
""" % (DATA / "diabetes.npz")
SPEC = """\
name: flowers
data:
  source: {source}
  target: species
input: {{shape: [4]}}
layers:
  - dense: {{units: 4, activation: relu}}
output: {{units: 3, activation: softmax}}
training: {{epochs: 1}}
"""
HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("flowers")
    return compile_to(write_spec(tmp, SPEC.format(source=IRIS_CSV)), tmp / "code")


def good_rows(n: int = 30) -> list[str]:
    lines = IRIS_CSV.read_text().splitlines()[1:]
    return lines[: n // 3] + lines[50 : 50 + n // 3] + lines[100 : 100 + n // 3]


def bad_file(tmp_path: Path, lines: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def run_with(code: Path, data: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(code / "train.py"), "--out", str(cwd / "run"), "--data", str(data),
         "--quiet"], capture_output=True, text=True, check=False, timeout=300, cwd=cwd,
    )  # fmt: skip


def replace_cell(lines: list[str], row: int, col: int, value: str) -> list[str]:
    cells = lines[row - 1].split(",")
    cells[col] = value
    return [*lines[: row - 1], ",".join(cells), *lines[row:]]


CASES = {
    "non-numeric cell": (lambda: replace_cell(good_rows(), 7, 1, "abc"), HEADER,
                         ["column 'sepal_width'", "row 7", "'abc' is not a number"]),
    "empty cell": (lambda: replace_cell(good_rows(), 12, 2, ""), HEADER,
                   ["column 'petal_length'", "row 12", "empty cell"]),
    "missing column": (good_rows, HEADER.replace("species", "specie"),
                       ["no column 'species'", "specie"]),
    "class count mismatch": (lambda: replace_cell(good_rows(), 20, 4, "rosea"), HEADER,
                             ["column 'species'", "row 20", "'rosea'", "output.units is 3"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_bad_csv_exits_2_with_one_clear_message(code, tmp_path, case):
    make_lines, header, expected = CASES[case]
    path = bad_file(tmp_path, make_lines(), header)
    proc = run_with(code, path, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(path) in lines[0]
    for part in expected:
        assert part in lines[0], (part, lines[0])


@pytest.mark.slow
def test_missing_file_exits_2(code, tmp_path):
    proc = run_with(code, tmp_path / "nope.csv", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file"


def test_messages_in_process(code, tmp_path):
    """The same checks through data.load(), including fewer classes and a short row."""
    data = import_data(code)
    only_two = [line for line in good_rows() if not line.endswith("virginica")]
    with pytest.raises(
        data.DataError, match=r"column 'species' has 2 classes .* output.units is 3"
    ):
        data.load(str(bad_file(tmp_path, only_two)))
    short = [*good_rows()[:4], "5.1,3.5,1.4", *good_rows()[4:]]
    with pytest.raises(data.DataError, match=r"row 5 has 3 cells"):
        data.load(str(bad_file(tmp_path, short)))
    nan_cell = replace_cell(good_rows(), 3, 0, "nan")
    with pytest.raises(
        data.DataError, match=r"column 'sepal_length', row 3: 'nan' is not a finite"
    ):
        data.load(str(bad_file(tmp_path, nan_cell)))


@pytest.mark.slow
def test_parquet_and_npz_errors(tmp_path):
    spec = write_spec(tmp_path, SPEC.format(source=DATA / "iris_string_labels.parquet"), "p.yaml")
    parquet = compile_to(spec, tmp_path / "pq")
    data = import_data(parquet)
    with pytest.raises(data.DataError, match="no such file"):
        data.load(str(tmp_path / "missing.parquet"))
    with pytest.raises(data.DataError, match="cannot read the file as parquet"):
        data.load(str(bad_file(tmp_path, good_rows())))

    npz = compile_to(write_spec(tmp_path, NPZ_SPEC, "n.yaml"), tmp_path / "npz")
    data = import_data(npz)
    x = np.ones((20, 10), dtype=np.float32)
    x[13, 4] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(20))
    with pytest.raises(data.DataError, match=r"array 'x', row 14: not a finite number"):
        data.load(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "noy.npz", x=np.ones((20, 10)))
    with pytest.raises(data.DataError, match=r"no array 'y' \(arrays: x\)"):
        data.load(str(tmp_path / "noy.npz"))
    np.savez(tmp_path / "two.npz", x=np.ones((2, 10)), y=np.zeros(2))
    proc = run_with(npz, tmp_path / "two.npz", tmp_path)  # too few rows: exit 2, one message
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {tmp_path / 'two.npz'}: 2 rows are too few to split into train, val 0.2 "
        "and test 0.2 (each part needs at least one row)"
    )
    np.savez(tmp_path / "wide.npz", x=np.ones((20, 12)), y=np.zeros(20))
    with pytest.raises(data.DataError, match=r"12 features per row .* input.shape \[10\] needs 10"):
        data.load(str(tmp_path / "wide.npz"))


# --- csv files as spreadsheets and editors write them ------------------------------------------


def test_bom_quotes_crlf_and_trailing_blank_lines_read_like_a_plain_csv(code, tmp_path):
    """Excel's UTF-8 byte-order mark, quoted numbers, CRLF line ends and blank or
    whitespace-only trailing lines all read as the plain file does (feature names included)."""
    data = import_data(code)
    plain = data.load(str(IRIS_CSV))
    body = IRIS_CSV.read_text().splitlines()[1:]
    quoted = [",".join(f'"{cell}"' for cell in line.split(",")) for line in body]
    variants = {
        "bom.csv": ("\ufeff" + IRIS_CSV.read_text()).encode("utf-8"),
        "quoted.csv": ("\n".join([HEADER, *quoted]) + "\n").encode(),
        "crlf.csv": IRIS_CSV.read_text().replace("\n", "\r\n").encode(),
        "trailing.csv": (IRIS_CSV.read_text() + "\n\n   \n\n").encode(),
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        splits = data.load(str(tmp_path / name))
        assert splits.features == plain.features, name  # no '\ufeffsepal_length'
        assert splits.labels == plain.labels, name
        np.testing.assert_array_equal(splits.x_train, plain.x_train)
        np.testing.assert_array_equal(splits.y_test, plain.y_test)


@pytest.mark.parametrize(
    ("separator", "named"), [(";", "separated by ';'"), ("\t", "separated by a tab")]
)
@pytest.mark.slow
def test_other_separators_are_named(code, tmp_path, separator, named):
    lines = [line.replace(",", separator) for line in [HEADER, *good_rows()]]
    path = tmp_path / "other.csv"
    path.write_text("\n".join(lines) + "\n")
    proc = run_with(code, path, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    shown = separator.replace("\t", "\\t")  # control characters are escaped
    assert line.startswith(f"error: {path}: the header is one column 'sepal_length{shown}")
    assert named in line and "needs commas" in line


def test_header_without_rows_and_repeated_columns(code, tmp_path):
    data = import_data(code)
    with pytest.raises(
        data.DataError, match=r"bad.csv: the file has no data rows \(columns: sepal"
    ):
        data.load(str(bad_file(tmp_path, [])))
    header = HEADER.replace("petal_length", "sepal_width")
    with pytest.raises(
        data.DataError, match=r"column 'sepal_width' appears twice \(columns 2 and 3\)"
    ):
        data.load(str(bad_file(tmp_path, good_rows(), header)))


def test_labels_that_are_negative_or_fractional_numbers_are_classes(tmp_path):
    """Numeric class labels need not be 0..k-1: they sort as numbers, named by their str."""
    spec = SPEC.format(source=tmp_path / "n.csv").replace("target: species", "target: label")
    for values, names in (((-1, 0, 1), ["-1", "0", "1"]), ((0.5, 1.5, 2.5), ["0.5", "1.5", "2.5"])):
        lines = ["a,b,c,d,label"] + [
            f"{i},{i % 7},{i % 5},{i % 3},{values[i % 3]}" for i in range(30)
        ]
        (tmp_path / "n.csv").write_text("\n".join(lines) + "\n")
        code = compile_to(write_spec(tmp_path, spec), tmp_path / f"code{names[0]}")
        splits = import_data(code).load()
        assert splits.labels == names
        assert sorted(set(splits.y_train.tolist())) == [0, 1, 2]


@pytest.mark.slow
def test_a_single_row_file_is_too_few_to_split(code, tmp_path):
    proc = run_with(code, bad_file(tmp_path, good_rows()[:1]), tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.csv" in proc.stderr


@pytest.mark.slow
def test_npz_scalar_array_and_parquet_string_feature(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    npz = compile_to(write_spec(tmp_path, NPZ_SPEC, "n.yaml"), tmp_path / "npz")
    np.savez(tmp_path / "scalar.npz", x=np.float64(3.0), y=np.zeros(20))
    proc = run_with(npz, tmp_path / "scalar.npz", tmp_path)  # was a TypeError traceback
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {tmp_path / 'scalar.npz'}: array 'x' is a single value, not one row per example"
    )

    spec = write_spec(tmp_path, SPEC.format(source=DATA / "iris_string_labels.parquet"), "p.yaml")
    data = import_data(compile_to(spec, tmp_path / "pq"))
    table = pq.read_table(DATA / "iris_string_labels.parquet")
    widths = [str(v) for v in table.column("sepal_width").to_pylist()]
    widths[9] = "wide"
    pq.write_table(table.set_column(1, "sepal_width", pa.array(widths)), tmp_path / "s.parquet")
    with pytest.raises(data.DataError, match=r"column 'sepal_width', row 10: 'wide' is not a num"):
        data.load(str(tmp_path / "s.parquet"))
    repeated = pa.table([[1.0], [2.0], ["x"]], names=["a", "a", "species"])
    pq.write_table(repeated, tmp_path / "dup.parquet")
    with pytest.raises(data.DataError) as error:
        data.load(str(tmp_path / "dup.parquet"))
    assert "dup.parquet" in str(error.value) and "\n" not in str(error.value)  # one line
