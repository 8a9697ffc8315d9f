"""data.normalize_target: standard: regression trained on standardised targets.

The generated TargetScale is checked against direct arithmetic (per-column mean and population
std of the training split, std 1 for a constant column, ŷ = z · std + mean); real runs of
specs/linnerud.yaml through `specc train`, `specc predict` and `specc evaluate` check that the
model, the ONNX graph and every metric but the loss are in the targets' units, and the loss on
the standardised scale. Classification specs with it are case folders
(tests/cases/normalize-target-*).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SPECS, specc
from test_evaluate import load_splits

from specc.codegen.render import compile_program, write_files
from specc.pipeline import load_program
from specc.runtime.export import import_file

LINNERUD = SPECS / "linnerud.yaml"
TARGETS = ["Weight", "Waist", "Pulse"]


def compiled(tmp_path: Path, *overrides: str):
    """specs/linnerud.yaml compiled into tmp_path/code; its model.py imported."""
    program, diagnostics = load_program(LINNERUD, list(overrides))
    assert program is not None, diagnostics
    write_files(compile_program(program, tmp_path / "code"), tmp_path / "code")
    return import_file(tmp_path / "code" / "model.py", "model")


def test_target_scale_is_the_formula(tmp_path):
    """fit: mean and population std per column, std 1 for a constant column; scale and the
    un-scaling are (y - mean) / std and z * std + mean; predict un-scales forward."""
    import torch

    module = compiled(tmp_path)
    rng = np.random.default_rng(0)
    y = np.stack([rng.normal(180, 25, 12), rng.normal(35, 3, 12), np.full(12, 56.0)], axis=1)
    scaler = module.TargetScale(3)
    scaler.fit(torch.tensor(y, dtype=torch.float64))
    mean = y.mean(axis=0)
    std = np.sqrt(((y - mean) ** 2).mean(axis=0))  # ddof 0: the input normaliser's std too
    std[2] = 1.0  # the constant column keeps std 1 (it would divide by 0)
    assert scaler.mean.numpy() == pytest.approx(mean, rel=1e-6)
    assert scaler.std.numpy() == pytest.approx(std, rel=1e-6)
    scaled = scaler.scale(torch.tensor(y)).numpy()
    assert scaled == pytest.approx((y - mean) / std, rel=1e-6, abs=1e-6)
    assert scaled[:, 2] == pytest.approx(np.zeros(12), abs=1e-6)
    z = rng.normal(0, 1, (5, 3))
    assert scaler(torch.tensor(z)).numpy() == pytest.approx(z * std + mean, rel=1e-6)

    model = module.build_model().eval()
    model.normalize_target.fit(torch.tensor(y, dtype=torch.float32))
    x = torch.randn(4, 3)
    with torch.no_grad():
        direct = model(x).numpy() * model.normalize_target.std.numpy()
        direct += model.normalize_target.mean.numpy()
        assert model.predict(x).numpy() == pytest.approx(direct, rel=1e-5)
    assert {"normalize_target.mean", "normalize_target.std"} <= set(model.state_dict())


def test_off_by_default_and_code_only_when_on(tmp_path):
    """Without the key (none) the model has no target scaler and train.py no scaling."""
    program, _ = load_program(LINNERUD, ["data.normalize_target=none"])
    assert program is not None and program.model.normalize_target == "none"
    files = compile_program(program, tmp_path)
    for text in files.values():
        assert "normalize_target." not in text and "normalize_target =" not in text
        assert "TargetScale" not in text
    program, _ = load_program(LINNERUD, [])
    assert program is not None and program.model.normalize_target == "standard"


def _torch_predict(run: Path, x: np.ndarray) -> np.ndarray:
    """model.pt loaded into code/model.py; predict(x) as numpy."""
    import torch

    module = import_file(run / "code" / "model.py", "model")
    model = module.build_model()
    model.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        return model.predict(torch.from_numpy(x)).numpy().astype(np.float64)


def _scale(run: Path) -> tuple[np.ndarray, np.ndarray]:
    import torch

    state = torch.load(run / "model.pt", weights_only=True)
    return state["normalize_target.mean"].numpy(), state["normalize_target.std"].numpy()


def _direct_metrics(pred, y, mean, std) -> dict[str, float]:
    """mse on the standardised scale; mae, rmse, r2 (per output, averaged) in the units."""
    error = pred - y
    r2 = 1 - (error**2).sum(axis=0) / ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return {
        "loss": float((((pred - mean) / std - (y - mean) / std) ** 2).mean()),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": float(r2.mean()),
    }


@pytest.mark.slow
def test_linnerud_trains_in_original_units_and_onnx_agrees(runs, tmp_path):
    """The saved scale is the training split's; summary.json's test metrics are the direct
    arithmetic on predict's outputs; ONNX Runtime, `specc predict` and `specc evaluate` give
    the same numbers in the targets' units."""
    import onnxruntime as ort

    run = runs.trained("linnerud")
    splits = load_splits(run)
    y_train = splits.y_train.astype(np.float64)
    mean, std = _scale(run)
    assert mean == pytest.approx(y_train.mean(axis=0), rel=1e-5)
    assert std == pytest.approx(y_train.std(axis=0), rel=1e-5)

    x_test, y_test = splits.x_test, splits.y_test.astype(np.float64)
    pred = _torch_predict(run, x_test)
    summary = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    assert summary == pytest.approx(_direct_metrics(pred, y_test, mean, std), rel=1e-4, abs=1e-5)
    # original units: every prediction within a few training standard deviations of the mean
    assert np.all(np.abs(pred - mean) < 5 * std)

    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    assert onnx_out == pytest.approx(pred, rel=1e-5, abs=1e-4)

    data = tmp_path / "test.csv"
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*splits.features, *TARGETS])
        writer.writerows(
            [*map(float, xs), *map(float, ys)] for xs, ys in zip(x_test, y_test, strict=True)
        )
    done = specc("predict", str(run / "model.onnx"), str(data), "-o", str(tmp_path / "p.csv"))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "p.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    predicted = np.array([[float(r[f"prediction_{k}"]) for k in range(3)] for r in rows])
    assert predicted == pytest.approx(pred, rel=1e-5, abs=1e-4)

    done = specc("evaluate", str(run), str(data), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["loss"] == {"name": "mse", "targets": "standardised"}
    assert doc["metrics"] == pytest.approx(summary, rel=1e-4, abs=1e-5)
    text = specc("evaluate", str(run), str(data))
    assert "loss: mse, on standardised targets (without penalties)" in text.stdout


@pytest.mark.slow
def test_standardised_targets_beat_raw_targets(runs):
    """The same spec on raw targets (normalize_target: none) fits far worse in 40 epochs: its
    linear output starts near 0, hundreds below the weights it must predict."""
    on = json.loads((runs.trained("linnerud") / "summary.json").read_text())["metrics"]
    off_run = runs.trained("linnerud", "data.normalize_target=none")
    off = json.loads((off_run / "summary.json").read_text())["metrics"]
    assert on["train"]["r2"] > 0.2
    assert off["train"]["r2"] < -1.0
    assert on["test"]["r2"] > off["test"]["r2"] + 1.0
    # the loss is on the standardised scale with it, in squared units without it
    assert on["train"]["loss"] < 2.0 < off["train"]["loss"]


@pytest.mark.slow
def test_refit_keeps_the_training_split_scale(runs):
    """refit: best_epochs builds a fresh model whose target scale is the training split's (the
    scale y_fit is standardised with), and its metrics are still the direct arithmetic."""
    run = runs.trained("linnerud", "stopping.refit=best_epochs", "stopping.early.patience=3")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["refit"]["strategy"] == "best_epochs"
    splits = load_splits(run)
    mean, std = _scale(run)
    assert mean == pytest.approx(splits.y_train.mean(axis=0), rel=1e-5)
    assert std == pytest.approx(splits.y_train.std(axis=0), rel=1e-5)
    pred = _torch_predict(run, splits.x_val)
    direct = _direct_metrics(pred, splits.y_val.astype(np.float64), mean, std)
    assert summary["metrics"]["val"] == pytest.approx(direct, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_constant_target_column_trains(tmp_path):
    """A target column with zero variance keeps std 1: training stays finite and predicts it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    with (tmp_path / "data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["a", "b", "y", "c"])
        writer.writerows([a, b, 100 + 20 * a, 7.0] for a, b in x)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: constant\n"
        "data: {source: data.csv, target: [y, c], normalize_target: standard}\n"
        "input: {shape: [2]}\n"
        "layers: [{dense: {units: 4, activation: relu}}]\n"
        "output: {units: 2, activation: linear}\n"
        "optimizer: {name: adam, lr: 0.05}\n"
        "training: {epochs: 30, batch_size: 8}\n"
    )
    done = specc("train", str(spec), "-o", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    mean, std = _scale(run)
    assert std[1] == 1.0 and mean[1] == pytest.approx(7.0)
    metrics = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    assert all(np.isfinite(metrics[k]) for k in ("loss", "mae", "rmse"))
    pred = _torch_predict(run, load_splits(run).x_test)
    assert pred[:, 1] == pytest.approx(np.full(len(pred), 7.0), abs=0.5)
