"""Hidden layers: each list item is a one-key mapping `- <type>: {params}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, Discriminator, Field, Tag

from specc.schema.activations import Activation
from specc.schema.common import (
    MAX_SIZE,
    NOT_BOOL_FLOAT,
    NOT_BOOL_INT,
    Bool,
    IntOrPair,
    NonNegFloat,
    NonNegInt,
    OneKeyItem,
    Padding,
    PositiveFloat,
    PositiveInt,
    Probability,
    Strict,
    by_name,
    empty_params,
    first_key,
)

LayerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
"""A layer's name: lower case, digits and underscores, unique in the spec."""


class Params(Strict):
    """Base of layer parameters; `- flatten:` with no value means no parameters."""

    name: LayerName | None = None
    """A name, unique in the spec, by which `share.weights` and `regularizers.tie` refer to
    this layer."""


class Share(Strict):
    """Parameter sharing: use another layer's weight tensor instead of one of its own; the
    bias stays this layer's own. The tensor is counted, penalised and trained once."""

    weights: LayerName
    """The `name` of an earlier layer of the same kind whose weight this layer uses."""
    transpose: Bool = False
    """Use that weight matrix transposed, Wᵀ (dense layers only): a decoder tied to its
    encoder."""


def params(cls: type[Params]) -> Any:
    """A layer's parameter mapping, documented by the model's docstring.

    Null stands for 'all defaults' (`- flatten:`), so the JSON Schema allows null only where
    every parameter has a default (`- dense:` lacks units: the editor and `specc check`
    both say so)."""
    optional = all(not f.is_required() for f in cls.model_fields.values())
    schema_type = cls | None if optional else cls
    return Annotated[
        cls,
        BeforeValidator(empty_params, json_schema_input_type=schema_type),
        Field(description=" ".join((cls.__doc__ or "").split())),
    ]


if TYPE_CHECKING:
    # to a type checker the value of a `LayerParams[DenseParams]` field is a DenseParams
    _P = TypeVar("_P", bound=Params)
    LayerParams = Annotated[_P, "layer parameters"]
else:

    class LayerParams:
        """`LayerParams[DenseParams]`: the annotation `params(DenseParams)` builds."""

        def __class_getitem__(cls, model: type[Params]) -> Any:
            return params(model)


# --- parameter models -------------------------------------------------------------------


class DenseParams(Params):
    """A fully connected layer h = g(Wᵀx + b)."""

    units: PositiveInt
    """Number of units (output features)."""
    activation: Activation = by_name("linear")
    """Activation g applied to the affine output."""
    bias: Bool = True
    """Learn a bias vector b."""
    share: Share | None = None
    """Use an earlier dense layer's weight matrix W (the same tensor), keeping this bias."""


class DropoutParams(Params):
    """Inverted dropout: drop each unit with probability `rate` and scale the rest by 1/(1-rate)."""

    rate: Probability
    """Probability of dropping a unit (not of keeping it)."""


class GaussianNoiseParams(Params):
    """Add N(0, std²) noise to the activations while training; identity at evaluation."""

    std: NonNegFloat
    """Standard deviation of the noise."""


class BatchNormParams(Params):
    """Batch normalisation over the feature/channel axis (2d for images, 1d otherwise)."""

    momentum: Annotated[float, Field(gt=0, le=1), NOT_BOOL_FLOAT] = 0.1
    """Weight of the current batch in the running statistics (PyTorch convention)."""
    eps: PositiveFloat = 1.0e-5
    """Added to the variance for numerical stability."""


class LayerNormParams(Params):
    """Layer normalisation over each sample's last axis (features)."""

    eps: PositiveFloat = 1.0e-5
    """Added to the variance for numerical stability."""


class MaxoutParams(Params):
    """Maxout: unit i is the max of `pieces` affine functions of the input."""

    units: PositiveInt
    """Number of output units."""
    pieces: Annotated[int, Field(ge=2, le=MAX_SIZE), NOT_BOOL_INT] = 2
    """k, the number of linear pieces per unit."""


class RbfParams(Params):
    """Radial basis units h_i = exp(-‖W:,i − x‖² / σ_i²) with learned centres and widths."""

    units: PositiveInt
    """Number of RBF units (centres)."""
    sigma: PositiveFloat = 1.0
    """Initial width σ of every unit."""


class Conv1dParams(Params):
    """1-D convolution over a [C, L] input (channels, length)."""

    filters: PositiveInt
    """Number of output channels."""
    kernel_size: PositiveInt
    """Width of the kernel."""
    stride: PositiveInt = 1
    """Step between applications of the kernel."""
    padding: Padding = "valid"
    """Zero padding: a number of elements, `valid` or `same`."""
    dilation: PositiveInt = 1
    """Spacing between kernel taps."""
    activation: Activation = by_name("linear")
    """Activation applied to the convolution's output."""
    bias: Bool = True
    """Learn one bias per filter."""
    share: Share | None = None
    """Use an earlier layer's kernel of the same kind and shape (the same tensor), keeping
    this bias."""


class Conv2dParams(Params):
    """2-D convolution over a [C, H, W] image."""

    filters: PositiveInt
    """Number of output channels."""
    kernel_size: IntOrPair
    """Kernel size, one number or [height, width]."""
    stride: IntOrPair = 1
    """Stride, one number or [height, width]."""
    padding: Padding = "valid"
    """Zero padding: a number of pixels, `valid` or `same`."""
    dilation: IntOrPair = 1
    """Spacing between kernel taps."""
    activation: Activation = by_name("linear")
    """Activation applied to the convolution's output."""
    bias: Bool = True
    """Learn one bias per filter."""
    share: Share | None = None
    """Use an earlier layer's kernel of the same kind and shape (the same tensor), keeping
    this bias."""


class SeparableConv2dParams(Params):
    """Depthwise-separable convolution: per-channel (depthwise), then 1×1 (pointwise) conv."""

    filters: PositiveInt
    """Number of output channels of the pointwise convolution."""
    kernel_size: IntOrPair
    """Depthwise kernel size."""
    stride: IntOrPair = 1
    """Depthwise stride."""
    padding: Padding = "valid"
    """Depthwise zero padding."""
    depth_multiplier: PositiveInt = 1
    """Depthwise output channels per input channel."""
    activation: Activation = by_name("linear")
    """Activation applied after the pointwise convolution."""
    bias: Bool = True
    """Learn a bias in the pointwise convolution."""


class Pool1dParams(Params):
    """Max or average pooling over the length axis of a [C, L] input."""

    pool_size: PositiveInt = 2
    """Window size."""
    stride: PositiveInt | None = None
    """Step between windows; default: pool_size."""
    padding: NonNegInt = 0
    """Implicit padding on each side (at most half the window)."""


class Pool2dParams(Params):
    """Max or average pooling over the spatial axes of a [C, H, W] input."""

    pool_size: IntOrPair = 2
    """Window size, one number or [height, width]."""
    stride: IntOrPair | None = None
    """Step between windows; default: pool_size."""
    padding: NonNegInt = 0
    """Implicit padding on each side (at most half the window)."""


class MaxPool1dParams(Pool1dParams):
    """Max pooling over the length axis of a [C, L] input: the largest value of each window."""


class AvgPool1dParams(Pool1dParams):
    """Average pooling over the length axis of a [C, L] input: the mean of each window."""


class MaxPool2dParams(Pool2dParams):
    """Max pooling over the spatial axes of a [C, H, W] image: the largest value of each window."""


class AvgPool2dParams(Pool2dParams):
    """Average pooling over the spatial axes of a [C, H, W] image: the mean of each window."""


class NoParams(Params):
    """A layer without parameters."""


class GlobalAvgPoolParams(NoParams):
    """The mean over all positions: an image [C, H, W] becomes [C], a sequence [T, F] [F]."""


class GlobalMaxPoolParams(NoParams):
    """The maximum over all positions: an image [C, H, W] becomes [C], a sequence [T, F] [F]."""


class FlattenParams(NoParams):
    """Flatten an image or a sequence into a vector (row-major, as torch.flatten)."""


class RecurrentParams(Params):
    """A recurrent layer over a [T, F] sequence."""

    units: PositiveInt
    """Hidden state size (per direction)."""
    bidirectional: Bool = False
    """Also read the sequence backwards and concatenate both directions' outputs."""
    return_sequences: Bool = False
    """Output every step [T, units] instead of the last step's output [units]."""
    num_layers: PositiveInt = 1
    """Stacked recurrent layers inside this one."""
    dropout: Probability = 0.0
    """Dropout between stacked layers (needs num_layers > 1)."""


class LstmParams(RecurrentParams):
    """A long short-term memory (LSTM) layer over a [T, F] sequence."""


class GruParams(RecurrentParams):
    """A gated recurrent unit (GRU) layer over a [T, F] sequence."""


class SimpleRnnParams(RecurrentParams):
    """An Elman RNN: h_t = g(W x_t + U h_{t-1} + b)."""

    activation: Literal["tanh", "relu"] = "tanh"
    """Non-linearity g of the recurrence."""


class TransformerEncoderParams(Params):
    """Pre-norm transformer encoder over a [T, F] sequence: each step projected to `width`
    (when F differs), positions added, then `layers` blocks x + Attn(LN(x)), x + FFN(LN(x))
    with multi-head self-attention and a GELU feed-forward network, and a final LayerNorm."""

    width: PositiveInt
    """Model width d: the size of every step's vector inside the encoder (must divide by
    heads)."""
    heads: PositiveInt
    """Attention heads; each attends with width / heads dimensions."""
    ff_units: PositiveInt | None = None
    """Hidden units of each block's feed-forward network; default: 4 × width."""
    layers: PositiveInt = 1
    """Number of pre-norm encoder blocks."""
    dropout: Probability = 0.1
    """Dropout on the attention weights, after the attention and after each feed-forward
    layer, as in nn.TransformerEncoderLayer (whose default, 0.1, this is; training only)."""
    positional: Literal["learned", "sinusoidal", "none"] = "learned"
    """Position information added to each step: a learned [T, width] table, the fixed sine and
    cosine table of Vaswani et al., or none (attention alone ignores the order of the steps)."""
    reduce: Literal["mean", "last", "none"] = "mean"
    """The output: the mean over the steps [width], the last step [width], or every step
    [T, width]."""


class GaussianLatentParams(Params):
    """Variational (VAE) bottleneck on a vector: two dense heads from the previous width give mu
    and log sigma^2 of q(z|x) = N(mu, diag sigma^2); z = mu + sigma * eps (eps ~ N(0, I)) while
    training, z = mu in evaluation and in the ONNX graph. Adds kl_weight * KL(q(z|x) || N(0, I))
    to the loss, KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2) summed over the latent
    units and averaged over the rows (the scale of the summed reconstruction loss). Needs
    task: reconstruct; at most one per spec."""

    units: PositiveInt
    """Latent dimensions (the width of z, mu and log sigma^2)."""
    kl_weight: NonNegFloat = 1.0
    """beta of the KL term (1: the VAE's evidence lower bound; 0: no pull towards N(0, I))."""


class ResidualParams(Params):
    """y = F(x) + x, or F(x) + P(x) with a learned projection P when the shapes differ."""

    layers: Annotated[list[Layer], Field(min_length=1)]
    """The inner layers F."""
    projection: Bool = False
    """Project the skip path (a bias-free linear map or 1×1 convolution) to F's output shape."""


# --- layer items: `- <type>: {params}` ----------------------------------------------------


class Dense(Strict):
    dense: LayerParams[DenseParams]


class Dropout(Strict):
    dropout: LayerParams[DropoutParams]


class GaussianNoise(Strict):
    gaussian_noise: LayerParams[GaussianNoiseParams]


class ActivationLayer(Strict):
    activation: Activation
    """An activation function as a layer of its own: a name (`- activation: relu`) or a
    mapping with options (`- activation: {name: leaky_relu, slope: 0.1}`); see activations."""


class BatchNorm(Strict):
    batchnorm: LayerParams[BatchNormParams]


class LayerNorm(Strict):
    layernorm: LayerParams[LayerNormParams]


class Maxout(Strict):
    maxout: LayerParams[MaxoutParams]


class Rbf(Strict):
    rbf: LayerParams[RbfParams]


class Residual(Strict):
    residual: LayerParams[ResidualParams]


class Conv1d(Strict):
    conv1d: LayerParams[Conv1dParams]


class Conv2d(Strict):
    conv2d: LayerParams[Conv2dParams]


class SeparableConv2d(Strict):
    separable_conv2d: LayerParams[SeparableConv2dParams]


class MaxPool1d(Strict):
    maxpool1d: LayerParams[MaxPool1dParams]


class MaxPool2d(Strict):
    maxpool2d: LayerParams[MaxPool2dParams]


class AvgPool1d(Strict):
    avgpool1d: LayerParams[AvgPool1dParams]


class AvgPool2d(Strict):
    avgpool2d: LayerParams[AvgPool2dParams]


class GlobalAvgPool(Strict):
    global_avgpool: LayerParams[GlobalAvgPoolParams]


class GlobalMaxPool(Strict):
    global_maxpool: LayerParams[GlobalMaxPoolParams]


class Flatten(Strict):
    flatten: LayerParams[FlattenParams]


class Lstm(Strict):
    lstm: LayerParams[LstmParams]


class Gru(Strict):
    gru: LayerParams[GruParams]


class Rnn(Strict):
    rnn: LayerParams[SimpleRnnParams]


class TransformerEncoder(Strict):
    transformer_encoder: LayerParams[TransformerEncoderParams]


class GaussianLatent(Strict):
    gaussian_latent: LayerParams[GaussianLatentParams]


LAYER_TYPES: dict[str, type[Strict]] = {
    "dense": Dense,
    "dropout": Dropout,
    "gaussian_noise": GaussianNoise,
    "activation": ActivationLayer,
    "batchnorm": BatchNorm,
    "layernorm": LayerNorm,
    "maxout": Maxout,
    "rbf": Rbf,
    "residual": Residual,
    "conv1d": Conv1d,
    "conv2d": Conv2d,
    "separable_conv2d": SeparableConv2d,
    "maxpool1d": MaxPool1d,
    "maxpool2d": MaxPool2d,
    "avgpool1d": AvgPool1d,
    "avgpool2d": AvgPool2d,
    "global_avgpool": GlobalAvgPool,
    "global_maxpool": GlobalMaxPool,
    "flatten": Flatten,
    "lstm": Lstm,
    "gru": Gru,
    "rnn": Rnn,
    "transformer_encoder": TransformerEncoder,
    "gaussian_latent": GaussianLatent,
}
"""Every layer type of the vocabulary, by its key."""


Layer = Annotated[
    Annotated[Dense, Tag("dense")]
    | Annotated[Dropout, Tag("dropout")]
    | Annotated[GaussianNoise, Tag("gaussian_noise")]
    | Annotated[ActivationLayer, Tag("activation")]
    | Annotated[BatchNorm, Tag("batchnorm")]
    | Annotated[LayerNorm, Tag("layernorm")]
    | Annotated[Maxout, Tag("maxout")]
    | Annotated[Rbf, Tag("rbf")]
    | Annotated[Residual, Tag("residual")]
    | Annotated[Conv1d, Tag("conv1d")]
    | Annotated[Conv2d, Tag("conv2d")]
    | Annotated[SeparableConv2d, Tag("separable_conv2d")]
    | Annotated[MaxPool1d, Tag("maxpool1d")]
    | Annotated[MaxPool2d, Tag("maxpool2d")]
    | Annotated[AvgPool1d, Tag("avgpool1d")]
    | Annotated[AvgPool2d, Tag("avgpool2d")]
    | Annotated[GlobalAvgPool, Tag("global_avgpool")]
    | Annotated[GlobalMaxPool, Tag("global_maxpool")]
    | Annotated[Flatten, Tag("flatten")]
    | Annotated[Lstm, Tag("lstm")]
    | Annotated[Gru, Tag("gru")]
    | Annotated[Rnn, Tag("rnn")]
    | Annotated[TransformerEncoder, Tag("transformer_encoder")]
    | Annotated[GaussianLatent, Tag("gaussian_latent")],
    Discriminator(first_key),
    OneKeyItem(),
]
"""One hidden layer: a one-key mapping from the layer type to its parameters."""


def layer_kind(layer: Strict) -> str:
    """The type key of a validated layer item (`dense`, `conv2d`, ...)."""
    return next(iter(type(layer).model_fields))


def layer_params(layer: Strict) -> Any:
    """The parameter model (or activation) of a validated layer item."""
    return getattr(layer, layer_kind(layer))


ResidualParams.model_rebuild()
