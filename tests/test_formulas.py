"""Differential tests: the GENERATED train.py's pieces against a few lines of direct arithmetic.

Each test compiles a small spec, imports the generated train.py as a module and compares one of
its top-level functions (loss, penalties, max-norm, schedules, early stopping, clipping) with
the formula of the course notes / contract written out here in numpy or plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_train_codegen import generated

BINARY = """\
name: tiny_binary
data:
  source: sklearn:breast_cancer
input: {shape: [30]}
layers:
  - dense: {units: 4, activation: relu}
output: {units: 1, activation: sigmoid}
training: {epochs: 1}
"""


def log_softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# --- losses -------------------------------------------------------------------------------


def test_label_smoothing_targets_and_loss_follow_the_notes(tmp_path):
    eps, k = 0.1, 3
    train = generated(tmp_path, f"loss={{name: cross_entropy, label_smoothing: {eps}}}")
    y = torch.tensor([0, 2, 1])
    targets = train.smooth_targets(y).numpy()
    expected = np.full((3, k), eps / (k - 1))
    expected[np.arange(3), y.numpy()] = 1 - eps
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    assert targets[0].tolist() == pytest.approx([0.9, 0.05, 0.05])

    z = torch.randn(3, k, generator=torch.Generator().manual_seed(0))
    direct = -(expected * log_softmax_np(z.double().numpy())).sum(axis=1).mean()
    assert float(train.loss_fn(z, y)) == pytest.approx(direct, rel=1e-5)
    # PyTorch's built-in smoothing spreads eps over all k classes (eps/k): the notes' eps
    # corresponds to PyTorch's eps * k / (k - 1), and differs from PyTorch's eps itself
    torch_same = F.cross_entropy(z, y, label_smoothing=eps * k / (k - 1))
    assert float(train.loss_fn(z, y)) == pytest.approx(float(torch_same), rel=1e-5)
    assert float(train.loss_fn(z, y)) != pytest.approx(
        float(F.cross_entropy(z, y, label_smoothing=eps)), rel=1e-4
    )


def test_cross_entropy_without_smoothing_is_minus_log_softmax_of_the_class(tmp_path):
    train = generated(tmp_path)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 2, 0])
    direct = -log_softmax_np(z.double().numpy())[np.arange(5), y.numpy()].mean()
    assert float(train.loss_fn(z, y)) == pytest.approx(direct, rel=1e-5)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_binary_cross_entropy_softplus_form(tmp_path, eps):
    text = BINARY + (
        f"loss: {{name: binary_cross_entropy, label_smoothing: {eps}}}\n" if eps else ""
    )
    train = generated(tmp_path, text=text)
    z = torch.tensor([[-3.0], [-0.5], [0.0], [0.7], [4.0]])
    t = torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0]])
    ts = t.double().numpy() * (1 - eps) + (1 - t.double().numpy()) * eps  # 1 -> 1-eps, 0 -> eps
    s = 1 / (1 + np.exp(-z.double().numpy()))
    direct = -(ts * np.log(s) + (1 - ts) * np.log(1 - s)).mean()
    assert float(train.loss_fn(z, t)) == pytest.approx(direct, rel=1e-5)
    # no rounding of sigmoid to 0/1: a huge logit still gives a finite loss
    assert math.isfinite(float(train.loss_fn(torch.tensor([[200.0]]), torch.tensor([[0.0]]))))


@pytest.mark.parametrize(
    ("loss", "formula"),
    [
        ("mse", lambda d: (d**2).mean()),
        ("mae", lambda d: np.abs(d).mean()),
        ("{name: huber, delta: 0.5}",
         lambda d: np.where(np.abs(d) <= 0.5, d**2 / 2, 0.5 * (np.abs(d) - 0.25)).mean()),
    ],
)  # fmt: skip
def test_regression_losses(tmp_path, loss, formula):
    text = """\
name: tiny_reg
data: {source: sklearn:diabetes}
input: {shape: [10]}
output: {units: 1, activation: linear}
training: {epochs: 1}
"""
    train = generated(tmp_path, f"loss={loss}", text=text)
    z = torch.tensor([[0.1], [2.0], [-1.3], [0.4]])
    y = torch.tensor([[0.0], [0.5], [0.2], [0.45]])
    direct = formula((z - y).double().numpy())
    assert float(train.loss_fn(z, y)) == pytest.approx(direct, rel=1e-5)


# --- penalties and constraints ------------------------------------------------------------


@pytest.fixture(scope="module")
def penalised(tmp_path_factory):
    """A model with l1, l2 and lp all on (the constants are switched per test)."""
    tmp = tmp_path_factory.mktemp("pen")
    return generated(tmp, "regularizers={l1: 0.01, l2: 0.1, lp: {p: 3, alpha: 0.2}, max_norm: 1.5}")


def _weights():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, generator=g, requires_grad=True),
            torch.randn(2, 4, generator=g, requires_grad=True)]  # fmt: skip


@pytest.mark.parametrize(
    ("term", "value", "grad"),
    [
        ("l1", lambda w: np.abs(w).sum(), lambda w: np.sign(w)),
        ("l2", lambda w: (w**2).sum() / 2, lambda w: w),
        ("lp", lambda w: (np.abs(w) ** 3).sum() / 3, lambda w: np.abs(w) ** 2 * np.sign(w)),
    ],
)
def test_penalty_values_and_gradients(penalised, monkeypatch, term, value, grad):
    alpha = {"l1": penalised.L1, "l2": penalised.L2, "lp": penalised.LP_ALPHA}[term]
    for other in {"l1": "L1", "l2": "L2", "lp": "LP_ALPHA"}.values():
        if other != {"l1": "L1", "l2": "L2", "lp": "LP_ALPHA"}[term]:
            monkeypatch.setattr(penalised, other, 0.0)
    weights = _weights()
    total = penalised.penalty(weights)
    total.backward()
    arrays = [w.detach().double().numpy() for w in weights]
    assert float(total.detach()) == pytest.approx(alpha * sum(value(a) for a in arrays), rel=1e-5)
    for w, a in zip(weights, arrays, strict=True):
        np.testing.assert_allclose(w.grad.numpy(), alpha * grad(a), rtol=1e-5, atol=1e-7)


def test_penalties_never_touch_biases(penalised):
    model = penalised.build_model()
    penalised.penalty(model.weights()).backward()
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert p.grad is None, name
        else:
            assert p.grad is not None, name


NORMS = """\
name: tiny_norms
data: {source: sklearn:digits}
input: {shape: [1, 8, 8]}
layers:
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
  - batchnorm: {}
  - flatten:
  - dense: {units: 8, activation: prelu}
  - layernorm: {}
output: {units: 10, activation: softmax}
regularizers: {l1: 0.01, l2: 0.5, lp: {p: 3, alpha: 0.2}, max_norm: 0.3}
optimizer: {name: sgd, lr: 0.5}
training: {epochs: 1, batch_size: 32}
"""


def test_a_training_step_penalises_and_projects_weights_only(tmp_path, monkeypatch):
    """In the generated step, L1/L2/Lp and max-norm change conv/dense weights only: biases,
    batch-norm and layer-norm parameters and the PReLU slope move exactly as without them."""
    train = generated(tmp_path, text=NORMS)
    assert len(train.build_model().weights()) == 3  # conv, dense and output weights

    def one_step() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = train.build_model()
        x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 16
        model.normalize.fit(x)
        rng = torch.Generator().manual_seed(2)
        train.train_epoch(
            model,
            train.Objective(model),
            train.build_optimizer(model),
            x,
            torch.arange(32) % 10,
            rng,
        )
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    penalised = one_step()
    for name in ("L1", "L2", "LP_ALPHA"):
        monkeypatch.setattr(train, name, 0.0)
    monkeypatch.setattr(train, "MAX_NORM", math.inf)  # max-norm off: an unbounded radius
    plain = one_step()
    model = train.build_model()
    kinds = {n: id(p) in {id(w) for w in model.weights()} for n, p in model.named_parameters()}
    assert {"bn1.weight", "ln1.bias", "dense1_prelu.weight", "conv1.bias"} <= set(kinds)
    for name, is_weight in kinds.items():
        if is_weight:
            assert not torch.allclose(penalised[name], plain[name]), name
            assert (penalised[name].flatten(1).norm(dim=1) <= 0.3 * (1 + 1e-5)).all(), name
        else:
            torch.testing.assert_close(penalised[name], plain[name], rtol=0, atol=0, msg=name)


def test_max_norm_projects_rows_above_c_to_exactly_c(penalised):
    c = penalised.MAX_NORM
    w = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.5]])
    before = w.clone()
    penalised.max_norm_([w])
    norms = w.norm(dim=1)
    assert float(norms[0]) == pytest.approx(c, rel=1e-6)  # 5 -> 1.5
    assert float(norms[2]) == pytest.approx(c, rel=1e-6)  # sqrt(3) -> 1.5
    torch.testing.assert_close(w[0], before[0] * c / 5.0)  # direction kept
    torch.testing.assert_close(w[1], before[1], rtol=0, atol=0)  # inside: unchanged
    torch.testing.assert_close(w[3], before[3], rtol=0, atol=1e-6)  # on the sphere
    # per output filter of a convolution [out, in, kh, kw]: a slice along dim 0, not the
    # whole tensor nor single rows of a kernel
    conv = torch.randn(5, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    conv[1] *= 0.05  # this filter's norm is far below c
    conv[3] *= 10.0
    before = conv.clone()
    norms = before.flatten(1).norm(dim=1)
    assert float(norms[1]) < c < float(norms[3])
    penalised.max_norm_([conv])
    for f in range(5):
        if norms[f] > c:
            assert float(conv[f].norm()) == pytest.approx(c, rel=1e-5)
            torch.testing.assert_close(conv[f], before[f] * c / norms[f])
        else:
            assert torch.equal(conv[f], before[f])


# --- schedules ------------------------------------------------------------------------------


def test_inverse_time_decay(tmp_path):
    train = generated(
        tmp_path, "optimizer={name: sgd, lr: 0.5, schedule: {name: inverse_time, decay: 0.1}}"
    )
    for epoch in range(12):
        assert train.lr_at(epoch) == pytest.approx(0.5 / (1 + 0.1 * epoch), rel=1e-12)


@pytest.mark.parametrize(
    ("schedule", "formula"),
    [
        ("{name: step, step_size: 3, gamma: 0.5}", lambda e: 0.2 * 0.5 ** (e // 3)),
        ("{name: exponential, gamma: 0.9}", lambda e: 0.2 * 0.9**e),
        ("{name: linear, end_factor: 0.25, epochs: 4}",
         lambda e: 0.2 * (1 - 0.75 * min(e, 4) / 4)),
        ("{name: cosine, min_lr: 0.01, epochs: 5}",
         lambda e: 0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * min(e, 5) / 5)) / 2),
    ],
)  # fmt: skip
def test_schedules(tmp_path, schedule, formula):
    train = generated(tmp_path, f"optimizer={{name: sgd, lr: 0.2, schedule: {schedule}}}")
    for epoch in range(9):
        assert train.lr_at(epoch) == pytest.approx(formula(epoch), rel=1e-12)
    assert train.lr_at(0) == pytest.approx(0.2)


def test_plateau_schedule(tmp_path):
    train = generated(
        tmp_path,
        "optimizer={name: adam, lr: 0.1,"
        " schedule: {name: plateau, patience: 2, factor: 0.5, min_lr: 0.02}}",
    )
    plateau = train.Plateau()
    lrs = [plateau.step(v) for v in [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.99, 0.99]]
    # improvements at 1.0, 0.9; then two bad epochs -> 0.05; two more -> 0.025; two -> 0.02
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02])


# --- early stopping -------------------------------------------------------------------------


def _script(train, values):
    """Run the generated tracker over scripted validation values, as the loop does; the model's
    weight is set to the epoch number so theta* shows which epoch it came from."""
    model = torch.nn.Linear(1, 1)
    best = train.EarlyStopping(model)
    stopped_at = None
    for epoch, value in enumerate(values, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        best.update(value, epoch, model)
        if best.stop():
            stopped_at = epoch
            break
    return best, stopped_at


def test_early_stopping_theta_star_and_i_star(tmp_path):
    train = generated(tmp_path, "stopping={early: {patience: 3, min_delta: 0.01}}")
    best, stopped_at = _script(train, [1.0, 0.8, 0.81, 0.797, 0.79, 0.5, 0.4])
    # 0.797 and 0.79 do not beat 0.8 by more than 0.01: j = 1, 2, 3 -> stop after epoch 5
    assert stopped_at == 5
    assert best.epoch == 2 and best.value == 0.8
    assert float(best.state["weight"]) == 2.0


def test_early_stopping_resets_patience_on_improvement_and_maximises_accuracy(tmp_path):
    train = generated(tmp_path, "stopping={early: {monitor: val_accuracy, patience: 2}}")
    assert train.MODE == "max"
    best, stopped_at = _script(train, [0.5, 0.6, 0.6, 0.7, 0.65, 0.7, 0.9])
    assert (stopped_at, best.epoch, float(best.state["weight"])) == (6, 4, 4.0)


def test_early_stopping_initial_theta_is_theta_zero(tmp_path):
    train = generated(tmp_path, "stopping={early: {patience: 2}}")
    best, stopped_at = _script(train, [math.nan, math.nan])
    assert stopped_at == 2 and best.epoch == 0  # i* = 0, theta* = theta_0 as in the notes


# --- the step: clipping and weight noise ------------------------------------------------------


def _one_full_batch_step(train, model):
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(3)) * 5
    y = torch.arange(16) % 3
    model.normalize.fit(x)
    return x, y


def test_gradient_clipping_bounds_the_global_norm(tmp_path):
    train = generated(tmp_path, "regularizers={gradient_clip: 0.01}",
                      "optimizer={name: sgd, lr: 1.0}", "training.batch_size=16")  # fmt: skip
    torch.manual_seed(0)
    model = train.build_model()
    x, y = _one_full_batch_step(train, model)
    reference = train.build_model()
    reference.load_state_dict(model.state_dict())
    train.loss_fn(reference(x), y).backward()
    grads = [p.grad.clone() for p in reference.parameters()]
    norm = torch.sqrt(sum(g.square().sum() for g in grads))
    assert norm > 0.01  # so the clip is active
    before = [p.detach().clone() for p in model.parameters()]
    train.train_epoch(
        model,
        train.Objective(model),
        train.build_optimizer(model),
        x,
        y,
        torch.Generator().manual_seed(0),
    )
    steps = [b - p.detach() for b, p in zip(before, model.parameters(), strict=True)]
    step_norm = torch.sqrt(sum(s.square().sum() for s in steps))
    assert float(step_norm) == pytest.approx(0.01, rel=1e-4)  # lr 1 * clipped gradient
    for s, g in zip(steps, grads, strict=True):
        torch.testing.assert_close(s, g * 0.01 / norm, rtol=1e-4, atol=1e-7)


def test_weight_noise_is_removed_before_the_step(tmp_path):
    train = generated(
        tmp_path, "regularizers={weight_noise: 0.5}", "optimizer={name: sgd, lr: 1.0}"
    )
    model = train.build_model()
    x, y = _one_full_batch_step(train, model)
    optimizer = train.build_optimizer(model)
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    before = [p.detach().clone() for p in model.parameters()]
    train.train_epoch(
        model, train.Objective(model), optimizer, x, y, torch.Generator().manual_seed(0)
    )
    for b, p in zip(before, model.parameters(), strict=True):
        assert torch.equal(b, p.detach())


def test_adamw_decays_weights_only(tmp_path):
    train = generated(tmp_path, "optimizer={name: adamw, lr: 0.01, weight_decay: 0.1}")
    model = train.build_model()
    optimizer = train.build_optimizer(model)
    decayed, rest = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(w) for w in model.weights()}
    assert all(p.dim() == 1 for p in rest["params"])  # biases


def test_rmsprop_alpha_is_rho(tmp_path):
    train = generated(tmp_path, "optimizer={name: rmsprop, lr: 0.01, rho: 0.8, momentum: 0.5}")
    group = train.build_optimizer(train.build_model()).param_groups[0]
    assert (group["alpha"], group["momentum"]) == (0.8, 0.5)


# --- optimizers: the generated optimizer's steps against the notes' update rules ----------------

STEPS = 6


def _assert_steps_follow(train, rule) -> None:
    """STEPS steps of the generated optimizer over the generated model's parameters on
    L = sum_p 1/2 |c_p * p - t_p|^2 (fixed c, t), against rule(theta0, grad, is_weight), which
    yields the parameter after each step written out in float64 (is_weight: one of
    model.weights(), which AdamW decays)."""
    model = train.build_model()
    optimizer = train.build_optimizer(model)
    gen = torch.Generator().manual_seed(3)
    params = list(model.parameters())
    cs = [torch.rand(p.shape, generator=gen) + 0.5 for p in params]
    ts = [torch.randn(p.shape, generator=gen) for p in params]
    weights = {id(w) for w in model.weights()}

    def gradient(c: torch.Tensor, t: torch.Tensor):
        c, t = c.double(), t.double()
        return lambda theta: c * (c * theta - t)

    expected = [
        list(rule(p.detach().double(), gradient(c, t), id(p) in weights))
        for p, c, t in zip(params, cs, ts, strict=True)
    ]
    for step in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss = sum(0.5 * ((c * p - t) ** 2).sum() for p, c, t in zip(params, cs, ts, strict=True))
        loss.backward()
        optimizer.step()
        for index, p in enumerate(params):
            got = p.detach().double()
            assert torch.allclose(got, expected[index][step], rtol=1e-5, atol=1e-6), (index, step)


def test_sgd_is_theta_minus_lr_g(tmp_path):
    def rule(theta, grad, is_weight):
        for _ in range(STEPS):
            theta = theta - 0.1 * grad(theta)
            yield theta

    _assert_steps_follow(generated(tmp_path, "optimizer={name: sgd, lr: 0.1}"), rule)


def test_momentum_follows_the_notes_velocity(tmp_path):
    """v <- alpha v - eps g(theta); theta <- theta + v (the notes' SGD with momentum)."""

    def rule(theta, grad, is_weight):
        v = torch.zeros_like(theta)
        for _ in range(STEPS):
            v = 0.9 * v - 0.1 * grad(theta)
            theta = theta + v
            yield theta

    train = generated(tmp_path, "optimizer={name: sgd, lr: 0.1, momentum: 0.9}")
    _assert_steps_follow(train, rule)


def test_nesterov_follows_the_notes_look_ahead(tmp_path):
    """The notes: v <- alpha v - eps g(theta + alpha v); theta <- theta + v. torch's nesterov
    keeps the look-ahead point theta + alpha v as the parameter: the same trajectory."""

    def rule(theta, grad, is_weight):
        v = torch.zeros_like(theta)
        for _ in range(STEPS):
            v = 0.9 * v - 0.1 * grad(theta + 0.9 * v)
            theta = theta + v
            yield theta + 0.9 * v  # the parameter torch holds: the next look-ahead point

    train = generated(tmp_path, "optimizer={name: sgd, lr: 0.1, momentum: 0.9, nesterov: true}")
    _assert_steps_follow(train, rule)


def test_adagrad_divides_by_the_root_of_all_squared_gradients(tmp_path):
    """r <- r + g^2; theta <- theta - eps g / (delta + sqrt(r))."""

    def rule(theta, grad, is_weight):
        r = torch.zeros_like(theta)
        for _ in range(STEPS):
            g = grad(theta)
            r = r + g * g
            theta = theta - 0.5 * g / (1e-10 + r.sqrt())
            yield theta

    train = generated(tmp_path, "optimizer={name: adagrad, lr: 0.5, eps: 1.0e-10}")
    _assert_steps_follow(train, rule)


def test_rmsprop_follows_the_notes_moving_average(tmp_path):
    """S <- rho S + (1 - rho) g^2; theta <- theta - alpha g / sqrt(S) (eps for safety); with
    momentum, torch's buffer of the scaled steps: b <- mu b + g / sqrt(S); theta -= alpha b."""
    train = generated(tmp_path, "optimizer={name: rmsprop, lr: 0.01, rho: 0.8, momentum: 0.5}")

    def rule(theta, grad, is_weight):
        s, b = torch.zeros_like(theta), torch.zeros_like(theta)
        for _ in range(STEPS):
            g = grad(theta)
            s = 0.8 * s + 0.2 * g * g
            b = 0.5 * b + g / (s.sqrt() + train.EPS)
            theta = theta - 0.01 * b
            yield theta

    _assert_steps_follow(train, rule)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_follows_the_notes_with_bias_correction(tmp_path, name):
    """V <- b1 V + (1 - b1) g; S <- b2 S + (1 - b2) g^2; both corrected by 1 - b^t; theta <-
    theta - alpha V^ / (sqrt(S^) + eps); adamw first decays the weights (not the biases):
    theta <- theta - alpha lambda theta."""
    decay = ", weight_decay: 0.1" if name == "adamw" else ""
    train = generated(tmp_path, f"optimizer={{name: {name}, lr: 0.05, betas: [0.8, 0.9]{decay}}}")

    def rule(theta, grad, is_weight):
        lam = 0.1 if (name == "adamw" and is_weight) else 0.0
        v, s = torch.zeros_like(theta), torch.zeros_like(theta)
        for t in range(1, STEPS + 1):
            g = grad(theta)
            theta = theta - 0.05 * lam * theta
            v = 0.8 * v + 0.2 * g
            s = 0.9 * s + 0.1 * g * g
            v_hat, s_hat = v / (1 - 0.8**t), s / (1 - 0.9**t)
            theta = theta - 0.05 * v_hat / (s_hat.sqrt() + train.EPS)
            yield theta

    _assert_steps_follow(train, rule)


def test_cpu_optimizers_take_the_fused_step(tmp_path):
    """On CPU SGD, Adagrad, Adam and AdamW are built fused=True (RMSprop has no fused step);
    elsewhere (here a module on the meta device) harness.fused leaves torch's default."""
    for spec, fused in [("{name: sgd, lr: 0.1}", True), ("{name: adagrad, lr: 0.1}", True),
                        ("{name: adam, lr: 0.1}", True), ("{name: adamw, lr: 0.1}", True),
                        ("{name: rmsprop, lr: 0.1}", None)]:  # fmt: skip
        folder = tmp_path / spec.split(",")[0].removeprefix("{name: ")
        folder.mkdir()
        train = generated(folder, f"optimizer={spec}")
        optimizer = train.build_optimizer(train.build_model())
        assert optimizer.defaults.get("fused") is fused, spec
    assert train.harness.fused(torch.nn.Linear(2, 2, device="meta")) is None


# --- augmentation -----------------------------------------------------------------------------

IMAGES = """\
name: tiny_images
data:
  source: sklearn:digits
  augment:
    - noise: {std: 0.5}
    - flip: {p: 1.0}
    - shift: {pixels: 1}
input: {shape: [1, 8, 8]}
layers:
  - flatten:
output: {units: 10, activation: softmax}
training: {epochs: 1}
"""


def test_shift_translates_with_zero_fill(tmp_path):
    train = generated(tmp_path, text=IMAGES)
    x = torch.arange(1, 2 * 3 * 4 * 5 + 1, dtype=torch.float32).view(2, 3, 4, 5)
    out = train.shift(x, 1, torch.Generator().manual_seed(0))
    for image, result in zip(x, out, strict=True):
        padded = F.pad(image, (1, 1, 1, 1))
        candidates = [
            padded[:, 1 - dy : 5 - dy, 1 - dx : 6 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert any(torch.equal(result, c) for c in candidates)


def test_augment_applies_noise_flip_and_shift_in_order(tmp_path, monkeypatch):
    train = generated(tmp_path, text=IMAGES)
    x = torch.rand(4, 1, 8, 8)
    monkeypatch.setattr(train, "NOISE_STD_0", 0.0)
    monkeypatch.setattr(train, "SHIFT_PIXELS_2", 1)
    rng = torch.Generator().manual_seed(1)
    out = train.augment(x, rng)
    flipped = x.flip(-1)  # p = 1: every image mirrored left-right, then shifted by <= 1 pixel
    for image, result in zip(flipped, out, strict=True):
        padded = F.pad(image, (1, 1, 1, 1))
        candidates = [
            padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert any(torch.equal(result, c) for c in candidates)
    monkeypatch.setattr(train, "NOISE_STD_0", 0.5)
    noisy = train.augment(torch.zeros(256, 1, 8, 8), torch.Generator().manual_seed(2))
    interior = noisy[:, :, 1:-1, 1:-1]  # away from the zero-filled border
    assert float(interior.std()) == pytest.approx(0.5, rel=0.05)
