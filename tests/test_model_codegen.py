"""Generated model.py against PyTorch built directly, with the same weights copied in.

Programs are built by hand (no spec, no analysis): each case states the IR codegen receives
and checks the generated module against a reference written out in the test.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

nn = torch.nn
F = torch.nn.functional

from specc.analysis.ir import (  # noqa: E402
    ActivationIR,
    AdamOptions,
    DataIR,
    DenseOptions,
    LayerIR,
    LossIR,
    ModelIR,
    OptimizerIR,
    Program,
    RegularizersIR,
    ScheduleIR,
    TrainingIR,
)
from specc.analysis.kinds import ACTIVATIONS as ACTIVATION_KINDS  # noqa: E402
from specc.analysis.kinds import LAYER_KINDS  # noqa: E402
from specc.codegen.literals import header  # noqa: E402
from specc.codegen.model_ctx import model_context  # noqa: E402
from specc.codegen.render import environment, format_source  # noqa: E402

# --- building programs by hand --------------------------------------------------------------


def act(name: str, **options: Any) -> ActivationIR:
    """An activation with its options (all of them: the IR holds resolved values)."""
    return ActivationIR(name, ACTIVATION_KINDS[name].options(**options))


def layer(
    kind: str,
    ident: str,
    in_shape: tuple,
    out_shape: tuple,
    activation: ActivationIR | None = None,
    weight_init: str = "torch",
    children: tuple = (),
    **options: Any,
) -> LayerIR:
    """A hidden layer; params are not used by codegen and stay 0."""
    return LayerIR(
        kind=kind,
        ident=ident,
        source=f"layers[{ident}]",
        in_shape=in_shape,
        out_shape=out_shape,
        params=0,
        options=LAYER_KINDS[kind].options(**options),
        activation=activation,
        weight_init=weight_init,
        children=children,
    )


def program(
    layers: list[LayerIR],
    input_shape: tuple,
    *,
    units: int = 3,
    output_activation: str = "softmax",
    normalize: str = "none",
    bias_init: float = 0.0,
    input_noise: float = 0.0,
    output_init: str = "torch",
    name: str = "probe",
) -> Program:
    """A Program around hidden layers; the output layer reads the last layer's output."""
    last = layers[-1].out_shape if layers else input_shape
    output = LayerIR(
        "output",
        "output",
        "output",
        last,
        (units,),
        0,
        DenseOptions(units, bias=True),
        None,
        output_init,
    )
    task = {"softmax": "multiclass", "sigmoid": "binary", "linear": "regression"}[output_activation]
    model = ModelIR(
        class_name="".join(p.title() for p in name.split("_")),
        input_shape=input_shape,
        normalize=normalize,
        layers=tuple(layers),
        output=output,
        output_activation=output_activation,
        bias_init=bias_init,
        params=0,
        weights_scheme="auto",
    )
    training = TrainingIR(
        epochs=1,
        batch_size=4,
        seed=0,
        device="cpu",
        threads=None,
        optimizer=OptimizerIR("adam", 1e-3, AdamOptions((0.9, 0.999), 1e-8)),
        schedule=ScheduleIR("none"),
        regularizers=RegularizersIR(input_noise=input_noise),
        early=None,
        refit="none",
    )
    data = DataIR(
        kind="sklearn",
        dataset="iris",
        path=None,
        target=(),
        features=None,
        val=0.2,
        test=0.2,
        split_seed=0,
        stratify=False,
        normalize=normalize,
    )
    return Program(
        name=name,
        description=None,
        spec_path=f"specs/{name}.yaml",
        resolved={"init": {"weights": "auto", "bias": bias_init}},
        task=task,
        metrics=("loss",),
        data=data,
        model=model,
        loss=LossIR("cross_entropy"),
        training=training,
        onnx_opset=None,
    )


def render(prog: Program) -> str:
    """model.py for a program, formatted as `specc compile` writes it."""
    template = environment().get_template("model.py.j2")
    text = template.render(header=header(prog.spec_path), program=prog, model=model_context(prog))
    return format_source(text, "model.py")


_counter = iter(range(10**6))


def load(prog: Program, tmp_path: Path) -> ModuleType:
    """Write model.py into a fresh folder and import it under a unique module name."""
    folder = tmp_path / f"m{next(_counter)}"
    folder.mkdir()
    path = folder / "model.py"
    path.write_text(render(prog), encoding="utf-8")
    name = f"generated_model_{folder.name}_{id(prog)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build(prog: Program, tmp_path: Path) -> nn.Module:
    """The generated model in eval mode, seeded."""
    torch.manual_seed(0)
    model = load(prog, tmp_path).build_model()
    return model.eval()


def hidden(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's forward up to (not including) the output layer."""
    seen = {}
    handle = model.output.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
    model(x)
    handle.remove()
    return seen["x"]


# --- activations ----------------------------------------------------------------------------

ACTIVATIONS = [
    (act("linear"), lambda z: z),
    (act("relu"), torch.relu),
    (act("leaky_relu", slope=0.2), lambda z: torch.where(z > 0, z, 0.2 * z)),
    (act("elu", alpha=0.5), lambda z: torch.where(z > 0, z, 0.5 * (torch.exp(z) - 1))),
    (act("relu6"), lambda z: z.clamp(0, 6)),
    (act("gelu", approximate="none"), lambda z: z * 0.5 * (1 + torch.erf(z / math.sqrt(2)))),
    (act("gelu", approximate="tanh"), lambda z: F.gelu(z, approximate="tanh")),
    (act("silu"), lambda z: z * torch.sigmoid(z)),
    (act("sigmoid"), lambda z: 1 / (1 + torch.exp(-z))),
    (act("tanh"), torch.tanh),
    (act("softplus", beta=2.0), lambda z: torch.log1p(torch.exp(2.0 * z)) / 2.0),
    (act("softmax"), lambda z: torch.exp(z) / torch.exp(z).sum(-1, keepdim=True)),
    (
        act("prelu", init=0.3, per_channel=False, channels=7),
        lambda z: torch.where(z > 0, z, 0.3 * z),
    ),
]


@pytest.mark.parametrize(
    ("activation", "reference"),
    ACTIVATIONS,
    ids=[f"{a.name}-{i}" for i, (a, _) in enumerate(ACTIVATIONS)],
)
def test_dense_with_each_activation(activation, reference, tmp_path):
    """dense + activation equals x @ W.T + b then the activation written out."""
    prog = program([layer("dense", "dense1", (5,), (7,), activation, units=7, bias=True)], (5,))
    model = build(prog, tmp_path)
    x = torch.randn(6, 5) * 3
    w, b = model.dense1.weight, model.dense1.bias
    assert torch.allclose(hidden(model, x), reference(x @ w.T + b), atol=1e-5)


@pytest.mark.parametrize("activation", [a for a, _ in ACTIVATIONS], ids=lambda a: a.name)
def test_activation_layer_on_images_and_sequences(activation, tmp_path):
    """An activation layer applies elementwise; softmax runs over the channels of an image."""
    for shape, dim in (((2, 3, 4), 1), ((4, 3), -1)):
        prog = program(
            [
                layer("activation", "act1", shape, shape, activation),
                layer("flatten", "flatten1", shape, (24 if len(shape) == 3 else 12,)),
            ],
            shape,
        )
        model = build(prog, tmp_path)
        x = torch.randn(5, *shape)
        got = hidden(model, x)
        if activation.name == "softmax":
            want = torch.softmax(x, dim=dim)
        else:
            want = dict((a.name + str(a.options), r) for a, r in ACTIVATIONS)[
                activation.name + str(activation.options)
            ](x)
        assert torch.allclose(got, want.flatten(1), atol=1e-5)


def test_prelu_per_channel_on_sequences_uses_the_feature_axis(tmp_path):
    """Per-channel PReLU slopes follow the features of a [T, F] sequence, not its time axis."""
    prelu = act("prelu", init=0.25, per_channel=True, channels=3)
    prog = program(
        [
            layer("dense", "dense1", (4, 2), (4, 3), prelu, units=3, bias=True),
            layer("flatten", "flatten1", (4, 3), (12,)),
        ],
        (4, 2),
    )
    model = build(prog, tmp_path)
    with torch.no_grad():
        model.dense1_prelu.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.randn(5, 4, 2)
    z = model.dense1(x)
    want = torch.where(z > 0, z, torch.tensor([0.1, 0.2, 0.3]) * z)
    assert torch.allclose(hidden(model, x), want.flatten(1), atol=1e-6)
    assert model.dense1_prelu.weight.shape == (3,)


# --- layers ---------------------------------------------------------------------------------


def test_dense_without_bias_has_no_bias(tmp_path):
    """bias: false gives nn.Linear(bias=False)."""
    prog = program([layer("dense", "dense1", (4,), (2,), act("relu"), units=2, bias=False)], (4,))
    model = build(prog, tmp_path)
    assert model.dense1.bias is None
    x = torch.randn(3, 4)
    assert torch.allclose(hidden(model, x), torch.relu(x @ model.dense1.weight.T))


def test_dropout_is_inverted_and_off_in_eval(tmp_path):
    """Training zeroes units with probability rate and scales the rest by 1/(1 - rate)."""
    prog = program([layer("dropout", "drop1", (400,), (400,), rate=0.25)], (400,))
    model = build(prog, tmp_path)
    x = torch.rand(50, 400) + 1
    assert torch.equal(hidden(model, x), x)
    model.train()
    got = hidden(model, x)
    kept = got != 0
    assert torch.allclose(got[kept], x[kept] / 0.75)
    assert 0.2 < 1 - kept.float().mean().item() < 0.3


def test_gaussian_noise_only_while_training(tmp_path):
    """gaussian_noise adds N(0, std^2) in training mode and nothing in eval mode."""
    prog = program([layer("gaussian_noise", "noise1", (1000,), (1000,), std=0.5)], (1000,))
    model = build(prog, tmp_path)
    x = torch.randn(20, 1000)
    assert torch.equal(hidden(model, x), x)
    model.train()
    noise = hidden(model, x) - x
    assert abs(noise.std().item() - 0.5) < 0.02


@pytest.mark.parametrize("shape", [(6,), (5, 6), (6, 3, 4)], ids=["vector", "sequence", "image"])
def test_batchnorm_matches_torch(shape, tmp_path):
    """Vectors and images use BatchNorm1d/2d directly; sequences normalise each feature."""
    flat = math.prod(shape)
    prog = program(
        [
            layer(
                "batchnorm", "bn1", shape, shape, momentum=0.3, eps=1e-3, dims=len(shape) // 3 + 1
            ),
            layer("flatten", "flatten1", shape, (flat,)),
        ],
        shape,
    )
    model = build(prog, tmp_path).train()
    ref = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(6, eps=1e-3, momentum=0.3)
    ref.train()
    x = torch.randn(8, *shape) * 2 + 1
    got = hidden(model, x)
    want = ref(x.transpose(1, 2)).transpose(1, 2) if len(shape) == 2 else ref(x)
    assert torch.allclose(got, want.flatten(1), atol=1e-5)
    assert torch.allclose(model.bn1.running_mean, ref.running_mean, atol=1e-6)
    model.eval()
    ref.eval()
    want = ref(x.transpose(1, 2)).transpose(1, 2) if len(shape) == 2 else ref(x)
    assert torch.allclose(hidden(model, x), want.flatten(1), atol=1e-5)


def test_layernorm_matches_torch(tmp_path):
    """layernorm normalises each example's last axis."""
    prog = program(
        [
            layer("layernorm", "ln1", (4, 6), (4, 6), eps=1e-4, normalized_shape=(6,)),
            layer("flatten", "flatten1", (4, 6), (24,)),
        ],
        (4, 6),
    )
    model = build(prog, tmp_path)
    x = torch.randn(3, 4, 6)
    want = F.layer_norm(x, (6,), model.ln1.weight, model.ln1.bias, eps=1e-4)
    assert torch.allclose(hidden(model, x), want.flatten(1), atol=1e-6)
    assert model.ln1.eps == 1e-4


def test_maxout_is_the_max_over_consecutive_groups(tmp_path):
    """g(z)_i = max over z_j, j in {(i-1)k+1, ..., ik}: consecutive groups of `pieces`."""
    prog = program([layer("maxout", "maxout1", (5,), (4,), units=4, pieces=3)], (5,))
    model = build(prog, tmp_path)
    x = torch.randn(7, 5)
    w, b = model.maxout1.linear.weight, model.maxout1.linear.bias
    assert w.shape == (12, 5)
    z = x @ w.T + b
    want = torch.stack([z[:, 3 * i : 3 * i + 3].max(dim=1).values for i in range(4)], dim=1)
    assert torch.allclose(hidden(model, x), want)


def test_rbf_is_a_gaussian_bump_per_centre(tmp_path):
    """h_i = exp(-||W_i - x||^2 / sigma_i^2), sigma kept positive as exp(log sigma)."""
    prog = program([layer("rbf", "rbf1", (3,), (4,), units=4, sigma=2.0)], (3,))
    model = build(prog, tmp_path)
    sigma = torch.exp(model.rbf1.log_sigma)
    assert torch.allclose(sigma, torch.full((4,), 2.0))
    with torch.no_grad():
        model.rbf1.log_sigma.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 3.0])))
    x = torch.randn(6, 3)
    c = model.rbf1.centres
    want = torch.stack(
        [
            torch.exp(-((x - c[i]) ** 2).sum(dim=1) / s**2)
            for i, s in enumerate([0.5, 1.0, 2.0, 3.0])
        ],
        dim=1,
    )
    assert torch.allclose(hidden(model, x), want, atol=1e-6)


def test_residual_without_and_with_projection(tmp_path):
    """y = F(x) + x, or F(x) + P x with a bias-free projection P."""
    inner = (layer("dense", "dense1", (4,), (4,), act("tanh"), units=4, bias=True),)
    same = layer("residual", "res1", (4,), (4,), children=inner, projection=False)
    inner2 = (layer("dense", "dense1", (4,), (3,), act("relu"), units=3, bias=True),)
    proj = layer("residual", "res2", (4,), (3,), children=inner2, projection=True)
    model = build(program([same, proj], (4,)), tmp_path)
    x = torch.randn(5, 4)
    d1, d2 = model.res1.dense1, model.res2.dense1
    h = torch.tanh(x @ d1.weight.T + d1.bias) + x
    want = torch.relu(h @ d2.weight.T + d2.bias) + h @ model.res2.projection.weight.T
    assert model.res2.projection.bias is None
    assert torch.allclose(hidden(model, x), want, atol=1e-6)


def test_residual_on_images_projects_with_a_strided_1x1_convolution(tmp_path):
    """Images project the skip path with a bias-free 1x1 convolution, strided to the output."""
    conv = layer(
        "conv2d",
        "conv1",
        (2, 6, 6),
        (4, 3, 3),
        act("relu"),
        filters=4,
        kernel_size=(3, 3),
        stride=(2, 2),
        padding=(1, 1),
        dilation=(1, 1),
        bias=True,
    )
    res = layer("residual", "res1", (2, 6, 6), (4, 3, 3), children=(conv,), projection=True)
    nested = layer(
        "residual",
        "res2",
        (4, 3, 3),
        (4, 3, 3),
        children=(
            layer(
                "residual",
                "res1",
                (4, 3, 3),
                (4, 3, 3),
                children=(layer("activation", "act1", (4, 3, 3), (4, 3, 3), act("relu")),),
                projection=False,
            ),
        ),
        projection=False,
    )
    prog = program([res, nested, layer("flatten", "flatten1", (4, 3, 3), (36,))], (2, 6, 6))
    model = build(prog, tmp_path)
    x = torch.randn(2, 2, 6, 6)
    c = model.res1.conv1
    h = torch.relu(F.conv2d(x, c.weight, c.bias, stride=2, padding=1))
    h = h + F.conv2d(x, model.res1.projection.weight, stride=2)
    h = (torch.relu(h) + h) + h
    assert torch.allclose(hidden(model, x), h.flatten(1), atol=1e-5)


def test_conv1d_reads_sequences_channels_last(tmp_path):
    """conv1d on [T, F] equals nn.Conv1d on the transposed [F, T], transposed back."""
    conv = layer(
        "conv1d",
        "conv1",
        (10, 3),
        (4, 5),
        act("relu"),
        filters=5,
        kernel_size=3,
        stride=2,
        padding=1,
        dilation=2,
        bias=True,
    )
    same = layer(
        "conv1d",
        "conv2",
        (4, 5),
        (4, 2),
        None,
        filters=2,
        kernel_size=3,
        stride=1,
        padding="same",
        dilation=1,
        bias=False,
    )
    prog = program([conv, same, layer("flatten", "flatten1", (4, 2), (8,))], (10, 3))
    model = build(prog, tmp_path)
    ref1 = nn.Conv1d(3, 5, 3, stride=2, padding=1, dilation=2)
    ref2 = nn.Conv1d(5, 2, 3, padding="same", bias=False)
    ref1.load_state_dict(model.conv1.state_dict())
    ref2.load_state_dict(model.conv2.state_dict())
    x = torch.randn(2, 10, 3)
    want = ref2(torch.relu(ref1(x.transpose(1, 2)))).transpose(1, 2)
    assert want.shape == (2, 4, 2)
    assert torch.allclose(hidden(model, x), want.flatten(1), atol=1e-6)


def test_conv2d_matches_torch(tmp_path):
    """conv2d with a non-square kernel, stride, padding and dilation, then an activation."""
    conv = layer(
        "conv2d",
        "conv1",
        (3, 9, 9),
        (4, 5, 3),
        act("elu", alpha=1.0),
        filters=4,
        kernel_size=(3, 2),
        stride=(2, 3),
        padding=(1, 0),
        dilation=(1, 2),
        bias=True,
    )
    prog = program([conv, layer("flatten", "flatten1", (4, 5, 3), (60,))], (3, 9, 9))
    model = build(prog, tmp_path)
    ref = nn.Conv2d(3, 4, (3, 2), stride=(2, 3), padding=(1, 0), dilation=(1, 2))
    ref.load_state_dict(model.conv1.state_dict())
    x = torch.randn(2, 3, 9, 9)
    assert torch.allclose(hidden(model, x), F.elu(ref(x)).flatten(1), atol=1e-6)


def test_separable_conv2d_is_depthwise_then_pointwise(tmp_path):
    """separable_conv2d equals a grouped conv (Cin*dm outputs, no bias) then a 1x1 conv."""
    sep = layer(
        "separable_conv2d",
        "sepconv1",
        (3, 8, 8),
        (5, 8, 8),
        act("relu"),
        filters=5,
        kernel_size=(3, 3),
        stride=(1, 1),
        padding="same",
        depth_multiplier=2,
        bias=True,
    )
    prog = program([sep, layer("flatten", "flatten1", (5, 8, 8), (320,))], (3, 8, 8))
    model = build(prog, tmp_path)
    depthwise = nn.Conv2d(3, 6, 3, padding="same", groups=3, bias=False)
    pointwise = nn.Conv2d(6, 5, 1)
    depthwise.load_state_dict(model.sepconv1.depthwise.state_dict())
    pointwise.load_state_dict(model.sepconv1.pointwise.state_dict())
    x = torch.randn(2, 3, 8, 8)
    want = torch.relu(pointwise(depthwise(x)))
    assert torch.allclose(hidden(model, x), want.flatten(1), atol=1e-5)
    assert sum(p.numel() for p in model.sepconv1.parameters()) == 3 * 2 * 9 + 6 * 5 + 5


@pytest.mark.parametrize("kind", ["maxpool1d", "avgpool1d"])
def test_pool1d_pools_over_time(kind, tmp_path):
    """Pooling 1d on [T, F] pools each feature over time."""
    pool = layer(kind, "pool1", (9, 2), (5, 2), pool_size=3, stride=2, padding=1)
    prog = program([pool, layer("flatten", "flatten1", (5, 2), (10,))], (9, 2))
    model = build(prog, tmp_path)
    ref = (nn.MaxPool1d if kind == "maxpool1d" else nn.AvgPool1d)(3, stride=2, padding=1)
    x = torch.randn(3, 9, 2)
    want = ref(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(hidden(model, x), want.flatten(1))


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
def test_pool2d_matches_torch(kind, tmp_path):
    """Pooling 2d with a non-square window; stride defaults to the window."""
    pool = layer(
        kind, "pool1", (2, 6, 6), (2, 3, 2), pool_size=(2, 3), stride=(2, 3), padding=(0, 0)
    )
    prog = program([pool, layer("flatten", "flatten1", (2, 3, 2), (12,))], (2, 6, 6))
    model = build(prog, tmp_path)
    ref = (nn.MaxPool2d if kind == "maxpool2d" else nn.AvgPool2d)((2, 3))
    x = torch.randn(3, 2, 6, 6)
    assert torch.allclose(hidden(model, x), ref(x).flatten(1))


def test_global_pools_and_flatten(tmp_path):
    """global pools reduce the spatial (images) or time (sequences) axes; flatten keeps batch."""
    img = program([layer("global_avgpool", "gpool1", (3, 4, 5), (3,))], (3, 4, 5))
    seq = program([layer("global_maxpool", "gpool1", (6, 2), (2,))], (6, 2))
    x, s = torch.randn(2, 3, 4, 5), torch.randn(2, 6, 2)
    assert torch.allclose(hidden(build(img, tmp_path), x), x.mean(dim=(2, 3)))
    assert torch.equal(hidden(build(seq, tmp_path), s), s.max(dim=1).values)
    img_max = program([layer("global_maxpool", "gpool1", (3, 4, 5), (3,))], (3, 4, 5))
    assert torch.equal(hidden(build(img_max, tmp_path), x), x.amax(dim=(2, 3)))
    flat = program([layer("flatten", "flatten1", (3, 4, 5), (60,))], (3, 4, 5))
    assert torch.equal(hidden(build(flat, tmp_path), x), x.reshape(2, 60))


RECURRENT = [
    (kind, bidirectional, num_layers)
    for kind in ("lstm", "gru", "rnn")
    for bidirectional in (False, True)
    for num_layers in (1, 2)
]


@pytest.mark.parametrize(("kind", "bidirectional", "num_layers"), RECURRENT)
def test_recurrent_last_step_is_the_final_hidden_state(kind, bidirectional, num_layers, tmp_path):
    """The last step is h_n of the last layer: forward's last step, backward's first step."""
    dirs = 2 if bidirectional else 1
    rec = layer(
        kind,
        f"{kind}1",
        (7, 3),
        (4 * dirs,),
        units=4,
        bidirectional=bidirectional,
        return_sequences=False,
        num_layers=num_layers,
        dropout=0.0,
        nonlinearity="relu" if kind == "rnn" else "tanh",
    )
    model = build(program([rec], (7, 3)), tmp_path)
    kwargs = {"nonlinearity": "relu"} if kind == "rnn" else {}
    ref = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](
        3, 4, num_layers=num_layers, batch_first=True, bidirectional=bidirectional, **kwargs
    )
    ref.load_state_dict(getattr(model, f"{kind}1").state_dict())
    x = torch.randn(5, 7, 3)
    _, h_n = ref(x)
    h_n = h_n[0] if kind == "lstm" else h_n
    want = torch.cat(list(h_n[-dirs:]), dim=-1)
    assert torch.allclose(hidden(model, x), want, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_return_sequences_is_the_full_output(kind, tmp_path):
    """return_sequences gives every step: [T, units * directions]."""
    rec = layer(
        kind,
        "rec1",
        (6, 3),
        (6, 8),
        units=4,
        bidirectional=True,
        return_sequences=True,
        num_layers=2,
        dropout=0.1,
        nonlinearity="tanh",
    )
    prog = program([rec, layer("flatten", "flatten1", (6, 8), (48,))], (6, 3))
    model = build(prog, tmp_path)
    ref = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](
        3, 4, num_layers=2, dropout=0.1, batch_first=True, bidirectional=True
    )
    ref.load_state_dict(model.rec1.state_dict())
    ref.eval()
    x = torch.randn(2, 6, 3)
    assert torch.allclose(hidden(model, x), ref(x)[0].flatten(1), atol=1e-6)
    assert model.rec1.dropout == 0.1


# --- the model around the layers ---------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4,), (5, 3), (3, 4, 4)], ids=["vector", "sequence", "image"])
def test_standardize_fit_then_forward(shape, tmp_path):
    """fit() sets mean/std per feature (per channel for images); forward is (x - mean) / std."""
    flat = math.prod(shape)
    prog = program([layer("flatten", "flatten1", shape, (flat,))], shape, normalize="standard")
    model = build(prog, tmp_path)
    data = torch.randn(200, *shape) * 3 + 2
    data[..., 0] = 5.0  # a constant feature keeps std 1 instead of dividing by zero
    model.normalize.fit(data)
    dims = {1: (0,), 2: (0, 1), 3: (0, 2, 3)}[len(shape)]
    mean = data.mean(dim=dims, keepdim=True)
    std = data.std(dim=dims, keepdim=True, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = torch.randn(6, *shape)
    assert torch.allclose(hidden(model, x), ((x - mean) / std).flatten(1), atol=1e-5)
    assert set(dict(model.named_buffers())) >= {"normalize.mean", "normalize.std"}
    assert "normalize.mean" in model.state_dict()


def test_minmax_fit_then_forward(tmp_path):
    """fit() sets min/range; forward maps the training data into [0, 1]."""
    prog = program(
        [layer("dense", "dense1", (3,), (3,), units=3, bias=True)], (3,), normalize="minmax"
    )
    model = build(prog, tmp_path)
    data = torch.randn(100, 3) * 4 - 1
    model.normalize.fit(data)
    low, high = data.min(dim=0).values, data.max(dim=0).values
    assert torch.allclose(model.normalize(data), (data - low) / (high - low))
    assert torch.allclose(model.normalize.min, low)
    assert torch.allclose(model.normalize.range, high - low)


def test_no_normalisation_is_the_identity(tmp_path):
    """normalize: none keeps an nn.Identity in its place, with no buffers."""
    model = build(program([], (3,)), tmp_path)
    assert isinstance(model.normalize, nn.Identity)
    assert not list(model.buffers())


def test_input_noise_follows_the_normaliser_in_training_only(tmp_path):
    """regularizers.input_noise adds noise after normalisation, only in training mode."""
    prog = program(
        [layer("flatten", "flatten1", (500,), (500,))],
        (500,),
        normalize="standard",
        input_noise=0.3,
    )
    model = build(prog, tmp_path)
    model.normalize.fit(torch.randn(100, 500) * 10)
    x = torch.randn(40, 500)
    clean = model.normalize(x)
    assert torch.equal(hidden(model, x), clean)
    model.train()
    assert abs((hidden(model, x) - clean).std().item() - 0.3) < 0.02


@pytest.mark.parametrize(
    ("activation", "apply"),
    [
        ("softmax", lambda z: torch.softmax(z, dim=-1)),
        ("sigmoid", torch.sigmoid),
        ("linear", lambda z: z),
    ],
)
def test_predict_applies_the_output_unit(activation, apply, tmp_path):
    """forward returns logits; predict applies the output unit's activation."""
    model = build(program([], (4,), units=3, output_activation=activation), tmp_path)
    x = torch.randn(5, 4)
    logits = x @ model.output.weight.T + model.output.bias
    assert torch.allclose(model(x), logits, atol=1e-6)
    assert torch.allclose(model.predict(x), apply(logits), atol=1e-6)


def every_kind() -> Program:
    """One program with every weighted kind, a residual projection and a prelu."""
    seq = [
        layer(
            "conv1d",
            "conv1",
            (8, 3),
            (8, 4),
            act("prelu", init=0.2, per_channel=True, channels=4),
            "he_normal",
            filters=4,
            kernel_size=3,
            stride=1,
            padding="same",
            dilation=1,
            bias=True,
        ),
        layer("batchnorm", "bn1", (8, 4), (8, 4), momentum=0.1, eps=1e-5, dims=1),
        layer(
            "lstm",
            "lstm1",
            (8, 4),
            (8, 6),
            None,
            "xavier_uniform",
            units=3,
            bidirectional=True,
            return_sequences=True,
            num_layers=2,
            dropout=0.0,
            nonlinearity="tanh",
        ),
        layer(
            "gru",
            "gru1",
            (8, 6),
            (5,),
            None,
            "orthogonal",
            units=5,
            bidirectional=False,
            return_sequences=False,
            num_layers=1,
            dropout=0.0,
            nonlinearity="tanh",
        ),
        layer(
            "residual",
            "res1",
            (5,),
            (4,),
            None,
            "xavier_normal",
            projection=True,
            children=(
                layer("maxout", "maxout1", (5,), (4,), None, "he_uniform", units=4, pieces=2),
                layer("layernorm", "ln1", (4,), (4,), eps=1e-5, normalized_shape=(4,)),
            ),
        ),
        layer("rbf", "rbf1", (4,), (3,), None, "xavier_uniform", units=3, sigma=1.0),
        layer("dense", "dense1", (3,), (2,), act("tanh"), "xavier_normal", units=2, bias=True),
    ]
    return program(
        seq,
        (8, 3),
        units=2,
        output_activation="sigmoid",
        normalize="standard",
        bias_init=0.1,
        output_init="xavier_uniform",
        name="every_kind",
    )


def test_weights_lists_every_weight_and_no_bias_or_norm(tmp_path):
    """weights() holds the weight matrices/kernels only: no biases, norms, slopes or widths."""
    model = build(every_kind(), tmp_path)
    names = {id(p): n for n, p in model.named_parameters()}
    listed = [names[id(w)] for w in model.weights()]
    assert listed == [
        "conv1.weight",
        *(
            f"lstm1.weight_{m}_l{n}{s}"
            for n in (0, 1)
            for s in ("", "_reverse")
            for m in ("ih", "hh")
        ),
        "gru1.weight_ih_l0",
        "gru1.weight_hh_l0",
        "res1.projection.weight",
        "res1.maxout1.linear.weight",
        "rbf1.centres",
        "dense1.weight",
        "output.weight",
    ]
    assert not any("bias" in n or "bn" in n or "ln" in n or "prelu" in n for n in listed)
    assert "rbf1.log_sigma" in names.values() and "conv1_prelu.weight" in names.values()


def test_reset_parameters_honours_bias_init_and_init_rules(tmp_path):
    """Every bias starts at init.bias; xavier recurrent layers get orthogonal recurrent matrices."""
    model = build(every_kind(), tmp_path)
    biases = [
        p
        for n, p in model.named_parameters()
        if "bias" in n and ".bn" not in n and not n.startswith(("bn1", "res1.ln1"))
    ]
    assert len(biases) == 1 + 8 + 2 + 1 + 1 + 1
    assert all(torch.all(b == 0.1) for b in biases)
    assert torch.all(model.bn1.bias == 0) and torch.all(model.res1.ln1.bias == 0)
    w_hh = model.lstm1.weight_hh_l0  # [4H, H]: orthonormal columns
    assert torch.allclose(w_hh.T @ w_hh, torch.eye(3), atol=1e-5)
    assert torch.all(model.conv1_prelu.weight == 0.2)
    source = render(every_kind())
    assert 'nn.init.kaiming_normal_(self.conv1.weight, a=0.2, nonlinearity="leaky_relu")' in source
    assert "nn.init.orthogonal_(self.lstm1.weight_hh_l1_reverse)" in source
    assert "nn.init.xavier_uniform_(self.lstm1.weight_ih_l1_reverse)" in source
    assert (
        'nn.init.kaiming_uniform_(self.res1.maxout1.linear.weight, nonlinearity="relu")' in source
    )
    assert 'xavier_normal_(self.dense1.weight, gain=nn.init.calculate_gain("tanh"))' in source


def test_he_normal_has_the_he_variance(tmp_path):
    """he_normal draws weights with variance 2 / fan_in for a ReLU layer."""
    prog = program(
        [layer("dense", "dense1", (400,), (300,), act("relu"), "he_normal", units=300, bias=True)],
        (400,),
    )
    model = build(prog, tmp_path)
    assert abs(model.dense1.weight.std().item() - math.sqrt(2 / 400)) < 0.002


def test_torch_init_leaves_pytorch_defaults(tmp_path):
    """weights: torch writes no init call for weights, only the bias constants."""
    prog = program(
        [layer("dense", "dense1", (4,), (3,), act("relu"), "torch", units=3, bias=True)],
        (4,),
        bias_init=0.5,
    )
    body = render(prog).split("def reset_parameters")[1]
    assert "kaiming" not in body and "xavier" not in body
    assert "nn.init.constant_(self.dense1.bias, 0.5)" in body


def image_kinds() -> Program:
    """One image program with every helper that the sequence program lacks."""
    sep = layer(
        "separable_conv2d",
        "sepconv1",
        (2, 6, 6),
        (4, 6, 6),
        act("gelu", approximate="tanh"),
        "he_normal",
        filters=4,
        kernel_size=(3, 3),
        stride=(1, 1),
        padding="same",
        depth_multiplier=2,
        bias=False,
    )
    images = [
        sep,
        layer("batchnorm", "bn1", (4, 6, 6), (4, 6, 6), momentum=0.1, eps=1e-5, dims=2),
        layer("gaussian_noise", "noise1", (4, 6, 6), (4, 6, 6), std=0.1),
        layer(
            "avgpool2d",
            "pool1",
            (4, 6, 6),
            (4, 3, 3),
            pool_size=(2, 2),
            stride=(2, 2),
            padding=(0, 0),
        ),
        layer("activation", "act1", (4, 3, 3), (4, 3, 3), act("softmax")),
        layer("global_maxpool", "gpool1", (4, 3, 3), (4,)),
        layer("dropout", "drop1", (4,), (4,), rate=0.5),
        layer(
            "dense",
            "dense1",
            (4,),
            (5,),
            act("softplus", beta=1.0),
            "he_uniform",
            units=5,
            bias=True,
        ),
    ]
    return program(
        images, (2, 6, 6), units=3, normalize="minmax", input_noise=0.05, name="image_kinds"
    )


@pytest.mark.slow
@pytest.mark.parametrize("make", [every_kind, image_kinds], ids=["sequences", "images"])
def test_runs_in_train_and_eval_and_exports_to_onnx(make, tmp_path):
    """Composite models run in both modes and export to ONNX with outputs that match."""
    import onnxruntime

    prog = make()
    shape, units = prog.model.input_shape, prog.model.output_units
    model = build(prog, tmp_path)
    model.normalize.fit(torch.randn(50, *shape))
    x = torch.randn(4, *shape)
    assert model.train()(x).shape == (4, units)
    model.eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        dynamo=True,
        opset_version=18,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path))
    x2 = torch.randn(3, *shape)
    (got,) = session.run(None, {"input": x2.numpy()})
    with torch.no_grad():
        assert abs(got - model(x2).numpy()).max() < 1e-4


def test_compiling_twice_is_byte_identical_and_never_imports_specc():
    """The output is a pure function of the program and stands alone."""
    first, second = render(every_kind()), render(every_kind())
    assert first == second
    assert not re.search(r"^\s*(import|from)\s+specc", first, re.MULTILINE)
    assert first.startswith(
        "# Generated by specc from specs/every_kind.yaml. Edit the spec, not this file.\n"
    )
    assert "import math" in first


def test_only_needed_helpers_and_imports():
    """A plain MLP gets no custom modules, no math and no functional import."""
    prog = program([layer("dense", "dense1", (4,), (3,), act("relu"), units=3, bias=True)], (4,))
    source = render(prog)
    for name in (
        "class Standardize",
        "class Maxout",
        "class RBF",
        "class GaussianNoise",
        "class SeparableConv2d",
        "import math",
        "torch.nn.functional",
    ):
        assert name not in source
    assert "x = torch.relu(self.dense1(x))  # [batch, 3]" in source


@pytest.mark.parametrize("make", [every_kind, image_kinds], ids=["sequences", "images"])
def test_generated_code_is_lint_clean(make, tmp_path):
    """ruff check (E, F, W, I, B, UP, SIM) passes on a model with every helper."""
    import subprocess

    from ruff.__main__ import find_ruff_bin

    path = tmp_path / "model.py"
    path.write_text(render(make()), encoding="utf-8")
    proc = subprocess.run(
        [
            find_ruff_bin(),
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--target-version",
            "py311",
            "--select",
            "E,F,W,I,B,UP,SIM",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
