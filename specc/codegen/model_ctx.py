"""What templates/model.py.j2 places: every identifier, constructor and forward line of model.py.

The template only loops; all decisions live here (style §7). A model is rendered as one class per
residual block (inner blocks first) and the model class itself; each holds `__init__` lines and
`forward` lines, with a shape comment on every forward line taken from the IR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from specc.analysis.ir import (
    ActivationIR,
    BatchNormOptions,
    Conv1dOptions,
    Conv2dOptions,
    DenseOptions,
    DropoutOptions,
    EluOptions,
    GaussianLatentOptions,
    GaussianNoiseOptions,
    GeluOptions,
    LayerIR,
    LayerNormOptions,
    LeakyReluOptions,
    MaxoutOptions,
    Pool1dOptions,
    Pool2dOptions,
    PReluOptions,
    Program,
    RbfOptions,
    RecurrentOptions,
    ResidualOptions,
    SeparableConv2dOptions,
    Shape,
    SoftplusOptions,
    TransformerOptions,
)
from specc.analysis.kinds import family, kinds_where
from specc.codegen.literals import docstring, py, py_float

HELPER_ORDER = (
    "Standardize", "MinMaxScale", "TargetScale", "GaussianNoise", "Maxout", "RBF",
    "SeparableConv2d", "TransposedLinear", "sinusoidal_positions", "TransformerBlock",
    "GaussianLatent",
)  # fmt: skip
"""Custom modules model.py may define, in the order they appear in the file."""

TRANSPARENT = kinds_where("transparent")
"""Layers that may stand between an affine layer and the activation layer that follows it."""

TORCH_MODULES = {
    "maxpool1d": "nn.MaxPool1d",
    "avgpool1d": "nn.AvgPool1d",
    "maxpool2d": "nn.MaxPool2d",
    "avgpool2d": "nn.AvgPool2d",
    "lstm": "nn.LSTM",
    "gru": "nn.GRU",
    "rnn": "nn.RNN",
}
"""The PyTorch module of the kinds whose builder is shared (pools, recurrent layers)."""

TORCH_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "depth_multiplier": 1}
"""PyTorch's defaults of the convolution arguments: an argument equal to its default is left out."""
TORCH_NORM_EPS, TORCH_NORM_MOMENTUM, TORCH_PRELU_INIT = 1e-5, 0.1, 0.25
"""PyTorch's defaults of BatchNorm/LayerNorm eps, BatchNorm momentum and nn.PReLU's init."""

OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class BlockCode:
    """One residual block class of model.py: its attributes and its forward lines."""

    class_name: str
    docstring: str
    init_lines: tuple[str, ...]
    forward_lines: tuple[str, ...]
    """Lines of forward's body, the last one the `return`."""


@dataclass(frozen=True)
class NormalizedForward:
    """forward_normalized(): the network after the input normaliser, which FGSM attacks."""

    docstring: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ModelCode:
    """Everything templates/model.py.j2 places, as ready-made strings."""

    docstring: str
    import_sections: tuple[tuple[str, ...], ...]
    """Import lines grouped as isort wants them: standard library, then third party."""
    helpers: tuple[str, ...]
    """Names of the custom modules the model needs, in HELPER_ORDER."""
    blocks: tuple[BlockCode, ...]
    """Residual block classes, inner blocks before the blocks that hold them."""
    class_name: str
    class_docstring: str
    init_lines: tuple[str, ...]
    forward_docstring: str
    forward_lines: tuple[str, ...]
    predict_docstring: str
    predict_expr: str
    weights: tuple[str, ...]
    """`self.<path>` of each parameter that penalties, max-norm and weight noise apply to."""
    reset_docstring: str
    reset_lines: tuple[str, ...]
    build_docstring: str
    input_shape: str
    output_units: str
    output_activation: str
    forward_normalized: NormalizedForward | None = None
    """regularizers.adversarial: forward split into the normaliser and forward_normalized."""
    heads: HeadsCode | None = None
    """The multitask heads' methods (heads:); None without heads."""
    tied_weights: tuple[str, ...] = ()
    """regularizers.tie: the `(W_a, W_b),  # comment` lines of tied_weights(); empty: none."""
    encode: tuple[str, tuple[str, ...]] | None = None
    """gaussian_latent: encode()'s docstring and lines (input -> mu, log sigma^2); None: none."""


@dataclass
class _Collector:
    """Mutable state while walking the layers: helpers and imports needed, blocks, weights, init."""

    helpers: set[str] = field(default_factory=set)
    functional: bool = False
    math: bool = False
    blocks: list[BlockCode] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    shares: list[str] = field(default_factory=list)
    """`self.<sharer>.weight = self.<owner>.weight` lines (share:), run after every module."""
    latent: tuple[int, str] | None = None
    """gaussian_latent: the index of its forward line and its attribute (encode() stops there)."""


# --- small formatting helpers ---------------------------------------------------------------


def camel(name: str) -> str:
    """CamelCase of a snake_case identifier (residual1 -> Residual1)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def shape_comment(shape: Shape) -> str:
    """`[batch, 128]` for a per-example shape (128,)."""
    return "[" + ", ".join(["batch", *(str(d) for d in shape)]) + "]"


def size(value: Any) -> str:
    """A kernel/stride/padding argument: `3` for 3 or (3, 3), `(3, 5)` for a non-square pair."""
    if isinstance(value, str):
        return py(value)
    if isinstance(value, (tuple, list)):
        if len(set(value)) == 1:
            return str(value[0])
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def is_default(value: Any, default: int) -> bool:
    """True when an int or pair argument equals PyTorch's default (then it is left out)."""
    if isinstance(value, (tuple, list)):
        return all(v == default for v in value)
    return value == default


def _call(func: str, *args: str, **kwargs: str) -> str:
    """`func(a, b, k=v)` from already-rendered argument strings."""
    parts = [*args, *(f"{k}={v}" for k, v in kwargs.items())]
    return f"{func}({', '.join(parts)})"


# --- activations ------------------------------------------------------------------------


def _layout(rank: int) -> str:
    """How a per-example tensor of this rank is laid out: vector, sequence or image."""
    return {1: "vector", 2: "sequence", 3: "image"}[rank]


def activation_expr(
    act: ActivationIR | None, expr: str, layout: str, prelu_attr: str, out: _Collector
) -> str:
    """`expr` wrapped in the activation; layout is vector, sequence (channels-last) or
    channels_first (images, and conv1d/pool1d before their transpose back)."""
    if act is None or act.name == "linear":
        return expr
    name, opts = act.name, act.options
    if name in ("relu", "sigmoid", "tanh"):
        return f"torch.{name}({expr})"
    if name == "softmax":
        dim = 1 if layout == "channels_first" else -1
        return f"torch.softmax({expr}, dim={dim})"
    if isinstance(opts, PReluOptions):
        if opts.slopes > 1 and layout == "sequence":
            # nn.PReLU's per-channel slopes apply to dim 1; a sequence keeps features last
            return f"self.{prelu_attr}({expr}.transpose(1, 2)).transpose(1, 2)"
        return f"self.{prelu_attr}({expr})"
    out.functional = True
    if name in ("relu6", "silu"):
        return f"F.{name}({expr})"
    if isinstance(opts, LeakyReluOptions):
        return f"F.leaky_relu({expr}, negative_slope={py_float(opts.slope)})"
    if isinstance(opts, EluOptions):
        return f"F.elu({expr}, alpha={py_float(opts.alpha)})"
    if isinstance(opts, SoftplusOptions):
        return f"F.softplus({expr}, beta={py_float(opts.beta)})"
    if isinstance(opts, GeluOptions):
        if opts.approximate == "tanh":
            return f'F.gelu({expr}, approximate="tanh")'
        return f"F.gelu({expr})"
    raise ValueError(f"unknown activation {name!r}")


def prelu_module(opts: PReluOptions) -> str:
    """The nn.PReLU constructor for a prelu activation."""
    init = opts.init
    args = [str(opts.slopes)] if opts.slopes != 1 or init != TORCH_PRELU_INIT else []
    kwargs = {"init": py_float(init)} if init != TORCH_PRELU_INIT else {}
    return _call("nn.PReLU", *args, **kwargs)


# --- initialisation -----------------------------------------------------------------------


def _kaiming_args(act: ActivationIR | None) -> dict[str, str]:
    """kaiming_* keyword arguments for the activation that follows the weights."""
    if act is None:
        return {"nonlinearity": '"linear"'}
    kind = family(act.name)
    if kind == "relu":
        return {"nonlinearity": '"relu"'}
    if kind == "leaky":  # the gain of the (initial) negative slope
        opts = act.options
        slope = opts.slope if isinstance(opts, LeakyReluOptions) else _as(PReluOptions, opts).init
        return {"a": py_float(slope), "nonlinearity": '"leaky_relu"'}
    if kind == "saturating":
        return {"nonlinearity": f'"{act.name}"'}
    return {"nonlinearity": '"linear"'}


def init_call(rule: str, weight: str, act: ActivationIR | None) -> str | None:
    """The nn.init call for one weight tensor under an init rule (None for torch's default)."""
    if rule == "torch":
        return None
    if rule in ("he_normal", "he_uniform"):
        func = "kaiming_normal_" if rule == "he_normal" else "kaiming_uniform_"
        return _call(f"nn.init.{func}", weight, **_kaiming_args(act))
    if rule in ("xavier_normal", "xavier_uniform"):
        func = f"nn.init.{rule}_"
        if act is not None and act.name == "tanh":
            return _call(func, weight, gain='nn.init.calculate_gain("tanh")')
        return _call(func, weight)
    if rule == "orthogonal":
        return _call("nn.init.orthogonal_", weight)
    raise ValueError(f"unknown weight init {rule!r}")


def _following_activation(layers: tuple[LayerIR, ...], index: int) -> ActivationIR | None:
    """The activation that follows layer `index`: its own, or that of an `activation` layer
    after it with only normalisation, dropout or noise in between (dense -> batchnorm -> relu)."""
    own = layers[index].activation
    if own is not None and own.name != "linear":
        return own
    for later in layers[index + 1 :]:
        if later.kind == "activation":
            return later.activation
        if later.kind not in TRANSPARENT:
            break
    return own


# --- layers -------------------------------------------------------------------------------


@dataclass
class _Emit:
    """One layer being rendered into its block: the IR, the block's lines and the collector."""

    layers: tuple[LayerIR, ...]
    index: int
    owner: str
    """Attribute path of the block from the model: `self`, `self.res1`."""
    init: list[str]
    fwd: list[str]
    out: _Collector
    bias_init: float

    @property
    def layer(self) -> LayerIR:
        """The layer being rendered."""
        return self.layers[self.index]

    def options(self, cls: type[OptionsT]) -> OptionsT:
        """The layer's resolved options, which are of class `cls` for its kind."""
        return _as(cls, self.layer.options)

    @property
    def rank(self) -> int:
        """Rank of the per-example input: 1 vector, 2 sequence, 3 image."""
        return len(self.layer.in_shape)

    @property
    def prelu_attr(self) -> str:
        """Attribute of the nn.PReLU a prelu activation needs."""
        ident = self.layer.ident
        return ident if self.layer.kind == "activation" else f"{ident}_prelu"

    def module(self, constructor: str, comment: str = "") -> None:
        """`self.<ident> = <constructor>` in __init__."""
        self.init.append(f"self.{self.layer.ident} = {constructor}{comment}")

    def forward(self, call: str, layout: str | None = None, after: str = "") -> None:
        """`x = act(call)after  # [batch, ...]` in forward; layout decides softmax/prelu axes."""
        where = layout or _layout(self.rank)
        expr = activation_expr(self.layer.activation, call, where, self.prelu_attr, self.out)
        self.fwd.append(f"x = {expr}{after}  # {shape_comment(self.layer.out_shape)}")

    def channels_first(self, call: str) -> None:
        """A forward line around a module that wants [batch, F, T] on a [T, F] sequence."""
        self.forward(f"{call}(x.transpose(1, 2))", "channels_first", ".transpose(1, 2)")

    def weight(self, *names: str, rule: str | None = None, act: Any = "following") -> None:
        """Record one penalised weight tensor of this layer and its init line."""
        path = ".".join([self.owner, self.layer.ident, *names])
        self.out.weights.append(path)
        gain = _following_activation(self.layers, self.index) if act == "following" else act
        line = init_call(rule or self.layer.weight_init, path, gain)
        if line is not None:
            self.out.reset.append(line)

    def bias(self, *names: str) -> None:
        """Record one bias vector's init line: the spec's constant init.bias."""
        path = ".".join([self.owner, self.layer.ident, *names])
        self.out.reset.append(f"nn.init.constant_({path}, {py_float(self.bias_init)})")

    def affine(self, bias: bool) -> None:
        """The weight and (when the layer has one) the bias of a dense or conv layer; a layer
        that shares another's weight (share:) gets that tensor instead, initialised and
        penalised once, with its owner."""
        share = self.layer.shares
        if share is None:
            self.weight("weight")
        else:
            how = ", transposed" if share.transpose else ""
            self.out.shares.append(f"# {self.layer.source}: {share.name}'s weight{how}")
            self.out.shares.append(
                f"{self.owner}.{self.layer.ident}.weight = self.{'.'.join(share.owner)}.weight"
            )
        if bias:
            self.bias("bias")


def _as(cls: type[OptionsT], options: object) -> OptionsT:
    """`options` as the class analysis resolves it into (an internal error if it is not)."""
    if not isinstance(options, cls):
        raise TypeError(f"expected {cls.__name__} options, got {type(options).__name__}")
    return options


def _conv_kwargs(args: dict[str, Any], bias: bool) -> dict[str, str]:
    """stride/padding/dilation/depth_multiplier/bias keyword arguments that differ from
    PyTorch's defaults ('same' padding always stays)."""
    kwargs = {
        key: size(value)
        for key, value in args.items()
        if isinstance(value, str) or not is_default(value, TORCH_DEFAULTS[key])
    }
    if not bias:
        kwargs["bias"] = "False"
    return kwargs


def _norm_kwargs(eps: float, momentum: float = TORCH_NORM_MOMENTUM) -> dict[str, str]:
    """eps/momentum of a norm layer that differ from PyTorch's defaults."""
    kwargs = {}
    if eps != TORCH_NORM_EPS:
        kwargs["eps"] = py_float(eps)
    if momentum != TORCH_NORM_MOMENTUM:
        kwargs["momentum"] = py_float(momentum)
    return kwargs


def _dense(e: _Emit) -> None:
    """nn.Linear on the last axis, then the activation."""
    o = e.options(DenseOptions)
    bias = {} if o.bias else {"bias": "False"}
    module = "nn.Linear"
    if e.layer.shares is not None and e.layer.shares.transpose:
        e.out.helpers.add("TransposedLinear")
        e.out.functional = True
        module = "TransposedLinear"
    e.module(_call(module, str(e.layer.in_shape[-1]), str(o.units), **bias))
    e.affine(o.bias)
    e.forward(f"self.{e.layer.ident}(x)")


def _output(e: _Emit) -> None:
    """The output unit's nn.Linear: forward returns its logits / raw values."""
    o = e.options(DenseOptions)
    e.module(_call("nn.Linear", str(e.layer.in_shape[-1]), str(o.units)))
    e.affine(o.bias)
    e.fwd.append(f"return self.{e.layer.ident}(x)  # {shape_comment(e.layer.out_shape)}")


def _dropout(e: _Emit) -> None:
    """nn.Dropout, which is inverted dropout."""
    comment = "  # inverted: kept units are scaled by 1/(1 - p) while training"
    e.module(f"nn.Dropout({py_float(e.options(DropoutOptions).rate)})", comment)
    e.forward(f"self.{e.layer.ident}(x)")


def _gaussian_noise(e: _Emit) -> None:
    """The GaussianNoise module: noise in training mode only."""
    e.out.helpers.add("GaussianNoise")
    e.module(f"GaussianNoise({py_float(e.options(GaussianNoiseOptions).std)})")
    e.forward(f"self.{e.layer.ident}(x)")


def _activation(e: _Emit) -> None:
    """A bare activation (an nn.PReLU attribute for prelu); images take softmax over channels."""
    e.forward("x", "channels_first" if e.rank == 3 else None)


def _batchnorm(e: _Emit) -> None:
    """BatchNorm2d on images, BatchNorm1d on vectors and (transposed) sequences."""
    o = e.options(BatchNormOptions)
    kwargs = _norm_kwargs(o.eps, o.momentum)
    if o.dims == 2:
        e.module(_call("nn.BatchNorm2d", str(e.layer.in_shape[0]), **kwargs))
        e.forward(f"self.{e.layer.ident}(x)", "channels_first")
        return
    e.module(_call("nn.BatchNorm1d", str(e.layer.in_shape[-1]), **kwargs))
    if e.rank == 2:
        e.channels_first(f"self.{e.layer.ident}")
    else:
        e.forward(f"self.{e.layer.ident}(x)")


def _layernorm(e: _Emit) -> None:
    """nn.LayerNorm over the normalised shape (the last axis)."""
    o = e.options(LayerNormOptions)
    shape = o.normalized_shape
    dims = str(shape[0]) if len(shape) == 1 else tuple_repr(shape)
    e.module(_call("nn.LayerNorm", dims, **_norm_kwargs(o.eps)))
    e.forward(f"self.{e.layer.ident}(x)")


def _maxout(e: _Emit) -> None:
    """The Maxout module; He's ReLU gain when no activation follows (maxout generalises ReLU)."""
    e.out.helpers.add("Maxout")
    o = e.options(MaxoutOptions)
    e.module(_call("Maxout", str(e.layer.in_shape[-1]), str(o.units), str(o.pieces)))
    gain = _following_activation(e.layers, e.index) or ActivationIR("relu")
    e.weight("linear", "weight", act=gain)
    e.bias("linear", "bias")
    e.forward(f"self.{e.layer.ident}(x)")


def _rbf(e: _Emit) -> None:
    """The RBF module: centres are weights, widths are not."""
    e.out.helpers.add("RBF")
    e.out.math = True
    o = e.options(RbfOptions)
    e.module(_call("RBF", str(e.layer.in_shape[-1]), str(o.units), sigma=py_float(o.sigma)))
    e.weight("centres", act=None)
    e.forward(f"self.{e.layer.ident}(x)")


def _conv1d(e: _Emit) -> None:
    """nn.Conv1d over time: sequences keep features last, so forward transposes around it."""
    o = e.options(Conv1dOptions)
    args = (str(e.layer.in_shape[-1]), str(o.filters), str(o.kernel_size))
    geometry = {"stride": o.stride, "padding": o.padding, "dilation": o.dilation}
    e.module(_call("nn.Conv1d", *args, **_conv_kwargs(geometry, o.bias)))
    e.affine(o.bias)
    e.channels_first(f"self.{e.layer.ident}")


def _conv2d(e: _Emit) -> None:
    """nn.Conv2d on [C, H, W] images."""
    o = e.options(Conv2dOptions)
    args = (str(e.layer.in_shape[0]), str(o.filters), size(o.kernel_size))
    geometry = {"stride": o.stride, "padding": o.padding, "dilation": o.dilation}
    e.module(_call("nn.Conv2d", *args, **_conv_kwargs(geometry, o.bias)))
    e.affine(o.bias)
    e.forward(f"self.{e.layer.ident}(x)", "channels_first")


def _separable_conv2d(e: _Emit) -> None:
    """The SeparableConv2d module: only the pointwise convolution meets the activation."""
    e.out.helpers.add("SeparableConv2d")
    o = e.options(SeparableConv2dOptions)
    args = (str(e.layer.in_shape[0]), str(o.filters), size(o.kernel_size))
    geometry = {"stride": o.stride, "padding": o.padding, "depth_multiplier": o.depth_multiplier}
    e.module(_call("SeparableConv2d", *args, **_conv_kwargs(geometry, o.bias)))
    e.weight("depthwise", "weight", act=None)
    e.weight("pointwise", "weight")
    if o.bias:
        e.bias("pointwise", "bias")
    e.forward(f"self.{e.layer.ident}(x)", "channels_first")


def _pool(e: _Emit) -> None:
    """nn.MaxPool/AvgPool 1d (transposed around, on sequences) or 2d (images)."""
    one_d = e.layer.kind.endswith("1d")
    o = e.options(Pool1dOptions) if one_d else e.options(Pool2dOptions)
    kwargs = {}
    if size(o.stride) != size(o.pool_size):
        kwargs["stride"] = size(o.stride)
    if not is_default(o.padding, 0):
        kwargs["padding"] = size(o.padding)
    e.module(_call(TORCH_MODULES[e.layer.kind], size(o.pool_size), **kwargs))
    if one_d:
        e.channels_first(f"self.{e.layer.ident}")
    else:
        e.forward(f"self.{e.layer.ident}(x)", "channels_first")


def _global_pool(e: _Emit) -> None:
    """Mean or max over the spatial axes of an image or the time axis of a sequence."""
    reduce = "mean" if e.layer.kind == "global_avgpool" else "amax"
    dims = "dim=(2, 3)" if e.rank == 3 else "dim=1"
    e.forward(f"x.{reduce}({dims})", "vector")


def _flatten(e: _Emit) -> None:
    """Everything but the batch axis into one."""
    e.forward("x.flatten(1)", "vector")


def _recurrent(e: _Emit) -> None:
    """nn.LSTM/GRU/RNN, batch-first: every step, or the last layer's final hidden states."""
    o, ident, layer = e.options(RecurrentOptions), e.layer.ident, e.layer
    units, dirs, num_layers = o.units, 2 if o.bidirectional else 1, o.num_layers
    kwargs: dict[str, str] = {}
    if num_layers > 1:
        kwargs["num_layers"] = str(num_layers)
    if o.dropout > 0:
        kwargs["dropout"] = py_float(o.dropout)
    if o.nonlinearity != "tanh":  # only rnn has a choice (LSTM and GRU cells use tanh)
        kwargs["nonlinearity"] = f'"{o.nonlinearity}"'
    kwargs["batch_first"] = "True"
    if dirs == 2:
        kwargs["bidirectional"] = "True"
    e.module(_call(TORCH_MODULES[layer.kind], str(layer.in_shape[-1]), str(units), **kwargs))

    steps = shape_comment((layer.in_shape[0], units * dirs))
    out_shape = shape_comment(layer.out_shape)
    if o.return_sequences:
        e.fwd.append(f"x, _ = self.{ident}(x)  # {out_shape}")
    elif dirs == 1:
        e.fwd.append(f"x, _ = self.{ident}(x)  # {steps}")
        e.fwd.append(f"x = x[:, -1]  # last step: {out_shape}")
    else:
        # the backward direction's final state is its output at the first step
        e.fwd.append(f"x, _ = self.{ident}(x)  # {steps}, forward | backward")
        e.fwd.append(
            f"x = torch.cat((x[:, -1, :{units}], x[:, 0, {units}:]), dim=-1)"
            f"  # h_n of both directions: {out_shape}"
        )

    # He scales for the recurrence's nonlinearity; Xavier is used without a gain, as in Keras,
    # and makes the recurrent matrices orthogonal
    xavier = layer.weight_init.startswith("xavier")
    gain = None if xavier else ActivationIR(o.nonlinearity)
    hh_rule = "orthogonal" if xavier else layer.weight_init
    for n in range(num_layers):
        for suffix in ("", "_reverse")[:dirs]:
            e.weight(f"weight_ih_l{n}{suffix}", act=gain)
            e.weight(f"weight_hh_l{n}{suffix}", rule=hh_rule, act=gain)
            e.bias(f"bias_ih_l{n}{suffix}")
            e.bias(f"bias_hh_l{n}{suffix}")


def _projection(layer: LayerIR) -> str:
    """The bias-free skip projection of a residual block: a linear map or a 1x1 convolution."""
    if len(layer.in_shape) == 3:
        (c_in, h_in, w_in), (c_out, h_out, w_out) = layer.in_shape, layer.out_shape
        strides = []
        for n_in, n_out in ((h_in, h_out), (w_in, w_out)):
            stride = next((s for s in range(1, n_in + 1) if (n_in - 1) // s + 1 == n_out), None)
            if stride is None:
                raise ValueError(f"{layer.source}: no 1x1 convolution maps {n_in} to {n_out}")
            strides.append(stride)
        kwargs = {"stride": size(strides)} if strides != [1, 1] else {}
        return _call("nn.Conv2d", str(c_in), str(c_out), "1", **kwargs, bias="False")
    return _call("nn.Linear", str(layer.in_shape[-1]), str(layer.out_shape[-1]), bias="False")


def _residual(e: _Emit) -> None:
    """A block class of its own (inner blocks first): F(x) + x, or F(x) + projection(x)."""
    layer = e.layer
    owner = f"{e.owner}.{layer.ident}"
    class_name = camel(owner.removeprefix("self.").replace(".", "_")) + "Block"
    inner = _Emit(
        layers=layer.children,
        index=0,
        owner=owner,
        init=[],
        fwd=[],
        out=e.out,
        bias_init=e.bias_init,
    )
    projection = e.options(ResidualOptions).projection
    if projection:
        inner.init.append(f"self.projection = {_projection(layer)}")
        inner.fwd.append(f"skip = self.projection(x)  # {shape_comment(layer.out_shape)}")
        e.weight("projection", "weight", act=None)
    else:
        inner.fwd.append("skip = x")
    _block(inner)
    inner.fwd.append(f"return x + skip  # {shape_comment(layer.out_shape)}")
    skip = "a bias-free projection of x" if projection else "x"
    e.out.blocks.append(
        BlockCode(
            class_name=class_name,
            docstring=docstring(f"Residual block of {layer.source}: F(x) + {skip}.", indent=4),
            init_lines=tuple(inner.init),
            forward_lines=tuple(inner.fwd),
        )
    )
    e.module(f"{class_name}()")
    e.forward(f"self.{layer.ident}(x)")


TRANSFORMER_REDUCE = {
    "mean": ("x.mean(dim=1)", "mean over the steps"),
    "last": ("x[:, -1]", "the last step"),
    "none": ("x", "every step"),
}
"""reduce: the expression and the comment of the encoder's last forward line."""

TRANSFORMER_LINEARS = ("query", "key", "value", "out", "ff1", "ff2")
"""The nn.Linear attributes of a TransformerBlock (templates/model.py.j2), in order."""


def _transformer(e: _Emit) -> None:
    """A class of its own for the encoder (like a residual block): the per-step projection,
    the positions, `layers` TransformerBlock modules written out, the final LayerNorm and the
    reduction over steps."""
    o, layer = e.options(TransformerOptions), e.layer
    (steps, features), d = layer.in_shape, o.width
    owner = f"{e.owner}.{layer.ident}"
    seq = shape_comment((steps, d))
    init, fwd = [], []
    e.out.helpers.add("TransformerBlock")
    e.out.functional = True
    if features != d:
        init.append(f"self.projection = nn.Linear({features}, {d})  # each step's F to width")
        fwd.append(f"x = self.projection(x)  # {seq}")
        e.weight("projection", "weight", act=None)
        e.bias("projection", "bias")
    if o.positional == "learned":
        init.append(f"self.positions = nn.Parameter(torch.zeros({steps}, {d}))  # one per step")
        fwd.append(f"x = x + self.positions  # learned positions: {seq}")
        e.out.reset.append(f"nn.init.normal_({owner}.positions, std=0.02)")
    elif o.positional == "sinusoidal":
        e.out.helpers.add("sinusoidal_positions")
        e.out.math = True
        table = f"sinusoidal_positions({steps}, {d})"
        init.append(f'self.register_buffer("positions", {table}, persistent=False)')
        fwd.append(f"x = x + self.positions  # sinusoidal positions: {seq}")
    gelu = ActivationIR("gelu")
    for n in range(1, o.layers + 1):
        args = f"{d}, heads={o.heads}, ff_units={o.ff_units}, dropout={py_float(o.dropout)}"
        init.append(f"self.block{n} = TransformerBlock({args})")
        fwd.append(f"x = self.block{n}(x)  # {seq}")
        for linear in TRANSFORMER_LINEARS:
            e.weight(f"block{n}", linear, "weight", act=gelu if linear == "ff1" else None)
            e.bias(f"block{n}", linear, "bias")
    init.append(f"self.norm = nn.LayerNorm({d})  # the pre-norm residual stream's final norm")
    fwd.append(f"x = self.norm(x)  # {seq}")
    expr, what = TRANSFORMER_REDUCE[o.reduce]
    fwd.append(f"return {expr}  # {what}: {shape_comment(layer.out_shape)}")
    class_name = camel(owner.removeprefix("self.").replace(".", "_")) + "Encoder"
    positions = "no positions" if o.positional == "none" else f"{o.positional} positions"
    summary = (
        f"Transformer encoder of {layer.source}: {o.layers} pre-norm "
        f"block{'s' if o.layers > 1 else ''} of {o.heads}-head self-attention at width {d}, "
        f"{positions}, {TRANSFORMER_REDUCE[o.reduce][1]} out."
    )
    code = BlockCode(class_name, docstring(summary, indent=4), tuple(init), tuple(fwd))
    e.out.blocks.append(code)
    e.module(f"{class_name}()")
    e.forward(f"self.{layer.ident}(x)")


def _gaussian_latent(e: _Emit) -> None:
    """The GaussianLatent module (VAE): the mu and log sigma^2 heads are its weights."""
    e.out.helpers.add("GaussianLatent")
    e.out.latent = (len(e.fwd), e.layer.ident)
    units = e.options(GaussianLatentOptions).units
    comment = "  # z = mu + sigma * eps while training, mu in eval"
    e.module(_call("GaussianLatent", str(e.layer.in_shape[-1]), str(units)), comment)
    for head in ("mu", "log_var"):
        e.weight(head, "weight", act=None)
        e.bias(head, "bias")
    e.forward(f"self.{e.layer.ident}(x)")


def _encode(fwd: list[str], out: _Collector, units: int) -> tuple[str, tuple[str, ...]] | None:
    """encode() of a VAE: forward's lines up to the gaussian_latent, which returns its mu and
    log sigma^2 (export.onnx.part: encoder exports mu); None without a latent."""
    if out.latent is None:
        return None
    at, ident = out.latent
    doc = docstring(
        f"The encoder: raw inputs to q(z|x)'s mean mu and log variance log sigma^2, each "
        f"{shape_comment((units,))} (no sampling)."
    )
    ret = f"return self.{ident}.mu(x), self.{ident}.log_var(x)  # {shape_comment((units,))} twice"
    return doc, (*fwd[:at], ret)


LAYER_CODE: dict[str, Callable[[_Emit], None]] = {
    "dense": _dense,
    "output": _output,
    "dropout": _dropout,
    "gaussian_noise": _gaussian_noise,
    "activation": _activation,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "maxout": _maxout,
    "rbf": _rbf,
    "residual": _residual,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "separable_conv2d": _separable_conv2d,
    "maxpool1d": _pool,
    "maxpool2d": _pool,
    "avgpool1d": _pool,
    "avgpool2d": _pool,
    "global_avgpool": _global_pool,
    "global_maxpool": _global_pool,
    "flatten": _flatten,
    "lstm": _recurrent,
    "gru": _recurrent,
    "rnn": _recurrent,
    "transformer_encoder": _transformer,
    "gaussian_latent": _gaussian_latent,
}
"""How each layer kind becomes __init__ and forward lines, weights and init calls."""


def _block(e: _Emit) -> None:
    """Render every layer of a block in order (e.index walks the block)."""
    for index, layer in enumerate(e.layers):
        e.index = index
        if layer.kind not in LAYER_CODE:
            raise ValueError(f"{layer.source}: no code for layer kind {layer.kind!r}")
        LAYER_CODE[layer.kind](e)
        act = layer.activation
        if act is not None and isinstance(act.options, PReluOptions) and layer.kind != "output":
            e.init.append(f"self.{e.prelu_attr} = {prelu_module(act.options)}")


# --- the model ----------------------------------------------------------------------------


def _normalizer(program: Program, out: _Collector) -> str:
    """The input normaliser's constructor: statistics per feature (vectors, sequences) or per
    channel (images), as buffers shaped to broadcast over the batch."""
    model = program.model
    if model.normalize == "none":
        return "nn.Identity()  # data.normalize: none"
    rank = len(model.input_shape)
    dims = {1: (0,), 2: (0, 1), 3: (0, 2, 3)}[rank]
    shape = tuple(1 if axis + 1 in dims else n for axis, n in enumerate(model.input_shape))
    helper = "Standardize" if model.normalize == "standard" else "MinMaxScale"
    out.helpers.add(helper)
    return f"{helper}({tuple_repr(shape)}, dims={tuple_repr(dims)})"


def _build_doc(program: Program) -> str:
    """build_model's docstring: which normalisers to fit before training."""
    fits = [] if program.model.normalize == "none" else ["model.normalize.fit(x_train)"]
    if program.model.normalize_target != "none":
        fits.append("model.normalize_target.fit(y_train)")
    if not fits:
        return "A freshly initialised model."
    return f"A freshly initialised model; call {' and '.join(fits)} before training."


def tuple_repr(values: tuple[int, ...]) -> str:
    """`(64,)`, `(1, 8)`: a tuple literal of ints."""
    return py(tuple(int(v) for v in values))


def _predict(activation: str) -> tuple[str, str]:
    """predict's docstring and returned expression for the output unit."""
    if activation == "softmax":
        return docstring("Class probabilities: the softmax of the logits."), (
            "torch.softmax(self(x), dim=-1)"
        )
    if activation == "sigmoid":
        return docstring("Probabilities: the sigmoid of each logit."), "torch.sigmoid(self(x))"
    return docstring("Predicted values: the raw outputs of the linear output unit."), "self(x)"


RAW_UNITS = {
    "minmax": "(r.unflatten(1, INPUT_SHAPE) * self.normalize.range + self.normalize.min)",
    "standard": "(r.unflatten(1, INPUT_SHAPE) * self.normalize.std + self.normalize.mean)",
}
"""task: reconstruct: a normalised reconstruction r back in the raw inputs' units."""


def _reconstruction(program: Program, expr: str) -> tuple[str, str]:
    """task: reconstruct: predict's docstring and expression, the reconstruction of the input
    (flattened) un-normalised to the raw inputs' units."""
    normalize = program.model.normalize
    doc = docstring(
        "The reconstruction of the input, flattened, in the raw inputs' units (the normaliser "
        "inverted)."
    )
    if normalize == "none":
        return doc, expr
    return doc, RAW_UNITS[normalize].replace("r.", f"{expr}.", 1) + ".flatten(1)"


def _target_scale(program: Program, out: _Collector, init: list[str]) -> tuple[str, str] | None:
    """data.normalize_target: standard: the target scaler module, and predict's docstring and
    expression that un-standardise the outputs (None when the spec does not turn it on)."""
    model = program.model
    if model.normalize_target == "none":
        return None
    out.helpers.add("TargetScale")
    units = model.output_units
    init.append(f"self.normalize_target = TargetScale({units})  # data.normalize_target: standard")
    doc = "Predicted values in the targets' units: the outputs un-standardised, z * std + mean."
    return docstring(doc), "self.normalize_target(self(x))"


@dataclass(frozen=True)
class HeadsCode:
    """The methods a model with multitask heads adds: shared() and forward_heads()."""

    shared_docstring: str
    shared_lines: tuple[str, ...]
    """Lines of shared(): the hidden layers, then `return x`."""
    heads_docstring: str
    heads_lines: tuple[str, ...]
    """Lines of forward_heads(): one pass through shared(), then every output."""


def _heads(program: Program, init: list[str], fwd: list[str], out: _Collector) -> HeadsCode | None:
    """heads: one module class per head (its layers, then its output unit, like a residual
    block's class), built on the shared layers' output; None without heads. `fwd` holds the
    model's forward lines, its last line the main output unit."""
    if not program.heads:
        return None
    model = program.model
    trunk = model.output.in_shape
    outputs = []
    for head in program.heads:
        layers = (*head.layers, head.output)
        inner = _Emit(layers, 0, f"self.{head.ident}", [], [], out, model.bias_init)
        _block(inner)
        what = "logits" if head.task != "regression" else "outputs"
        doc = (
            f"Head {head.name} (heads.{head.name}): the shared layers' output "
            f"{shape_comment(trunk)} to its {what} {shape_comment(head.output.out_shape)}."
        )
        code = BlockCode(
            head.class_name, docstring(doc, indent=4), tuple(inner.init), tuple(inner.fwd)
        )
        out.blocks.append(code)
        init.append(f"self.{head.ident} = {head.class_name}()  # heads.{head.name}")
        outputs.append(f"{py(head.name)}: self.{head.ident}(h)")
    heads_lines = (
        f"h = self.shared(x)  # {shape_comment(trunk)}",
        f"return self.output(h), {{{', '.join(outputs)}}}",
    )
    return HeadsCode(
        shared_docstring=docstring(
            f"Raw inputs {shape_comment(model.input_shape)} to the shared layers' output "
            f"{shape_comment(trunk)}, which the output unit and every head read."
        ),
        shared_lines=(*fwd[:-1], f"return x  # {shape_comment(trunk)}"),
        heads_docstring=docstring(
            "Training forward: the main output's logits and each head's, by name, from one pass "
            "through the shared layers (forward, predict and ONNX give the main output only)."
        ),
        heads_lines=heads_lines,
    )


def _forward_normalized(
    program: Program, fwd: list[str]
) -> tuple[list[str], NormalizedForward | None]:
    """With regularizers.adversarial, forward becomes normalize then forward_normalized (the
    rest of `fwd`), so that the attack perturbs normalised inputs; else `fwd` unchanged."""
    if program.training.regularizers.adversarial is None:
        return fwd, None
    model = program.model
    out = shape_comment((model.output_units,))
    kind = "logits" if program.task != "regression" else "outputs"
    doc = docstring(
        f"Normalised inputs {shape_comment(model.input_shape)} to {kind} {out}: the network "
        "after the normaliser, whose inputs adversarial training perturbs."
    )
    forward = [f"return self.forward_normalized(self.normalize(x))  # {out}"]
    return forward, NormalizedForward(doc, tuple(fwd[1:]))


def _shares(out: _Collector) -> list[str]:
    """share: the assignments that make one tensor the weight of several layers."""
    if not out.shares:
        return []
    comment = "# parameter sharing (share:): one tensor, counted, penalised and trained once"
    return [comment, *out.shares]


def _tied_weights(program: Program) -> tuple[str, ...]:
    """regularizers.tie: one `(W_a, W_b),` line per tie, each matrix as its layer uses it."""
    lines = []
    for i, tie in enumerate(program.model.ties):
        pair = [
            f"self.{'.'.join(path)}.weight{'.t()' if flip else ''}"
            for path, flip in zip(tie.paths, tie.transposed, strict=True)
        ]
        lines.append(f"({pair[0]}, {pair[1]}),  # regularizers.tie[{i}]: {', '.join(tie.names)}")
    return tuple(lines)


def model_context(program: Program) -> ModelCode:
    """Compute every string model.py.j2 places for `program`."""
    model = program.model
    out = _Collector()
    init = [f"self.normalize = {_normalizer(program, out)}"]
    fwd = [f"x = self.normalize(x)  # {shape_comment(model.input_shape)}"]
    noise = program.training.regularizers.input_noise
    if noise > 0:
        out.helpers.add("GaussianNoise")
        init.append(
            f"self.input_noise = GaussianNoise({py_float(noise)})  # regularizers.input_noise"
        )
        fwd.append(f"x = self.input_noise(x)  # {shape_comment(model.input_shape)}")
    layers = (*model.layers, model.output)
    _block(_Emit(layers, 0, "self", init, fwd, out, model.bias_init))
    latent = next((lay for lay in model.layers if lay.kind == "gaussian_latent"), None)
    encode = _encode(fwd, out, latent.out_shape[0]) if latent is not None else None
    fwd, normalized = _forward_normalized(program, fwd)
    heads = _heads(program, init, fwd, out)
    if heads is not None:  # forward reads the shared layers through shared()
        fwd = [f"return self.output(self.shared(x))  # {shape_comment(model.output.out_shape)}"]

    stdlib = ("import math",) if out.math else ()
    third: tuple[str, ...] = ("import torch", "import torch.nn as nn")
    if out.functional:
        third += ("import torch.nn.functional as F",)
    predict_doc, predict_expr = _predict(model.output_activation)
    scaled = _target_scale(program, out, init)
    if scaled is not None:
        predict_doc, predict_expr = scaled
    if program.task == "reconstruct":  # the reconstruction in the raw inputs' units
        predict_doc, predict_expr = _reconstruction(program, predict_expr)
    summary = " ".join((program.description or "").split()) or f"The {program.name} model."
    units = model.output_units
    return ModelCode(
        docstring=docstring(f"{program.name}: {summary}", indent=0),
        import_sections=tuple(s for s in (stdlib, third) if s),
        helpers=tuple(h for h in HELPER_ORDER if h in out.helpers),
        blocks=tuple(out.blocks),
        class_name=model.class_name,
        class_docstring=docstring(summary, indent=4),
        init_lines=tuple([*init, *_shares(out), "self.reset_parameters()"]),
        forward_docstring=docstring(
            f"Raw inputs {shape_comment(model.input_shape)} to "
            f"{'logits' if program.task != 'regression' else 'outputs'} "
            f"{'' if scaled is None else 'on the standardised target scale '}"
            f"{shape_comment((units,))}; normalisation is inside."
        ),
        forward_lines=tuple(fwd),
        predict_docstring=predict_doc,
        predict_expr=predict_expr,
        weights=tuple(out.weights),
        reset_docstring=docstring(
            f"Initialise as the spec's init says: weights {model.weights_scheme}, "
            f"every bias {py_float(model.bias_init)}."
        ),
        reset_lines=tuple(out.reset),
        build_docstring=docstring(_build_doc(program)),
        input_shape=tuple_repr(model.input_shape),
        output_units=str(units),
        output_activation=py(model.output_activation),
        heads=heads,
        forward_normalized=normalized,
        tied_weights=_tied_weights(program),
        encode=encode,
    )
