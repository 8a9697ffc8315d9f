"""`specc evaluate`: the task's metrics of an exported model on a labelled file.

Real runs trained by `specc train` (iris 3 epochs, diabetes 2) are evaluated on their own test
split and must agree with summary.json's test metrics; accuracy, the confusion matrix and the
per-class scores are checked against scikit-learn on `specc predict`'s output, regression
metrics against numpy. Binary and multi-label models are untrained exports (tests/conftest.py),
checked against PyTorch's losses on the logits and scikit-learn's per-label scores.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import SPECS, specc
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from test_cli_extras import specc_without

from specc.cli import main
from specc.runtime.export import export_run, load_model, read_run

DATA = SPECS / "data"


def load_splits(run: Path):
    """RUN/code/data.py's load(): the exact splits the run trained and was tested on."""
    spec = importlib.util.spec_from_file_location(f"_data_{run.name}", run / "code" / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return module.load()
    finally:
        sys.modules.pop(spec.name, None)


def train(spec: str, out: Path, *sets: str) -> Path:
    """`specc train specs/SPEC.yaml -o OUT --set ...`, asserted to succeed."""
    args = [a for s in sets for a in ("--set", s)]
    done = specc("train", str(SPECS / f"{spec}.yaml"), "-o", str(out), "--quiet", *args)
    assert done.returncode == 0, done.stderr
    return out


def cli(*args: object) -> tuple[int, str, str]:
    """`specc ARGS` run in this process through the real command line (specc.cli.main):
    (exit status, stdout, stderr). Faster than a subprocess for the many calls here."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main([str(arg) for arg in args])
    return status, out.getvalue(), err.getvalue()


def evaluate_json(model: Path, data: Path, subprocess: bool = False) -> dict:
    """`specc evaluate MODEL DATA --format json`, parsed; asserts exit 0 and no stderr."""
    if subprocess:
        done = specc("evaluate", str(model), str(data), "--format", "json")
        status, out, err = done.returncode, done.stdout, done.stderr
    else:
        status, out, err = cli("evaluate", model, data, "--format", "json")
    assert status == 0, err
    assert err == ""
    return json.loads(out)


def predictions(model: Path, data: Path) -> pd.DataFrame:
    """`specc predict MODEL DATA` to standard output, parsed."""
    status, out, err = cli("predict", model, data)
    assert status == 0, err
    return pd.read_csv(io.StringIO(out), keep_default_na=False)


def fails(*args: object) -> str:
    """`specc evaluate ARGS` that must exit 2 with one error line (plus hints); the text."""
    status, out, err = cli("evaluate", *args)
    assert status == 2, (out, err)
    assert "Traceback" not in err and out == ""
    first, *rest = err.splitlines()
    assert first.startswith("specc evaluate: error: ")
    assert all(line.startswith("  hint: ") for line in rest), err
    return err


# --- iris: a trained multi-class run -----------------------------------------------------------


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> tuple[Path, Path]:
    """(RUN_DIR, test.csv): iris trained 3 epochs (exporting model.onnx), its test split."""
    root = tmp_path_factory.mktemp("iris")
    run = train("iris", root / "run", "training.epochs=3", "export.onnx.opset=18")
    assert (run / "model.onnx").is_file()
    splits = load_splits(run)
    frame = pd.DataFrame(splits.x_test.astype(np.float64), columns=splits.features)
    frame["target"] = [splits.labels[k] for k in splits.y_test]
    frame.to_csv(root / "test.csv", index=False)
    return run, root / "test.csv"


@pytest.mark.slow
def test_run_dir_agrees_with_summary_test_metrics(iris):
    """Evaluated on the test split, a run gives summary.json's test loss and accuracy."""
    run, test = iris
    doc = evaluate_json(run, test, subprocess=True)
    summary = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    assert doc["task"] == "multiclass" and doc["name"] == "iris" and doc["rows"] == 30
    assert doc["loss"] == {"name": "cross_entropy", "label_smoothing": 0.05}
    assert set(doc["metrics"]) == {"loss", "accuracy"}
    for name in ("loss", "accuracy"):
        assert doc["metrics"][name] == pytest.approx(summary[name], abs=1e-4)
    assert doc["model"] == str(run / "model.onnx")


@pytest.mark.slow
def test_run_dir_and_model_file_agree_and_match_sklearn(iris):
    """RUN_DIR and RUN_DIR/model.onnx give one report; accuracy, confusion matrix and the
    per-class scores are scikit-learn's on `specc predict`'s predictions."""
    run, test = iris
    doc = evaluate_json(run / "model.onnx", test)
    by_dir = evaluate_json(run, test)
    assert {k: v for k, v in by_dir.items() if k != "model"} == {
        k: v for k, v in doc.items() if k != "model"
    }
    truth = pd.read_csv(test)["target"].tolist()
    predicted = predictions(run / "model.onnx", test)["prediction"].tolist()
    labels = ["setosa", "versicolor", "virginica"]
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    matrix = np.array(doc["confusion"]["matrix"])
    assert doc["confusion"]["labels"] == labels
    assert (matrix == confusion_matrix(truth, predicted, labels=labels)).all()
    assert matrix.sum() == doc["rows"] == len(truth)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    for k, row in enumerate(doc["per_class"]):
        assert row["label"] == labels[k]
        assert row["recall"] == pytest.approx(matrix[k, k] / matrix[k].sum())  # direct arithmetic
        assert row["precision"] == pytest.approx(matrix[k, k] / matrix[:, k].sum())
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[k], recall[k], f1[k], support[k])
        )


@pytest.mark.slow
def test_text_report_has_metrics_classes_and_matrix(iris):
    """The text report: a header line, the loss, the metric table, per-class rows, the matrix."""
    run, test = iris
    done = specc("evaluate", str(run), str(test))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"iris (multiclass) on {test}: 30 rows"
    assert lines[1] == "loss: cross_entropy, label smoothing 0.05 (without penalties)"
    summary = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    assert f"accuracy  {summary['accuracy']:.4f}" in done.stdout
    assert any(line.split() == ["class", "precision", "recall", "f1", "support"] for line in lines)
    assert "confusion matrix (rows: true class, columns: predicted class)" in lines
    assert lines[-4].split() == ["setosa", "versicolor", "virginica"]
    assert sum(int(n) for line in lines[-3:] for n in line.split()[1:]) == 30


@pytest.mark.slow
def test_whole_iris_with_sklearn_class_codes(iris, tmp_path):
    """The whole iris table as scikit-learn's frame has it (target 0, 1, 2: class indices,
    since no class name is a number), and the same as Parquet and npz."""
    run, _ = iris
    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "iris.csv", index=False)
    frame.to_parquet(tmp_path / "iris.parquet")
    np.savez(tmp_path / "iris.npz", x=frame.iloc[:, :4].to_numpy(), y=frame["target"].to_numpy())
    doc = evaluate_json(run, tmp_path / "iris.csv")
    assert doc["rows"] == 150 and np.array(doc["confusion"]["matrix"]).sum(axis=1).tolist() == [
        50,
        50,
        50,
    ]
    predicted = predictions(run / "model.onnx", tmp_path / "iris.csv")["prediction"]
    names = np.array(["setosa", "versicolor", "virginica"])[frame["target"]]
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy_score(names, predicted))
    for other in ("iris.parquet", "iris.npz"):
        again = evaluate_json(run, tmp_path / other)
        assert again["metrics"] == pytest.approx(doc["metrics"], rel=1e-6)
        assert again["confusion"] == doc["confusion"]


# --- diabetes: a trained regression run --------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory) -> tuple[Path, Path]:
    """(RUN_DIR, test.csv): diabetes trained 2 epochs, its test split."""
    root = tmp_path_factory.mktemp("diabetes")
    run = train("diabetes", root / "run", "training.epochs=2")
    splits = load_splits(run)
    frame = pd.DataFrame(splits.x_test.astype(np.float64), columns=splits.features)
    frame["target"] = splits.y_test[:, 0].astype(np.float64)
    frame.to_csv(root / "test.csv", index=False)
    np.savez(root / "test.npz", x=splits.x_test, y=splits.y_test)
    return run, root / "test.csv"


@pytest.mark.slow
def test_regression_metrics_match_numpy_and_summary(diabetes):
    """mae, rmse, r2 from numpy on `specc predict`'s output; huber loss and all metrics equal
    summary.json's test metrics (relative 1e-4: float32 outputs in the hundreds)."""
    run, test = diabetes
    doc = evaluate_json(run, test)
    assert doc["task"] == "regression" and doc["rows"] == 88
    assert doc["loss"] == {"name": "huber", "delta": 1.0}
    assert doc["per_class"] is None and doc["confusion"] is None
    y = pd.read_csv(test)["target"].to_numpy()
    p = predictions(run / "model.onnx", test)["prediction"].to_numpy(dtype=np.float64)
    error = p - y
    d = np.abs(error)
    direct = {
        "loss": np.where(d <= 1.0, 0.5 * d**2, d - 0.5).mean(),
        "mae": d.mean(),
        "rmse": np.sqrt((error**2).mean()),
        "r2": 1 - (error**2).sum() / ((y - y.mean()) ** 2).sum(),
    }
    assert doc["metrics"] == pytest.approx(direct, rel=1e-5)
    summary = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    for name, value in summary.items():
        assert doc["metrics"][name] == pytest.approx(value, rel=1e-4, abs=1e-4)
    npz = evaluate_json(run, test.with_suffix(".npz"))
    assert npz["metrics"] == pytest.approx(doc["metrics"], rel=1e-6)


@pytest.mark.slow
def test_regression_bad_target_cell_names_row_and_column(diabetes, tmp_path):
    run, test = diabetes
    frame = pd.read_csv(test).astype({"target": object})
    frame.loc[6, "target"] = "n/a"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    err = fails(run, tmp_path / "bad.csv")
    assert err == (
        f"specc evaluate: error: {tmp_path / 'bad.csv'}: row 7, column 'target': "
        "non-numeric value 'n/a'\n"
    )


@pytest.mark.slow
def test_npz_target_of_the_wrong_shape(diabetes, tmp_path):
    run, _ = diabetes
    x = np.zeros((5, 10), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros((5, 2)))
    err = fails(run, tmp_path / "d.npz")
    assert "array 'y' has shape [5, 2], but the model's targets are [N] (or [N, 1])" in err
    np.savez(tmp_path / "e.npz", x=x)
    assert "no target array 'target' (the spec's target) or 'y'; the file's arrays: 'x'" in fails(
        run, tmp_path / "e.npz"
    )


# --- binary and multi-label: untrained exports -------------------------------------------------


def _export(runs, tmp_path_factory, spec: str, *overrides: str) -> tuple[Path, Path]:
    """(RUN_DIR, model.onnx) of an untrained run of `spec`."""
    run = runs.untrained(spec, *overrides)
    out = tmp_path_factory.mktemp("models") / f"{spec}.onnx"
    export_run(run, out)
    return run, out


def _logits(run: Path, x: np.ndarray) -> torch.Tensor:
    """The PyTorch model's forward (logits) on rows x."""
    model, shape, _ = load_model(read_run(run))
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32)).reshape(len(x), *shape))


@pytest.mark.slow
def test_binary_loss_is_trainings_loss_from_logits(runs, tmp_path_factory, tmp_path):
    """breast_cancer (sigmoid): binary cross-entropy from the probabilities equals PyTorch's
    from the logits (no probability near 0 or 1 untrained); 2x2 confusion matrix."""
    run, model = _export(runs, tmp_path_factory, "breast_cancer")
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "bc.csv", index=False)
    doc = evaluate_json(model, tmp_path / "bc.csv")
    y = frame["target"].to_numpy()
    logits = _logits(run, frame.iloc[:, :30].to_numpy())[:, 0]
    expected = F.binary_cross_entropy_with_logits(logits.double(), torch.from_numpy(y * 1.0))
    assert doc["metrics"]["loss"] == pytest.approx(float(expected), abs=1e-5)
    predicted = (logits > 0).numpy().astype(int)
    assert doc["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert doc["confusion"] == {
        "labels": ["malignant", "benign"],
        "matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }
    assert [row["support"] for row in doc["per_class"]] == np.bincount(y).tolist()


@pytest.mark.slow
def test_multilabel_per_label_scores(runs, tmp_path_factory):
    """digit_properties (3 sigmoid labels, smoothing 0.05): per-label precision/recall/F1/
    support/accuracy as scikit-learn's; loss as PyTorch's on the logits with smoothed targets."""
    run, model = _export(runs, tmp_path_factory, "digit_properties")
    data = DATA / "digit_properties.csv"
    doc = evaluate_json(model, data)
    assert doc["task"] == "multilabel" and doc["confusion"] is None
    frame = pd.read_csv(data)
    labels = ["even", "large", "prime"]
    t = frame[labels].to_numpy()
    logits = _logits(run, frame.drop(columns=labels).to_numpy()).double()
    smooth = torch.from_numpy(t * 0.9 + 0.05)
    expected = F.binary_cross_entropy_with_logits(logits, smooth)
    assert doc["metrics"]["loss"] == pytest.approx(float(expected), abs=1e-5)
    hits = (logits > 0).numpy()
    assert doc["metrics"]["accuracy"] == pytest.approx(float((hits == (t == 1)).mean()))
    precision, recall, f1, support = precision_recall_fscore_support(t, hits, zero_division=0)
    for k, row in enumerate(doc["per_class"]):
        assert row["label"] == labels[k]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[k], recall[k], f1[k], support[k])
        )
        assert row["accuracy"] == pytest.approx(float((hits[:, k] == t[:, k]).mean()))


@pytest.fixture(scope="module")
def iris_strings(runs, tmp_path_factory) -> Path:
    """An untrained iris export trained on the string-label csv (target column `species`)."""
    csv = DATA / "iris_string_labels.csv"
    return _export(runs, tmp_path_factory, "iris", f"data.source={csv}", "data.target=species")[1]


def test_string_labels_from_csv_and_parquet(iris_strings):
    """The spec's data.target names the label column; csv and parquet agree."""
    csv_doc = evaluate_json(iris_strings, DATA / "iris_string_labels.csv")
    parquet_doc = evaluate_json(iris_strings, DATA / "iris_string_labels.parquet")
    assert csv_doc["rows"] == 150
    assert {k: v for k, v in csv_doc.items() if k != "data"} == {
        k: v for k, v in parquet_doc.items() if k != "data"
    }


# --- bad input: one line, exit 2, never a traceback ---------------------------------------------


def test_missing_target_column_with_hint(iris_strings, tmp_path):
    frame = pd.read_csv(DATA / "iris_string_labels.csv").rename(columns={"species": "specis"})
    frame.to_csv(tmp_path / "typo.csv", index=False)
    err = fails(iris_strings, tmp_path / "typo.csv")
    assert err.splitlines() == [
        f"specc evaluate: error: {tmp_path / 'typo.csv'}: no target column 'species' (the "
        "model's spec names it); the file's columns: 'sepal_length', 'sepal_width', "
        "'petal_length', 'petal_width', 'specis'",
        "  hint: for 'species', did you mean 'specis'?",
    ]


def test_unlabelled_file(iris_strings, tmp_path):
    """predict's input (features only) is not enough to evaluate."""
    frame = pd.read_csv(DATA / "iris_string_labels.csv").drop(columns="species")
    frame.to_csv(tmp_path / "features.csv", index=False)
    assert "no target column 'species'" in fails(iris_strings, tmp_path / "features.csv")
    frame.to_csv(tmp_path / "headerless.csv", index=False, header=False)
    assert "no header row" in fails(iris_strings, tmp_path / "headerless.csv")


def test_unknown_and_empty_labels_name_the_row(iris_strings, tmp_path):
    frame = pd.read_csv(DATA / "iris_string_labels.csv")
    frame.loc[41, "species"] = "setosaa"
    frame.to_csv(tmp_path / "unknown.csv", index=False)
    assert fails(iris_strings, tmp_path / "unknown.csv").endswith(
        "row 42, column 'species': 'setosaa' is not one of the model's classes ('setosa', "
        "'versicolor', 'virginica')\n"
    )
    frame.loc[41, "species"] = ""
    frame.to_csv(tmp_path / "empty.csv", index=False)
    assert "row 42, column 'species': empty cell (a class label is needed)" in fails(
        iris_strings, tmp_path / "empty.csv"
    )


def test_feature_problems_are_predicts_messages(iris_strings, tmp_path):
    """Bad feature cells and ragged rows: the same one-line messages as `specc predict`."""
    frame = pd.read_csv(DATA / "iris_string_labels.csv").astype({"sepal_width": object})
    frame.loc[76, "sepal_width"] = "1,5"
    frame.to_csv(tmp_path / "cell.csv", index=False)
    assert "row 77, column 'sepal_width': non-numeric value '1,5'" in fails(
        iris_strings, tmp_path / "cell.csv"
    )
    text = (DATA / "iris_string_labels.csv").read_text().splitlines()
    text[5] += ",extra"
    (tmp_path / "ragged.csv").write_text("\n".join(text) + "\n")
    assert "row 5 has 6 cells, the header 5 columns" in fails(iris_strings, tmp_path / "ragged.csv")


@pytest.mark.slow
def test_unreadable_inputs(iris, iris_strings, tmp_path):
    run, test = iris
    assert f"{tmp_path / 'none.csv'}: no such file" in fails(run, tmp_path / "none.csv")
    assert "not a file" in fails(run, tmp_path)
    (tmp_path / "t.txt").write_text("x")
    assert "unsupported file type '.txt'" in fails(run, tmp_path / "t.txt")
    (tmp_path / "e.csv").write_text("")
    assert "the file is empty" in fails(run, tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("sepal_length,sepal_width,petal_length,petal_width,species\n")
    assert "no data rows to evaluate" in fails(iris_strings, tmp_path / "h.csv")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert "not an .npz file" in fails(run, tmp_path / "broken.npz")
    empty_run = tmp_path / "run"
    empty_run.mkdir()
    assert fails(empty_run, test).endswith(
        f"{empty_run}: the run directory has no model.onnx; write it with "
        f"`specc export {empty_run}`\n"
    )
    (tmp_path / "fake.onnx").write_bytes(b"\x00junk")
    assert "not an ONNX model" in fails(tmp_path / "fake.onnx", test)


# --- the command line --------------------------------------------------------------------------


def test_help_lists_the_exit_statuses():
    done = specc("evaluate", "--help")
    assert done.returncode == 0
    assert "RUN_DIR_OR_MODEL.onnx" in done.stdout and "--format {text,json}" in done.stdout
    statuses = [line.split()[0] for line in done.stdout.split("exit status:")[1].splitlines()[1:]]
    assert statuses == ["0", "1", "2"]


@pytest.mark.slow
def test_bad_format_is_a_usage_error(iris):
    run, test = iris
    done = specc("evaluate", str(run), str(test), "--format", "yaml")
    assert done.returncode == 2 and "invalid choice: 'yaml'" in done.stderr


def test_without_the_extras_it_names_what_to_install(tmp_path):
    done = specc_without(("onnxruntime",), "evaluate", "m.onnx", "d.csv", tmp=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "specc evaluate: error: the training extras are not installed "
        "(no module named 'onnxruntime'): pip install 'specc[train]'"
    ]
