"""Adversarial training (regularizers.adversarial): the generated fgsm() and adversarial_loss()
against direct arithmetic, the metrics.csv/summary.json columns, the monitors, and a real
training run in which FGSM accuracy rises against a model trained without the attack."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import SPECS, specc
from test_train_codegen import compile_to, generated, import_generated, write_spec

LINEAR = """\
name: tiny_adv
data:
  source: {source}
  split: {{val: 0.2, test: 0.2, seed: 0}}
  normalize: standard
input: {{shape: [{features}]}}
layers: []
output: {{units: {units}, activation: {activation}}}
regularizers:
  adversarial: {{method: fgsm, epsilon: {epsilon}, weight: {weight}}}
training: {{epochs: 1}}
"""

DATA_DIR = SPECS / "data"
TASKS = {
    "binary": dict(source="sklearn:breast_cancer", features=30, units=1, activation="sigmoid"),
    "multiclass": dict(source="sklearn:iris", features=4, units=3, activation="softmax"),
    "multilabel": dict(
        source=f"{DATA_DIR / 'digit_properties.csv'}\n  target: [even, large, prime]",
        features=64,
        units=3,
        activation="sigmoid",
    ),
    "regression": dict(source="sklearn:diabetes", features=10, units=1, activation="linear"),
}


def linear_train(tmp_path, task: str, epsilon: float = 0.1, weight: float = 0.5):
    """The generated train.py of a model without hidden layers (logits = z W^T + b)."""
    text = LINEAR.format(**TASKS[task], epsilon=epsilon, weight=weight)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return generated(tmp_path, text=text)


def batch(task: str, n: int = 6, features: int = 4, units: int = 3):
    """Raw inputs on a scale far from 1 (so the normaliser matters) and targets of the task."""
    g = torch.Generator().manual_seed(3)
    x = 5.0 + 3.0 * torch.randn(n, features, generator=g)
    if task == "multiclass":
        y = torch.randint(0, units, (n,), generator=g)
    elif task == "regression":
        y = torch.randn(n, units, generator=g)
    else:
        y = (torch.rand(n, units, generator=g) > 0.5).float()
    return x, y


def loss_grad_wrt_logits(task: str, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dJ/dlogits of each task's mean loss, written out by hand."""
    n, k = logits.shape
    if task == "multiclass":  # J = mean_i -log softmax(z_i)_{y_i}
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return (p - np.eye(k)[y]) / n
    if task == "regression":  # J = mean (z - y)^2
        return 2.0 * (logits - y) / (n * k)
    return (1.0 / (1.0 + np.exp(-logits)) - y) / (n * k)  # BCE: mean softplus(z) - t z


@pytest.mark.parametrize("task", list(TASKS))
def test_fgsm_is_epsilon_times_the_sign_of_the_input_gradient_after_normalisation(tmp_path, task):
    epsilon = 0.3
    train = linear_train(tmp_path, task, epsilon=epsilon)
    spec = TASKS[task]
    x, y = batch(task, features=spec["features"], units=spec["units"])
    model = train.build_model()
    model.normalize.fit(x)
    z = model.normalize(x)
    x_adv = train.fgsm(model, z, y)

    # direct arithmetic: z = (x - mean) / std, logits = z W^T + b, dJ/dz = dJ/dlogits W
    mean, std = x.double().mean(0).numpy(), x.double().std(0, correction=0).numpy()
    z_np = (x.double().numpy() - mean) / std
    w = model.output.weight.detach().double().numpy()
    b = model.output.bias.detach().double().numpy()
    grad = loss_grad_wrt_logits(task, z_np @ w.T + b, y.numpy()) @ w
    expected = z_np + epsilon * np.sign(grad)
    np.testing.assert_allclose(x_adv.double().numpy(), expected, atol=1e-5)
    # every normalised feature moves by exactly epsilon: epsilon standard deviations in raw units
    np.testing.assert_allclose(np.abs(x_adv.numpy() - z.detach().numpy()), epsilon, rtol=1e-5)
    raw_step = (x_adv.detach() - z.detach()) * model.normalize.std
    np.testing.assert_allclose(
        raw_step.abs().numpy(), (epsilon * std * np.ones_like(z_np)), rtol=1e-4
    )
    assert all(p.grad is None for p in model.parameters())  # the attack trains nothing


def test_fgsm_scales_with_epsilon(tmp_path):
    small = linear_train(tmp_path / "a", "binary", epsilon=0.05)
    large = linear_train(tmp_path / "b", "binary", epsilon=0.4)
    x, y = batch("binary", features=30, units=1)
    model = small.build_model()
    model.normalize.fit(x)
    z = model.normalize(x)
    step_small = small.fgsm(model, z, y) - z
    step_large = large.fgsm(model, z, y) - z
    torch.testing.assert_close(step_large, step_small * 8.0, rtol=1e-5, atol=1e-6)


DROPOUT_BN = """\
name: tiny_adv_modes
data:
  source: sklearn:iris
  split: {val: 0.2, test: 0.2, seed: 0}
input: {shape: [4]}
layers:
  - dense: {units: 16, activation: relu}
  - batchnorm: {}
  - dropout: {rate: 0.5}
  - gaussian_noise: {std: 0.5}
output: {units: 3, activation: softmax}
regularizers:
  adversarial: {epsilon: 0.2, weight: 0.25}
training: {epochs: 1}
"""


def test_fgsm_attacks_in_eval_mode_and_restores_train_mode(tmp_path):
    train = generated(tmp_path, text=DROPOUT_BN)
    model = train.build_model()
    x, y = batch("multiclass", n=8)
    model.normalize.fit(x)
    model.train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    z = model.normalize(x)
    first, second = train.fgsm(model, z, y), train.fgsm(model, z, y)
    torch.testing.assert_close(first, second)  # no dropout or noise: deterministic
    assert model.training  # back in train mode
    for key, value in model.state_dict().items():  # batch norm's running stats untouched
        torch.testing.assert_close(value, stats[key])
    model.eval()  # the same attack computed directly in eval mode
    zr = z.detach().requires_grad_(True)
    train.loss_fn(model.forward_normalized(zr), y).backward()
    torch.testing.assert_close(first, z + 0.2 * zr.grad.sign())


def test_training_loss_mixes_clean_and_attacked_losses(tmp_path):
    weight = 0.25
    train = linear_train(tmp_path, "multiclass", epsilon=0.1, weight=weight)
    model = train.build_model()
    x, y = batch("multiclass")
    model.normalize.fit(x)
    clean = train.loss_fn(model(x), y)
    attacked = train.loss_fn(model.forward_normalized(train.fgsm(model, model.normalize(x), y)), y)
    mixed = train.adversarial_loss(model, x, y)
    clean, attacked = float(clean.detach()), float(attacked.detach())
    assert float(mixed.detach()) == pytest.approx((1 - weight) * clean + weight * attacked)
    assert attacked > clean  # the attack raises the loss
    mixed.backward()  # the mix trains the weights through both terms
    assert model.output.weight.grad is not None


def test_model_forward_is_the_normaliser_then_forward_normalized(tmp_path):
    train = linear_train(tmp_path, "regression")
    model = train.build_model()
    x, _ = batch("regression", features=10, units=1)
    model.normalize.fit(x)
    torch.testing.assert_close(model(x), model.forward_normalized(model.normalize(x)))


def test_specs_without_adversarial_get_none_of_its_code(tmp_path):
    code = compile_to(write_spec(tmp_path), tmp_path / "code")
    train_py, model_py = (code / "train.py").read_text(), (code / "model.py").read_text()
    for word in ("fgsm", "ADV_", "adversarial", "val_adv"):
        assert word not in train_py
    assert "forward_normalized" not in model_py


def test_val_adv_monitors_pass_check_only_with_adversarial(tmp_path):
    spec = SPECS / "breast_cancer_adversarial.yaml"
    on = specc("check", str(spec), "--set", "optimizer.schedule={name: plateau, monitor: "
               "val_adv_accuracy}", "--set", "stopping.early.monitor=val_adv_accuracy")  # fmt: skip
    assert on.returncode == 0, on.stdout + on.stderr
    off = specc("check", str(spec), "--set", "regularizers.adversarial=null")
    assert off.returncode == 1
    assert (
        "error[unknown-monitor]: monitor 'val_adv_loss' exists only with adversarial" in off.stdout
    )


# --- real training runs, through `specc train` -------------------------------------------------


@pytest.mark.slow
def test_metrics_csv_and_summary_gain_the_attacked_metrics(runs):
    run = runs.trained(SPECS / "breast_cancer_adversarial.yaml", "training.epochs=3")
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "epoch", "train_loss", "val_loss", "val_accuracy", "val_adv_loss", "val_adv_accuracy",
        "lr", "seconds",
    ]  # fmt: skip
    assert len(rows) == 3
    for row in rows:  # FGSM raises the loss on every epoch's validation split
        assert float(row["val_adv_loss"]) > float(row["val_loss"])
    summary = json.loads((run / "summary.json").read_text())
    for split in ("train", "val", "test"):
        assert set(summary["metrics"][split]) == {"loss", "accuracy", "adv_loss", "adv_accuracy"}
    assert summary["metrics"]["val"]["adv_loss"] == pytest.approx(
        float(rows[summary["best_epoch"] - 1]["val_adv_loss"]), rel=1e-6
    )


ADV_DIGITS = """\
name: adv_digits
data:
  source: sklearn:digits
  split: {val: 0.2, test: 0.2, seed: 0, stratify: true}
  normalize: standard
input: {shape: [64]}
layers:
  - dense: {units: 64, activation: relu}
output: {units: 10, activation: softmax}
optimizer: {name: adam, lr: 3.0e-3}
training: {epochs: 12, batch_size: 64}
"""


def fgsm_test_accuracy(code_dir, run_dir) -> float:
    """Accuracy on the test split under the FGSM attack of `code_dir`'s train.py, of the model
    that `run_dir` trained (same architecture)."""
    train = import_generated(code_dir)
    model = train.build_model()
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    data = train.load(None)
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    return train.evaluate_adversarial(model, x, y)["adv_accuracy"]


@pytest.mark.slow
def test_adversarial_training_raises_accuracy_under_fgsm(tmp_path):
    attack = "regularizers={adversarial: {method: fgsm, epsilon: 0.25, weight: 0.5}}"
    spec = write_spec(tmp_path, ADV_DIGITS)
    for name, sets in (("plain", []), ("adversarial", ["--set", attack])):
        done = specc("train", str(spec), "-o", str(tmp_path / name), "--quiet", *sets, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    code = tmp_path / "adversarial" / "code"
    plain = fgsm_test_accuracy(code, tmp_path / "plain")
    adversarial = fgsm_test_accuracy(code, tmp_path / "adversarial")
    summary = json.loads((tmp_path / "adversarial" / "summary.json").read_text())
    assert summary["metrics"]["test"]["adv_accuracy"] == pytest.approx(adversarial, abs=1e-6)
    assert adversarial > plain + 0.1, (plain, adversarial)
    clean = summary["metrics"]["test"]["accuracy"]
    assert clean > 0.9  # and the clean accuracy stays high
