"""The IR: what codegen needs, resolved from a validated spec. Plain frozen dataclasses only.

Conventions every stage relies on:
- Shapes are per example (no batch axis). Vectors are [F]; images are channels-first [C, H, W];
  2-D tensors are sequences [T, F], channels-last, for every layer that takes them (conv1d,
  pooling 1d, batchnorm, recurrent layers), as in Keras: conv1d treats F as its channels.
- `params` counts exactly what PyTorch's `sum(p.numel() for p in model.parameters())` gives
  for the generated module (e.g. nn.LSTM has two bias vectors per gate set).
- Options are resolved: no `None` meaning "default", no 'same'/'valid' strings that need the
  input shape to mean something, except `padding` of convolutions, which stays 'same' when
  the user asked for it (PyTorch supports it at stride 1; analysis rejects other strides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Shape = tuple[int, ...]
Task = Literal["regression", "binary", "multilabel", "multiclass"]


@dataclass(frozen=True)
class ActivationIR:
    """A resolved activation: name plus its options (slope, alpha, approximate, beta, ...)."""

    name: str
    """linear, relu, leaky_relu, prelu, elu, relu6, gelu, silu, sigmoid, tanh, softplus, softmax."""
    options: dict[str, Any] = field(default_factory=dict)
    """leaky_relu: slope; prelu: init, per_channel, channels; elu: alpha; gelu: approximate;
    softplus: beta."""


@dataclass(frozen=True)
class LayerIR:
    """One layer of the model with its resolved options, shapes and parameter count.

    `options` by kind (all resolved to concrete values):
    - dense: units, bias                      - dropout: rate          - gaussian_noise: std
    - activation: (see `activation`)          - batchnorm: momentum, eps, dims (1 or 2)
    - layernorm: eps, normalized_shape (tuple)
    - maxout: units, pieces                   - rbf: units, sigma
    - residual: projection (bool); `children` holds the inner layers
    - conv1d: filters, kernel_size, stride, padding (int or 'same'), dilation, bias
    - conv2d: filters, kernel_size (h, w), stride (h, w), padding ((ph, pw) or 'same'),
      dilation (h, w), bias
    - separable_conv2d: filters, kernel_size, stride, padding, depth_multiplier, bias
    - maxpool1d/avgpool1d: pool_size, stride, padding (ints)
    - maxpool2d/avgpool2d: pool_size, stride, padding (pairs)
    - global_avgpool/global_maxpool/flatten: none
    - lstm/gru/rnn: units, bidirectional, return_sequences, num_layers, dropout;
      rnn also nonlinearity ('tanh' or 'relu')
    - output (the output unit's dense layer): units, bias=True
    """

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
    options: dict[str, Any] = field(default_factory=dict)
    activation: ActivationIR | None = None
    """The layer's activation (dense, conv, maxout's none, `activation` layers); None for none."""
    weight_init: str = "torch"
    """he_normal, he_uniform, xavier_normal, xavier_uniform, orthogonal or torch (library default),
    resolved from init.weights (auto picks by the activation that follows)."""
    children: tuple[LayerIR, ...] = ()
    """Inner layers of a residual block."""


@dataclass(frozen=True)
class ModelIR:
    """The network: normalisation, hidden layers and the output unit."""

    class_name: str
    """CamelCase class name derived from the spec name (digits_mlp -> DigitsMlp)."""
    input_shape: Shape
    normalize: Literal["none", "standard", "minmax"]
    layers: tuple[LayerIR, ...]
    output: LayerIR
    """The output dense layer (kind `output`), producing logits / raw values."""
    output_activation: Literal["linear", "sigmoid", "softmax"]
    """Applied by the model's `predict` method (evaluation, export), never inside the loss."""
    bias_init: float
    params: int
    """Total trainable parameters (normalisation statistics are buffers, not parameters)."""


@dataclass(frozen=True)
class AugmentIR:
    """One training-time augmentation: noise (std), flip (axis, p) or shift (pixels)."""

    kind: Literal["noise", "flip", "shift"]
    options: dict[str, Any] = field(default_factory=dict)


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
    """Resolved: True only for classification tasks whose spec asks for it."""
    normalize: Literal["none", "standard", "minmax"]
    augment: tuple[AugmentIR, ...] = ()


@dataclass(frozen=True)
class LossIR:
    """The training loss, computed from logits."""

    name: Literal["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]
    label_smoothing: float = 0.0
    delta: float = 1.0
    """Huber's delta (unused by other losses)."""
    inferred: bool = False
    """True when the spec omitted `loss` and the one matching the output unit was chosen."""


@dataclass(frozen=True)
class OptimizerIR:
    """Optimizer name, initial learning rate and its other options (momentum, nesterov, rho, eps,
    betas as a tuple, weight_decay), only those that apply to it."""

    name: Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
    lr: float
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleIR:
    """Learning-rate schedule with resolved options: inverse_time: decay; linear: end_factor,
    epochs; step: step_size, gamma; exponential: gamma; cosine: min_lr, epochs; plateau: monitor,
    mode ('min'/'max'), factor, patience, min_delta, min_lr."""

    name: Literal["none", "inverse_time", "linear", "step", "exponential", "cosine", "plateau"]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegularizersIR:
    """Penalties on weights only, constraints and noise; zero/None means off."""

    l1: float = 0.0
    l2: float = 0.0
    lp_p: float | None = None
    lp_alpha: float = 0.0
    max_norm: float | None = None
    input_noise: float = 0.0
    weight_noise: float = 0.0
    gradient_clip: float | None = None


@dataclass(frozen=True)
class EarlyStoppingIR:
    """The notes' early-stopping algorithm on a validation metric."""

    monitor: str
    """val_loss or val_<metric> of the task."""
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
    """torch.set_num_threads value; None keeps torch's default."""
    optimizer: OptimizerIR
    schedule: ScheduleIR
    regularizers: RegularizersIR
    early: EarlyStoppingIR | None
    refit: Literal["none", "best_epochs", "continue"]


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
