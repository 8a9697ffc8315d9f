"""One row per layer kind and per activation: the static facts every stage reads.

Shape inference (shapes.py), initialisation (inits.py), lints (lints.py), naming (naming.py)
and model codegen (codegen/model_ctx.py) all look a kind up here instead of keeping their
own sets of names. The per-kind *functions* live with their stage (shapes.HANDLERS,
model_ctx.LAYER_CODE), keyed by the same names; tests/test_layer_tables.py checks that every
table covers exactly the schema's kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from specc.analysis.ir import (
    ActivationOptions,
    BatchNormOptions,
    Conv1dOptions,
    Conv2dOptions,
    DenseOptions,
    DropoutOptions,
    EluOptions,
    GaussianLatentOptions,
    GaussianNoiseOptions,
    GeluOptions,
    LayerNormOptions,
    LayerOptions,
    LeakyReluOptions,
    MaxoutOptions,
    NoOptions,
    Pool1dOptions,
    Pool2dOptions,
    PReluOptions,
    RbfOptions,
    RecurrentOptions,
    ResidualOptions,
    SeparableConv2dOptions,
    SoftplusOptions,
    TransformerOptions,
)

VECTOR, SEQUENCE, IMAGE = frozenset({1}), frozenset({2}), frozenset({3})


@dataclass(frozen=True)
class LayerKind:
    """The static facts of one layer kind of the spec language."""

    prefix: str
    """Attribute-name prefix in generated code; a per-block counter follows (dense1, dense2)."""
    options: type[LayerOptions]
    """The IR options class shape inference resolves this kind's parameters into."""
    ranks: frozenset[int] | None = None
    """Input ranks accepted (1 vector, 2 sequence, 3 image); None: any shape."""
    weights: bool = False
    """Has a weight matrix: penalised, max-normed and initialised by init.weights (a residual
    block has one only with `projection: true`)."""
    own_activation: bool = False
    """Its parameters carry an `activation` applied to its output."""
    units: bool = False
    """A layer of hidden units whose activation matters for gradients and initialisation."""
    transparent: bool = False
    """Looked past when finding the activation that follows a linear layer (dense -> bn -> relu)."""
    nonlinear: bool = False
    """Non-linear whatever its activation (so a stack with it never collapses to one map)."""
    image: bool = False
    """Reads its input as an image [C, H, W]."""
    auto_init: str | None = None
    """The `auto` init scheme when it does not depend on the activation that follows."""
    gates: int = 0
    """Weight sets per recurrent cell (LSTM 4, GRU 3, Elman RNN 1); 0 for other kinds."""


LAYER_KINDS: dict[str, LayerKind] = {
    "dense": LayerKind(
        "dense", DenseOptions, VECTOR, weights=True, own_activation=True, units=True
    ),
    "dropout": LayerKind("drop", DropoutOptions, transparent=True),
    "gaussian_noise": LayerKind("noise", GaussianNoiseOptions, transparent=True),
    "activation": LayerKind("act", NoOptions),
    "batchnorm": LayerKind("bn", BatchNormOptions, transparent=True),
    "layernorm": LayerKind("ln", LayerNormOptions, transparent=True),
    # piecewise linear and unbounded, like the ReLU family
    "maxout": LayerKind(
        "maxout",
        MaxoutOptions,
        VECTOR,
        weights=True,
        units=True,
        nonlinear=True,
        auto_init="he_normal",
    ),
    # Gaussian bumps saturate like sigmoid units
    "rbf": LayerKind(
        "rbf",
        RbfOptions,
        VECTOR,
        weights=True,
        units=True,
        nonlinear=True,
        auto_init="xavier_uniform",
    ),
    # the projection, when there is one, is a linear map
    "residual": LayerKind("res", ResidualOptions, auto_init="xavier_uniform"),
    "conv1d": LayerKind(
        "conv", Conv1dOptions, SEQUENCE, weights=True, own_activation=True, units=True
    ),
    "conv2d": LayerKind(
        "conv", Conv2dOptions, IMAGE, weights=True, own_activation=True, units=True, image=True
    ),
    "separable_conv2d": LayerKind(
        "sepconv",
        SeparableConv2dOptions,
        IMAGE,
        weights=True,
        own_activation=True,
        units=True,
        image=True,
    ),
    "maxpool1d": LayerKind("pool", Pool1dOptions, SEQUENCE, nonlinear=True),
    "maxpool2d": LayerKind("pool", Pool2dOptions, IMAGE, nonlinear=True, image=True),
    "avgpool1d": LayerKind("pool", Pool1dOptions, SEQUENCE),
    "avgpool2d": LayerKind("pool", Pool2dOptions, IMAGE, image=True),
    "global_avgpool": LayerKind("gpool", NoOptions, SEQUENCE | IMAGE),
    "global_maxpool": LayerKind("gpool", NoOptions, SEQUENCE | IMAGE, nonlinear=True),
    "flatten": LayerKind("flatten", NoOptions),
    # input weights; codegen makes the recurrent matrices orthogonal
    "lstm": LayerKind(
        "lstm",
        RecurrentOptions,
        SEQUENCE,
        weights=True,
        nonlinear=True,
        auto_init="xavier_uniform",
        gates=4,
    ),
    "gru": LayerKind(
        "gru",
        RecurrentOptions,
        SEQUENCE,
        weights=True,
        nonlinear=True,
        auto_init="xavier_uniform",
        gates=3,
    ),
    "rnn": LayerKind(
        "rnn",
        RecurrentOptions,
        SEQUENCE,
        weights=True,
        nonlinear=True,
        auto_init="xavier_uniform",
        gates=1,
    ),
    # attention and feed-forward projections: Xavier, as nn.MultiheadAttention initialises them
    "transformer_encoder": LayerKind(
        "transformer",
        TransformerOptions,
        SEQUENCE,
        weights=True,
        nonlinear=True,
        auto_init="xavier_uniform",
    ),
    # the mu and log sigma^2 heads are linear maps: Xavier
    "gaussian_latent": LayerKind(
        "latent", GaussianLatentOptions, VECTOR, weights=True, auto_init="xavier_uniform"
    ),
}
"""Every layer kind of specc.schema.layers.LAYER_TYPES, in the same order."""

OUTPUT_OPTIONS = DenseOptions
"""The output unit (kind `output`, not a spec layer) is a dense layer with a bias."""


def kinds_where(fact: str) -> frozenset[str]:
    """The names of the layer kinds for which boolean `fact` of LayerKind holds."""
    return frozenset(name for name, row in LAYER_KINDS.items() if getattr(row, fact))


ActivationFamily = Literal["relu", "leaky", "saturating", "linear"]
"""How an activation shapes initialisation (the course notes: He init for ReLU-like units,
Xavier for tanh/sigmoid):
- relu: ReLU-like, He init with ReLU's gain (relu, relu6, elu, gelu, silu, softplus);
- leaky: ReLU-like, He init with the leaky-ReLU gain of its negative slope (leaky_relu, prelu);
- saturating: gradients vanish for large |z|, Xavier init (sigmoid, tanh);
- linear: no non-linearity of its own to scale for, Xavier init (linear, softmax)."""


@dataclass(frozen=True)
class ActivationKind:
    """The static facts of one activation function."""

    family: ActivationFamily
    options: type[ActivationOptions]
    """The IR options class its spec options resolve into (NoOptions: none)."""


ACTIVATIONS: dict[str, ActivationKind] = {
    "linear": ActivationKind("linear", NoOptions),
    "relu": ActivationKind("relu", NoOptions),
    "leaky_relu": ActivationKind("leaky", LeakyReluOptions),
    "prelu": ActivationKind("leaky", PReluOptions),
    "elu": ActivationKind("relu", EluOptions),
    "relu6": ActivationKind("relu", NoOptions),
    "gelu": ActivationKind("relu", GeluOptions),
    "silu": ActivationKind("relu", NoOptions),
    "sigmoid": ActivationKind("saturating", NoOptions),
    "tanh": ActivationKind("saturating", NoOptions),
    "softplus": ActivationKind("relu", SoftplusOptions),
    "softmax": ActivationKind("linear", NoOptions),
}
"""Every activation of specc.schema.activations.ACTIVATION_NAMES, in the same order."""

RELU_LIKE = frozenset(n for n, a in ACTIVATIONS.items() if a.family in ("relu", "leaky"))
"""Activations that do not saturate for positive inputs: He initialisation suits them."""

SATURATING = frozenset(n for n, a in ACTIVATIONS.items() if a.family == "saturating")
"""Activations whose gradient vanishes for large |z|: Xavier initialisation suits them."""


def family(name: str | None) -> ActivationFamily:
    """The family of an activation name; None (no activation follows) counts as linear."""
    return "linear" if name is None else ACTIVATIONS[name].family
