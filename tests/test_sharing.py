"""Parameter sharing (`share:`) and tying (`regularizers.tie`), end to end.

The generated model really holds one Parameter for a shared weight (not a copy), counts it once
(summary, summary.json, the optimizer) and penalises it once: its L2 gradient is alpha·w, not
2·alpha·w. The tying penalty alpha/2 · ||W_a - W_b||^2 and its gradient are checked against a
few lines of numpy. Diagnostics are case folders (tests/cases/share-*, tie-*, duplicate-layer-name).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import EXPORT_ZOO, REPO_ROOT, specc
from test_train_codegen import compile_to, generated, import_generated, write_spec

from specc.pipeline import load_program

SHARED = """\
name: shared_l2
data: {source: sklearn:digits}
input: {shape: [64]}
layers:
  - dense: {name: enc, units: 8, activation: relu}
  - dense: {units: 64, activation: relu, share: {weights: enc, transpose: true}}
  - dense: {units: 8, share: {weights: enc}}
output: {units: 10, activation: softmax}
regularizers: {l2: 0.5}
training: {epochs: 1, batch_size: 32}
"""

TIED = """\
name: tied
data: {source: sklearn:digits}
input: {shape: [64]}
layers:
  - dense: {name: a, units: 8, activation: relu}
  - dense: {name: up, units: 64, activation: relu, share: {weights: a, transpose: true}}
  - dense: {name: b, units: 8, activation: relu}
  - dense: {name: c, units: 8, activation: relu}
  - dense: {name: d, units: 64}
output: {units: 10, activation: softmax}
regularizers:
  tie: [{layers: [a, b], alpha: 0.3}, {layers: [up, d], alpha: 2.0}]
training: {epochs: 1, batch_size: 32}
"""


def _model(tmp_path, text):
    """The generated train module of `text` and a fresh model of it."""
    train = generated(tmp_path, text=text)
    torch.manual_seed(0)
    return train, train.build_model()


def test_a_shared_weight_is_one_parameter_counted_once(tmp_path):
    train, model = _model(tmp_path, SHARED)
    assert model.dense2.weight is model.dense1.weight
    assert model.dense3.weight is model.dense1.weight
    program, _ = load_program(write_spec(tmp_path, SHARED), [])
    assert program is not None
    counted = sum(p.numel() for p in model.parameters())
    assert counted == program.model.params == 64 * 8 + 8 + 64 + 8 + 8 * 10 + 10
    ids = [id(w) for w in model.weights()]
    assert len(ids) == len(set(ids)) == 2  # enc's weight and the output's
    optimizer = train.build_optimizer(model)
    in_optimizer = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(in_optimizer) == sorted({id(p) for p in model.parameters()})


def test_the_sharing_layers_compute_with_the_owners_matrix(tmp_path):
    _, model = _model(tmp_path, SHARED)
    w = model.dense1.weight.detach()  # [8, 64]
    h = torch.randn(5, 8)
    up = model.dense2(h)  # transposed: h [5, 8] -> [5, 64]
    np.testing.assert_allclose(
        up.detach().numpy(), (h @ w + model.dense2.bias.detach()).numpy(), rtol=1e-6, atol=1e-6
    )
    x = torch.randn(5, 64)
    same = model.dense3(x)
    np.testing.assert_allclose(
        same.detach().numpy(),
        F.linear(x, w, model.dense3.bias.detach()).numpy(),
        rtol=1e-6,
        atol=1e-6,
    )


def test_l2_gradient_on_a_shared_weight_is_alpha_w_not_twice(tmp_path):
    """Three layers use enc's matrix; the penalty sees it once: d/dW alpha/2 sum W^2 = alpha W."""
    train, model = _model(tmp_path, SHARED)
    total = train.penalty(model.weights())
    total.backward()
    w = model.dense1.weight.detach().double().numpy()
    out = model.output.weight.detach().double().numpy()
    assert float(total.detach()) == pytest.approx(
        0.5 / 2 * ((w**2).sum() + (out**2).sum()), rel=1e-5
    )
    np.testing.assert_allclose(model.dense1.weight.grad.numpy(), 0.5 * w, rtol=1e-5, atol=1e-7)


def test_a_training_step_keeps_the_weight_shared(tmp_path):
    train, model = _model(tmp_path, SHARED)
    x = torch.rand(64, 64) * 16
    rng = torch.Generator().manual_seed(0)
    before = model.dense1.weight.detach().clone()
    train.train_epoch(
        model, train.Objective(model), train.build_optimizer(model), x, torch.arange(64) % 10, rng
    )
    assert not torch.equal(before, model.dense1.weight)
    assert model.dense2.weight is model.dense1.weight
    state = model.state_dict()  # both names, one tensor (as nanoGPT's tied embedding)
    assert torch.equal(state["dense2.weight"], state["dense1.weight"])


def test_tie_penalty_and_gradient_follow_the_notes(tmp_path):
    """alpha/2 ||W_a - W_b||^2 per pair; W_up is enc's matrix transposed, as `up` uses it."""
    train, model = _model(tmp_path, TIED)
    assert train.TIE_ALPHA == (0.3, 2.0)
    pairs = model.tied_weights()
    total = train.tie_penalty(pairs)
    total.backward()
    a = model.dense1.weight.detach().double().numpy()  # [8, 64], also up's (transposed)
    b = model.dense3.weight.detach().double().numpy()  # [8, 64]
    d = model.dense5.weight.detach().double().numpy()  # [64, 8]
    expected = 0.3 / 2 * ((a - b) ** 2).sum() + 2.0 / 2 * ((a.T - d) ** 2).sum()
    assert float(total.detach()) == pytest.approx(expected, rel=1e-6)
    grad_a = 0.3 * (a - b) + 2.0 * (a.T - d).T
    np.testing.assert_allclose(model.dense1.weight.grad.numpy(), grad_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.dense3.weight.grad.numpy(), -0.3 * (a - b), rtol=1e-5)
    np.testing.assert_allclose(model.dense5.weight.grad.numpy(), -2.0 * (a.T - d), rtol=1e-5)


def test_tie_penalty_is_in_the_step_only_when_set(tmp_path):
    for name, text in (("tied", TIED), ("plain", SHARED)):
        (tmp_path / name).mkdir()
        compile_to(write_spec(tmp_path / name, text), tmp_path / name / "code")
    tied = (tmp_path / "tied" / "code" / "train.py").read_text()
    assert "(loss * scale + tie_penalty(model.tied_weights())).backward()" in tied
    plain = tmp_path / "plain" / "code"
    assert "tie_penalty" not in (plain / "train.py").read_text()
    assert "TIE_ALPHA" not in (plain / "train.py").read_text()
    assert "tied_weights" not in (plain / "model.py").read_text()


def test_summary_counts_a_shared_tensor_once(tmp_path):
    spec = write_spec(tmp_path, SHARED)
    done = specc("summary", str(spec))
    assert done.returncode == 0, done.stderr
    assert "dense (shares enc.T)" in done.stdout
    assert "dense (shares enc)" in done.stdout
    assert done.stdout.rstrip().endswith(f"total params: {64 * 8 + 8 + 64 + 8 + 8 * 10 + 10}")


def test_zoo_sharing_across_a_residual_block_counts_like_pytorch(tmp_path):
    spec = EXPORT_ZOO / "zoo_shared.yaml"
    program, _ = load_program(spec, [])
    assert program is not None
    model = import_generated(compile_to(spec, tmp_path / "code")).build_model()
    assert model.res1.dense1.weight is model.dense1.weight
    assert model.conv3.weight is model.conv2.weight
    assert sum(p.numel() for p in model.parameters()) == program.model.params


@pytest.mark.slow
def test_the_example_trains_and_records_params_once(runs):
    run = runs.trained("digits_tied")
    summary = json.loads((run / "summary.json").read_text())
    program, _ = load_program(REPO_ROOT / "specs" / "digits_tied.yaml", [])
    assert program is not None
    assert summary["params"] == program.model.params
    assert summary["metrics"]["test"]["accuracy"] > 0.8
