"""Autoencoders (task: reconstruct) and the VAE's gaussian_latent: the KL and the summed losses
against direct arithmetic, the latent's train/eval behaviour, and real `specc` runs (metrics.csv
columns, summary.json, ONNX of the whole model and of the encoder, predict)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import SPECS, specc
from test_train_codegen import generated

VAE = (SPECS / "digits_vae.yaml").read_text(encoding="utf-8")

DAE = """\
name: tiny_dae
task: reconstruct
data: {source: "sklearn:digits", normalize: standard, split: {val: 0.2, test: 0.2, seed: 0}}
input: {shape: [64]}
layers:
  - dense: {units: 8, activation: relu}
output: {units: 64, activation: linear}
regularizers: {input_noise: 0.5}
training: {epochs: 2, batch_size: 64}
"""


def test_kl_matches_closed_form_by_hand(tmp_path):
    """KL(N(mu, s2) || N(0, 1)) = -1/2 sum_j (1 + log s2_j - mu_j^2 - s2_j), rows averaged."""
    model = generated(tmp_path, text=VAE).build_model.__globals__
    kl_divergence = model["kl_divergence"]
    mu = [[0.5, -1.0], [0.0, 2.0]]
    s2 = [[1.0, 0.25], [4.0, 1.0]]
    # row 0: -1/2 (1 + 0 - 0.25 - 1) = 0.125 and -1/2 (1 + ln 0.25 - 1 - 0.25) = 0.818147
    # row 1: -1/2 (1 + ln 4 - 0 - 4) = 0.806853 and -1/2 (1 + 0 - 4 - 1) = 2
    expected = (0.125 + 0.5 * (0.25 - math.log(0.25)) + 0.5 * (3 - math.log(4)) + 2.0) / 2
    assert expected == pytest.approx(1.875)
    got = kl_divergence(torch.tensor(mu), torch.tensor(s2).log())
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # and against torch.distributions
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(s2).sqrt())
    p = torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2))
    reference = torch.distributions.kl_divergence(q, p).sum(dim=1).mean()
    assert float(got) == pytest.approx(float(reference), rel=1e-6)


def test_losses_are_summed_over_outputs_and_averaged_over_rows(tmp_path):
    """mse and binary cross-entropy: sum over the 64 outputs, mean over rows (not the mean of
    every element, the commonest VAE scale bug)."""
    (tmp_path / "bce").mkdir()
    (tmp_path / "mse").mkdir()
    bce = generated(tmp_path / "bce", text=VAE).loss_fn
    mse = generated(tmp_path / "mse", text=DAE).loss_fn
    z = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    x = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    sq = [(0.0 - 0.0) ** 2 + (2.0 - 1.0) ** 2, (-1.0 - 0.5) ** 2 + (1.0 - 0.25) ** 2]
    assert float(mse(z, x)) == pytest.approx(sum(sq) / 2)

    def cross_entropy(logit: float, t: float) -> float:
        p = 1 / (1 + math.exp(-logit))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    rows = [sum(cross_entropy(a, b) for a, b in zip(zr, xr, strict=True)) for zr, xr in
            zip(z.tolist(), x.tolist(), strict=True)]  # fmt: skip
    assert float(bce(z, x)) == pytest.approx(sum(rows) / 2, rel=1e-6)


def test_latent_samples_while_training_and_gives_mu_in_eval(tmp_path):
    train = generated(tmp_path, text=VAE)
    model = train.build_model()
    x = torch.rand(5, 64) * 16
    model.eval()
    mu, log_var = model.encode(x)
    assert mu.shape == log_var.shape == (5, 2)
    assert torch.equal(model.latent1(model.dense1(model.normalize(x)).relu()), mu)
    model.train()
    torch.manual_seed(0)
    a = model(x)
    kl = model.latent1.kl
    torch.manual_seed(0)
    b = model(x)
    torch.manual_seed(1)
    c = model(x)
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded, reproducible samples
    expected = train.kl_divergence(mu, log_var)
    assert float(kl.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_summary_counts_both_heads():
    done = specc("summary", str(SPECS / "digits_vae.yaml"))
    assert done.returncode == 0, done.stderr
    latent = next(line for line in done.stdout.splitlines() if "gaussian_latent" in line)
    assert latent.split()[-1] == str(2 * (32 * 2 + 2))


@pytest.mark.slow
def test_vae_trains_exports_encoder_and_predicts(tmp_path):
    run = tmp_path / "run"
    sets = ["--set", "training.epochs=3", "--set", "export.onnx.part=encoder"]
    done = specc("train", str(SPECS / "digits_vae.yaml"), "-o", str(run), *sets, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == [
        "epoch", "train_loss", "val_loss", "val_recon", "val_kl", "val_mse"
    ]  # fmt: skip
    assert {"train_recon", "train_kl"} <= set(rows[0])
    for row in rows:  # the training minibatches' terms: their objective is train_loss
        train = float(row["train_recon"]) + 1.0 * float(row["train_kl"])
        assert float(row["train_loss"]) == pytest.approx(train, rel=1e-5)
        recon, kl = float(row["val_recon"]), float(row["val_kl"])
        assert float(row["val_loss"]) == pytest.approx(recon + 1.0 * kl, rel=1e-5)
        assert kl > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "reconstruct"
    assert set(summary["metrics"]["test"]) == {"loss", "recon", "kl", "mse"}
    sess = ort.InferenceSession(str(run / "model.onnx"))
    assert sess.get_outputs()[0].shape == ["batch", 2]  # input -> mu
    x = np.random.default_rng(0).uniform(0, 16, (4, 64)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x, y=np.zeros(4))
    out = tmp_path / "z.csv"
    done = specc("predict", str(run / "model.onnx"), str(tmp_path / "x.npz"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "z_0,z_1"


@pytest.mark.slow
def test_denoising_autoencoder_reconstructs_in_raw_units(tmp_path):
    """input_noise corrupts the input only; the ONNX output is the reconstruction in pixels."""
    spec = tmp_path / "dae.yaml"
    spec.write_text(DAE + "export: {onnx: {opset: 18}}\n", encoding="utf-8")
    run = tmp_path / "run"
    done = specc("train", str(spec), "-o", str(run), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,val_mse,lr,seconds"
    sess = ort.InferenceSession(str(run / "model.onnx"))
    x = np.random.default_rng(0).uniform(0, 16, (3, 64)).astype(np.float32)
    y = sess.run(None, {"input": x})[0]
    assert y.shape == (3, 64) and y.max() > 2.0  # raw pixel units (0..16), not standardised


@pytest.mark.slow
def test_posterior_collapse_is_warned_at_the_end(tmp_path):
    """The generated train.py warns (stderr, summary.json "warnings") when the final val KL is
    below KL_COLLAPSE; the threshold is raised here so that any KL counts as collapsed."""
    code = tmp_path / "code"
    done = specc("compile", str(SPECS / "digits_vae.yaml"), "-o", str(code))
    assert done.returncode == 0, done.stderr
    train = code / "train.py"
    text = train.read_text()
    assert "KL_COLLAPSE = 0.001" in text
    train.write_text(text.replace("KL_COLLAPSE = 0.001", "KL_COLLAPSE = 1e9"))
    train.write_text(train.read_text().replace("EPOCHS = 40", "EPOCHS = 1"))
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(train), "--out", str(run), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: posterior collapse: the KL is" in done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["warnings"][0].startswith("posterior collapse")


def _wine_files(tmp_path):
    """wine's 13 features, unlabelled: a CSV with a header (and one extra column to leave out
    with data.features), and an npz with the features under `x` only."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    x = np.asarray(bunch.data, dtype=np.float64)
    names = [n.replace("/", "_") for n in bunch.feature_names]
    with (tmp_path / "wine.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*names, "batch_id"])
        writer.writerows([*row, i % 7] for i, row in enumerate(x.tolist()))
    np.savez(tmp_path / "wine.npz", x=x)
    return names


AE_FILE = """\
name: wine_ae
task: reconstruct
data: {{source: {source}, normalize: standard{features}}}
input: {{shape: [13]}}
layers:
  - dense: {{units: 4, activation: tanh}}
output: {{units: 13, activation: linear}}
optimizer: {{name: adam, lr: 0.01}}
training: {{epochs: 30, batch_size: 32}}
export: {{onnx: {{opset: 18}}}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_autoencoder_reads_unlabelled_files(tmp_path, kind):
    """A file source needs no target: the csv's listed features (every column by default) or
    the npz's `x` are input and target; the model learns (val_mse falls below the 1.0 of
    predicting the mean) and predict writes reconstructions in the file's units."""
    names = _wine_files(tmp_path)
    features = f", features: [{', '.join(names)}]" if kind == "csv" else ""
    spec = tmp_path / "ae.yaml"
    spec.write_text(AE_FILE.format(source=f"wine.{kind}", features=features), encoding="utf-8")
    assert specc("check", str(spec)).returncode == 0
    if kind == "csv":  # without data.features the batch_id column is an input too: 14 columns
        wide = tmp_path / "wide.yaml"
        wide.write_text(AE_FILE.format(source="wine.csv", features=""), encoding="utf-8")
        done = specc("check", str(wide))
        assert done.returncode == 1 and "error[data-input-mismatch]" in done.stdout
        assert "14 feature columns" in done.stdout
    run = tmp_path / "run"
    done = specc("train", str(spec), "-o", str(run), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert float(rows[-1]["val_mse"]) < 0.5 < float(rows[0]["val_mse"])
    out = tmp_path / "rec.csv"
    done = specc("predict", str(run / "model.onnx"), str(tmp_path / f"wine.{kind}"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    with out.open() as f:
        predicted = list(csv.DictReader(f))
    assert len(predicted) == 178
    proline = [c for c in predicted[0] if c.startswith("reconstruction_")][-1]  # the 13th
    assert 200 < float(predicted[0][proline]) < 2000  # raw units (proline is in the hundreds)
