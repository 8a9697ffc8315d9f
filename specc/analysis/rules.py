"""Semantic rules as tables: the output unit ↔ loss table, metrics, and cross-field checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from specc.analysis.blocks import Site, all_blocks
from specc.analysis.datasets import SKLEARN
from specc.analysis.environment import torch_has_cuda, torch_version
from specc.analysis.ir import LossName, Task
from specc.analysis.report import Finding, Path, error, plural, warning
from specc.analysis.shapes import pair, pool_geometry
from specc.analysis.target_norm import check_huber_delta, check_normalize_target
from specc.analysis.transformer import check_transformer
from specc.diagnostics import did_you_mean

# --- the output unit and its losses (contract §1) -----------------------------------------


class OutputRule(NamedTuple):
    """One row of the output-unit table: which losses suit an activation and unit count."""

    activation: str
    min_units: int
    max_units: int | None
    task: Task
    losses: tuple[LossName, ...]
    """Allowed losses; the first is the one used when `loss` is omitted."""


OUTPUT_RULES: tuple[OutputRule, ...] = (
    OutputRule("linear", 1, None, "regression", ("mse", "mae", "huber")),
    OutputRule("sigmoid", 1, 1, "binary", ("binary_cross_entropy",)),
    OutputRule("sigmoid", 2, None, "multilabel", ("binary_cross_entropy",)),
    OutputRule("softmax", 2, None, "multiclass", ("cross_entropy",)),
)
"""output.activation, units range, task, allowed losses: anything else is an error."""

TASK_WORDS: dict[Task, str] = {
    "regression": "for regression",
    "binary": "for a binary output",
    "multilabel": "for {k} independent labels",
    "multiclass": "for {k} exclusive classes",
    "reconstruct": "to reconstruct {k} inputs",
}
"""How a hint names a task ({k}: the unit count)."""

METRICS: dict[Task, tuple[str, ...]] = {
    "regression": ("loss", "mae", "rmse", "r2"),
    "binary": ("loss", "accuracy"),
    "multilabel": ("loss", "accuracy"),
    "multiclass": ("loss", "accuracy"),
    "reconstruct": ("loss", "recon", "kl", "mse"),
}
"""Metrics each task reports, without the `val_` prefix (reconstruct: recon and kl only with a
gaussian_latent, specc.analysis.reconstruct)."""

MODES: dict[str, str] = {"loss": "min", "mae": "min", "rmse": "min", "accuracy": "max", "r2": "max"}
MODES.update(recon="min", kl="min", mse="min")  # task: reconstruct
"""Whether a monitored metric improves downwards (min) or upwards (max)."""


def output_rule(activation: str, units: int) -> OutputRule | None:
    """The table row of an output unit, or None when no row allows it."""
    for rule in OUTPUT_RULES:
        fits_max = rule.max_units is None or units <= rule.max_units
        if rule.activation == activation and rule.min_units <= units and fits_max:
            return rule
    return None


def check_output_units(spec: Any) -> list[Finding]:
    """`output-units` when no row of the table allows the output unit's activation and units."""
    out = spec.output
    if output_rule(out.activation, out.units) is not None:
        return []
    others = [r.activation for r in OUTPUT_RULES if output_rule(r.activation, out.units) == r]
    msg = f"a {out.activation} output unit cannot have {plural(out.units, 'unit')}"
    hint = f"with {plural(out.units, 'unit')} use activation: {' or '.join(others)}"
    least = min(r.min_units for r in OUTPUT_RULES if r.activation == out.activation)
    return [error(("output", "units"), "output-units", msg, hint, f"or units: {least}")]


def check_loss(spec: Any) -> list[Finding]:
    """A mismatch error for the loss the spec names, when it does not suit the output unit."""
    out = spec.output
    rule = output_rule(out.activation, out.units)
    if rule is None or spec.loss is None or spec.loss.name in rule.losses:
        return []
    return [_loss_mismatch(spec.loss.name, rule, out.units, out.activation)]


def _loss_mismatch(loss: str, rule: OutputRule, units: int, activation: str) -> Finding:
    """`loss-output-mismatch` at the loss, proposing the matching loss or output unit."""
    needed = [r.activation for r in OUTPUT_RULES if loss in r.losses]
    wanted = " or ".join(dict.fromkeys(needed))
    msg = f"loss '{loss}' needs a {wanted} output unit, but output.activation is '{activation}'"
    hint = f"{TASK_WORDS[rule.task].format(k=units)} use loss: {either(rule.losses)}"
    keep = f"or, to keep loss: {loss}, use output.activation: {needed[0]}"
    if not any(output_rule(a, units) for a in needed):  # softmax needs >= 2 units
        least = min(r.min_units for r in OUTPUT_RULES if r.activation == needed[0])
        keep = f"or, to keep loss: {loss}, use output: {{units: {least}, activation: {needed[0]}}}"
    return error(("loss", "name"), "loss-output-mismatch", msg, hint, keep)


def either(names: tuple[str, ...] | list[str]) -> str:
    """'mse, mae or huber'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_label_smoothing(spec: Any) -> list[Finding]:
    """ε at or above (k−1)/k makes the true class no more likely than the others."""
    eps = getattr(spec.loss, "label_smoothing", 0.0) if spec.loss is not None else 0.0
    k = spec.output.units if spec.output.activation == "softmax" else 2
    if eps == 0 or k < 2 or eps < (k - 1) / k:
        return []
    msg = f"label_smoothing {eps} leaves no preference for the true class among {k} classes"
    hint = f"use a small value such as 0.1 (it must stay below {(k - 1) / k:.3g})"
    return [error(("loss", "label_smoothing"), "label-smoothing-too-large", msg, hint)]


def check_monitor(monitor: str, task: Task, path: Path, adversarial: bool = False) -> list[Finding]:
    """`unknown-monitor` when the metric is not val_loss or a val_ metric of the task (with
    regularizers.adversarial also val_adv_loss or a val_adv_ metric)."""
    allowed = [f"val_{m}" for m in METRICS[task]]
    attacked = [f"val_adv_{m}" for m in METRICS[task]]  # the FGSM-attacked validation split
    if monitor in allowed or (adversarial and monitor in attacked):
        return []
    if monitor in attacked:
        msg = f"monitor '{monitor}' exists only with adversarial training, which is off"
        turn_on = "add regularizers: {adversarial: {method: fgsm, epsilon: 0.1, weight: 0.5}}"
        clean = f"or monitor {monitor.replace('adv_', '')} (the clean validation split)"
        return [error(path, "unknown-monitor", msg, turn_on, clean)]
    allowed += attacked if adversarial else []
    msg = f"unknown monitor '{monitor}' for a {task} model"
    hint = did_you_mean(monitor, allowed)
    return [error(path, "unknown-monitor", msg, hint, f"expected one of: {', '.join(allowed)}")]


def monitor_mode(monitor: str) -> str:
    """'min' or 'max' for a `val_<metric>` name."""
    return MODES[monitor.removeprefix("val_").removeprefix("adv_")]


# --- cross-field rules --------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a rule may look at: the spec (only the sections its row names as inputs are
    valid), the task (None when unknown) and the spec's folder (data paths are relative)."""

    spec: Any
    task: Task | None
    spec_dir: Any = None


def _needs_validation(ctx: Context) -> list[Finding]:
    """Early stopping and the plateau schedule watch validation metrics."""
    spec, found = ctx.spec, []
    if spec.data.split.val > 0:
        return []
    hint = "set data.split.val, e.g. 0.2"
    if spec.stopping.early is not None:
        msg = "early stopping needs a validation set, but data.split.val is 0"
        found.append(error(("stopping", "early"), "needs-validation", msg, hint))
    if spec.optimizer.schedule.name == "plateau":
        msg = "the plateau schedule needs a validation set, but data.split.val is 0"
        found.append(error(("optimizer", "schedule"), "needs-validation", msg, hint))
    return found


def _monitors(ctx: Context) -> list[Finding]:
    """Monitored metrics exist for the task."""
    spec, found = ctx.spec, []
    if ctx.task is None:
        return []
    adversarial = spec.regularizers.adversarial is not None
    if spec.stopping.early is not None:
        found += check_monitor(
            spec.stopping.early.monitor, ctx.task, ("stopping", "early", "monitor"), adversarial
        )
    if spec.optimizer.schedule.name == "plateau":
        path = ("optimizer", "schedule", "monitor")
        found += check_monitor(spec.optimizer.schedule.monitor, ctx.task, path, adversarial)
    return found


def _refit(ctx: Context) -> list[Finding]:
    """Refitting repeats an early-stopped run, so it needs early stopping."""
    stopping = ctx.spec.stopping
    if stopping.refit == "none" or stopping.early is not None:
        return []
    msg = f"refit: {stopping.refit} needs early stopping, but stopping.early is not set"
    hint = "add stopping: {early: {monitor: val_loss, patience: 10}}, or remove refit"
    return [error(("stopping", "refit"), "refit-needs-early-stopping", msg, hint)]


def _image_augment(ctx: Context) -> list[Finding]:
    """Flips and shifts move pixels, so they need [C, H, W] images."""
    shape = ctx.spec.input.shape
    if len(shape) == 3:
        return []
    found = []
    for i, item in enumerate(ctx.spec.data.augment):
        kind = next(iter(type(item).model_fields))
        if kind in ("flip", "shift"):
            msg = f"{kind} augmentation needs image inputs [C, H, W], but input.shape is {shape}"
            hint = "use noise augmentation for vectors and sequences, or remove it"
            found.append(error(("data", "augment", i, kind), "augment-needs-image", msg, hint))
    return found


def _schedule_length(ctx: Context) -> list[Finding]:
    """A schedule longer than training never reaches its end."""
    spec = ctx.spec
    schedule, epochs = spec.optimizer.schedule, spec.training.epochs
    key = "step_size" if schedule.name == "step" else "epochs"
    length = getattr(schedule, key, None)
    too_long = length is not None and (length >= epochs if key == "step_size" else length > epochs)
    if not too_long:
        return []
    if key == "step_size":
        msg = f"step_size {length} is not below training.epochs {epochs}: the rate never decays"
        hint = f"use a step_size below {epochs}"
    else:
        msg = f"schedule epochs {length} exceeds training.epochs {epochs}: it never reaches its end"
        hint = "omit epochs to follow training.epochs"
    return [warning(("optimizer", "schedule", key), "schedule-beyond-training", msg, hint)]


def _patience(ctx: Context) -> list[Finding]:
    """Patience as long as training means early stopping can never stop anything."""
    early, epochs = ctx.spec.stopping.early, ctx.spec.training.epochs
    if early is None or early.patience < epochs:
        return []
    msg = f"patience {early.patience} is not below training.epochs {epochs}"
    msg += ": training can never stop early"
    hint = f"lower patience below {epochs}, or raise training.epochs"
    return [warning(("stopping", "early", "patience"), "patience-exceeds-epochs", msg, hint)]


def _batch_size(ctx: Context) -> list[Finding]:
    """A batch larger than the training split of a bundled dataset is one full batch."""
    spec = ctx.spec
    ds = SKLEARN.get(spec.data.source.removeprefix("sklearn:"))
    if not spec.data.source.startswith("sklearn:") or ds is None:
        return []
    rows = int(ds.rows * (1 - spec.data.split.val - spec.data.split.test))
    if spec.training.batch_size <= rows:
        return []
    default = "" if "batch_size" in spec.training.model_fields_set else " (the default)"
    msg = f"batch_size {spec.training.batch_size}{default} exceeds the ~{rows} training rows"
    msg += ": every epoch is a single step"
    example = min(32, 2 ** max(0, (rows // 2).bit_length() - 1))  # a power of 2 <= rows / 2
    hint = f"use a batch_size well below {rows}, e.g. {example}"
    return [warning(("training", "batch_size"), "batch-exceeds-data", msg, hint)]


def _first_batchnorm(ctx: Context) -> str | None:
    """The dotted path of the spec's first batch-norm layer (in any block), or None."""
    norms = [s for block in all_blocks(ctx.spec.layers) for s in block if s.kind == "batchnorm"]
    return ".".join(map(str, norms[0].path)) if norms else None


def _batchnorm_batch(ctx: Context) -> list[Finding]:
    """Batch norm normalises each minibatch by its own statistics: one row has no variance."""
    where = _first_batchnorm(ctx)
    if ctx.spec.training.batch_size > 1 or where is None:
        return []
    msg = f"batch_size 1 with batch norm ({where}): a one-row minibatch has no batch statistics"
    hint = "use a batch_size of at least 2 (e.g. 32), or layernorm instead of batchnorm"
    return [error(("training", "batch_size"), "batchnorm-needs-batch", msg, hint)]


def _batchnorm_processes(ctx: Context) -> list[Finding]:
    """Batch norm with several processes on CPU normalises by each process's share only."""
    training = ctx.spec.training
    where = _first_batchnorm(ctx)
    if training.devices == 1 or training.device == "cuda" or where is None:
        return []
    msg = (
        f"batch norm ({where}) with devices: {training.devices} on CPU normalises each process's "
        f"share of a minibatch (~{training.batch_size // training.devices} rows) by its own "
        "statistics: SyncBatchNorm, which uses the whole minibatch's, needs CUDA"
    )
    hint = "train on device: cuda (batch norm becomes SyncBatchNorm), use layernorm, or devices: 1"
    return [warning(("training", "devices"), "batchnorm-per-process", msg, hint)]


def _devices_batch(ctx: Context) -> list[Finding]:
    """Each process takes a share of every minibatch: fewer rows than processes leaves some idle."""
    training = ctx.spec.training
    if training.batch_size >= training.devices:
        return []
    msg = (
        f"batch_size {training.batch_size} is below devices: {training.devices}: every minibatch "
        "is shared between the processes, so some get no rows at all"
    )
    hint = f"use a batch_size of at least {training.devices} (a multiple of it shares evenly)"
    return [warning(("training", "batch_size"), "devices-exceed-batch", msg, hint)]


def _cuda_device(ctx: Context) -> list[Finding]:
    """`device: cuda` with a CPU-only torch cannot train (checked without importing torch)."""
    if ctx.spec.training.device != "cuda" or torch_has_cuda() is not False:
        return []
    msg = f"training.device is cuda, but the installed torch {torch_version()} is a CPU-only build"
    hint = "use device: auto (cuda when available, else cpu), or install a CUDA build of torch"
    return [warning(("training", "device"), "cuda-unavailable", msg, hint)]


def _duplicate_columns(ctx: Context) -> list[Finding]:
    """A column named twice in data.target or data.features is one column, not two."""
    found = []
    for key in ("target", "features"):
        names = getattr(ctx.spec.data, key)
        if not isinstance(names, list):
            continue
        for i, name in enumerate(names):
            if name in names[:i]:
                msg = f"data.{key} names column '{name}' twice (items {names.index(name)} and {i})"
                hint = f"list each column once: {list(dict.fromkeys(names))}"
                found.append(error(("data", key, i), "duplicate-column", msg, hint))
    return found


class Rule(NamedTuple):
    """A cross-field rule: stable code(s), purpose, the spec sections it reads, handler.

    A rule runs only when every section it reads is valid, so a schema error in one section
    never hides the problems that the other sections show."""

    code: str
    purpose: str
    inputs: frozenset[str]
    check: Callable[[Context], list[Finding]]


def reads(*sections: str) -> frozenset[str]:
    """The top-level spec sections a rule reads."""
    return frozenset(sections)


CROSS_RULES: tuple[Rule, ...] = (
    Rule(
        "needs-validation",
        "early stopping and plateau need data.split.val > 0",
        reads("data", "stopping", "optimizer"),
        _needs_validation,
    ),
    Rule(
        "unknown-monitor",
        "monitored metrics exist for the task",
        reads("output", "stopping", "optimizer", "regularizers"),
        _monitors,
    ),
    Rule("refit-needs-early-stopping", "refit needs stopping.early", reads("stopping"), _refit),
    Rule(
        "augment-needs-image",
        "flip/shift augmentation needs [C, H, W] inputs",
        reads("input", "data"),
        _image_augment,
    ),
    Rule(
        "schedule-beyond-training",
        "a schedule should end within training",
        reads("optimizer", "training"),
        _schedule_length,
    ),
    Rule(
        "patience-exceeds-epochs",
        "patience must be able to trigger",
        reads("stopping", "training"),
        _patience,
    ),
    Rule(
        "cuda-unavailable",
        "device: cuda needs a CUDA build of torch",
        reads("training"),
        _cuda_device,
    ),
    Rule(
        "duplicate-column",
        "each target and feature column is named once",
        reads("data"),
        _duplicate_columns,
    ),
    Rule(
        "batchnorm-needs-batch",
        "batch norm needs minibatches of at least 2 rows",
        reads("layers", "training"),
        _batchnorm_batch,
    ),
    Rule(
        "batchnorm-per-process",
        "batch norm across processes needs SyncBatchNorm (CUDA)",
        reads("layers", "training"),
        _batchnorm_processes,
    ),
    Rule(
        "devices-exceed-batch",
        "every process gets rows of each minibatch",
        reads("training"),
        _devices_batch,
    ),
    Rule(
        "batch-exceeds-data",
        "batches smaller than the training split",
        reads("data", "training"),
        _batch_size,
    ),
    Rule(
        "normalize-target-needs-regression",
        "data.normalize_target applies to regression (linear output) only",
        reads("data", "output"),
        check_normalize_target,
    ),
    Rule(
        "huber-delta-standardised",
        "a Huber delta above 3 σ on standardised targets acts as mse",
        reads("data", "loss"),
        check_huber_delta,
    ),
)
"""Rules across sections of the spec."""


# --- per-layer parameter rules (independent of shapes) ------------------------------------


def _same_padding(site: Site) -> list[Finding]:
    """PyTorch's padding='same' exists only for stride 1."""
    p = site.params
    if p.padding != "same" or pair(p.stride) == (1, 1):
        return []
    msg = f"padding: same needs stride 1, but stride is {p.stride}"
    hint = "use stride: 1 with padding: same, or give padding as a number"
    return [error((*site.params_path, "padding"), "same-padding-stride", msg, hint)]


def _pool_padding(site: Site) -> list[Finding]:
    """Pooling padding may be at most half the window (PyTorch's limit)."""
    window, _, pads = pool_geometry(site.params, 1 if site.kind.endswith("1d") else 2)
    if all(p <= k // 2 for p, k in zip(pads, window, strict=True)):
        return []
    msg = f"pooling padding {pads[0]} is more than half the window {list(window)}"
    hint = f"use padding: {min(window) // 2} or less"
    return [error((*site.params_path, "padding"), "pool-padding", msg, hint)]


def _recurrent_dropout(site: Site) -> list[Finding]:
    """Recurrent dropout acts between stacked layers only."""
    p = site.params
    if p.num_layers > 1 or p.dropout == 0:
        return []
    msg = f"dropout {p.dropout} has no effect with num_layers: 1 (it acts between stacked layers)"
    hint = "set num_layers: 2 or more, or add a dropout layer after this one"
    return [warning((*site.params_path, "dropout"), "recurrent-dropout-unused", msg, hint)]


LAYER_RULES: dict[str, Callable[[Site], list[Finding]]] = {
    "conv1d": _same_padding,
    "conv2d": _same_padding,
    "separable_conv2d": _same_padding,
    "maxpool1d": _pool_padding,
    "avgpool1d": _pool_padding,
    "maxpool2d": _pool_padding,
    "avgpool2d": _pool_padding,
    "lstm": _recurrent_dropout,
    "gru": _recurrent_dropout,
    "rnn": _recurrent_dropout,
    "transformer_encoder": check_transformer,
}
"""Parameter checks of a single layer, by kind."""


def check_layer(site: Site) -> list[Finding]:
    """The parameter rules of one layer."""
    rule = LAYER_RULES.get(site.kind)
    return rule(site) if rule is not None else []
