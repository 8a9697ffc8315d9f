"""`specc predict` hardening (issue 8): `-o DIR/`, unwritable targets, forged models, files that
used to crash it, rows train would refuse, spreadsheet formulas in labels and wide files — each
through the real command.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SPECS, specc
from onnx import TensorProto, helper
from test_export_hardening import one_error_line, specc_limited

from specc.runtime import onnx_common as oc
from specc.runtime.export import export_run
from specc.runtime.predict import PredictError, open_model, predict_to, read_chunks, safe_cell

IRIS_CSV = SPECS / "data" / "iris_string_labels.csv"
HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"


@pytest.fixture(scope="module")
def iris(runs, tmp_path_factory) -> Path:
    """iris exported from an untrained run on the string-label csv (features named)."""
    run_dir = runs.untrained("iris", f"data.source={IRIS_CSV}", "data.target=species")
    out = tmp_path_factory.mktemp("models") / "iris.onnx"
    export_run(run_dir, out)
    return out


def rows(n: int = 10) -> list[str]:
    """The first n data lines of the iris csv."""
    return IRIS_CSV.read_text().splitlines()[1 : n + 1]


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


# --- -o: a directory, an unwritable target ------------------------------------------------------


def test_output_into_a_directory_writes_predictions_csv(iris, tmp_path):
    """`-o DIR` (existing) and `-o NEW/` (created) write DIR/predictions.csv."""
    (tmp_path / "dir").mkdir()
    for target, written in (
        (str(tmp_path / "dir"), tmp_path / "dir" / "predictions.csv"),
        (f"{tmp_path / 'new'}/", tmp_path / "new" / "predictions.csv"),
    ):
        done = specc("predict", str(iris), str(IRIS_CSV), "-o", target)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"wrote {written} (150 rows")
        assert len(pd.read_csv(written)) == 150


def test_output_under_a_file_is_one_line_exit_2(iris, tmp_path):
    """A folder that is a file (ENOTDIR, which stops root too): exit 2, the path, nothing left."""
    (tmp_path / "plain").write_text("x")
    target = tmp_path / "plain" / "out.csv"
    line = one_error_line(specc("predict", str(iris), str(IRIS_CSV), "-o", str(target)), "predict")
    assert line == (
        f"specc predict: error: {target}: cannot write: {tmp_path / 'plain'} is a file, "
        "not a folder; nothing was written"
    )


def test_disk_full_leaves_the_earlier_output_and_no_partial_file(iris, tmp_path):
    """Writes fail past 2 kB (RLIMIT_FSIZE: EFBIG, as a full disk's ENOSPC): exit 2, one line
    naming the file, the earlier file intact, no temporary file left."""
    out = tmp_path / "out.csv"
    out.write_text("earlier\n")
    done = specc_limited("predict", str(iris), str(IRIS_CSV), "-o", str(out), fsize=2048)
    line = one_error_line(done, "predict")
    assert line == f"specc predict: error: {out}: cannot write: File too large; nothing was written"
    assert out.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# --- forged models and files that used to crash ----------------------------------------------


def _forged(tmp_path: Path, output_dims: list) -> Path:
    """A model with specc metadata whose output is not [batch, units]."""
    node = helper.make_node("ReduceSum", ["input"], ["output"], keepdims=0)
    graph = helper.make_graph(
        [node],
        "forged",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {oc.META_NAME: "forged", oc.META_TASK: "regression"})
    onnx.save(model, tmp_path / "forged.onnx")
    return tmp_path / "forged.onnx"


def test_forged_model_with_a_scalar_output(tmp_path):
    """A scalar `output` (ReduceSum to a single value): refused when opened, exit 2."""
    model = _forged(tmp_path, [])
    line = one_error_line(specc("predict", str(model), str(IRIS_CSV)), "predict")
    assert f"{model}: not a specc export: input [n, 4] tensor(float) and output []" in line


class _ScalarSession:
    """Stands in for a session whose graph returns a scalar whatever it declares."""

    def run(self, names, feeds):  # noqa: ANN001, ANN201
        return [np.float32(1.0)]


def test_output_of_the_wrong_shape_at_run_time(iris, capsys):
    """A graph that returns something other than [batch, units] when it runs: exit 1, one
    line naming the rows (ONNX Runtime checks declared shapes, not what a graph computes)."""
    model = dataclasses.replace(open_model(iris), session=_ScalarSession())
    chunks = read_chunks(IRIS_CSV, model, 64)
    with pytest.raises(
        PredictError, match=r"returned an output of shape \[\] for rows 1\.\.64, not \[64, 3\]"
    ) as caught:
        predict_to(model, chunks, io.StringIO())
    assert caught.value.status == 1


def test_object_dtype_npz(iris, tmp_path):
    """An npz of Python objects is never unpickled: exit 2, the array named."""
    np.savez(tmp_path / "o.npz", x=np.array([[1, 2, 3, 4]] * 5, dtype=object))
    line = one_error_line(specc("predict", str(iris), str(tmp_path / "o.npz")), "predict")
    assert "o.npz: array 'x' holds Python objects (object), which load only by unpickling" in line


def test_zero_row_npz_gives_the_header_only(iris, tmp_path):
    """No rows in, no rows out (the header still written): not an error for predict."""
    np.savez(tmp_path / "z.npz", x=np.zeros((0, 4), np.float32))
    done = specc("predict", str(iris), str(tmp_path / "z.npz"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "prediction,p_setosa,p_versicolor,p_virginica\n"


def test_list_valued_parquet_column(iris, tmp_path):
    """A feature column of lists: the row and column named, exit 2."""
    frame = pd.read_csv(IRIS_CSV).head(8)
    table = pa.Table.from_pandas(frame).set_column(1, "sepal_width", pa.array([[1.0, 2.0]] * 8))
    pq.write_table(table, tmp_path / "l.parquet")
    line = one_error_line(specc("predict", str(iris), str(tmp_path / "l.parquet")), "predict")
    assert "l.parquet: row 1, column 'sepal_width': a list where a number is needed" in line


def test_csv_cell_over_the_field_size_limit(iris, tmp_path):
    """A header cell over 128 KiB (an unclosed quote, usually): one line, exit 2."""
    path = write_csv(tmp_path / "big.csv", rows(), header=HEADER + "," + "x" * 200_000)
    line = one_error_line(specc("predict", str(iris), str(path)), "predict")
    assert line.endswith("big.csv: the header has a cell longer than 131072 characters "
                         "(an unclosed quote?)")  # fmt: skip


# --- rows train would refuse -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r[:3] + [r[3] + ",9.9"] + r[4:], "row 4 has 6 cells, the header 5 columns"),
        (lambda r: r[:6] + [r[6].rsplit(",", 1)[0]] + r[7:], "row 7 has 4 cells, the header 5"),
    ],
)
def test_rows_with_extra_or_missing_cells_are_refused_as_train_does(iris, tmp_path, edit, expected):
    """A row with more (or fewer) cells than the header: the same message as train's data.py."""
    path = write_csv(tmp_path / "r.csv", edit(rows()))
    out = tmp_path / "out.csv"
    line = one_error_line(specc("predict", str(iris), str(path), "-o", str(out)), "predict")
    assert f"{path}: {expected}" in line
    assert not out.exists()


def test_row_numbers_count_blank_lines_as_train_does(iris, tmp_path):
    """Blank lines are skipped but counted: the row named is the file's record number."""
    lines = rows()
    lines = [*lines[:2], "", *lines[2:5], "1,2,3,4,setosa,extra", *lines[5:]]
    path = write_csv(tmp_path / "b.csv", lines)
    line = one_error_line(specc("predict", str(iris), str(path)), "predict")
    assert "b.csv: row 7 has 6 cells, the header 5 columns" in line  # 2 rows, blank, 3 rows


# --- labels that a spreadsheet would run as formulas ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("-1", "-1"),  # numbers stay numbers
        ("-2.5e3", "-2.5e3"),
        ("+4", "+4"),
        ("setosa", "setosa"),
        ("a=b", "a=b"),
    ],
)
def test_safe_cell(text, shown):
    """OWASP's advice: a leading ' on text that starts like a formula, never on numbers."""
    assert safe_cell(text) == shown


def test_formula_labels_are_written_as_text(runs, tmp_path):
    """Class labels `=1+1`, `-1` and `@SUM(A1)`: the predictions read '=1+1 and '@SUM(A1),
    and -1 stays the number -1; probabilities (numbers) are untouched."""
    names = {"setosa": "=1+1", "versicolor": "-1", "virginica": "@SUM(A1)"}
    lines = IRIS_CSV.read_text().splitlines()
    edited = [lines[0]] + [
        ",".join([*ln.split(",")[:4], names[ln.split(",")[4]]]) for ln in lines[1:]
    ]
    data = tmp_path / "formulas.csv"
    data.write_text("\n".join(edited) + "\n")
    run_dir = runs.untrained("iris", f"data.source={data}", "data.target=species")
    model = tmp_path / "m.onnx"
    export_run(run_dir, model)
    done = specc("predict", str(model), str(data))
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(io.StringIO(done.stdout)))
    assert table[0] == ["prediction", "p_-1", "p_=1+1", "p_@SUM(A1)"]  # labels sort as text
    predicted = {row[0] for row in table[1:]}
    assert predicted <= {"'=1+1", "-1", "'@SUM(A1)"} and predicted
    assert all(float(p) >= 0 for row in table[1:] for p in row[1:])


# --- wide files --------------------------------------------------------------------------------


def test_wide_csv_matches_by_name_in_any_order(runs, tmp_path):
    """4,000 named features, the file's columns shuffled plus an extra one: the same outputs as
    ONNX Runtime on the features in model order (matching is by a name index, linear)."""
    n, m = 4000, 12
    rng = np.random.default_rng(2)
    x = rng.standard_normal((m, n)).round(3)
    names = [f"f{i}" for i in range(n)]
    train = tmp_path / "train.csv"
    pd.DataFrame(np.c_[x, x[:, 0]], columns=[*names, "y"]).to_csv(train, index=False)
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "name: wide\n"
        f"data: {{source: {train.name}, target: y, split: {{val: 0.2, test: 0.2}}}}\n"
        f"input: {{shape: [{n}]}}\n"
        "output: {units: 1, activation: linear}\n"
    )
    model = tmp_path / "wide.onnx"
    export_run(runs.untrained(spec), model)
    order = rng.permutation(n)
    shuffled = pd.DataFrame(x[:, order], columns=[names[i] for i in order])
    shuffled.insert(7, "note", "x")
    shuffled.to_csv(tmp_path / "in.csv", index=False)
    done = specc("predict", str(model), str(tmp_path / "in.csv"), "--batch-size", "5")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(io.StringIO(done.stdout))["prediction"].to_numpy()
    sess = oc.session(str(model))
    expected = sess.run(None, {"input": x.astype(np.float32)})[0][:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_standard_output_on_a_full_disk(iris):
    """`specc predict M D > /dev/full`: one line on stderr, exit 2, no traceback."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "specc", "predict", str(iris), str(IRIS_CSV)],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "specc predict: error: cannot write to standard output: No space left on device\n"
    )
