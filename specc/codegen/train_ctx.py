"""The template context of data.py and train.py, computed from the Program (templates stay dumb).

Everything a template places is decided here: constant names, their literal values and the spec
key each one comes from, the optimizer constructor, the lines of the loss, the lr rule and the
task's metrics (small tables below), which regularizer / schedule / stopping blocks exist, the
loop's spec-dependent lines, and the data file's path relative to the directory the code is
written to. Every option is read from the typed training IR (specc/analysis/ir.py), whose
defaults analysis resolved: nothing here restates a schema default. harness.py, the run
machinery beside train.py, is the same for every spec and needs no context.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from specc.analysis.ir import (
    AdagradOptions,
    AdamwOptions,
    CosineScheduleOptions,
    ExponentialScheduleOptions,
    FlipAugmentOptions,
    InverseTimeOptions,
    LayerIR,
    LinearScheduleOptions,
    NoiseAugmentOptions,
    PlateauScheduleOptions,
    Program,
    RmspropOptions,
    SgdOptions,
    StepScheduleOptions,
)
from specc.codegen import heads_ctx, reconstruct_ctx
from specc.codegen.adversarial_ctx import adversarial_constants, step_loss_line
from specc.codegen.literals import LINE_LENGTH, py, wrap_text

SKLEARN_LOADERS = {
    "iris": "load_iris",
    "digits": "load_digits",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "linnerud": "load_linnerud",
}
"""scikit-learn's loader function for each bundled dataset name of `data.source`."""

OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}
FUSED_ON_CPU = frozenset({"sgd", "adagrad", "adam", "adamw"})
"""The optimizers torch.optim has a fused CPU step for (RMSprop has none): harness.fused."""


@dataclass(frozen=True)
class Constant:
    """One module-level constant of generated code: NAME = value  # spec key."""

    name: str
    value: str
    """A Python literal (repr) of the value."""
    key: str
    """The spec key it comes from, for the comment."""

    @property
    def line(self) -> str:
        """`NAME = value  # key`; a line too long for that puts the comment above, and a value
        no line can hold (a deep data path) tells the linter so."""
        code = f"{self.name} = {self.value}"
        line = f"{code}  # {self.key}"
        if len(line) <= LINE_LENGTH:
            return line
        noqa = "  # noqa: E501" if len(code) > LINE_LENGTH else ""
        return f"# {self.key}\n{code}{noqa}"


@dataclass(frozen=True)
class ConstantGroup:
    """Constants under one comment heading (data, model, optimizer, ...)."""

    title: str
    constants: tuple[Constant, ...]


@dataclass(frozen=True)
class Code:
    """A docstring and the body lines of a small generated function (loss, smoothing, lr rule)."""

    doc: str
    body: tuple[str, ...]


@dataclass(frozen=True)
class AugmentStep:
    """One augmentation in data.augment order: the lines of augment() that apply it."""

    kind: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Tracker:
    """The best-weights tracker class: EarlyStopping, or BestWeights without stopping."""

    name: str
    heading: str
    doc: str
    min_delta: str
    """The expression improved() gets: MIN_DELTA, or 0.0 without early stopping."""


@dataclass(frozen=True)
class Step:
    """train_epoch's statements around the fixed ones, each list in the order they run."""

    before: tuple[str, ...]
    """Before the batch loop (the weights the penalties, projection and noise act on)."""
    forward: tuple[str, ...]
    """From the batch to the loss: augmentation, this process's share, zero_grad, weight noise,
    the objective's forward pass."""
    objective_args: str
    """Objective.forward's parameters after self (the batch: xb, yb and the heads' tb)."""
    objective_returns: str
    """Its return annotation: the loss, or the main loss and each head's."""
    objective_body: tuple[str, ...]
    """Its body: the minibatch's loss from the model (`self.model`), penalties aside."""
    update: tuple[str, ...]
    """From the loss to the step: backward (with penalties), clean weights, clipping, step,
    projection."""
    terms: bool = False
    """The objective also returns a vector of loss terms per step (the VAE's recon and kl),
    whose epoch means train_epoch returns third."""


@dataclass(frozen=True)
class Epoch:
    """train_epoch's signature and bookkeeping: the losses of every step, and the per-step
    vector of extra losses some specs report (the heads' losses, the VAE's recon and kl)."""

    params: tuple[str, ...]
    """Parameters after rng (the heads' targets)."""
    returns: str
    doc: str
    loop: str
    """The for statement over the minibatches."""
    init: tuple[str, ...]
    collect: tuple[str, ...]
    """After each step: its losses kept as tensors."""
    end: tuple[str, ...]
    """After the loop: every process's losses combined, the means returned."""


EPOCH_DOC = (
    "One pass over (x, y){what}; returns the per-step losses, their row-weighted mean{third}, "
    "as tensors (no host sync inside the loop). Under torchrun this process trains on its "
    "share of each minibatch; the losses returned are those of the whole minibatches."
)


def _epoch_doc(what: str, third: str) -> str:
    """train_epoch's docstring text, wrapped for its indentation."""
    return "\n    ".join(wrap_text(EPOCH_DOC.format(what=what, third=third), LINE_LENGTH - 7))


KEEP = ("losses.append(loss.detach())", "sizes.append(rows)")


def _epoch(program: Program) -> Epoch:
    """train_epoch's pieces: plain, with heads, or with the VAE's loss terms."""
    mean = "return losses, (losses * rows).sum() / x.shape[0]"
    if not program.heads and not reconstruct_ctx.has_terms(program):
        return Epoch(
            params=(),
            returns="tuple[torch.Tensor, torch.Tensor]",
            doc=_epoch_doc("", ""),
            loop="for xb, yb in batches(x, y, rng):",
            init=("losses, sizes = [], []",),
            collect=KEEP,
            end=(
                "rows = torch.tensor(sizes, device=losses[0].device)",
                "rows, losses = harness.step_losses(rows, torch.stack(losses))",
                mean,
            ),
        )
    params: tuple[str, ...] = ()
    if program.heads:
        part = "torch.stack([head_loss[name].detach() for name in HEADS])"
        what, third = " and the heads' targets", " and each head's"
        returned, kind = "dict(zip(HEADS, parts, strict=True))", "dict[str, torch.Tensor]"
        loop = "for xb, yb, tb in head_batches(x, y, targets, rng):"
        params, doc_parts = ("targets: dict[str, torch.Tensor],",), "head losses, in HEADS order"
    else:
        part, what, third = "terms.detach()", "", " and the loss terms'"
        returned, kind, loop = "parts", "torch.Tensor", "for xb, yb in batches(x, y, rng):"
        doc_parts = "loss terms (recon, kl)"
    return Epoch(
        params=params,
        returns=f"tuple[torch.Tensor, torch.Tensor, {kind}]",
        doc=_epoch_doc(what, third),
        loop=loop,
        init=(f"losses, sizes, parts = [], [], []  # parts: each step's {doc_parts}",),
        collect=(*KEEP, f"parts.append({part})"),
        end=(
            "rows = torch.tensor(sizes, device=losses[0].device)",
            "rows, losses, parts = harness.step_losses("
            "rows, torch.stack(losses), torch.stack(parts))",
            "parts = (parts * rows[:, None]).sum(dim=0) / x.shape[0]",
            f"{mean}, {returned}",
        ),
    )


@dataclass(frozen=True)
class Loop:
    """The main epoch loop's pieces that depend on the spec."""

    init: tuple[str, ...]
    """State made before a resume may overwrite it (plateau, refit phase)."""
    extra: str
    """Extra state dicts of run.checkpoint and run.resume (`, plateau=..., refit=...`), or ''."""
    condition: str
    lr: str
    after_epoch: tuple[str, ...]
    """After each epoch's row (the plateau's step, the TensorBoard scalars)."""
    monitored: str
    """The value best.update() gets."""
    stopped_now: str
    """When to announce early stopping after the loop."""
    monitored_text: str
    """How that announcement names the monitored value (inside an f-string)."""


@dataclass(frozen=True)
class Refit:
    """The refit phase on train + val (stopping.refit)."""

    strategy: str
    comment: tuple[str, ...]
    start: tuple[str, ...]
    """Lines that start the phase: a fresh model, or theta* and the target loss."""
    announce: str
    """The announcement's expression (an f-string)."""
    lr: str
    after_optimizer: tuple[str, ...]
    """After the phase's fresh optimizer (a fresh plateau schedule)."""
    after_row: tuple[str, ...]
    """After each refit epoch's row (continue: the phase ends once val_loss falls to the
    training loss at theta*)."""


@dataclass(frozen=True)
class Final:
    """What happens after the loops."""

    lines: tuple[str, ...]
    """The final-weights comment and, with restore_best, loading theta*."""
    stopped: str
    summary: tuple[str, ...]
    """Extra summary.json entries (the refit's)."""
    refit_after: str
    why: tuple[str, ...]
    """Lines computing `why` the loop ended, when the spec leaves more than one reason."""
    why_arg: str
    """What run.finish() gets as the reason: `why`, or the one reason as a literal."""


@dataclass(frozen=True)
class TrainContext:
    """What templates/data.py.j2 and templates/train.py.j2 place."""

    title: str
    """First docstring line of train.py (name and description, safe inside triple quotes)."""
    usage: tuple[str, ...]
    """The docstring's command line (and for an ensemble member, what it trains)."""
    name: str
    name_literal: str
    """The spec name as a Python literal (the curves' title)."""
    task: str
    classification: bool
    # --- data.py
    data_kind: str
    sklearn_loader: str | None
    data_file: str | None
    """Path of the data file relative to the generated code's directory (posix separators)."""
    stratify: bool
    """Stratified split: DataIR.stratify, resolved by analysis."""
    data_constants: tuple[ConstantGroup, ...]
    # --- train.py
    requirements: str
    """What train.py needs besides Python (torch and numpy, and the data source's reader)."""
    imports: tuple[str, ...]
    """train.py's import lines, sorted as ruff's isort wants them (blank lines included)."""
    constants: tuple[ConstantGroup, ...]
    smoothing: Code | None
    loss: Code
    penalties: tuple[str, ...]
    """The terms of penalty(), one per line (`+ ` before all but the first)."""
    max_norm: bool
    weight_noise: bool
    lr_rule: Code | None
    """lr_at(epoch) of the epoch-based schedules; None for none and plateau."""
    plateau: bool
    tracker: Tracker
    early: bool
    param_groups: bool
    """AdamW: weight decay on model.weights() only, through two parameter groups."""
    optimizer_call: str
    """The optimizer constructor expression over `model` (param groups for AdamW)."""
    batchnorm: bool
    """Whether the model has batch norm (then no minibatch may hold a single row)."""
    shift: bool
    """Whether an augmentation shifts images (the shift() helper)."""
    augments: tuple[AugmentStep, ...]
    step: Step
    epoch: Epoch
    metric_lines: tuple[str, ...]
    """evaluate()'s lines computing the task's metrics from `logits` and `y`."""
    rng_use: str
    model_comment: str
    loop: Loop
    shown: str
    """The val metrics on each progress line, as a tuple literal."""
    refit: Refit | None
    final: Final
    tensorboard: bool
    """tracking.tensorboard: the TensorBoard writer class, made at the start, closed at the end."""
    main: Main
    adversarial: bool = False
    """regularizers.adversarial: fgsm(), adversarial_loss(), evaluate_adversarial() and the
    val_adv_* columns (ADV_METRICS)."""
    ensemble: EnsembleCode | None = None
    """ensemble: train.py trains one member, chosen by --member K."""
    seed: str = "SEED"
    """The seed expression of the run: SEED, or an ensemble member's `seed` (SEED + K)."""
    heads: heads_ctx.HeadsContext | None = None
    """heads: their targets, losses, metrics and columns; None without heads."""
    tie: bool = False
    """regularizers.tie: tie_penalty() over model.tied_weights(), with TIE_ALPHA."""


@dataclass(frozen=True)
class Main:
    """main()'s statements that only some specs have (heads, adversarial training, an ensemble
    member, a target scale), each list at its place in main(), in the order they run."""

    start: tuple[str, ...]
    """Before the arguments are read (an ensemble member's --member K and seed)."""
    run_metrics: str
    """RunDir's metrics: METRICS, with the val_adv_* ones under adversarial training."""
    setup: tuple[str, ...]
    """After the run directory is opened (the TensorBoard writer, the thread count)."""
    fit_model: tuple[str, ...]
    """After the model is built, before it moves to the device (the input normaliser fitted)."""
    after_load: tuple[str, ...]
    """After the splits are read, before they go to the device (the member's resample)."""
    after_device: tuple[str, ...]
    """After the splits are on the device (the heads' targets)."""
    after_model: tuple[str, ...]
    """After the model is on the device (the target scale fitted, the targets standardised)."""
    train_returns: str
    """What train_epoch() returns: the losses, and the heads' training losses with heads."""
    train_targets: str
    """train_epoch()'s extra arguments in the loop (the heads' targets), or ''."""
    refit_targets: str
    """The same in the refit on train + val."""
    refit_data: tuple[str, ...]
    """After x_fit, y_fit are made (the heads' targets on train + val)."""
    after_eval: tuple[str, ...]
    """After the validation split's evaluation `val` (the attacked metrics)."""
    after_row: tuple[str, ...]
    """After the epoch's `row` is made (the heads' columns)."""
    splits: tuple[str, ...]
    """After splits_xy (the out-of-bag rows)."""
    summary: tuple[str, ...]
    """Last summary.json entries (the heads', the member's)."""
    after_summary: tuple[str, ...]
    """After the summary (every split attacked)."""
    end: tuple[str, ...]
    """After the run is finished (the TensorBoard writer closed)."""


@dataclass(frozen=True)
class EnsembleCode:
    """An ensemble member's pieces of train.py (ensemble:)."""

    bootstrap: bool
    """Whether the member trains on a bootstrap sample (and reports out-of-bag metrics)."""


def _ensemble(program: Program) -> EnsembleCode | None:
    """The member's pieces of train.py, or None for a single network."""
    if program.ensemble is None:
        return None
    return EnsembleCode(bootstrap=program.ensemble.bootstrap)


def _ensemble_constants(program: Program) -> tuple[Constant, ...]:
    """MEMBERS of an ensemble; none for a single network."""
    ens = program.ensemble
    if ens is None:
        return ()
    return (Constant("MEMBERS", py(ens.members), "ensemble.members (member K: seed SEED + K)"),)


ADV_EVAL = "val.update(evaluate_adversarial(model, x_val, y_val))  # val_adv_*"
HEAD_ROW = (
    'row.update(head_columns(head_train, evaluate_heads(model, x_val, t_val), row["val_loss"]))'
)
BOOTSTRAP = (
    "whole = splits",
    "splits, out_of_bag = bootstrap(whole, seed)  # the member's sample of the training split",
    "x_oob, y_oob = (torch.from_numpy(a[out_of_bag]).to(device) "
    "for a in (whole.x_train, whole.y_train))",
)
TARGET_SCALE = (
    "# data.normalize_target: each target column's mean and std from the training split only;",
    "# every loss (train_loss, val_loss) is on the standardised targets, the metrics are not",
    "model.normalize_target.fit(y_train)",
    "y_train, y_val, y_test = (model.normalize_target.scale(y) for y in (y_train, y_val, y_test))",
)
TENSORBOARD = (
    "tensorboard = TensorBoard(args.out)  # tracking.tensorboard: tensorboardX or exit 2, now"
)
HEAD_SPLITS = '{"train": (x_train, t_train), "val": (x_val, t_val), "test": (x_test, t_test)}'


def _usage(program: Program) -> tuple[str, ...]:
    """train.py's command line: one run, or one member of an ensemble."""
    ens = program.ensemble
    devices = program.training.devices
    if ens is None and devices > 1:
        torchrun = f"torchrun --standalone --nproc-per-node={devices}"
        return (
            f"    {torchrun} train.py --out RUN_DIR [--resume]\n        [--data PATH] [--quiet]",
            "",
            f"training.devices is {devices}: `specc train` runs it so, as {devices} processes of "
            "one\nDistributedDataParallel group (gloo on CPU, nccl on CUDA); `python train.py "
            "...` trains\nthe same spec in one process.",
        )
    if ens is None:
        return ("    python train.py --out RUN_DIR [--resume] [--data PATH] [--quiet]",)
    sample = " on a bootstrap\nsample of the training split" if ens.bootstrap else ""
    return (
        "    python train.py --out RUN_DIR/members/K --member K [--resume] [--data PATH] [--quiet]",
        "",
        f"It trains member K (0 <= K < MEMBERS) of the spec's ensemble with seed SEED + K{sample};"
        " `specc train` runs every member, then combines their vote.",
    )


def _main(program: Program) -> Main:
    """main()'s optional statements: heads, adversarial training, ensemble, target scale."""
    heads = bool(program.heads)
    adversarial = program.training.regularizers.adversarial is not None
    ens = program.ensemble
    bootstrap = ens is not None and ens.bootstrap
    after_model: list[str] = []
    if program.model.normalize_target != "none":
        after_model += TARGET_SCALE
        if bootstrap:
            after_model.append(
                "y_oob = model.normalize_target.scale(y_oob)  "
                "# the out-of-bag rows' metrics like the rest"
            )
    summary: list[str] = []
    if heads:
        summary.append(f'"heads": heads_summary(model, {HEAD_SPLITS}),')
    if ens is not None:
        summary += ['"member": member,', '"seed": seed,']
    if bootstrap:
        summary.append(
            '"out_of_bag": out_of_bag,  # rows of the training split the member never drew'
        )
    return Main(
        start=(
            "member = member_arg()  # which member of the ensemble this process trains",
            "seed = SEED + member  # training.seed + K",
        ) if ens is not None else (),
        run_metrics="METRICS + ADV_METRICS" if adversarial else "METRICS",
        setup=(
            *([TENSORBOARD] if program.tracking.tensorboard else []),
            "torch.set_num_threads(THREADS)" if program.training.threads is not None
            else "torch.set_num_threads(harness.cpu_threads())  # auto, a large step",
        ),
        fit_model=("model.normalize.fit(torch.from_numpy(splits.x_train))",)
        if program.model.normalize != "none" else (),
        after_load=BOOTSTRAP if bootstrap else (),
        after_device=(
            "t_train, t_val, t_test = head_targets(splits, device)  # heads: each head's targets",
        ) if heads else (),
        after_model=(*after_model, *reconstruct_ctx.after_model(program)),
        train_returns="losses, train_loss, head_train" if heads
        else "losses, train_loss, terms" if reconstruct_ctx.has_terms(program)
        else "losses, train_loss",
        train_targets=", t_train" if heads else "",
        refit_targets=", t_fit" if heads else "",
        refit_data=(
            "t_fit = {name: torch.cat([t_train[name], t_val[name]]) for name in HEADS}",
        ) if heads else reconstruct_ctx.refit_targets(program)
        if program.training.refit == "best_epochs" else (),
        after_eval=(ADV_EVAL,) if adversarial else (),
        after_row=(HEAD_ROW,) if heads else reconstruct_ctx.after_row(program),
        splits=(
            'splits_xy["oob"] = (x_oob, y_oob)  '
            "# out-of-bag rows: the member's unseen training rows",
        ) if bootstrap else (),
        summary=tuple(summary),
        after_summary=(
            "for name, (x, y) in splits_xy.items():  "
            "# each split attacked by FGSM: adv_loss, adv_<metric>",
            "    summary[\"metrics\"][name].update(evaluate_adversarial(model, x, y))",
        ) if adversarial else reconstruct_ctx.after_summary(program),
        end=("tensorboard.close()",) if program.tracking.tensorboard else (),
    )  # fmt: skip


def relative_data_path(path: str, out_dir: Path) -> str:
    """`path` relative to out_dir with posix separators (absolute when on another drive)."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))
    except ValueError:  # Windows: different drives
        rel = os.path.abspath(path)
    return PurePath(rel).as_posix()


def _data_constants(program: Program, data_file: str | None) -> tuple[ConstantGroup, ...]:
    data = program.data
    source: list[Constant] = []
    if data.kind == "sklearn":
        source.append(Constant("DATASET", py(data.dataset), "data.source"))
    else:
        source.append(Constant("DATA_FILE", py(data_file), "data.source, relative to this file"))
        source.append(Constant("TARGET", py(list(data.target)), "data.target"))
        features = None if data.features is None else list(data.features)
        source.append(Constant("FEATURES", py(features), "data.features (None: all but target)"))
    split = [
        Constant("VAL_FRACTION", py(float(data.val)), "data.split.val"),
        Constant("TEST_FRACTION", py(float(data.test)), "data.split.test"),
        Constant("SPLIT_SEED", py(data.split_seed), "data.split.seed"),
    ]
    model = [
        Constant("INPUT_SHAPE", py(list(program.model.input_shape)), "input.shape"),
        Constant("OUTPUT_UNITS", py(program.model.output.out_shape[-1]), "output.units"),
    ]
    return (
        ConstantGroup("source", tuple(source)),
        ConstantGroup("split", tuple(split)),
        ConstantGroup("shapes the spec promises", tuple(model)),
    )


def _optimizer(program: Program) -> tuple[list[Constant], str]:
    """The optimizer's constants and its constructor over `model`."""
    opt = program.training.optimizer
    o = opt.options
    consts = [Constant("LEARNING_RATE", py(float(opt.lr)), "optimizer.lr")]
    args = ["lr=LEARNING_RATE"]
    params = "model.parameters()"
    if isinstance(o, SgdOptions):
        if o.momentum:
            consts.append(Constant("MOMENTUM", py(float(o.momentum)), "optimizer.momentum"))
            args.append("momentum=MOMENTUM")
            if o.nesterov:
                args.append("nesterov=True")
    elif isinstance(o, AdagradOptions):
        consts.append(Constant("EPS", py(float(o.eps)), "optimizer.eps"))
        args.append("eps=EPS")
    elif isinstance(o, RmspropOptions):
        consts.append(Constant("RHO", py(float(o.rho)), "optimizer.rho"))
        args.append("alpha=RHO")
        consts.append(Constant("EPS", py(float(o.eps)), "optimizer.eps"))
        args.append("eps=EPS")
        if o.momentum:
            consts.append(Constant("MOMENTUM", py(float(o.momentum)), "optimizer.momentum"))
            args.append("momentum=MOMENTUM")
    else:  # adam, adamw
        consts.append(Constant("BETAS", py([float(b) for b in o.betas]), "optimizer.betas"))
        consts.append(Constant("EPS", py(float(o.eps)), "optimizer.eps"))
        args += ["betas=BETAS", "eps=EPS"]
    if isinstance(o, AdamwOptions):
        wd = py(float(o.weight_decay))
        consts.append(Constant("WEIGHT_DECAY", wd, "optimizer.weight_decay (weights only)"))
        params = "param_groups(model)"
    if opt.name in FUSED_ON_CPU:
        args.append("fused=harness.fused(model)")
    call = f"torch.optim.{OPTIMIZER_CLASSES[opt.name]}({params}, {', '.join(args)})"
    return consts, call


def _schedule(program: Program) -> tuple[list[Constant], Code | None]:
    """The schedule's constants and lr_at() (None for none and plateau)."""
    o = program.training.schedule.options
    key = "optimizer.schedule"
    if isinstance(o, InverseTimeOptions):
        return [Constant("LR_DECAY", py(float(o.decay)), f"{key}.decay")], Code(
            "Inverse-time decay: lr0 / (1 + decay * epoch), epoch counted from 0.",
            ("return LEARNING_RATE / (1.0 + LR_DECAY * epoch)",),
        )
    if isinstance(o, LinearScheduleOptions):
        return [
            Constant("LR_END_FACTOR", py(float(o.end_factor)), f"{key}.end_factor"),
            Constant("LR_EPOCHS", py(int(o.epochs)), f"{key}.epochs"),
        ], Code(
            "Linear decay from lr0 to LR_END_FACTOR * lr0 over LR_EPOCHS epochs (from 0), then "
            "flat.",
            ("return LEARNING_RATE * (1.0 - (1.0 - LR_END_FACTOR) * min(epoch, LR_EPOCHS) / "
             "LR_EPOCHS)",),
        )  # fmt: skip
    if isinstance(o, StepScheduleOptions):
        return [
            Constant("LR_STEP_SIZE", py(int(o.step_size)), f"{key}.step_size"),
            Constant("LR_GAMMA", py(float(o.gamma)), f"{key}.gamma"),
        ], Code(
            "Step decay: lr0 * gamma ** floor(epoch / step_size), epoch counted from 0.",
            ("return LEARNING_RATE * LR_GAMMA ** (epoch // LR_STEP_SIZE)",),
        )
    if isinstance(o, ExponentialScheduleOptions):
        return [Constant("LR_GAMMA", py(float(o.gamma)), f"{key}.gamma")], Code(
            "Exponential decay: lr0 * gamma ** epoch, epoch counted from 0.",
            ("return LEARNING_RATE * LR_GAMMA**epoch",),
        )
    if isinstance(o, CosineScheduleOptions):
        return [
            Constant("LR_MIN", py(float(o.min_lr)), f"{key}.min_lr"),
            Constant("LR_EPOCHS", py(int(o.epochs)), f"{key}.epochs"),
        ], Code(
            "Half a cosine from lr0 down to LR_MIN over LR_EPOCHS epochs (from 0), then flat.",
            (
                "progress = min(epoch, LR_EPOCHS) / LR_EPOCHS",
                "return LR_MIN + (LEARNING_RATE - LR_MIN) * (1.0 + math.cos(math.pi * progress))"
                " / 2.0",
            ),
        )
    if isinstance(o, PlateauScheduleOptions):
        return [
            Constant("PLATEAU_MONITOR", py(o.metric), f"{key}.monitor"),
            Constant("PLATEAU_MODE", py(o.mode), f"{key}.monitor's direction"),
            Constant("PLATEAU_FACTOR", py(float(o.factor)), f"{key}.factor"),
            Constant("PLATEAU_PATIENCE", py(int(o.patience)), f"{key}.patience"),
            Constant("PLATEAU_MIN_DELTA", py(float(o.min_delta)), f"{key}.min_delta"),
            Constant("PLATEAU_MIN_LR", py(float(o.min_lr)), f"{key}.min_lr"),
        ], None
    return [], None


def _augments(program: Program) -> tuple[list[Constant], tuple[AugmentStep, ...]]:
    """The augmentations' constants (named by position) and augment()'s lines for each."""
    consts: list[Constant] = []
    steps: list[AugmentStep] = []
    for i, aug in enumerate(program.data.augment):
        key = f"data.augment[{i}].{aug.kind}"
        o = aug.options
        if isinstance(o, NoiseAugmentOptions):
            name = f"NOISE_STD_{i}"
            consts.append(Constant(name, py(float(o.std)), f"{key}.std (raw units)"))
            lines: tuple[str, ...] = (
                f"x = x + {name} * torch.randn(x.shape, generator=rng).to(x.device)",
            )
        elif isinstance(o, FlipAugmentOptions):
            name = f"FLIP_P_{i}"
            dim = -1 if o.axis == "horizontal" else -2
            consts.append(Constant(name, py(float(o.p)), f"{key}.p ({o.axis})"))
            lines = (
                f"flip = (torch.rand(x.shape[0], generator=rng) < {name}).to(x.device)",
                f"x = torch.where(flip.view(-1, *[1] * (x.dim() - 1)), x.flip({dim}), x)",
            )
        else:
            name = f"SHIFT_PIXELS_{i}"
            consts.append(Constant(name, py(int(o.pixels)), f"{key}.pixels"))
            lines = (f"x = shift(x, {name}, rng)",)
        steps.append(AugmentStep(aug.kind, lines))
    return consts, tuple(steps)


def _title(program: Program) -> str:
    """`Train <name>: <description>`, escaped and wrapped (literals.wrap_text) for the top of
    train.py's docstring: nothing in it can end the docstring or the line."""
    text = f"Train {program.name}"
    if program.description and not program.description.isspace():
        text += ": " + program.description
    return "\n".join(wrap_text(text, 92))


def _has_batchnorm(layers: tuple[LayerIR, ...]) -> bool:
    """Whether any layer, inside residual blocks too, is a batchnorm."""
    return any(layer.kind == "batchnorm" or _has_batchnorm(layer.children) for layer in layers)


def _loss(program: Program) -> tuple[list[Constant], Code | None, Code]:
    """The loss's constants, smooth_targets() (None without label smoothing) and loss_fn()."""
    loss = program.loss
    consts: list[Constant] = []
    smoothing = None
    target = "y"
    if loss.label_smoothing > 0:
        eps = py(float(loss.label_smoothing))
        consts.append(Constant("LABEL_SMOOTHING", eps, "loss.label_smoothing"))
        smoothing = SMOOTHING[loss.name]
        target = "smooth_targets(y)"
    if loss.name == "huber":
        consts.append(Constant("HUBER_DELTA", py(float(loss.delta)), "loss.delta"))
    code = LOSSES[(loss.name, smoothing is not None)]
    body = tuple(line.replace("TARGET", target) for line in code.body)
    return consts, smoothing, Code(code.doc, body)


SMOOTHING = {
    "cross_entropy": Code(
        "Label smoothing of the course notes: one-hot 1 and 0 become 1 - eps and eps / (k - 1).",
        (
            "off = LABEL_SMOOTHING / (OUTPUT_UNITS - 1)",
            "targets = torch.full((y.shape[0], OUTPUT_UNITS), off, device=y.device)",
            "return targets.scatter_(1, y.unsqueeze(1), 1.0 - LABEL_SMOOTHING)",
        ),
    ),
    "binary_cross_entropy": Code(
        "Label smoothing of the course notes with k = 2: targets 1 and 0 become 1 - eps and eps.",
        ("return y * (1.0 - 2.0 * LABEL_SMOOTHING) + LABEL_SMOOTHING",),
    ),
}
"""smooth_targets() of each loss that smooths its targets (k = output.units classes)."""

LOSSES = {
    ("cross_entropy", True): Code(
        "Cross-entropy -sum_k t_k log softmax(z)_k with smoothed targets t, averaged over rows.",
        ("return -(TARGET * F.log_softmax(logits, dim=1)).sum(dim=1).mean()",),
    ),
    ("cross_entropy", False): Code(
        "Cross-entropy -sum_k t_k log softmax(z)_k with one-hot t (-log softmax of the true "
        "class).",
        ("return F.nll_loss(F.log_softmax(logits, dim=1), y)",),
    ),
    **{
        ("binary_cross_entropy", smoothed): Code(
            "Binary cross-entropy in the softplus form softplus(z) - t z, averaged over every "
            "output.",
            ("return (F.softplus(logits) - TARGET * logits).mean()",),
        )
        for smoothed in (True, False)
    },
    ("mse", False): Code("Mean squared error.", ("return (logits - y).square().mean()",)),
    ("mae", False): Code("Mean absolute error.", ("return (logits - y).abs().mean()",)),
    ("huber", False): Code(
        "Huber loss: d^2 / 2 for |d| <= delta, delta (|d| - delta / 2) beyond.",
        (
            "d = (logits - y).abs()",
            "return torch.where(d <= HUBER_DELTA, 0.5 * d.square(), "
            "HUBER_DELTA * (d - 0.5 * HUBER_DELTA)).mean()",
        ),
    ),
}
"""loss_fn() of each (loss, smoothed targets); TARGET stands for the targets used."""

METRIC_LINES = {
    "multiclass": ('values["accuracy"] = (logits.argmax(dim=1) == y).float().mean()',),
    "binary": (
        'values["accuracy"] = ((logits > 0) == (y > 0.5)).float().mean()'
        "  # sigmoid(z) > 0.5 iff z > 0",
    ),
    "multilabel": (
        "# per-label accuracy (sigmoid(z) > 0.5 iff z > 0), averaged over labels and rows",
        'values["accuracy"] = ((logits > 0) == (y > 0.5)).float().mean()',
    ),
    "regression": (
        "error = logits - y",
        'values["mae"] = error.abs().mean()',
        'values["rmse"] = error.square().mean().sqrt()',
        "# r2 per output (1 - SS_res / SS_tot), averaged over outputs",
        'values["r2"] = (1.0 - error.square().sum(dim=0) / (y - y.mean(dim=0)).square()'
        ".sum(dim=0)).mean()",
    ),
}
"""evaluate()'s lines for each task's metrics (after the loss)."""

REQUIREMENTS = {
    "sklearn": "torch and numpy and scikit-learn",
    "parquet": "torch and numpy and pyarrow",
    "csv": "torch and numpy",
    "npz": "torch and numpy",
}
"""What train.py needs to run, by data source kind."""


def _regularizers(program: Program) -> tuple[list[Constant], tuple[str, ...]]:
    """The regularizers' constants and penalty()'s terms (only those the spec turns on)."""
    regs = program.training.regularizers
    consts: list[Constant] = []
    terms: list[str] = []
    if regs.l1 > 0:
        consts.append(Constant("L1", py(float(regs.l1)), "regularizers.l1"))
        terms.append("L1 * sum(w.abs().sum() for w in weights)  # alpha sum |w|")
    if regs.l2 > 0:
        consts.append(Constant("L2", py(float(regs.l2)), "regularizers.l2"))
        terms.append("L2 / 2 * sum(w.square().sum() for w in weights)  # alpha/2 sum w^2")
    if regs.lp_p is not None and regs.lp_alpha > 0:
        consts.append(Constant("LP_P", py(float(regs.lp_p)), "regularizers.lp.p"))
        consts.append(Constant("LP_ALPHA", py(float(regs.lp_alpha)), "regularizers.lp.alpha"))
        terms.append(
            "LP_ALPHA / LP_P * sum(w.abs().pow(LP_P).sum() for w in weights)  # alpha/p sum |w|^p"
        )
    if regs.max_norm is not None:
        consts.append(Constant("MAX_NORM", py(float(regs.max_norm)), "regularizers.max_norm"))
    if regs.weight_noise > 0:
        consts.append(Constant("WEIGHT_NOISE", py(float(regs.weight_noise)),
                               "regularizers.weight_noise"))  # fmt: skip
    if regs.gradient_clip is not None:
        consts.append(Constant("GRADIENT_CLIP", py(float(regs.gradient_clip)),
                               "regularizers.gradient_clip"))  # fmt: skip
    if program.model.ties:
        alphas = py(tuple(float(t.alpha) for t in program.model.ties))
        consts.append(Constant("TIE_ALPHA", alphas, "regularizers.tie[*].alpha"))
    return consts, tuple(t if i == 0 else f"+ {t}" for i, t in enumerate(terms))


def _step(program: Program, augments: bool) -> Step:
    """train_epoch's statements for the spec's regularizers and augmentations."""
    regs = program.training.regularizers
    penalties = regs.l1 > 0 or regs.l2 > 0 or (regs.lp_p is not None and regs.lp_alpha > 0)
    noise, projection = regs.weight_noise > 0, regs.max_norm is not None
    before = ("weights = model.weights()",) if penalties or noise or projection else ()
    forward = ["xb = augment(xb, rng)"] if augments else []  # the whole minibatch, as rng says
    batch = "xb, yb, tb" if program.heads else "xb, yb"
    forward.append(f"{batch}, rows, scale = harness.share({batch})  # this process's rows")
    forward.append("optimizer.zero_grad(set_to_none=True)")
    forward += ["clean = add_weight_noise(weights)"] if noise else []
    if program.heads:  # heads: main loss and each head's from one forward pass
        body = [*heads_ctx.HEAD_STEP, "return loss, head_loss"]
        forward.append("loss, head_loss = objective(xb, yb, tb)")
        args = "xb: torch.Tensor, yb: torch.Tensor, tb: dict[str, torch.Tensor]"
        returns = "tuple[torch.Tensor, dict[str, torch.Tensor]]"
    elif reconstruct_ctx.has_terms(program):  # gaussian_latent: + the KL, and both terms
        body = [*(reconstruct_ctx.step_lines(program) or ()), "return loss"]
        forward.append("loss, terms = objective(xb, yb)")
        args, returns = "xb: torch.Tensor, yb: torch.Tensor", "tuple[torch.Tensor, torch.Tensor]"
    else:  # regularizers.adversarial: the clean/attacked mix
        body = [step_loss_line(program), "return loss"]
        forward.append("loss = objective(xb, yb)")
        args, returns = "xb: torch.Tensor, yb: torch.Tensor", "torch.Tensor"
    *lines, last = [re.sub(r"\bmodel\b", "self.model", line) for line in body[:-1]]
    body = [*lines, "return " + last.split(" = ", 1)[1]]  # loss = X; return loss: return X
    objective = heads_ctx.OBJECTIVE if program.heads else "loss"
    terms = [f"{objective} * scale", *(["penalty(weights)"] if penalties else [])]
    terms += ["tie_penalty(model.tied_weights())"] if program.model.ties else []  # tie
    update = [
        "# scale: this process's share of the minibatch (harness.share)",
        f"({' + '.join(terms)}).backward()",
    ]
    update += ["restore_weights(weights, clean)"] if noise else []
    if regs.gradient_clip is not None:
        update.append("torch.nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP)")
    update.append("optimizer.step()")
    update += ["max_norm_(weights)"] if projection else []
    parts = reconstruct_ctx.has_terms(program)
    return Step(before, tuple(forward), args, returns, tuple(body), tuple(update), parts)


def _stopping(program: Program) -> tuple[list[Constant], Tracker]:
    """The stopping constants and the best-weights tracker."""
    training = program.training
    early = training.early
    consts = [Constant("EPOCHS", py(training.epochs), "training.epochs")]
    val = training.monitor_split == "val"
    if early is None:
        tracks = "val_loss (no" if val else "the training loss (no val split, no"
        consts += [
            Constant("MONITOR", py("loss"), f"best.pt tracks {tracks} stopping.early)"),
            Constant("MODE", py("min"), "lower loss is better"),
        ]
        doc = "The best weights theta* and epoch i* by val_loss so far (written to best.pt)."
        return consts, Tracker("BestWeights", "best weights", doc, "0.0")
    consts += [
        Constant(
            "MONITOR",
            py(early.metric),
            "stopping.early.monitor "
            + ("(on the validation split)" if val else "(on the training split: no val split)"),
        ),
        Constant("MODE", py(early.mode), "stopping.early.monitor's direction"),
        Constant("PATIENCE", py(early.patience), "stopping.early.patience"),
        Constant("MIN_DELTA", py(float(early.min_delta)), "stopping.early.min_delta"),
    ]
    if training.refit != "none":
        consts.append(Constant("REFIT", py(training.refit), "stopping.refit"))
    doc = (
        "Early stopping as in the course notes: after every epoch's evaluation v', if v' beats\n"
        "    the best v by more than MIN_DELTA then j = 0, theta* = theta, i* = i, v = v'; else "
        "j += 1.\n    Training stops when j reaches PATIENCE."
    )
    return consts, Tracker("EarlyStopping", "best weights and early stopping", doc, "MIN_DELTA")


def _loop(program: Program, plateau: bool, has_rule: bool) -> Loop:
    """The main loop's spec-dependent pieces."""
    training = program.training
    refit = training.refit != "none"
    init, extra, after = [], [], []
    if plateau:
        init.append("plateau = Plateau()")
        extra.append("plateau=vars(plateau)")
        after.append('plateau.step(row[f"val_{PLATEAU_MONITOR}"])')
    if program.tracking.tensorboard:
        after.append("tensorboard.add(row)")
    if refit:
        init.append('refit = {"phase": "train", "epoch": 0, "done": False, "target": math.nan}')
        extra.append("refit=refit")
    condition = "epoch < EPOCHS"
    if training.early is not None:
        condition += " and not best.stop()"
    if refit:
        condition = 'refit["phase"] == "train" and ' + condition
    lr = "plateau.lr" if plateau else "lr_at(epoch)" if has_rule else "LEARNING_RATE"
    if training.monitor_split == "val":
        monitored, text = 'row[f"val_{MONITOR}"]', "val_{MONITOR}"
    else:
        monitored = "evaluate(model, x_train, y_train)[MONITOR]"
        text = "the training split's {MONITOR}"
    return Loop(
        init=tuple(init),
        extra="".join(f", {e}" for e in extra),
        condition=condition,
        lr=lr,
        after_epoch=tuple(after),
        monitored=monitored,
        stopped_now='best.stop() and refit["phase"] == "train"' if refit else "best.stop()",
        monitored_text=text,
    )


def _refit(program: Program, plateau: bool, has_rule: bool) -> Refit | None:
    """The refit phase, or None without one."""
    training = program.training
    normalize = program.model.normalize != "none"
    fresh_plateau = ("plateau = Plateau()",) if plateau else ()
    if training.refit == "best_epochs":
        seed = "seed" if program.ensemble is not None else "SEED"  # an ensemble member's own
        start = [f"harness.seed_everything({seed})", f"rng.manual_seed({seed})"]
        start.append("model = build_model()")
        start += ["model.normalize.fit(x_fit.cpu())"] if normalize else []
        start += _target_refit(program)
        start.append("model.to(device)")
        start.append(f"objective = harness.replicate(Objective(model), {seed})")
        start += reconstruct_ctx.refit_targets(program)  # task: reconstruct
        return Refit(
            strategy="best_epochs",
            comment=("from scratch with the same seed for i* epochs; normaliser refitted on "
                     "train + val",),
            start=tuple(start),
            announce='f"refit: a fresh model on train + val for {best.epoch} epochs '
            '(the best epoch)"',
            lr="plateau.lr" if plateau else 'lr_at(refit["epoch"])' if has_rule
            else "LEARNING_RATE",
            after_optimizer=fresh_plateau,
            after_row=(),
        )  # fmt: skip
    if training.refit == "continue":
        return Refit(
            strategy="continue",
            comment=(
                "onward from theta* with a fresh optimizer until the validation loss falls to the",
                "training loss at theta* (Goodfellow et al. 7.8, algorithm 7.3), at most i* epochs",
            ),
            start=(
                "model.load_state_dict(best.state)",
                'refit["target"] = evaluate(model, x_train, y_train)["loss"]',
            ),
            announce='f"refit: from epoch {best.epoch}\'s weights on train + val until "'
            ' f"val_loss <= {refit[\'target\']:.4g}, at most {best.epoch} epochs"',
            lr="plateau.lr" if plateau else 'lr_at(best.epoch + refit["epoch"])' if has_rule
            else "LEARNING_RATE",
            after_optimizer=fresh_plateau,
            after_row=('refit["done"] = row["val_loss"] <= refit["target"]',),
        )  # fmt: skip
    return None


def _target_refit(program: Program) -> list[str]:
    """data.normalize_target: the fresh model of a refit keeps the training split's target scale,
    the one y_fit is already standardised with."""
    if program.model.normalize_target == "none":
        return []
    return ["model.normalize_target.fit(torch.from_numpy(splits.y_train))  # y_fit's scale"]


TARGET_METRIC_LINES = (
    "# data.normalize_target: the metrics in the targets' units (the loss above: standardised)",
    "logits, y = model.normalize_target(logits), model.normalize_target(y)",
)
"""evaluate()'s first metric lines when the targets are standardised for training."""


def _metric_lines(program: Program) -> tuple[str, ...]:
    """evaluate()'s metric lines: the task's, un-standardised first for data.normalize_target."""
    if reconstruct_ctx.is_reconstruct(program):  # task: reconstruct
        return reconstruct_ctx.metric_lines(program)
    lines = METRIC_LINES[program.task]
    if program.model.normalize_target == "none":
        return lines
    return (*TARGET_METRIC_LINES, *lines)


def _final(program: Program) -> Final:
    """The final weights, the summary's refit entry and the closing line's reason."""
    training = program.training
    early = training.early
    refit = training.refit != "none"
    if refit:
        lines: tuple[str, ...] = ("# --- final weights: the refit model ---",)
    elif early is not None and early.restore_best:
        lines = (
            "# --- final weights: theta* (stopping.early.restore_best) ---",
            "model.load_state_dict(best.state)",
        )
    else:
        lines = ("# --- final weights: the last epoch's ---",)
    why = ['why = "early stopping" if best.stop() else "training.epochs reached"'] if early else []
    if refit:
        why.append("why += f\", then {refit['epoch']} refit epochs on train + val\"")
    return Final(
        lines=lines,
        stopped="best.stop()" if early is not None else "False",
        summary=('"refit": {"strategy": REFIT, "epochs": refit["epoch"]},',) if refit else (),
        refit_after='epoch if refit["epoch"] else None' if refit else "None",
        why=tuple(why),
        why_arg="why" if why else '"training.epochs reached"',
    )


def _imports(functional: bool, tensorboard: bool, ensemble: bool = False) -> tuple[str, ...]:
    """train.py's imports: the standard library, harness and torch, then data and model."""
    lines = ["import copy", "import math", *(["import os"] if tensorboard else []), "import time"]
    if ensemble:  # --member K (argparse, sys) and the member's resample (dataclasses)
        lines = sorted([*lines, "import argparse", "import dataclasses", "import sys"])
    data = f"from data import DataError, {'Splits, ' if ensemble else ''}load"
    lines += ["", "import harness", "import torch"]
    lines += ["import torch.nn.functional as F"] if functional else []
    lines += [
        data,
        "from model import INPUT_SHAPE, OUTPUT_ACTIVATION, OUTPUT_UNITS, build_model",
    ]
    return tuple(lines)


def train_context(program: Program, out_dir: Path) -> TrainContext:
    """The context of data.py and train.py for `program` compiled into `out_dir`."""
    data = program.data
    training = program.training
    data_file = None if data.path is None else relative_data_path(data.path, Path(out_dir))

    data_group = [Constant("BATCH_SIZE", py(training.batch_size), "training.batch_size")]
    aug_consts, augments = _augments(program)
    data_group += aug_consts
    loss_group, smoothing, loss_code = _loss(program)
    recon_loss = reconstruct_ctx.loss_code(program)  # task: reconstruct: summed over outputs
    loss_code = Code(*recon_loss) if recon_loss is not None else loss_code
    reg_group, penalties = _regularizers(program)
    opt_group, optimizer_call = _optimizer(program)
    sched_group, lr_rule = _schedule(program)
    stop_group, tracker = _stopping(program)
    plateau = training.schedule.name == "plateau"
    model_group = [
        Constant(
            "TASK",
            py(program.task),
            "task" if program.task == "reconstruct" else "output.activation and output.units",
        ),  # fmt: skip
        Constant("METRICS", py(list(program.metrics)), "the task's metrics, loss first"),
    ]
    system_group = [
        Constant("SEED", py(training.seed), "training.seed"),
        Constant("DEVICE", py(training.device), "training.device"),
    ]
    if training.threads is not None:
        system_group.append(Constant("THREADS", py(training.threads), "training.threads"))

    groups = [
        ConstantGroup("data", tuple(data_group)),
        ConstantGroup("model (recorded in summary.json)", tuple(model_group)),
        ConstantGroup("loss", tuple(loss_group)),
        ConstantGroup("regularizers (weights only, never biases)", tuple(reg_group)),
        ConstantGroup(
            "adversarial training (FGSM)",
            tuple(Constant(*c) for c in adversarial_constants(program)),
        ),  # fmt: skip
        ConstantGroup(
            "variational autoencoder (gaussian_latent)",
            tuple(Constant(*c) for c in reconstruct_ctx.constants(program)),
        ),
        ConstantGroup("optimizer", tuple(opt_group)),
        ConstantGroup(f"schedule: {training.schedule.name}", tuple(sched_group)),
        ConstantGroup("stopping", tuple(stop_group)),
        ConstantGroup("system", tuple(system_group)),
        ConstantGroup("ensemble (bagging)", _ensemble_constants(program)),
        ConstantGroup("heads (training only, not exported)", heads_ctx.train_constants(program)),
    ]
    shift = any(a.kind == "shift" for a in augments)
    functional = program.loss.name in ("cross_entropy", "binary_cross_entropy") or shift
    functional = functional or heads_ctx.functional(program)
    early = training.early
    shown = ["loss", program.metrics[1], early.metric if early is not None else "loss"]
    normalize = program.model.normalize != "none"
    requirements = REQUIREMENTS[data.kind]
    if program.tracking.tensorboard:
        requirements += " and tensorboardX"
    return TrainContext(
        title=_title(program),
        usage=_usage(program),
        name=program.name,
        name_literal=py(program.name),
        task=program.task,
        classification=program.task not in ("regression", "reconstruct"),
        data_kind=data.kind,
        sklearn_loader=SKLEARN_LOADERS[data.dataset or ""] if data.kind == "sklearn" else None,
        data_file=data_file,
        stratify=data.stratify,
        data_constants=(*_data_constants(program, data_file), *heads_ctx.data_constants(program)),
        requirements=requirements,
        imports=tuple(
            reconstruct_ctx.model_import(program) if line.startswith("from model ") else line
            for line in _imports(functional, program.tracking.tensorboard, bool(program.ensemble))
        ),
        constants=tuple(g for g in groups if g.constants),
        smoothing=smoothing,
        loss=loss_code,
        penalties=penalties,
        max_norm=training.regularizers.max_norm is not None,
        weight_noise=training.regularizers.weight_noise > 0,
        tie=bool(program.model.ties),
        lr_rule=lr_rule,
        plateau=plateau,
        tracker=tracker,
        early=early is not None,
        param_groups=training.optimizer.name == "adamw",
        optimizer_call=optimizer_call,
        batchnorm=_has_batchnorm(program.model.layers),
        shift=shift,
        augments=augments,
        step=_step(program, bool(augments)),
        epoch=_epoch(program),
        metric_lines=_metric_lines(program),
        rng_use="shuffles and augmentation" if augments else "shuffles",
        model_comment="model (normaliser fitted on the training split only) and optimizer"
        if normalize else "model and optimizer",
        loop=_loop(program, plateau, lr_rule is not None),
        shown=py(tuple(dict.fromkeys(shown))),
        refit=_refit(program, plateau, lr_rule is not None),
        final=_final(program),
        tensorboard=program.tracking.tensorboard,
        adversarial=training.regularizers.adversarial is not None,
        ensemble=_ensemble(program),
        seed="seed" if program.ensemble is not None else "SEED",
        heads=heads_ctx.heads_context(program),
        main=_main(program),
    )  # fmt: skip
