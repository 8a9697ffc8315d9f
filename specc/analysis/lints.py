"""Lints: warnings drawn from the course notes' advice, one table row per lint.

Each row is a stable code, a one-sentence purpose and a small handler that reports at the
exact key with a message that proposes the fix. Lints read the validated spec only (not
shapes), so they run even when shape inference failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from specc.analysis.blocks import Site, act_name, all_blocks, following_activation
from specc.analysis.kinds import RELU_LIKE, SATURATING, kinds_where
from specc.analysis.naming import source_of
from specc.analysis.report import Finding, warning

OWN_ACTIVATION = kinds_where("own_activation")
UNITS = kinds_where("units")
NONLINEAR_KINDS = kinds_where("nonlinear")
IMAGE_KINDS = kinds_where("image")

INIT_FAMILIES: dict[str, tuple[str, frozenset[str]]] = {
    "he_normal": ("ReLU-family", SATURATING),
    "he_uniform": ("ReLU-family", SATURATING),
    "xavier_normal": ("tanh/sigmoid", RELU_LIKE),
    "xavier_uniform": ("tanh/sigmoid", RELU_LIKE),
}
"""Explicit schemes: the units they suit, and the activations they do not."""


@dataclass(frozen=True)
class LintContext:
    """The validated spec and its hidden layers as blocks (top level first)."""

    spec: Any
    blocks: list[list[Site]]


def effective(block: Sequence[Site], i: int) -> tuple[str, tuple] | None:
    """The activation following unit i, or None for non-unit layers and linear units."""
    return following_activation(block, i) if block[i].kind in OWN_ACTIVATION else None


def _saturating_stack(ctx: LintContext) -> list[Finding]:
    """Two or more hidden layers in a row with sigmoid/tanh units: vanishing gradients."""
    found = []
    for block in ctx.blocks:
        run: list[tuple[Site, str, tuple]] = []
        for i, site in enumerate(block):
            if site.kind not in UNITS:
                continue
            act = effective(block, i)
            if act is None or act[0] not in SATURATING:
                run = []
                continue
            run.append((site, *act))
            if len(run) == 2:
                first, second = run[0], run[1]
                msg = (
                    f"{source_of(first[0].path)} ({first[1]}) and {source_of(second[0].path)}"
                    f" ({second[1]}) are saturating hidden layers in a row: their small"
                    " derivatives multiply and the gradients vanish"
                )
                hint = "use relu (or another ReLU-family unit) in hidden layers"
                found.append(warning(second[2], "saturating-stack", msg, hint))
    return found


def _linear_collapse(ctx: LintContext) -> list[Finding]:
    """Dense layers with only linear activations compose into one linear map."""
    sites = [s for block in ctx.blocks for s in block]
    dense = [s for s in sites if s.kind == "dense"]
    nonlinear = any(
        s.kind in NONLINEAR_KINDS or act_name(s.activation) not in (None, "linear") for s in sites
    )
    if len(dense) < 2 or nonlinear:
        return []
    msg = (
        f"all {len(dense)} dense hidden layers are linear, so the stack is one linear map"
        " (W2·W1·x = W·x) and adds no capacity"
    )
    hint = "give the hidden layers a non-linear activation, e.g. activation: relu"
    return [warning(dense[0].activation_path, "linear-collapse", msg, hint)]


def _init_mismatch(ctx: LintContext) -> list[Finding]:
    """An explicit He init with tanh/sigmoid units, or Xavier with ReLU-family units."""
    scheme = ctx.spec.init.weights
    if scheme not in INIT_FAMILIES:
        return []
    suits, bad = INIT_FAMILIES[scheme]
    clashes = [
        (block[i], act[0])
        for block in ctx.blocks
        for i in range(len(block))
        if (act := effective(block, i)) is not None and act[0] in bad
    ]
    if not clashes:
        return []
    site, name = clashes[0]
    more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
    msg = f"init.weights {scheme} suits {suits} units, but {source_of(site.path)} uses {name}{more}"
    hint = "use init.weights: auto to pick He or Xavier per layer from its activation"
    return [warning(("init", "weights"), "init-mismatch", msg, hint)]


def _bias_before_batchnorm(ctx: LintContext) -> list[Finding]:
    """A bias right before batch normalisation is cancelled by its mean subtraction."""
    found = []
    for block in ctx.blocks:
        for site, nxt in zip(block, block[1:], strict=False):
            if site.kind not in OWN_ACTIVATION or nxt.kind != "batchnorm":
                continue
            if site.params.bias and site.params.activation.name == "linear":
                msg = (
                    f"the bias of {source_of(site.path)} is cancelled by the batchnorm after it"
                    " (batch normalisation subtracts the mean; its β is the shift)"
                )
                hint = "set bias: false on this layer"
                found.append(
                    warning((*site.params_path, "bias"), "bias-before-batchnorm", msg, hint)
                )
    return found


def _dropout_rate(ctx: LintContext) -> list[Finding]:
    """Dropout rates outside the usual 0.05-0.5 range (0 is a no-op)."""
    found = []
    for block in ctx.blocks:
        for site in block:
            if site.kind != "dropout":
                continue
            rate, path = site.params.rate, (*site.params_path, "rate")
            if rate == 0:
                msg = "dropout rate 0 drops nothing: the layer does nothing"
                found.append(
                    warning(path, "dropout-rate", msg, "remove it, or use a rate such as 0.2")
                )
            elif rate > 0.5 or rate < 0.05:
                side = (
                    "more than half of the units" if rate > 0.5 else "too few units to regularise"
                )
                msg = f"dropout rate {rate} drops {side} (rate is the probability of dropping)"
                hint = "the notes recommend rates between 0.2 and 0.5 for hidden units"
                found.append(warning(path, "dropout-rate", msg, hint))
    return found


def _hidden_softmax(ctx: LintContext) -> list[Finding]:
    """Softmax belongs in the output unit, not in hidden layers."""
    return [
        warning(
            site.activation_path,
            "hidden-softmax",
            f"{source_of(site.path)} uses softmax in a hidden layer: its units compete and"
            " their gradients are small",
            "use relu in hidden layers; softmax belongs in output.activation",
        )
        for block in ctx.blocks
        for site in block
        if act_name(site.activation) == "softmax"
    ]


def _double_activation(ctx: LintContext) -> list[Finding]:
    """An activation layer right after a layer that already applies a non-linearity."""
    found = []
    for block in ctx.blocks:
        for i, site in enumerate(block):
            own = act_name(site.activation)
            if site.kind not in OWN_ACTIVATION or own == "linear":
                continue
            nxt = next(
                (s for s in block[i + 1 :] if s.kind not in ("dropout", "gaussian_noise")), None
            )
            if nxt is not None and nxt.kind == "activation" and nxt.params.name != "linear":
                msg = f"{source_of(nxt.path)} applies {nxt.params.name} on top of {own}"
                msg += f" from {source_of(site.path)}"
                hint = "keep one: remove this layer, or set activation: linear on the layer before"
                found.append(warning(nxt.activation_path, "double-activation", msg, hint))
    return found


CHANNELS = 4
"""Largest channel count taken for a channels-last image (grey 1, RGB 3, RGBA 4)."""


def _channels_last(ctx: LintContext) -> list[Finding]:
    """An image shape written [H, W, C] (Keras/TensorFlow order) where specc reads [C, H, W]."""
    shape = list(ctx.spec.input.shape)
    images = any(site.kind in IMAGE_KINDS for block in ctx.blocks for site in block)
    if len(shape) != 3 or not images:
        return []
    height, width, channels = shape
    if channels > CHANNELS or shape[0] <= CHANNELS or channels >= min(height, width):
        return []
    msg = f"input.shape {shape} looks channels-last [H, W, C], but images are [C, H, W]"
    return [
        warning(
            ("input", "shape"),
            "channels-last",
            msg,
            f"did you mean [{channels}, {height}, {width}]?",
        )
    ]


class Lint(NamedTuple):
    """One lint: stable code, one-sentence purpose, the spec sections it reads, handler."""

    code: str
    purpose: str
    inputs: frozenset[str]
    check: Callable[[LintContext], list[Finding]]


LAYERS = frozenset({"layers"})


LINTS: tuple[Lint, ...] = (
    Lint(
        "saturating-stack",
        "2+ sigmoid/tanh hidden layers in a row: vanishing gradients",
        LAYERS,
        _saturating_stack,
    ),
    Lint(
        "linear-collapse",
        "2+ dense layers with only linear activations: one linear map",
        LAYERS,
        _linear_collapse,
    ),
    Lint(
        "init-mismatch",
        "He init with tanh/sigmoid, or Xavier with ReLU-family units",
        frozenset({"init", "layers"}),
        _init_mismatch,
    ),
    Lint(
        "bias-before-batchnorm",
        "a bias right before batchnorm is cancelled",
        LAYERS,
        _bias_before_batchnorm,
    ),
    Lint("dropout-rate", "dropout rates outside 0.05-0.5, or 0", LAYERS, _dropout_rate),
    Lint("hidden-softmax", "softmax in a hidden layer", LAYERS, _hidden_softmax),
    Lint("double-activation", "two non-linearities back to back", LAYERS, _double_activation),
    Lint(
        "channels-last",
        "an image shape given as [H, W, C] instead of [C, H, W]",
        frozenset({"input", "layers"}),
        _channels_last,
    ),
)
"""Every lint, in the order they run."""


def run_lints(spec: Any, valid: frozenset[str]) -> list[Finding]:
    """The warnings of every lint whose input sections are all in `valid`."""
    if "layers" not in valid:  # every lint reads the layers
        return []
    ctx = LintContext(spec, list(all_blocks(spec.layers)))
    return [f for lint in LINTS if lint.inputs <= valid for f in lint.check(ctx)]
