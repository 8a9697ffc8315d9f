"""The IR: what codegen needs, resolved from a validated spec. Plain frozen dataclasses only.

Conventions every stage relies on:
- Shapes are per example (no batch axis). Vectors are [F]; images are channels-first [C, H, W];
  2-D tensors are sequences [T, F], channels-last, for every layer that takes them (conv1d,
  pooling 1d, batchnorm, recurrent layers), as in Keras: conv1d treats F as its channels.
- `params` counts exactly what PyTorch's `sum(p.numel() for p in model.parameters())` gives
  for the generated module (e.g. nn.LSTM has two bias vectors per gate set).
- Options are resolved: one frozen dataclass per layer kind, activation and augmentation, every
  field a concrete value (no `None` meaning "default", no defaults restated downstream), and no
  'same'/'valid' strings that need the input shape to mean something, except `padding` of
  convolutions, which stays 'same' when the user asked for it (PyTorch supports it at stride 1;
  analysis rejects other strides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Shape = tuple[int, ...]
Pair = tuple[int, int]
"""A per-axis (height, width) size of a 2-D convolution or pooling."""
Task = Literal["regression", "binary", "multilabel", "multiclass", "reconstruct"]
"""reconstruct: an autoencoder (task: reconstruct); the others follow from the output unit."""


# --- activation options -------------------------------------------------------------------


@dataclass(frozen=True)
class NoOptions:
    """A layer or activation without options (flatten, global pools, relu, tanh, ...)."""


@dataclass(frozen=True)
class LeakyReluOptions:
    """leaky_relu: the fixed slope for negative inputs."""

    slope: float


@dataclass(frozen=True)
class PReluOptions:
    """prelu: initial slope, one slope per channel or one shared, and the channel count."""

    init: float
    per_channel: bool
    channels: int
    """Channels (features of vectors and sequences, C of images) of the activation's input."""

    @property
    def slopes(self) -> int:
        """Number of learned slopes: one per channel, or one shared."""
        return self.channels if self.per_channel else 1


@dataclass(frozen=True)
class EluOptions:
    """elu: the saturation value for negative inputs."""

    alpha: float


@dataclass(frozen=True)
class GeluOptions:
    """gelu: the exact erf form (`none`) or the tanh approximation."""

    approximate: Literal["none", "tanh"]


@dataclass(frozen=True)
class SoftplusOptions:
    """softplus: the sharpness beta."""

    beta: float


ActivationOptions = (
    NoOptions | LeakyReluOptions | PReluOptions | EluOptions | GeluOptions | SoftplusOptions
)

NO_OPTIONS = NoOptions()


@dataclass(frozen=True)
class ActivationIR:
    """A resolved activation: its name and the options of that name."""

    name: str
    """linear, relu, leaky_relu, prelu, elu, relu6, gelu, silu, sigmoid, tanh, softplus, softmax."""
    options: ActivationOptions = NO_OPTIONS
    """The activation's class in specc.analysis.kinds.ACTIVATIONS; NoOptions for plain ones."""


# --- layer options ------------------------------------------------------------------------


@dataclass(frozen=True)
class DenseOptions:
    """dense and the output unit: h = g(Wᵀx + b)."""

    units: int
    bias: bool


@dataclass(frozen=True)
class DropoutOptions:
    """dropout: the probability of dropping a unit."""

    rate: float


@dataclass(frozen=True)
class GaussianNoiseOptions:
    """gaussian_noise: the standard deviation of the noise."""

    std: float


@dataclass(frozen=True)
class BatchNormOptions:
    """batchnorm: running-statistics momentum, eps, and BatchNorm1d (1) or BatchNorm2d (2)."""

    momentum: float
    eps: float
    dims: Literal[1, 2]


@dataclass(frozen=True)
class LayerNormOptions:
    """layernorm: eps and the normalised trailing shape ((F,) or (C, H, W))."""

    eps: float
    normalized_shape: Shape


@dataclass(frozen=True)
class MaxoutOptions:
    """maxout: output units and linear pieces per unit."""

    units: int
    pieces: int


@dataclass(frozen=True)
class RbfOptions:
    """rbf: units (centres) and the initial width of each."""

    units: int
    sigma: float


@dataclass(frozen=True)
class ResidualOptions:
    """residual: whether the skip path is a learned projection; the inner layers are
    `LayerIR.children`."""

    projection: bool


@dataclass(frozen=True)
class Conv1dOptions:
    """conv1d over the time axis of a [T, F] sequence."""

    filters: int
    kernel_size: int
    stride: int
    padding: int | Literal["same"]
    dilation: int
    bias: bool


@dataclass(frozen=True)
class Conv2dOptions:
    """conv2d over a [C, H, W] image; every size per axis."""

    filters: int
    kernel_size: Pair
    stride: Pair
    padding: Pair | Literal["same"]
    dilation: Pair
    bias: bool


@dataclass(frozen=True)
class SeparableConv2dOptions:
    """separable_conv2d: depthwise (kernel, stride, padding, multiplier), then 1×1 pointwise."""

    filters: int
    kernel_size: Pair
    stride: Pair
    padding: Pair | Literal["same"]
    depth_multiplier: int
    bias: bool


@dataclass(frozen=True)
class Pool1dOptions:
    """maxpool1d/avgpool1d: window, stride (resolved from the window) and padding."""

    pool_size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Pool2dOptions:
    """maxpool2d/avgpool2d: window, stride (resolved from the window) and padding per axis."""

    pool_size: Pair
    stride: Pair
    padding: Pair


@dataclass(frozen=True)
class RecurrentOptions:
    """lstm/gru/rnn: hidden size per direction, directions, output, stacking and dropout."""

    units: int
    bidirectional: bool
    return_sequences: bool
    num_layers: int
    dropout: float
    nonlinearity: Literal["tanh", "relu"]
    """The recurrence's non-linearity: the spec's choice for rnn, tanh for lstm and gru."""


@dataclass(frozen=True)
class TransformerOptions:
    """transformer_encoder: width d, heads, feed-forward units (resolved), pre-norm blocks,
    dropout, positions and the reduction over steps."""

    width: int
    heads: int
    ff_units: int
    layers: int
    dropout: float
    positional: Literal["learned", "sinusoidal", "none"]
    reduce: Literal["mean", "last", "none"]


@dataclass(frozen=True)
class GaussianLatentOptions:
    """gaussian_latent (VAE): latent units and the weight of KL(q(z|x) || N(0, I)) in the loss."""

    units: int
    kl_weight: float


LayerOptions = (
    NoOptions
    | DenseOptions
    | DropoutOptions
    | GaussianNoiseOptions
    | BatchNormOptions
    | LayerNormOptions
    | MaxoutOptions
    | RbfOptions
    | ResidualOptions
    | Conv1dOptions
    | Conv2dOptions
    | SeparableConv2dOptions
    | Pool1dOptions
    | Pool2dOptions
    | RecurrentOptions
    | TransformerOptions
    | GaussianLatentOptions
)
"""The options of any layer; which class a kind has is specc.analysis.kinds.LAYER_KINDS."""


@dataclass(frozen=True)
class LayerIR:
    """One layer of the model with its resolved options, shapes and parameter count."""

    kind: str
    """Layer type key of the spec (`dense`, `conv2d`, ...), or `output` for the output unit."""
    ident: str
    """Python attribute name in the generated module, unique within its block (`dense1`)."""
    source: str
    """Where it comes from in the spec, for comments: `layers[2]`, `layers[3].residual.layers[0]`,
    `output`."""
    in_shape: Shape
    out_shape: Shape
    params: int
    """Trainable parameters of this layer, children included."""
    options: LayerOptions
    """The kind's options class (LAYER_KINDS[kind].options; DenseOptions for `output`)."""
    activation: ActivationIR | None = None
    """The layer's activation (dense, conv, maxout's none, `activation` layers); None for none."""
    weight_init: str = "torch"
    """he_normal, he_uniform, xavier_normal, xavier_uniform, orthogonal or torch (library default),
    resolved from init.weights (auto picks by the activation that follows)."""
    children: tuple[LayerIR, ...] = ()
    """Inner layers of a residual block."""
    name: str | None = None
    """The spec's `name` of the layer, when it has one."""
    shares: SharedWeightIR | None = None
    """The weight this layer uses instead of one of its own (`share:`); None: its own."""


@dataclass(frozen=True)
class SharedWeightIR:
    """Parameter sharing: the layer's weight is the tensor of another (earlier) layer."""

    owner: tuple[str, ...]
    """Attribute path from the model to the layer that holds the tensor (`('dense1',)`,
    `('res1', 'dense2')`), the end of any chain of shares."""
    name: str
    """The `name` of that layer (for comments and the summary)."""
    transpose: bool
    """The layer uses the owner's stored tensor transposed (transposes along a chain cancel)."""


@dataclass(frozen=True)
class TieIR:
    """Parameter tying (regularizers.tie[i]): alpha/2 · ‖W_a − W_b‖² on two layers' weights."""

    names: tuple[str, str]
    paths: tuple[tuple[str, ...], tuple[str, ...]]
    """Attribute paths from the model to the two layers (whose `.weight` is tied)."""
    transposed: tuple[bool, bool]
    """Whether each layer uses its stored weight transposed (a transposed share), so that the
    matrices compare as the layers use them."""
    alpha: float


@dataclass(frozen=True)
class ModelIR:
    """The network: normalisation, hidden layers and the output unit."""

    class_name: str
    """CamelCase class name derived from the spec name (digits_mlp -> DigitsMlp)."""
    input_shape: Shape
    normalize: Literal["none", "standard", "minmax"]
    layers: tuple[LayerIR, ...]
    output: LayerIR
    """The output dense layer (kind `output`, DenseOptions), producing logits / raw values."""
    output_activation: Literal["linear", "sigmoid", "softmax"]
    """Applied by the model's `predict` method (evaluation, export), never inside the loss."""
    bias_init: float
    params: int
    """Total trainable parameters (normalisation statistics are buffers, not parameters)."""
    weights_scheme: str
    """init.weights as the spec gives it (auto, he_normal, ...), for model.py's docstring."""
    ties: tuple[TieIR, ...] = ()
    """regularizers.tie in the spec's order (the model lists the tied weight pairs)."""
    normalize_target: Literal["none", "standard"] = "none"
    """data.normalize_target (regression only): `standard` gives the model a target scaler whose
    mean/std buffers `predict` uses to un-standardise its outputs (z · std + mean)."""

    @property
    def output_units(self) -> int:
        """Width of the output unit."""
        return self.output.out_shape[-1]


# --- augmentation options -----------------------------------------------------------------


@dataclass(frozen=True)
class NoiseAugmentOptions:
    """noise: the standard deviation, in the raw inputs' units."""

    std: float


@dataclass(frozen=True)
class FlipAugmentOptions:
    """flip: the mirror axis and the probability of flipping an image."""

    axis: Literal["horizontal", "vertical"]
    p: float


@dataclass(frozen=True)
class ShiftAugmentOptions:
    """shift: the largest translation along each spatial axis."""

    pixels: int


AugmentOptions = NoiseAugmentOptions | FlipAugmentOptions | ShiftAugmentOptions

AUGMENT_OPTIONS: dict[str, type[AugmentOptions]] = {
    "noise": NoiseAugmentOptions,
    "flip": FlipAugmentOptions,
    "shift": ShiftAugmentOptions,
}
"""The options class of each augmentation kind (field names are the schema's)."""


@dataclass(frozen=True)
class AugmentIR:
    """One training-time augmentation: noise (std), flip (axis, p) or shift (pixels)."""

    kind: Literal["noise", "flip", "shift"]
    options: AugmentOptions


@dataclass(frozen=True)
class DataIR:
    """Where the data comes from and how it is split and prepared."""

    kind: Literal["sklearn", "csv", "parquet", "npz"]
    dataset: str | None
    """The scikit-learn dataset name for kind sklearn (iris, digits, ...), else None."""
    path: str | None
    """Absolute path of the data file for csv/parquet/npz, else None."""
    target: tuple[str, ...]
    """csv/parquet: target columns; npz: (key,) of the targets, default ('y',); sklearn: ()."""
    features: tuple[str, ...] | None
    """csv/parquet: feature columns; None: every column but the targets. npz: (key,), ('x',)."""
    val: float
    test: float
    split_seed: int
    stratify: bool
    """Resolved: True only for single-label classification (binary, multiclass) whose spec asks
    for it; a multi-label target has no one class per row to stratify by."""
    normalize: Literal["none", "standard", "minmax"]
    augment: tuple[AugmentIR, ...] = ()


LossName = Literal["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]


@dataclass(frozen=True)
class LossIR:
    """The training loss, computed from logits."""

    name: LossName
    label_smoothing: float = 0.0
    """ε of the course notes' label smoothing; 0 for the regression losses."""
    delta: float = 1.0
    """Huber's delta (unused by other losses)."""
    inferred: bool = False
    """True when the spec omitted `loss` and the one matching the output unit was chosen."""


# --- optimizer and schedule options -------------------------------------------------------


@dataclass(frozen=True)
class SgdOptions:
    """sgd: momentum (0: plain SGD) and Nesterov's variant of it."""

    momentum: float
    nesterov: bool


@dataclass(frozen=True)
class AdagradOptions:
    """adagrad: the term added to the accumulated squares' root."""

    eps: float


@dataclass(frozen=True)
class RmspropOptions:
    """rmsprop: the squares' decay rho (PyTorch's alpha), momentum (0: none) and eps."""

    rho: float
    momentum: float
    eps: float


@dataclass(frozen=True)
class AdamOptions:
    """adam: the moment decays and eps."""

    betas: tuple[float, float]
    eps: float


@dataclass(frozen=True)
class AdamwOptions:
    """adamw: adam's options and the decoupled weight decay (applied to weights only)."""

    betas: tuple[float, float]
    eps: float
    weight_decay: float


OptimizerOptions = SgdOptions | AdagradOptions | RmspropOptions | AdamOptions | AdamwOptions

OPTIMIZER_OPTIONS: dict[str, type[OptimizerOptions]] = {
    "sgd": SgdOptions,
    "adagrad": AdagradOptions,
    "rmsprop": RmspropOptions,
    "adam": AdamOptions,
    "adamw": AdamwOptions,
}
"""The options class of each optimizer name (field names are the schema's)."""


@dataclass(frozen=True)
class OptimizerIR:
    """Optimizer name, initial learning rate and the options of that name."""

    name: Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
    lr: float
    options: OptimizerOptions
    """OPTIMIZER_OPTIONS[name], every field resolved."""

    def __post_init__(self) -> None:
        _check_options(self.name, self.options, OPTIMIZER_OPTIONS)


@dataclass(frozen=True)
class InverseTimeOptions:
    """inverse_time: lr0 / (1 + decay * epoch)."""

    decay: float


@dataclass(frozen=True)
class LinearScheduleOptions:
    """linear: from lr0 down to end_factor * lr0 over `epochs` epochs, then flat."""

    end_factor: float
    epochs: int
    """Resolved: training.epochs when the spec leaves it out."""


@dataclass(frozen=True)
class StepScheduleOptions:
    """step: lr0 * gamma ** (epoch // step_size)."""

    step_size: int
    gamma: float


@dataclass(frozen=True)
class ExponentialScheduleOptions:
    """exponential: lr0 * gamma ** epoch."""

    gamma: float


@dataclass(frozen=True)
class CosineScheduleOptions:
    """cosine: half a cosine from lr0 down to min_lr over `epochs` epochs, then flat."""

    min_lr: float
    epochs: int
    """Resolved: training.epochs when the spec leaves it out."""


@dataclass(frozen=True)
class PlateauScheduleOptions:
    """plateau: lr * factor (not below min_lr) after `patience` epochs without improvement."""

    metric: str
    """The validation metric watched, without the val_ prefix (loss, accuracy, ...)."""
    mode: Literal["min", "max"]
    """Its direction: min for losses and errors, max for accuracy and r2."""
    factor: float
    patience: int
    min_delta: float
    min_lr: float


ScheduleOptions = (
    NoOptions
    | InverseTimeOptions
    | LinearScheduleOptions
    | StepScheduleOptions
    | ExponentialScheduleOptions
    | CosineScheduleOptions
    | PlateauScheduleOptions
)

SCHEDULE_OPTIONS: dict[str, type[ScheduleOptions]] = {
    "none": NoOptions,
    "inverse_time": InverseTimeOptions,
    "linear": LinearScheduleOptions,
    "step": StepScheduleOptions,
    "exponential": ExponentialScheduleOptions,
    "cosine": CosineScheduleOptions,
    "plateau": PlateauScheduleOptions,
}
"""The options class of each schedule name."""


@dataclass(frozen=True)
class ScheduleIR:
    """Learning-rate schedule: its name and the options of that name."""

    name: Literal["none", "inverse_time", "linear", "step", "exponential", "cosine", "plateau"]
    options: ScheduleOptions = NO_OPTIONS
    """SCHEDULE_OPTIONS[name], every field resolved (NoOptions for none)."""

    def __post_init__(self) -> None:
        _check_options(self.name, self.options, SCHEDULE_OPTIONS)


def _check_options(name: str, options: object, table: dict[str, type]) -> None:
    """An IR built with another name's options is an internal error, caught where it is made."""
    if type(options) is not table[name]:
        raise TypeError(f"{name} takes {table[name].__name__}, not {type(options).__name__}")


@dataclass(frozen=True)
class AdversarialIR:
    """FGSM adversarial training: x~ = x + epsilon * sign(grad_x J) on the normalised input,
    training loss (1 - weight) * J(x) + weight * J(x~)."""

    method: Literal["fgsm"]
    epsilon: float
    """In normalised input units (after the in-model normaliser)."""
    weight: float


@dataclass(frozen=True)
class RegularizersIR:
    """Penalties on weights only, constraints and noise; 0 means off for the rates, None for
    the bounds."""

    l1: float = 0.0
    l2: float = 0.0
    lp_p: float | None = None
    """The Lp penalty's p; None: no Lp penalty."""
    lp_alpha: float = 0.0
    max_norm: float | None = None
    input_noise: float = 0.0
    weight_noise: float = 0.0
    gradient_clip: float | None = None
    adversarial: AdversarialIR | None = None
    """FGSM adversarial training; None: off."""


@dataclass(frozen=True)
class EarlyStoppingIR:
    """The notes' early-stopping algorithm on a validation metric."""

    monitor: str
    """val_loss or val_<metric> of the task, as the spec names it."""
    metric: str
    """The monitored metric without the val_ prefix (loss, accuracy, ...)."""
    mode: Literal["min", "max"]
    """min for losses and errors, max for accuracy and r2."""
    patience: int
    min_delta: float
    restore_best: bool


@dataclass(frozen=True)
class TrainingIR:
    """The loop: epochs, batches, optimizer, schedule, regularizers, stopping."""

    epochs: int
    batch_size: int
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    threads: int | None
    """torch.set_num_threads value; None (`auto` for a large step): harness.cpu_threads() when the
    run starts, the cores it may use less one, per process (specc.analysis.threads)."""
    optimizer: OptimizerIR
    schedule: ScheduleIR
    regularizers: RegularizersIR
    early: EarlyStoppingIR | None
    refit: Literal["none", "best_epochs", "continue"]
    """none whenever `early` is None (analysis rejects a refit without early stopping)."""
    monitor_split: Literal["val", "train"] = "val"
    """The split best weights and early stopping are judged on: val, or train when the spec
    has no validation split (data.split.val: 0)."""
    devices: int = 1
    """Processes training together (training.devices): N > 1 launches torchrun with N."""


# --- search (read by `specc tune` only) ------------------------------------------------------


@dataclass(frozen=True)
class FloatRangeIR:
    """uniform / log_uniform: a float in [low, high], on a grid of `step` when given (not log)."""

    low: float
    high: float
    log: bool
    step: float | None


@dataclass(frozen=True)
class IntRangeIR:
    """int_uniform / log_int_uniform: an integer in [low, high] on a grid of `step` (1 with log)."""

    low: int
    high: int
    log: bool
    step: int


@dataclass(frozen=True)
class ChoiceIR:
    """choice: one of the values, each as the YAML gives it (scalars, mappings or lists)."""

    values: tuple[Any, ...]


DistributionIR = FloatRangeIR | IntRangeIR | ChoiceIR


@dataclass(frozen=True)
class SearchParamIR:
    """One searched value: its `--set` key as written, that key as a path, its distribution."""

    key: str
    """The dotted key (`layers.0.dense.units`): `--set <key>=<value>` applies a trial's value."""
    path: tuple[str | int, ...]
    """The key's segments, list indices as ints: ('layers', 0, 'dense', 'units')."""
    distribution: DistributionIR


@dataclass(frozen=True)
class SearchIR:
    """The `search:` section, resolved: what `specc tune` runs."""

    metric: str
    """The validation metric that ranks trials (`val_loss`, `val_accuracy`, ...)."""
    direction: Literal["min", "max"]
    """Whether a smaller (`min`) or larger (`max`) metric is better."""
    trials: int
    sampler: Literal["random", "tpe", "grid", "qmc"]
    pruner: Literal["none", "median", "hyperband"]
    seed: int
    storage: str | None
    """A database URL, or None for a journal file in the tune run directory."""
    space: tuple[SearchParamIR, ...]
    """In the order the spec lists them."""
    grid_size: int | None
    """Number of distinct points when every dimension is discrete (a choice or an integer or
    stepped range), else None."""


@dataclass(frozen=True)
class EnsembleIR:
    """Bagging (ensemble:): how many members, whether each trains on a bootstrap sample, and
    how they vote."""

    members: int
    bootstrap: bool
    vote: Literal["soft", "hard"]


@dataclass(frozen=True)
class HeadIR:
    """A multitask head (heads.<name>): a branch off the shared layers with its own target
    column, layers, output unit, loss and weight; trained, never exported."""

    name: str
    """The head's key in the spec (a lower-case identifier), used in metric names."""
    ident: str
    """The attribute of the head's module in the model (`head_mass`)."""
    class_name: str
    """The class of that module (`MassHead`)."""
    target: str
    """The data column of its targets."""
    task: Task
    metrics: tuple[str, ...]
    """The head task's metrics without prefix, loss first."""
    layers: tuple[LayerIR, ...]
    output: LayerIR
    output_activation: Literal["linear", "sigmoid", "softmax"]
    loss: LossIR
    weight: float
    params: int
    """Trainable parameters of the head's layers and output unit."""


@dataclass(frozen=True)
class TrackingIR:
    """Where the per-epoch metrics are copied besides metrics.csv."""

    tensorboard: bool = False
    """Event files in RUN_DIR/tensorboard/ (tensorboardX)."""


@dataclass(frozen=True)
class Program:
    """Everything codegen needs for one spec."""

    name: str
    description: str | None
    spec_path: str
    """The spec file as the user named it (for the generated header)."""
    resolved: dict[str, Any]
    """The resolved spec, JSON-ready: overrides applied, every default spelled out, loss filled."""
    task: Task
    metrics: tuple[str, ...]
    """Metric names of the task without prefix: ('loss', 'accuracy') or
    ('loss', 'mae', 'rmse', 'r2')."""
    data: DataIR
    model: ModelIR
    loss: LossIR
    training: TrainingIR
    onnx_opset: int | None
    """export.onnx.opset, or None when the spec asks for no ONNX file."""
    search: SearchIR | None = None
    """The hyperparameter search, when the spec has one (codegen and `specc train` ignore it)."""
    tracking: TrackingIR = TrackingIR()
    """Copies of the metrics for experiment trackers (tracking:)."""
    ensemble: EnsembleIR | None = None
    """Bagging, when the spec has `ensemble:` (train.py gains --member K)."""
    heads: tuple[HeadIR, ...] = ()
    """Multitask heads (heads:), in the spec's order; empty without them."""
    onnx_part: Literal["model", "encoder"] = "model"
    """export.onnx.part: the whole model, or the encoder (input -> the gaussian_latent's mu)."""
