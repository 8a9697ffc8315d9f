"""`specc predict`: exported models on csv/parquet/npz files, and every bad input it names.

Models are exports of untrained runs (tests/conftest.py), so the tests are about predict, not
about training; expected outputs come from ONNX Runtime directly and from PyTorch.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from conftest import SPECS, specc
from onnx import TensorProto, helper
from sklearn.datasets import load_breast_cancer

from specc.runtime import onnx_common as oc
from specc.runtime.export import export_run, load_model, read_run
from specc.runtime.predict import npz_array, open_model, run_predict

DATA = SPECS / "data"
IRIS_CSV = DATA / "iris_string_labels.csv"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_LABELS = ["setosa", "versicolor", "virginica"]


def _export(runs, tmp_path_factory, spec: str, *overrides: str) -> Path:
    """Export an untrained run of `spec` (with overrides) to a temporary file."""
    run_dir = runs.untrained(spec, *overrides)
    out = tmp_path_factory.mktemp("models") / f"{spec}.onnx"
    export_run(run_dir, out)
    return out


@pytest.fixture(scope="module")
def iris(runs, tmp_path_factory) -> Path:
    """iris trained on the string-label csv: features named as in that file."""
    return _export(runs, tmp_path_factory, "iris", f"data.source={IRIS_CSV}", "data.target=species")


def predict(model: Path, data: Path, capsys, batch_size: int = 4096) -> pd.DataFrame:
    """run_predict to stdout, parsed; asserts exit 0."""
    status = run_predict(str(model), str(data), None, batch_size)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return pd.read_csv(io.StringIO(captured.out), keep_default_na=False)


def fails(model: Path, data: Path, capsys, batch_size: int = 4096) -> str:
    """run_predict that must exit 2; its one error message (stderr).

    Rows before a bad batch may already be on stdout: output streams, batch by batch.
    """
    status = run_predict(str(model), str(data), None, batch_size)
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "Traceback" not in captured.err
    assert captured.err.startswith("specc predict: error: ")
    return captured.err


def ort_outputs(model: Path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's output for rows x, reshaped to the model's input."""
    sess = oc.session(str(model))
    shape = sess.get_inputs()[0].shape[1:]
    return sess.run(None, {"input": x.astype(np.float32).reshape(len(x), *shape)})[0]


# --- formats and tasks ------------------------------------------------------------------------


def test_csv_multiclass_labels_and_probabilities(iris, capsys):
    """Columns matched by name (target ignored); label of the argmax and p_<label> columns."""
    frame = pd.read_csv(IRIS_CSV)
    out = predict(iris, IRIS_CSV, capsys)
    assert list(out.columns) == ["prediction"] + [f"p_{label}" for label in IRIS_LABELS]
    probs = ort_outputs(iris, frame[IRIS_FEATURES].to_numpy())
    np.testing.assert_allclose(out.iloc[:, 1:].to_numpy(), probs, rtol=1e-6, atol=1e-7)
    assert list(out["prediction"]) == [IRIS_LABELS[k] for k in probs.argmax(axis=1)]


def test_parquet_and_csv_give_the_same_output(iris, capsys, tmp_path):
    """The same table in Parquet (string target column, no pandas metadata) predicts alike."""
    assert run_predict(str(iris), str(IRIS_CSV), str(tmp_path / "a.csv"), 4096) == 0
    parquet = DATA / "iris_string_labels.parquet"
    assert run_predict(str(iris), str(parquet), str(tmp_path / "b.csv"), 16) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert "wrote " in capsys.readouterr().err


def test_cli_subprocess_writes_csv_to_stdout_and_file(iris, tmp_path, capsys):
    """`specc predict` as a real process: stdout or -o, identical to the in-process call."""
    done = specc("predict", str(iris), str(IRIS_CSV))
    assert done.returncode == 0, done.stderr
    assert done.stdout == predict_text(iris, IRIS_CSV, capsys)
    out = tmp_path / "pred" / "out.csv"
    done = specc("predict", str(iris), str(IRIS_CSV), "-o", str(out), "--batch-size", "10")
    assert done.returncode == 0 and out.read_text() == predict_text(iris, IRIS_CSV, capsys)
    assert done.stderr.strip() == f"wrote {out} (150 rows, iris: multiclass)"


def predict_text(model: Path, data: Path, capsys) -> str:
    """run_predict's stdout."""
    assert run_predict(str(model), str(data), None, 4096) == 0
    return capsys.readouterr().out


def test_batches_do_not_change_the_output(iris, capsys):
    """Batches of 7 rows (the last one short) give exactly the output of one batch."""
    assert predict_text(iris, IRIS_CSV, capsys) == _text(iris, IRIS_CSV, capsys, 7)


def _text(model: Path, data: Path, capsys, batch_size: int) -> str:
    """run_predict's stdout with a batch size."""
    assert run_predict(str(model), str(data), None, batch_size) == 0
    return capsys.readouterr().out


def test_columns_in_another_order_and_extra_columns(iris, capsys, tmp_path):
    """Columns are matched by name: reordered and extra columns do not matter."""
    frame = pd.read_csv(IRIS_CSV)
    shuffled = frame[["species", "petal_width", "sepal_length", "petal_length", "sepal_width"]]
    shuffled.assign(id=range(len(frame))).to_csv(tmp_path / "s.csv", index=False)
    assert predict_text(iris, tmp_path / "s.csv", capsys) == predict_text(iris, IRIS_CSV, capsys)


def test_columns_by_position_when_no_names_match(iris, capsys, tmp_path):
    """Exactly 4 columns with other names, or no header at all: taken by position."""
    features = pd.read_csv(IRIS_CSV)[IRIS_FEATURES]
    features.set_axis(list("abcd"), axis=1).to_csv(tmp_path / "named.csv", index=False)
    features.to_csv(tmp_path / "bare.csv", index=False, header=False)
    expected = predict(iris, IRIS_CSV, capsys)
    for name in ("named.csv", "bare.csv"):
        pd.testing.assert_frame_equal(predict(iris, tmp_path / name, capsys), expected)


def test_binary_labels_threshold_and_both_probabilities(runs, tmp_path_factory, capsys, tmp_path):
    """Binary: labels[1] when p >= 0.5, p_<labels[0]> = 1 - p, p_<labels[1]> = p."""
    model = _export(runs, tmp_path_factory, "breast_cancer")
    bunch = load_breast_cancer()
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names).assign(target=bunch.target)
    frame.to_csv(tmp_path / "bc.csv", index=False)
    out = predict(model, tmp_path / "bc.csv", capsys)
    assert list(out.columns) == ["prediction", "p_malignant", "p_benign"]
    p = ort_outputs(model, bunch.data)[:, 0]
    np.testing.assert_allclose(out["p_benign"], p, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["p_malignant"] + out["p_benign"], 1.0, atol=1e-6)
    assert list(out["prediction"]) == ["benign" if v >= 0.5 else "malignant" for v in p]


def test_multilabel_one_column_per_label(runs, tmp_path_factory, capsys):
    """Multi-label: prediction_<label> 0/1 (p >= 0.5) and p_<label>; targets ignored."""
    model = _export(runs, tmp_path_factory, "digit_properties")
    data = DATA / "digit_properties.csv"
    out = predict(model, data, capsys)
    labels = ["even", "large", "prime"]
    assert list(out.columns) == [f"prediction_{n}" for n in labels] + [f"p_{n}" for n in labels]
    p = ort_outputs(model, pd.read_csv(data)[[f"p{i}" for i in range(64)]].to_numpy())
    np.testing.assert_allclose(out[[f"p_{n}" for n in labels]], p, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out[[f"prediction_{n}" for n in labels]], (p >= 0.5) * 1)


def test_regression_on_npz_matches_torch(runs, tmp_path_factory, capsys):
    """Regression from diabetes.npz (array x, memory-mapped): `prediction` values."""
    run_dir = runs.untrained("diabetes")
    model = tmp_path_factory.mktemp("diabetes") / "d.onnx"
    export_run(run_dir, model)
    data = DATA / "diabetes.npz"
    out = predict(model, data, capsys, batch_size=100)
    x = np.load(data)["x"]
    torch_model, _, _ = load_model(read_run(run_dir))
    with torch.no_grad():
        expected = torch_model.predict(torch.from_numpy(x)).numpy()[:, 0]
    assert list(out.columns) == ["prediction"] and len(out) == 442
    np.testing.assert_allclose(out["prediction"], expected, rtol=1e-5, atol=1e-4)
    key, array = npz_array(data, open_model(model))
    assert key == "x" and isinstance(array, np.memmap)


def test_npz_compressed_and_keyed_by_shape(runs, tmp_path_factory, capsys, tmp_path):
    """A compressed npz whose only input-shaped array is not called x works the same."""
    model = _export(runs, tmp_path_factory, "diabetes")
    x = np.load(DATA / "diabetes.npz")["x"]
    np.savez_compressed(tmp_path / "c.npz", features=x, target=np.zeros(len(x)))
    pd.testing.assert_frame_equal(
        predict(model, tmp_path / "c.npz", capsys), predict(model, DATA / "diabetes.npz", capsys)
    )


def test_multi_output_regression_names_columns_by_target(runs, tmp_path_factory, capsys):
    """A linear output with 3 units: prediction_<target> for each target column."""
    model = _export(
        runs,
        tmp_path_factory,
        "digit_properties",
        "output.activation=linear",
        "loss=mse",
        "stopping.early.monitor=val_loss",
    )
    out = predict(model, DATA / "digit_properties.csv", capsys)
    assert list(out.columns) == ["prediction_even", "prediction_large", "prediction_prime"]


# --- bad inputs -------------------------------------------------------------------------------


def test_missing_files_subprocess(iris, tmp_path):
    """A missing model or data file: exit 2 and the path, from a real process."""
    done = specc("predict", str(tmp_path / "no.onnx"), str(IRIS_CSV))
    assert done.returncode == 2
    assert done.stderr == f"specc predict: error: {tmp_path / 'no.onnx'}: no such file\n"
    done = specc("predict", str(iris), str(tmp_path / "no.csv"))
    assert done.returncode == 2
    assert done.stderr == f"specc predict: error: {tmp_path / 'no.csv'}: no such file\n"


def test_not_an_onnx_file(tmp_path, capsys):
    """A file that is not ONNX at all."""
    (tmp_path / "m.onnx").write_text("hello")
    assert "m.onnx: not an ONNX model" in fails(tmp_path / "m.onnx", IRIS_CSV, capsys)


def test_onnx_model_that_specc_did_not_export(tmp_path, capsys):
    """A valid ONNX model without specc.* metadata is refused."""
    node = helper.make_node("Relu", ["input"], ["output"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 4])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "r.onnx"
    )
    assert "r.onnx: not a specc export" in fails(tmp_path / "r.onnx", IRIS_CSV, capsys)


def _csv(tmp_path: Path, edit) -> Path:
    """The iris csv with an edit applied to its DataFrame (all cells as text)."""
    frame = pd.read_csv(IRIS_CSV, dtype=str)
    frame = edit(frame) if edit else frame
    frame.to_csv(tmp_path / "bad.csv", index=False)
    return tmp_path / "bad.csv"


def test_missing_column_with_did_you_mean(iris, capsys, tmp_path):
    """A misspelt feature column: which is missing and what was probably meant."""
    bad = _csv(tmp_path, lambda f: f.rename(columns={"petal_width": "petal_widht"}))
    err = fails(iris, bad, capsys)
    assert f"{bad}: missing feature column 'petal_width' (3 of 4 features found)" in err
    assert "hint: for 'petal_width', did you mean 'petal_widht'?" in err


@pytest.mark.parametrize(
    ("row", "value", "expected"),
    [
        (1, "abc", "row 1, column 'sepal_width': non-numeric value 'abc'"),
        (150, "", "row 150, column 'sepal_width': empty cell (a number is needed)"),
        (77, "1,5", "row 77, column 'sepal_width': non-numeric value '1,5'"),
        (12, "inf", "row 12, column 'sepal_width': non-finite value inf"),
    ],
)
def test_bad_cells_are_named_by_row_and_column(iris, capsys, tmp_path, row, value, expected):
    """Non-numeric, empty and infinite cells: file, 1-based row (header excluded), column."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row - 1, "sepal_width"] = value
        return frame

    bad = _csv(tmp_path, edit)
    assert (
        fails(iris, bad, capsys, batch_size=7).strip() == f"specc predict: error: {bad}: {expected}"
    )


def test_parquet_null_cell(iris, capsys, tmp_path):
    """A null in a Parquet column is an empty cell, at its row."""
    frame = pd.read_parquet(DATA / "iris_string_labels.parquet")
    frame.loc[99, "petal_length"] = None
    frame.to_parquet(tmp_path / "n.parquet")
    err = fails(iris, tmp_path / "n.parquet", capsys, batch_size=32)
    assert "n.parquet: row 100, column 'petal_length': empty cell" in err


def test_wrong_number_of_columns_without_names(iris, capsys, tmp_path):
    """No matching names and a column count that is not the model's: refused."""
    pd.DataFrame(np.ones((3, 3)), columns=list("abc")).to_csv(tmp_path / "w.csv", index=False)
    err = fails(iris, tmp_path / "w.csv", capsys)
    assert (
        "missing feature columns 'sepal_length', 'sepal_width', 'petal_length', 'petal_width'"
        in err
    )
    pd.DataFrame(np.ones((3, 5))).to_csv(tmp_path / "h.csv", index=False, header=False)
    err = fails(iris, tmp_path / "h.csv", capsys)
    assert "no header row and 5 columns, but the model takes 4 features" in err


def test_npz_without_a_fitting_array(iris, capsys, tmp_path):
    """An npz with no `x` and nothing shaped [N, 4], and one whose x has the wrong width."""
    np.savez(tmp_path / "a.npz", data=np.ones((5, 3)))
    assert "no array 'x', and no array shaped [N, 4]" in fails(iris, tmp_path / "a.npz", capsys)
    np.savez(tmp_path / "b.npz", x=np.ones((5, 3)))
    err = fails(iris, tmp_path / "b.npz", capsys)
    assert "array 'x' has shape [5, 3], but the model takes rows of [4] (4 features)" in err


def test_npz_nan_is_named(iris, capsys, tmp_path):
    """A NaN in an npz array: key, row and feature (with its name)."""
    x = np.ones((20, 4), dtype=np.float32)
    x[13, 2] = np.nan
    np.savez(tmp_path / "n.npz", x=x)
    err = fails(iris, tmp_path / "n.npz", capsys, batch_size=8)
    assert "array 'x', row 14, feature 3 (petal_length): non-finite value nan" in err


def test_other_bad_inputs(iris, capsys, tmp_path):
    """Unsupported extension, an empty csv, a directory, and a zero batch size."""
    (tmp_path / "d.txt").write_text("1,2,3,4\n")
    assert "unsupported file type '.txt'" in fails(iris, tmp_path / "d.txt", capsys)
    (tmp_path / "e.csv").write_text("")
    assert "e.csv: the file is empty" in fails(iris, tmp_path / "e.csv", capsys)
    assert "not a file" in fails(iris, tmp_path, capsys)
    assert "--batch-size must be at least 1" in fails(iris, IRIS_CSV, capsys, batch_size=0)


def test_a_failed_prediction_leaves_no_output_file(iris, capsys, tmp_path):
    """With -o, the output appears only when every row was predicted."""
    bad = _csv(
        tmp_path, lambda f: f.assign(sepal_length=f["sepal_length"].where(f.index < 140, "x"))
    )
    out = tmp_path / "out.csv"
    assert run_predict(str(iris), str(bad), str(out), 16) == 2
    assert "row 141, column 'sepal_length'" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


def test_csv_as_spreadsheets_write_it(iris, capsys, tmp_path):
    """A byte-order mark, quoted numbers and trailing blank lines predict as the plain file;
    a ';'- or tab-separated file is named as such."""
    plain = predict(iris, IRIS_CSV, capsys)
    lines = IRIS_CSV.read_text().splitlines()
    quoted = [lines[0]] + [",".join(f'"{c}"' for c in line.split(",")) for line in lines[1:]]
    (tmp_path / "bom.csv").write_text("\ufeff" + IRIS_CSV.read_text() + "\n\n", encoding="utf-8")
    (tmp_path / "quoted.csv").write_text("\n".join(quoted) + "\n")
    for name in ("bom.csv", "quoted.csv"):
        pd.testing.assert_frame_equal(predict(iris, tmp_path / name, capsys), plain)
    for separator, named in ((";", "separated by ';'"), ("\t", "separated by a tab")):
        (tmp_path / "s.csv").write_text("\n".join(x.replace(",", separator) for x in lines))
        err = fails(iris, tmp_path / "s.csv", capsys)
        shown = separator.replace("\t", "\\t")  # control characters are escaped
        assert f"s.csv: the first line is one column 'sepal_length{shown}" in err
        assert named in err and "needs commas" in err and len(err.strip().splitlines()) == 1
