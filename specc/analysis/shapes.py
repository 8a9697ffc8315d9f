"""Shape inference and PyTorch parameter counts through every layer kind.

Shapes are per example: vectors [F], images [C, H, W] (channels first), sequences [T, F]
(channels last: conv1d, 1-d pooling, batchnorm and recurrent layers treat F as channels).
A layer whose input does not fit stops inference of its block; the later layers' shapes are
unknown and are not checked (one root cause, one error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from specc.analysis.blocks import Site, sites_of
from specc.analysis.inits import output_init, weight_init
from specc.analysis.ir import (
    NO_OPTIONS,
    ActivationIR,
    BatchNormOptions,
    Conv1dOptions,
    Conv2dOptions,
    DenseOptions,
    DropoutOptions,
    GaussianLatentOptions,
    GaussianNoiseOptions,
    LayerIR,
    LayerNormOptions,
    LayerOptions,
    MaxoutOptions,
    Pair,
    Pool1dOptions,
    Pool2dOptions,
    PReluOptions,
    RbfOptions,
    RecurrentOptions,
    ResidualOptions,
    SeparableConv2dOptions,
    Shape,
    TransformerOptions,
)
from specc.analysis.kinds import ACTIVATIONS, LAYER_KINDS, OUTPUT_OPTIONS
from specc.analysis.naming import OUTPUT_IDENT, Namer, source_of
from specc.analysis.report import Finding, Path, error, fmt_shape, warning

RANK_NAMES = {1: "a vector", 2: "a sequence", 3: "an image"}

RANK_ERRORS: dict[frozenset[int], tuple[str, str, str]] = {
    frozenset({1}): (
        "needs-vector",
        "a vector [F]",
        "add a flatten (or global_avgpool) layer before it",
    ),
    frozenset({2}): (
        "needs-sequence",
        "a sequence [T, F]",
        "give input.shape as [T, F] (8×8 images as [8, 8]: rows as steps), or keep the steps"
        " in the layer before it (return_sequences: true, or a transformer's reduce: none)",
    ),
    frozenset({3}): (
        "needs-image",
        "an image [C, H, W]",
        "give input.shape as [C, H, W], channels first (e.g. [1, 8, 8] for 8×8 grey images)",
    ),
    frozenset({2, 3}): (
        "global-pool-vector",
        "an image [C, H, W] or a sequence [T, F]",
        "its input is already a vector: remove this layer",
    ),
}
"""code, what the layer needs, and the hint, by accepted ranks."""


@dataclass
class Step:
    """The result of one layer: output shape (None: unknown), parameters, options, findings."""

    out: Shape | None
    params: int = 0
    options: LayerOptions = NO_OPTIONS
    findings: list[Finding] = field(default_factory=list)


# --- small helpers ------------------------------------------------------------------------


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """A size given once or per axis, as (h, w)."""
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def channels(shape: Shape) -> int:
    """The channel/feature count: C of an image, F of a vector or sequence."""
    return shape[0] if len(shape) == 3 else shape[-1]


def rank_name(shape: Shape) -> str:
    """'a vector', 'a sequence' or 'an image' for a shape's rank."""
    return RANK_NAMES.get(len(shape), f"a {len(shape)}-d tensor")


def _dims(values: Sequence[int]) -> str:
    """`5` or `5×5` for messages."""
    return "×".join(str(v) for v in values)


def sliding(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int] | None,
    dilation: Sequence[int],
    at: Path,
    what: str,
) -> tuple[Shape | None, list[Finding]]:
    """Output sizes floor((n + 2p − d(k−1) − 1)/s) + 1 per axis ('same' when padding is None)."""
    if padding is None:
        return tuple(-(-n // s) for n, s in zip(sizes, stride, strict=True)), []
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    padded = [n + 2 * p for n, p in zip(sizes, padding, strict=True)]
    out = tuple((n - span) // s + 1 for n, span, s in zip(padded, spans, stride, strict=True))
    if min(out) >= 1:
        return out, []
    msg = (
        f"the {what} spans {_dims(spans)} but its input is only {_dims(padded)}"
        f" (padding included): the output would be empty"
    )
    hint = f"use a smaller {at[-1]}, add padding, or remove a pooling layer before it"
    return None, [error(at, "shape-collapse", msg, hint)]


def conv_padding(padding: int | str, dims: int) -> tuple[int, ...] | None:
    """Numeric padding per axis, or None for 'same' (which the IR keeps as 'same')."""
    if padding == "same":
        return None
    return (0 if padding == "valid" else int(padding),) * dims


def activation_ir(activation: Any, shape: Shape) -> tuple[ActivationIR, int]:
    """A resolved activation and its parameter count (PReLU: 1 or one slope per channel)."""
    options = activation.model_dump(mode="python", exclude={"name"})
    if activation.name != "prelu":
        return ActivationIR(activation.name, ACTIVATIONS[activation.name].options(**options)), 0
    prelu = PReluOptions(**options, channels=channels(shape))
    return ActivationIR(activation.name, prelu), prelu.slopes


# --- one handler per layer kind: (params, input shape, params path) -> Step ---------------


def _dense(p: Any, shape: Shape, at: Path) -> Step:
    """h = g(Wᵀx + b)."""
    return Step((p.units,), shape[0] * p.units + p.units * p.bias, DenseOptions(p.units, p.bias))


def _dropout(p: Any, shape: Shape, at: Path) -> Step:
    """Shape-preserving."""
    return Step(shape, 0, DropoutOptions(p.rate))


def _noise(p: Any, shape: Shape, at: Path) -> Step:
    """Shape-preserving."""
    return Step(shape, 0, GaussianNoiseOptions(p.std))


def _activation(p: Any, shape: Shape, at: Path) -> Step:
    """Shape-preserving (a PReLU's slopes are counted with the activation)."""
    return Step(shape)


def _batchnorm(p: Any, shape: Shape, at: Path) -> Step:
    """γ and β per feature (vectors, sequences) or per channel (images)."""
    dims: Literal[1, 2] = 2 if len(shape) == 3 else 1
    return Step(shape, 2 * channels(shape), BatchNormOptions(p.momentum, p.eps, dims))


def _layernorm(p: Any, shape: Shape, at: Path) -> Step:
    """γ and β over (F,) for vectors and sequences, over (C, H, W) for images."""
    normalized = shape if len(shape) == 3 else (shape[-1],)
    return Step(shape, 2 * math.prod(normalized), LayerNormOptions(p.eps, normalized))


def _maxout(p: Any, shape: Shape, at: Path) -> Step:
    """units × pieces affine maps of the input."""
    n = p.units * p.pieces
    return Step((p.units,), shape[0] * n + n, MaxoutOptions(p.units, p.pieces))


def _rbf(p: Any, shape: Shape, at: Path) -> Step:
    """A centre per unit plus one width per unit."""
    return Step((p.units,), p.units * shape[0] + p.units, RbfOptions(p.units, p.sigma))


def _conv1d(p: Any, shape: Shape, at: Path) -> Step:
    """Convolution over T of a [T, F] sequence with F input channels."""
    steps, cin = shape
    pads = conv_padding(p.padding, 1)
    out, found = sliding(
        (steps,), (p.kernel_size,), (p.stride,), pads, (p.dilation,), (*at, "kernel_size"), "kernel"
    )
    padding: int | Literal["same"] = "same" if pads is None else pads[0]
    options = Conv1dOptions(p.filters, p.kernel_size, p.stride, padding, p.dilation, p.bias)
    params = cin * p.filters * p.kernel_size + p.filters * p.bias
    return Step(None if out is None else (out[0], p.filters), params, options, found)


def _conv2d(p: Any, shape: Shape, at: Path) -> Step:
    """Convolution over H, W of a [C, H, W] image."""
    cin, h, w = shape
    kernel, stride, dilation = pair(p.kernel_size), pair(p.stride), pair(p.dilation)
    pads = conv_padding(p.padding, 2)
    out, found = sliding((h, w), kernel, stride, pads, dilation, (*at, "kernel_size"), "kernel")
    options = Conv2dOptions(p.filters, kernel, stride, pads_2d(pads), dilation, p.bias)
    params = cin * p.filters * kernel[0] * kernel[1] + p.filters * p.bias
    return Step(None if out is None else (p.filters, *out), params, options, found)


def _separable_conv2d(p: Any, shape: Shape, at: Path) -> Step:
    """Depthwise conv (no bias, cin·m channels) then a 1×1 pointwise conv to `filters`."""
    cin, h, w = shape
    kernel, stride = pair(p.kernel_size), pair(p.stride)
    pads = conv_padding(p.padding, 2)
    out, found = sliding((h, w), kernel, stride, pads, (1, 1), (*at, "kernel_size"), "kernel")
    mid = cin * p.depth_multiplier
    options = SeparableConv2dOptions(
        p.filters, kernel, stride, pads_2d(pads), p.depth_multiplier, p.bias
    )
    params = mid * kernel[0] * kernel[1] + mid * p.filters + p.filters * p.bias
    return Step(None if out is None else (p.filters, *out), params, options, found)


def pads_2d(pads: tuple[int, ...] | None) -> Pair | Literal["same"]:
    """The IR's 2-D convolution padding: a pair, or 'same'."""
    return "same" if pads is None else pair(pads)


def pool_geometry(p: Any, dims: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(window, stride, padding) per axis; the stride defaults to the window."""
    if dims == 1:
        stride = p.pool_size if p.stride is None else p.stride
        return (p.pool_size,), (stride,), (p.padding,)
    window = pair(p.pool_size)
    return window, (window if p.stride is None else pair(p.stride)), (p.padding, p.padding)


def _pool1d(p: Any, shape: Shape, at: Path) -> Step:
    """Pooling over T of a [T, F] sequence (floor mode)."""
    window, stride, pads = pool_geometry(p, 1)
    out, found = sliding(shape[:1], window, stride, pads, (1,), (*at, "pool_size"), "pool window")
    options = Pool1dOptions(window[0], stride[0], pads[0])
    return Step(None if out is None else (out[0], shape[1]), 0, options, found)


def _pool2d(p: Any, shape: Shape, at: Path) -> Step:
    """Pooling over H, W of a [C, H, W] image (floor mode)."""
    window, stride, pads = pool_geometry(p, 2)
    out, found = sliding(shape[1:], window, stride, pads, (1, 1), (*at, "pool_size"), "pool window")
    options = Pool2dOptions(pair(window), pair(stride), pair(pads))
    return Step(None if out is None else (shape[0], *out), 0, options, found)


def _global_pool(p: Any, shape: Shape, at: Path) -> Step:
    """[C, H, W] -> [C]; [T, F] -> [F]."""
    return Step((channels(shape),))


def _flatten(p: Any, shape: Shape, at: Path) -> Step:
    """Everything into one vector; a vector stays as it is (with a warning)."""
    if len(shape) > 1:
        return Step((math.prod(shape),))
    msg = f"flatten of a vector {fmt_shape(shape)} does nothing"
    return Step(shape, findings=[warning(at[:-1], "flatten-noop", msg, "remove this layer")])


def _recurrent(kind: str, p: Any, shape: Shape, at: Path) -> Step:
    """Stacked (bi)directional cells: gates·(h·(in + h) + 2h) per layer and direction."""
    _, features = shape
    gates = LAYER_KINDS[kind].gates
    directions = 2 if p.bidirectional else 1
    params, width = 0, features
    for _ in range(p.num_layers):
        params += directions * gates * (p.units * (width + p.units) + 2 * p.units)
        width = p.units * directions
    options = RecurrentOptions(
        p.units,
        p.bidirectional,
        p.return_sequences,
        p.num_layers,
        p.dropout,
        getattr(p, "activation", "tanh"),  # LSTM and GRU cells use tanh
    )
    out = (shape[0], width) if p.return_sequences else (width,)
    return Step(out, params, options)


def transformer_params(steps: int, features: int, o: TransformerOptions) -> int:
    """Projection F→d (when F ≠ d), learned positions T·d, per block LN 2d + q/k/v/out
    4(d² + d) + LN 2d + FFN d·ff + ff + ff·d + d, and the final LayerNorm 2d."""
    d, ff = o.width, o.ff_units
    projection = features * d + d if features != d else 0
    positions = steps * d if o.positional == "learned" else 0
    block = 2 * d + 4 * (d * d + d) + 2 * d + (d * ff + ff) + (ff * d + d)
    return projection + positions + o.layers * block + 2 * d


def _transformer(p: Any, shape: Shape, at: Path) -> Step:
    """[T, F] -> [T, width] through the blocks, then mean | last ([width]) or none ([T, width])."""
    steps, features = shape
    ff = 4 * p.width if p.ff_units is None else p.ff_units
    options = TransformerOptions(p.width, p.heads, ff, p.layers, p.dropout, p.positional, p.reduce)
    out = (steps, p.width) if p.reduce == "none" else (p.width,)
    return Step(out, transformer_params(steps, features, options), options)


def _gaussian_latent(p: Any, shape: Shape, at: Path) -> Step:
    """[F] -> [units]: the mu and log sigma^2 heads, each F * units + units."""
    params = 2 * (shape[0] * p.units + p.units)
    return Step((p.units,), params, GaussianLatentOptions(p.units, p.kl_weight))


HANDLERS: dict[str, Callable[[Any, Shape, Path], Step]] = {
    "dense": _dense,
    "dropout": _dropout,
    "gaussian_noise": _noise,
    "activation": _activation,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "maxout": _maxout,
    "rbf": _rbf,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "separable_conv2d": _separable_conv2d,
    "maxpool1d": _pool1d,
    "avgpool1d": _pool1d,
    "maxpool2d": _pool2d,
    "avgpool2d": _pool2d,
    "global_avgpool": _global_pool,
    "global_maxpool": _global_pool,
    "flatten": _flatten,
    "lstm": lambda p, shape, at: _recurrent("lstm", p, shape, at),
    "gru": lambda p, shape, at: _recurrent("gru", p, shape, at),
    "rnn": lambda p, shape, at: _recurrent("rnn", p, shape, at),
    "transformer_encoder": _transformer,
    "gaussian_latent": _gaussian_latent,
}
"""Shape and parameter rule of every kind except `residual` (which recurses)."""


# --- blocks -------------------------------------------------------------------------------


def rank_check(kind: str, shape: Shape, at: Path) -> Finding | None:
    """An error when a layer of `kind` cannot take an input of this rank."""
    accepted = LAYER_KINDS[kind].ranks
    if accepted is None or len(shape) in accepted:
        return None
    code, want, hint = RANK_ERRORS[accepted]
    msg = f"{kind} needs {want}, but its input is {rank_name(shape)} {fmt_shape(shape)}"
    return error(at, code, msg, hint)


def projectable(a: Shape, b: Shape) -> bool:
    """True when a learned projection maps a to b: only the feature/channel count differs."""
    if len(a) != len(b):
        return False
    return a[:-1] == b[:-1] if len(a) == 2 else a[1:] == b[1:]


def _residual(site: Site, shape: Shape, scheme: str) -> tuple[Step, tuple[LayerIR, ...]]:
    """y = F(x) + x (or + P(x)): the inner block's output must match x, or be projectable."""
    p = site.params
    inner = sites_of(p.layers, (*site.params_path, "layers"))
    children, out, found = infer_block(inner, shape, scheme)
    if out is None:
        return Step(None, findings=found), ()
    fits = out == shape or (p.projection and projectable(shape, out))
    if not fits:
        found.append(_residual_error(site, shape, out))
        return Step(None, findings=found), ()
    params = sum(c.params for c in children)
    if p.projection:
        params += channels(shape) * channels(out)  # bias-free linear map or 1×1 convolution
    return Step(out, params, ResidualOptions(p.projection), found), children


def _residual_error(site: Site, shape: Shape, out: Shape) -> Finding:
    """`residual-shape` at the block (or at `projection` when even it cannot help)."""
    msg = f"the residual block maps {fmt_shape(shape)} to {fmt_shape(out)}, so x cannot be added"
    if projectable(shape, out):
        hint = "set projection: true to add a learned projection of x"
        return error(site.path, "residual-shape", msg, hint)
    hint = (
        "a projection only changes the feature/channel count: keep the inner layers'"
        " spatial and time sizes (padding: same, stride 1, no pooling)"
    )
    path = (*site.params_path, "projection") if site.params.projection else site.path
    return error(path, "residual-shape", msg, hint)


def infer_layer(
    block: Sequence[Site], i: int, shape: Shape, ident: str, scheme: str
) -> tuple[LayerIR | None, list[Finding]]:
    """The IR of hidden layer i of a block (None when its shape does not work out)."""
    site = block[i]
    problem = rank_check(site.kind, shape, site.path)
    if problem is not None:
        return None, [problem]
    children: tuple[LayerIR, ...] = ()
    if site.kind == "residual":
        step, children = _residual(site, shape, scheme)
    else:
        step = HANDLERS[site.kind](site.params, shape, site.params_path)
    if step.out is None:
        return None, step.findings
    activation, extra = (
        (None, 0) if site.activation is None else activation_ir(site.activation, step.out)
    )
    layer = LayerIR(
        kind=site.kind,
        ident=ident,
        source=source_of(site.path),
        in_shape=shape,
        out_shape=step.out,
        params=step.params + extra,
        options=step.options,
        activation=activation,
        weight_init=weight_init(scheme, block, i),
        children=children,
    )
    return layer, step.findings


def infer_block(
    block: Sequence[Site], shape: Shape, scheme: str
) -> tuple[tuple[LayerIR, ...], Shape | None, list[Finding]]:
    """Every layer of a block in order: (layers, output shape or None, findings)."""
    namer = Namer()
    layers: list[LayerIR] = []
    found: list[Finding] = []
    current = shape
    for i, site in enumerate(block):
        layer, problems = infer_layer(block, i, current, namer.ident(site.kind), scheme)
        found.extend(problems)
        if layer is None:
            return tuple(layers), None, found
        layers.append(layer)
        current = layer.out_shape
    return tuple(layers), current, found


def infer_output(output: Any, shape: Shape, scheme: str) -> tuple[LayerIR | None, list[Finding]]:
    """The output unit's dense layer, which needs a vector input."""
    if len(shape) != 1:
        msg = (
            f"the output unit needs a vector [F], but the last hidden layer gives"
            f" {rank_name(shape)} {fmt_shape(shape)}"
        )
        hint = "add a flatten (or global_avgpool) layer at the end of layers"
        return None, [error(("output",), "output-needs-vector", msg, hint)]
    layer = LayerIR(
        kind="output",
        ident=OUTPUT_IDENT,
        source="output",
        in_shape=shape,
        out_shape=(output.units,),
        params=shape[0] * output.units + output.units,
        options=OUTPUT_OPTIONS(output.units, bias=True),
        activation=ActivationIR(output.activation),
        weight_init=output_init(scheme),
    )
    return layer, []
