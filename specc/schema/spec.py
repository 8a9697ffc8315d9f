"""The spec language: what a spec file may say (contract §1). Semantics live in specc.analysis."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from specc.schema.common import (
    NOT_BOOL_FLOAT,
    NOT_BOOL_INT,
    Bool,
    Float,
    NonNegFloat,
    OneKeyItem,
    PositiveFloat,
    PositiveInt,
    Probability,
    Seed,
    Strict,
    by_name,
    first_key,
    shorthand,
)
from specc.schema.layers import Layer, LayerName
from specc.schema.search import Search

# --- data -------------------------------------------------------------------------------


class Split(Strict):
    """How the rows are divided into training, validation and test sets."""

    val: Probability = 0.2
    """Fraction of rows for validation (early stopping, model selection)."""
    test: Probability = 0.2
    """Fraction of rows held out for the final test metrics."""
    seed: Seed = 0
    """Seed of the shuffle that makes the split."""
    stratify: Bool = True
    """Keep class proportions equal across splits (classification only)."""

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> Split:
        if self.val + self.test >= 1:
            raise ValueError(
                f"val + test must leave rows for training, got {self.val} + {self.test} >= 1"
            )
        return self


class NoiseAugment(Strict):
    """Add Gaussian noise N(0, std²) to the raw training inputs (in their own units)."""

    std: PositiveFloat
    """Standard deviation of the noise."""


class FlipAugment(Strict):
    """Mirror training images with probability p (images [C, H, W] only)."""

    axis: Literal["horizontal", "vertical"] = "horizontal"
    """horizontal: left-right mirror; vertical: upside-down."""
    p: Annotated[float, Field(gt=0, le=1), NOT_BOOL_FLOAT] = 0.5
    """Probability of flipping each image."""


class ShiftAugment(Strict):
    """Translate training images by up to `pixels` in each direction, filling with zeros."""

    pixels: PositiveInt = 1
    """Largest shift along each spatial axis."""


class Noise(Strict):
    noise: NoiseAugment
    """Gaussian noise on the raw training inputs: `- noise: {std: 0.05}`."""


class Flip(Strict):
    flip: FlipAugment
    """Mirror training images: `- flip: {axis: horizontal, p: 0.5}`."""


class Shift(Strict):
    shift: ShiftAugment
    """Translate training images: `- shift: {pixels: 1}`."""


Augment = Annotated[
    Annotated[Noise, Tag("noise")] | Annotated[Flip, Tag("flip")] | Annotated[Shift, Tag("shift")],
    Discriminator(first_key),
    OneKeyItem(),
]
"""One training-time augmentation: noise, flip or shift."""


class Data(Strict):
    """Where the examples come from and how they are prepared."""

    source: str
    """`sklearn:<iris|digits|wine|breast_cancer|diabetes|linnerud>`, or a path (relative to the
    spec file) to a .csv, .parquet or .npz file."""
    target: str | Annotated[list[str], Field(min_length=1)] | None = None
    """csv/parquet: the target column (a list for multi-label or multi-output);
    npz: the array key of the targets (default `y`; features under `x`)."""
    features: Annotated[list[str], Field(min_length=1)] | None = None
    """Feature columns to use; default: every column but the target."""
    split: Split = Split()
    """Validation and test fractions."""
    normalize: Literal["none", "standard", "minmax"] = "standard"
    """Input normalisation, fitted on the training split only; part of the model and its ONNX."""
    normalize_target: Literal["none", "standard"] = "none"
    """Regression only: `standard` trains on targets standardised per column, (y − mean) / std
    with the training split's mean and std (a constant column keeps std 1); the loss (and
    `loss`/`val_loss`) is on that scale, mae/rmse/r2 are in the targets' units, and `predict`
    (so the ONNX graph) un-standardises: ŷ = z · std + mean."""
    augment: list[Augment] = []
    """Training-batch augmentations, applied in order."""


# --- model ------------------------------------------------------------------------------


class Input(Strict):
    """The shape of one example: [F] vectors, [C, H, W] images, [T, F] sequences."""

    shape: Annotated[list[PositiveInt], Field(min_length=1, max_length=3)]
    """Per-example shape, without the batch dimension."""


class Init(Strict):
    """Parameter initialisation."""

    weights: Literal[
        "auto", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "torch"
    ] = "auto"
    """auto: He for the ReLU family, Xavier for tanh/sigmoid/linear; torch: PyTorch's defaults."""
    bias: Float = 0.0
    """Constant every bias starts at."""


class Output(Strict):
    """The output unit: a dense layer and the activation that turns its logits into predictions."""

    units: PositiveInt
    """Number of outputs (classes for softmax, labels for multi-label, targets for regression)."""
    activation: Literal["linear", "sigmoid", "softmax"]
    """linear: regression; sigmoid: binary or multi-label; softmax: multi-class."""


# --- loss -------------------------------------------------------------------------------


class CrossEntropy(Strict):
    """Multi-class cross-entropy from logits (log-softmax form)."""

    name: Literal["cross_entropy"]
    label_smoothing: Probability = 0.0
    """ε: hard targets 1 and 0 become 1 − ε and ε/(k − 1)."""


class BinaryCrossEntropy(Strict):
    """Binary cross-entropy from logits (softplus form), per output for multi-label."""

    name: Literal["binary_cross_entropy"]
    label_smoothing: Probability = 0.0
    """ε: targets 1 and 0 become 1 − ε and ε (k = 2)."""


class Mse(Strict):
    """Mean squared error."""

    name: Literal["mse"]


class Mae(Strict):
    """Mean absolute error."""

    name: Literal["mae"]


class Huber(Strict):
    """Quadratic within ±delta, linear outside."""

    name: Literal["huber"]
    delta: PositiveFloat = 1.0
    """Where the loss turns from quadratic to linear."""


LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber")

_LossUnion = Annotated[
    CrossEntropy | BinaryCrossEntropy | Mse | Mae | Huber,
    Field(discriminator="name"),
]
Loss = Annotated[_LossUnion, shorthand(_LossUnion, LOSS_NAMES)]
"""The training loss, by name or with options."""


# --- regularizers -----------------------------------------------------------------------


class LpPenalty(Strict):
    """alpha/p · Σ|w|^p over the weights."""

    p: Annotated[float, Field(ge=1), NOT_BOOL_FLOAT]
    """The norm's exponent (≥ 1)."""
    alpha: NonNegFloat
    """Penalty strength."""


class Adversarial(Strict):
    """Adversarial training (Goodfellow et al.): each training batch is also attacked with the
    fast gradient sign method and the loss mixes the clean and the attacked batch."""

    method: Literal["fgsm"] = "fgsm"
    """The attack: fgsm, x̃ = x + epsilon · sign(∇ₓJ(x, y)), one gradient step taken in eval mode."""
    epsilon: PositiveFloat = 0.1
    """Size of the perturbation in normalised input units (it is applied after the in-model
    normaliser): standard deviations for data.normalize: standard, fractions of each feature's
    training range for minmax, raw units for none."""
    weight: Annotated[float, Field(ge=0, le=1), NOT_BOOL_FLOAT] = 0.5
    """w in the training loss (1 − w) · J(x) + w · J(x̃); 0 trains on clean batches only and
    still reports val_adv_* metrics."""


class Tie(Strict):
    """Parameter tying of two named layers: alpha/2 · ‖W_a − W_b‖² (the course notes' penalty)."""

    layers: Annotated[list[LayerName], Field(min_length=2, max_length=2)]
    """The `name`s of the two layers [a, b], whose weights must have the same shape."""
    alpha: NonNegFloat
    """Penalty strength."""


class Regularizers(Strict):
    """Penalties, constraints and noise. Penalties and constraints apply to weights only:
    never to biases nor to normalisation parameters."""

    l1: NonNegFloat = 0.0
    """Adds alpha · Σ|w| to the loss."""
    l2: NonNegFloat = 0.0
    """Adds alpha/2 · Σw² to the loss (gradient term alpha·w)."""
    lp: LpPenalty | None = None
    """Adds alpha/p · Σ|w|^p to the loss."""
    max_norm: PositiveFloat | None = None
    """Project each unit's incoming weight vector back to norm ≤ c after every step."""
    input_noise: NonNegFloat = 0.0
    """Std of Gaussian noise added to the inputs while training."""
    weight_noise: NonNegFloat = 0.0
    """Std of Gaussian noise added to the weights in each training forward pass."""
    gradient_clip: PositiveFloat | None = None
    """Largest global gradient norm; larger gradients are rescaled."""
    tie: list[Tie] = []
    """Parameter tying: each item adds alpha/2 · ‖W_a − W_b‖² to the loss, pulling two named
    layers' weights (of the same shape) towards each other."""
    adversarial: Adversarial | None = None
    """Adversarial training with FGSM on the normalised inputs; metrics.csv gains val_adv_loss
    and val_adv_<metric> (the same attack on the validation split)."""


# --- optimizer and schedule -------------------------------------------------------------


class NoSchedule(Strict):
    """A constant learning rate."""

    name: Literal["none"]


class InverseTime(Strict):
    """lr = lr0 / (1 + decay · epoch)."""

    name: Literal["inverse_time"]
    decay: NonNegFloat
    """Decay rate per epoch."""


class LinearSchedule(Strict):
    """lr falls linearly from lr0 to end_factor·lr0 over `epochs` epochs, then stays."""

    name: Literal["linear"]
    end_factor: Annotated[float, Field(ge=0, le=1), NOT_BOOL_FLOAT] = 0.0
    """Final lr as a fraction of lr0."""
    epochs: PositiveInt | None = None
    """Length of the ramp; default: training.epochs."""


class StepSchedule(Strict):
    """lr = lr0 · gamma^floor(epoch / step_size)."""

    name: Literal["step"]
    step_size: PositiveInt
    """Epochs between decays."""
    gamma: Annotated[float, Field(gt=0, le=1), NOT_BOOL_FLOAT] = 0.1
    """Factor applied at each decay."""


class ExponentialSchedule(Strict):
    """lr = lr0 · gamma^epoch."""

    name: Literal["exponential"]
    gamma: Annotated[float, Field(gt=0, le=1), NOT_BOOL_FLOAT]
    """Factor applied every epoch."""


class CosineSchedule(Strict):
    """lr follows half a cosine from lr0 to min_lr over `epochs` epochs."""

    name: Literal["cosine"]
    min_lr: NonNegFloat = 0.0
    """Learning rate at the end of the cosine."""
    epochs: PositiveInt | None = None
    """Length of the cosine; default: training.epochs."""


class PlateauSchedule(Strict):
    """Multiply lr by `factor` when the monitored metric has not improved for `patience` epochs."""

    name: Literal["plateau"]
    monitor: str = "val_loss"
    """Metric watched (same names as stopping.early.monitor)."""
    factor: Annotated[float, Field(gt=0, lt=1), NOT_BOOL_FLOAT] = 0.1
    """Factor applied on a plateau."""
    patience: PositiveInt = 5
    """Epochs without improvement before lowering lr."""
    min_delta: NonNegFloat = 0.0
    """Smallest change that counts as an improvement."""
    min_lr: NonNegFloat = 0.0
    """Floor of the learning rate."""


SCHEDULE_NAMES = ("none", "inverse_time", "linear", "step", "exponential", "cosine", "plateau")

_ScheduleUnion = Annotated[
    NoSchedule
    | InverseTime
    | LinearSchedule
    | StepSchedule
    | ExponentialSchedule
    | CosineSchedule
    | PlateauSchedule,
    Field(discriminator="name"),
]
Schedule = Annotated[_ScheduleUnion, shorthand(_ScheduleUnion, SCHEDULE_NAMES)]
"""A learning-rate schedule, by name or with options."""

Betas = Annotated[
    list[Annotated[float, Field(ge=0, lt=1), NOT_BOOL_FLOAT]], Field(min_length=2, max_length=2)
]


class Sgd(Strict):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    name: Literal["sgd"]
    lr: PositiveFloat = 0.01
    """Initial learning rate lr0."""
    momentum: Annotated[float, Field(ge=0, lt=1), NOT_BOOL_FLOAT] = 0.0
    """Momentum coefficient α of the velocity v ← αv − ε∇."""
    nesterov: Bool = False
    """Use Nesterov momentum (needs momentum > 0)."""
    schedule: Schedule = by_name("none")
    """Learning-rate schedule."""

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> Sgd:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: true needs momentum > 0")
        return self


class Adagrad(Strict):
    """AdaGrad: per-parameter rates scaled by the accumulated squared gradients."""

    name: Literal["adagrad"]
    lr: PositiveFloat = 0.01
    """Initial learning rate lr0."""
    eps: PositiveFloat = 1.0e-10
    """Added to the denominator for numerical stability."""
    schedule: Schedule = by_name("none")
    """Learning-rate schedule."""


class RmsProp(Strict):
    """RMSProp: rates scaled by a moving average of squared gradients."""

    name: Literal["rmsprop"]
    lr: PositiveFloat = 1.0e-3
    """Initial learning rate lr0."""
    rho: Annotated[float, Field(gt=0, lt=1), NOT_BOOL_FLOAT] = 0.9
    """Decay rate ρ of the squared-gradient average."""
    momentum: Annotated[float, Field(ge=0, lt=1), NOT_BOOL_FLOAT] = 0.0
    """Momentum coefficient."""
    eps: PositiveFloat = 1.0e-7
    """Added to the denominator for numerical stability."""
    schedule: Schedule = by_name("none")
    """Learning-rate schedule."""


class Adam(Strict):
    """Adam: bias-corrected first and second moment estimates."""

    name: Literal["adam"]
    lr: PositiveFloat = 1.0e-3
    """Initial learning rate lr0."""
    betas: Betas = [0.9, 0.999]
    """ρ1, ρ2: decay rates of the moment estimates."""
    eps: PositiveFloat = 1.0e-8
    """δ, added to the denominator for numerical stability."""
    schedule: Schedule = by_name("none")
    """Learning-rate schedule."""


class AdamW(Strict):
    """Adam with decoupled weight decay (applied to weights only)."""

    name: Literal["adamw"]
    lr: PositiveFloat = 1.0e-3
    """Initial learning rate lr0."""
    betas: Betas = [0.9, 0.999]
    """ρ1, ρ2: decay rates of the moment estimates."""
    eps: PositiveFloat = 1.0e-8
    """δ, added to the denominator for numerical stability."""
    weight_decay: NonNegFloat = 0.01
    """Decoupled decay coefficient."""
    schedule: Schedule = by_name("none")
    """Learning-rate schedule."""


OPTIMIZER_NAMES = ("sgd", "adagrad", "rmsprop", "adam", "adamw")

_OptimizerUnion = Annotated[Sgd | Adagrad | RmsProp | Adam | AdamW, Field(discriminator="name")]
Optimizer = Annotated[_OptimizerUnion, shorthand(_OptimizerUnion, OPTIMIZER_NAMES)]
"""The optimizer, by name or with options."""


# --- training and stopping --------------------------------------------------------------


class Training(Strict):
    """The training loop."""

    epochs: PositiveInt = 100
    """Upper bound on the number of epochs."""
    batch_size: PositiveInt = 32
    """Examples per minibatch."""
    seed: Seed = 0
    """Seed of initialisation, shuffling, dropout and noise."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: cuda when available, else cpu."""
    threads: PositiveInt | Literal["auto"] = "auto"
    """CPU threads for torch; auto picks by work per step: 1 below 200 MFLOP per step and
    process, else the cores less one, shared among the processes of training.devices."""
    devices: PositiveInt = 1
    """Processes training together: N > 1 runs N processes on this machine (torchrun +
    DistributedDataParallel, gloo on CPU, nccl on CUDA, one GPU each); batch_size stays the
    global minibatch, shared between them."""


class EarlyStopping(Strict):
    """Stop when the monitored metric has not improved for `patience` evaluations."""

    monitor: str = "val_loss"
    """Metric to watch: val_loss or a val_ metric of the task (val_accuracy, val_mae, ...);
    with regularizers.adversarial also val_adv_loss or val_adv_<metric> (the attacked split)."""
    patience: PositiveInt = 10
    """Evaluations without improvement before stopping (the notes' p)."""
    min_delta: NonNegFloat = 0.0
    """Smallest change that counts as an improvement."""
    restore_best: Bool = True
    """End with the best parameters θ* instead of the last ones."""


class Stopping(Strict):
    """When training stops and what happens afterwards."""

    early: EarlyStopping | None = None
    """Early stopping on the validation set; absent: train for training.epochs."""
    refit: Literal["none", "best_epochs", "continue"] = "none"
    """After early stopping, train on train+val: best_epochs retrains from scratch for i*
    epochs; continue goes on from θ*."""


class Onnx(Strict):
    """ONNX export settings."""

    opset: Annotated[int, Field(ge=13, le=23), NOT_BOOL_INT] = 18
    """ONNX opset version."""
    part: Literal["model", "encoder"] = "model"
    """What the graph computes: the whole model (`output`), or, for a spec with a
    `gaussian_latent` layer, the encoder only: raw input to the latent mean mu (`output`
    [batch, units]); a specc extension of the export contract (docs/deployment.md)."""


class Export(Strict):
    """Deployment artefacts written by `specc train`."""

    onnx: Onnx | None = None
    """When present, `specc train` also writes model.onnx."""


class Tracking(Strict):
    """Experiment tracking: copies of the per-epoch metrics for the tools people compare runs in."""

    tensorboard: Bool = False
    """Also write each epoch's metrics.csv values (train_loss, val_*, lr; step = epoch) as
    TensorBoard scalars to RUN_DIR/tensorboard/ (needs tensorboardX, in `specc[train]`)."""


class Ensemble(Strict):
    """Bagging: several copies of the network, each trained on its own resample of the
    training split, that vote on every prediction (docs/training.md, "Ensembles")."""

    members: Annotated[int, Field(ge=2, le=100), NOT_BOOL_INT] = 5
    """Number of networks k; member k trains with seed training.seed + k in
    RUN_DIR/members/k/."""
    bootstrap: Bool = True
    """Train each member on a bootstrap sample of the training split (as many rows, drawn
    with replacement; val and test are never resampled) and report out-of-bag metrics; false:
    every member sees the whole training split and differs only by its seed."""
    vote: Literal["soft", "hard"] = "soft"
    """soft: the mean of the members' probabilities (regression: of their values); hard: each
    member votes for its class and the output is the share of votes per class (classifiers
    only)."""


# --- multitask heads ---------------------------------------------------------------------

HeadName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]
"""A head's name: lower case, digits and underscores (used in code and metric names)."""


class Head(Strict):
    """An auxiliary output on the shared layers, trained on its own target column (multitask
    learning); it adds weight · its loss to the training loss and is not exported."""

    target: str
    """The data column this head predicts (csv/parquet sources); never a data.target or
    data.features column, and left out of the default features."""
    layers: list[Layer] = []
    """The head's own hidden layers, applied to the output of the shared `layers`."""
    output: Output
    """The head's output unit (same table of activations, units and losses as `output`)."""
    loss: Loss | None = None
    """The head's loss; default: the one matching its output unit."""
    weight: PositiveFloat = 1.0
    """Factor of the head's loss in the total loss: main + Σ weight · head loss + penalties."""


# --- the spec ---------------------------------------------------------------------------


class Spec(Strict):
    """One model and how to train it."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    """Identifier used in paths and class names: lower case, digits and underscores."""
    description: str | None = None
    """Free text."""
    data: Data
    """The data source and its preparation."""
    input: Input
    """The shape of one example."""
    init: Init = Init()
    """Initialisation of weights and biases."""
    layers: list[Layer] = []
    """Hidden layers in order."""
    output: Output
    """The output unit."""
    task: Literal["reconstruct"] | None = None
    """`reconstruct`: an autoencoder, whose target is the normalised input itself (flattened;
    no labels, no data.target), output.units = prod(input.shape); its loss (mse for a linear
    output, binary_cross_entropy for a sigmoid one with data.normalize: minmax) is summed over
    the output units and averaged over the rows. Absent: the task follows from the output unit."""
    loss: Loss | None = None
    """Training loss; default: the one matching the output unit."""
    regularizers: Regularizers = Regularizers()
    """Penalties, constraints and noise."""
    optimizer: Optimizer = by_name("adam")
    """Optimizer and learning-rate schedule."""
    training: Training = Training()
    """Epochs, batch size, seed and device."""
    stopping: Stopping = Stopping()
    """Early stopping and refit."""
    export: Export = Export()
    """Deployment artefacts."""
    tracking: Tracking = Tracking()
    """Copies of the training metrics for experiment trackers (TensorBoard)."""
    heads: dict[HeadName, Head] = {}
    """Multitask heads by name: branches off the shared layers, each with its own target,
    layers, output unit, loss and weight; used in training only (ONNX exports `output`)."""
    search: Search | None = None
    """A hyperparameter search over this spec, run by `specc tune`; `specc train` ignores it
    and trains the values written above."""
    ensemble: Ensemble | None = None
    """Bagging: train several members and export their vote as one model; absent: one network."""
