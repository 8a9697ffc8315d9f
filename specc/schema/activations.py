"""Activation functions: a bare name (`relu`) or a mapping with options (`{name: elu}`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from specc.schema.common import Bool, Float, NonNegFloat, PositiveFloat, Strict, shorthand


class Plain(Strict):
    """An activation without options."""

    name: Literal["linear", "relu", "relu6", "silu", "sigmoid", "tanh", "softmax"]
    """linear (identity), relu, relu6, silu (x·σ(x)), sigmoid, tanh, softmax (output only)."""


class LeakyRelu(Strict):
    """max(0, z) + slope·min(0, z), with a fixed small slope."""

    name: Literal["leaky_relu"]
    slope: NonNegFloat = 0.01
    """Slope for negative inputs (the notes' α)."""


class PRelu(Strict):
    """Leaky ReLU whose negative slope α is learned."""

    name: Literal["prelu"]
    init: Float = 0.25
    """Initial value of the learned slope."""
    per_channel: Bool = False
    """Learn one slope per unit/channel instead of one shared slope."""


class Elu(Strict):
    """z for z > 0, alpha·(exp(z) − 1) otherwise."""

    name: Literal["elu"]
    alpha: PositiveFloat = 1.0
    """Saturation value for negative inputs."""


class Gelu(Strict):
    """x·Φ(x), Φ the standard normal CDF."""

    name: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"
    """`none`: exact erf form; `tanh`: the tanh approximation."""


class Softplus(Strict):
    """log(1 + exp(beta·z)) / beta, a smooth ReLU."""

    name: Literal["softplus"]
    beta: PositiveFloat = 1.0
    """Sharpness."""


ACTIVATION_NAMES = (
    "linear", "relu", "leaky_relu", "prelu", "elu", "relu6", "gelu",
    "silu", "sigmoid", "tanh", "softplus", "softmax",
)  # fmt: skip

_ActivationUnion = Annotated[
    Plain | LeakyRelu | PRelu | Elu | Gelu | Softplus,
    Field(discriminator="name"),
]
Activation = Annotated[_ActivationUnion, shorthand(_ActivationUnion, ACTIVATION_NAMES)]
"""Any activation, by name or as a mapping with options."""
