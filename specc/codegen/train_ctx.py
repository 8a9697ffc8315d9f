"""The template context of data.py and train.py, computed from the Program (templates stay dumb).

Everything a template places is decided here: constant names, their literal values and the spec
key each one comes from, the optimizer constructor, which loss / regularizer / schedule blocks
exist, and the data file's path relative to the directory the code is written to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from specc.analysis.ir import LayerIR, Program
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

CHECKPOINT_SECONDS = 5.0
"""Least seconds between two writes of last.pt/best.pt/metrics.csv during training (each write
is fsync'ed, ~7 ms); the run directory is also written at the end, on Ctrl-C and on nan."""

EVAL_BATCH = 1024
"""Rows per forward pass in evaluate(): bounds memory for image data, one pass for small sets."""


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
class AugmentStep:
    """One augmentation in data.augment order, with the constants its code reads."""

    kind: str
    """noise, flip or shift."""
    index: int
    """Position in data.augment (names its constants: NOISE_STD_0, FLIP_P_1, ...)."""
    names: dict[str, str]
    """Option name -> constant name (std, axis, p, pixels)."""
    flip_dim: int = -1
    """flip: the tensor dimension mirrored (-1 width for horizontal, -2 height for vertical)."""


@dataclass(frozen=True)
class TrainContext:
    """What templates/data.py.j2 and templates/train.py.j2 place."""

    title: str
    """First docstring line of train.py (name and description, safe inside triple quotes)."""
    name: str
    description: str | None
    task: str
    classification: bool
    # --- data.py
    data_kind: str
    sklearn_loader: str | None
    data_file: str | None
    """Path of the data file relative to the generated code's directory (posix separators)."""
    stratify: bool
    """Stratified split (single-label classification asking for it)."""
    data_constants: tuple[ConstantGroup, ...]
    # --- train.py
    constants: tuple[ConstantGroup, ...]
    loss: str
    smoothing: bool
    penalties: tuple[str, ...]
    """Subset of ('l1', 'l2', 'lp') in that order: only the penalties the spec turns on."""
    max_norm: bool
    weight_noise: bool
    gradient_clip: bool
    schedule: str
    optimizer_call: str
    """The optimizer constructor expression over `model` (param groups for AdamW)."""
    param_groups: bool
    """AdamW: weight decay on model.weights() only, through two parameter groups."""
    augments: tuple[AugmentStep, ...]
    early: bool
    refit: str
    restore_best: bool
    metrics: tuple[str, ...]
    """The task's metric names without prefix, loss first."""
    monitor: str
    """The monitored metric without the val_ prefix (loss, accuracy, ...)."""
    monitor_mode: str
    monitor_split: str
    """val, or train when the spec has no validation split (data.split.val: 0)."""
    tracker: str
    """Class name of the best-weights tracker: EarlyStopping, or BestWeights without stopping."""
    normalize: bool
    """Whether the model has an input normaliser to fit (model.normalize.fit)."""
    uses_functional: bool
    """Whether train.py needs torch.nn.functional (log-softmax, softplus, pad)."""
    shift: bool
    """Whether an augmentation shifts images (the shift() helper)."""
    batchnorm: bool
    """Whether the model has batch norm (then no minibatch may hold a single row)."""
    threads: bool
    """Whether the code calls torch.set_num_threads (TrainingIR.threads is set)."""
    output_activation: str
    input_shape: tuple[int, ...]
    output_units: int
    class_name: str


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


def _optimizer(program: Program) -> tuple[list[Constant], str, bool]:
    opt = program.training.optimizer
    o = opt.options
    consts = [Constant("LEARNING_RATE", py(float(opt.lr)), "optimizer.lr")]
    args = ["lr=LEARNING_RATE"]
    if opt.name == "sgd":
        if o.get("momentum", 0.0):
            consts.append(Constant("MOMENTUM", py(float(o["momentum"])), "optimizer.momentum"))
            args.append("momentum=MOMENTUM")
            if o.get("nesterov", False):
                args.append("nesterov=True")
    elif opt.name == "adagrad":
        consts.append(Constant("EPS", py(float(o.get("eps", 1e-10))), "optimizer.eps"))
        args.append("eps=EPS")
    elif opt.name == "rmsprop":
        consts.append(Constant("RHO", py(float(o.get("rho", 0.9))), "optimizer.rho"))
        args.append("alpha=RHO")
        consts.append(Constant("EPS", py(float(o.get("eps", 1e-7))), "optimizer.eps"))
        args.append("eps=EPS")
        if o.get("momentum", 0.0):
            consts.append(Constant("MOMENTUM", py(float(o["momentum"])), "optimizer.momentum"))
            args.append("momentum=MOMENTUM")
    else:  # adam, adamw
        betas = [float(b) for b in o.get("betas", (0.9, 0.999))]
        consts.append(Constant("BETAS", py(betas), "optimizer.betas"))
        consts.append(Constant("EPS", py(float(o.get("eps", 1e-8))), "optimizer.eps"))
        args += ["betas=BETAS", "eps=EPS"]
    groups = opt.name == "adamw"
    if groups:
        wd = float(o.get("weight_decay", 0.01))
        consts.append(Constant("WEIGHT_DECAY", py(wd), "optimizer.weight_decay (weights only)"))
        params = "param_groups(model)"
    else:
        params = "model.parameters()"
    call = f"torch.optim.{OPTIMIZER_CLASSES[opt.name]}({params}, {', '.join(args)})"
    return consts, call, groups


def _schedule(program: Program) -> list[Constant]:
    s = program.training.schedule
    o = s.options
    key = "optimizer.schedule"
    epochs = program.training.epochs
    if s.name == "inverse_time":
        return [Constant("LR_DECAY", py(float(o["decay"])), f"{key}.decay")]
    if s.name == "linear":
        return [
            Constant("LR_END_FACTOR", py(float(o.get("end_factor", 0.0))), f"{key}.end_factor"),
            Constant("LR_EPOCHS", py(int(o.get("epochs") or epochs)), f"{key}.epochs"),
        ]
    if s.name == "step":
        return [
            Constant("LR_STEP_SIZE", py(int(o["step_size"])), f"{key}.step_size"),
            Constant("LR_GAMMA", py(float(o.get("gamma", 0.1))), f"{key}.gamma"),
        ]
    if s.name == "exponential":
        return [Constant("LR_GAMMA", py(float(o["gamma"])), f"{key}.gamma")]
    if s.name == "cosine":
        return [
            Constant("LR_MIN", py(float(o.get("min_lr", 0.0))), f"{key}.min_lr"),
            Constant("LR_EPOCHS", py(int(o.get("epochs") or epochs)), f"{key}.epochs"),
        ]
    if s.name == "plateau":
        monitor = str(o.get("monitor", "val_loss"))
        return [
            Constant("PLATEAU_MONITOR", py(monitor.removeprefix("val_")), f"{key}.monitor"),
            Constant("PLATEAU_MODE", py(str(o.get("mode", "min"))), f"{key}.monitor's direction"),
            Constant("PLATEAU_FACTOR", py(float(o.get("factor", 0.1))), f"{key}.factor"),
            Constant("PLATEAU_PATIENCE", py(int(o.get("patience", 5))), f"{key}.patience"),
            Constant("PLATEAU_MIN_DELTA", py(float(o.get("min_delta", 0.0))), f"{key}.min_delta"),
            Constant("PLATEAU_MIN_LR", py(float(o.get("min_lr", 0.0))), f"{key}.min_lr"),
        ]
    return []


def _augments(program: Program) -> tuple[list[Constant], tuple[AugmentStep, ...]]:
    consts: list[Constant] = []
    steps: list[AugmentStep] = []
    for i, aug in enumerate(program.data.augment):
        key = f"data.augment[{i}].{aug.kind}"
        o = aug.options
        names: dict[str, str] = {}
        flip_dim = -1
        if aug.kind == "noise":
            names["std"] = f"NOISE_STD_{i}"
            consts.append(Constant(names["std"], py(float(o["std"])), f"{key}.std (raw units)"))
        elif aug.kind == "flip":
            axis = str(o.get("axis", "horizontal"))
            flip_dim = -1 if axis == "horizontal" else -2
            names["p"] = f"FLIP_P_{i}"
            consts.append(Constant(names["p"], py(float(o.get("p", 0.5))), f"{key}.p ({axis})"))
        else:
            names["pixels"] = f"SHIFT_PIXELS_{i}"
            consts.append(Constant(names["pixels"], py(int(o.get("pixels", 1))), f"{key}.pixels"))
        steps.append(AugmentStep(aug.kind, i, names, flip_dim))
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


def train_context(program: Program, out_dir: Path) -> TrainContext:
    """The context of data.py and train.py for `program` compiled into `out_dir`."""
    data = program.data
    training = program.training
    regs = training.regularizers
    data_file = None if data.path is None else relative_data_path(data.path, Path(out_dir))
    classification = program.task != "regression"

    data_group = [Constant("BATCH_SIZE", py(training.batch_size), "training.batch_size")]
    aug_consts, augments = _augments(program)
    data_group += aug_consts

    loss = program.loss
    loss_group: list[Constant] = []
    smoothing = loss.label_smoothing > 0 and loss.name in ("cross_entropy", "binary_cross_entropy")
    if smoothing:
        loss_group.append(Constant("LABEL_SMOOTHING", py(float(loss.label_smoothing)),
                                   "loss.label_smoothing"))  # fmt: skip
    if loss.name == "huber":
        loss_group.append(Constant("HUBER_DELTA", py(float(loss.delta)), "loss.delta"))
    if loss.name == "cross_entropy":
        loss_group.append(Constant("NUM_CLASSES", py(program.model.output.out_shape[-1]),
                                   "output.units"))  # fmt: skip

    penalties: list[str] = []
    reg_group: list[Constant] = []
    if regs.l1 > 0:
        penalties.append("l1")
        reg_group.append(Constant("L1", py(float(regs.l1)), "regularizers.l1"))
    if regs.l2 > 0:
        penalties.append("l2")
        reg_group.append(Constant("L2", py(float(regs.l2)), "regularizers.l2"))
    if regs.lp_p is not None and regs.lp_alpha > 0:
        penalties.append("lp")
        reg_group.append(Constant("LP_P", py(float(regs.lp_p)), "regularizers.lp.p"))
        reg_group.append(Constant("LP_ALPHA", py(float(regs.lp_alpha)), "regularizers.lp.alpha"))
    if regs.max_norm is not None:
        reg_group.append(Constant("MAX_NORM", py(float(regs.max_norm)), "regularizers.max_norm"))
    if regs.weight_noise > 0:
        reg_group.append(Constant("WEIGHT_NOISE", py(float(regs.weight_noise)),
                                  "regularizers.weight_noise"))  # fmt: skip
    if regs.gradient_clip is not None:
        reg_group.append(Constant("GRADIENT_CLIP", py(float(regs.gradient_clip)),
                                  "regularizers.gradient_clip"))  # fmt: skip

    opt_group, optimizer_call, param_groups = _optimizer(program)
    sched_group = _schedule(program)

    stop_group = [Constant("EPOCHS", py(training.epochs), "training.epochs")]
    early = training.early
    if early is not None:
        monitor = early.monitor.removeprefix("val_")
        mode = early.mode
        stop_group += [
            Constant("MONITOR", py(monitor), "stopping.early.monitor (on the validation split)"),
            Constant("MODE", py(mode), "stopping.early.monitor's direction"),
            Constant("PATIENCE", py(early.patience), "stopping.early.patience"),
            Constant("MIN_DELTA", py(float(early.min_delta)), "stopping.early.min_delta"),
            Constant("RESTORE_BEST", py(bool(early.restore_best)), "stopping.early.restore_best"),
        ]
        if training.refit != "none":
            stop_group.append(Constant("REFIT", py(training.refit), "stopping.refit"))
        restore_best = early.restore_best
    else:
        monitor, mode, restore_best = "loss", "min", False
        stop_group += [
            Constant("MONITOR", py("loss"), "best.pt tracks val_loss (no stopping.early)"),
            Constant("MODE", py("min"), "lower val_loss is better"),
        ]
    refit = training.refit if early is not None else "none"

    model_group = [
        Constant("TASK", py(program.task), "output.activation and output.units"),
        Constant("INPUT_SHAPE", py(list(program.model.input_shape)), "input.shape"),
        Constant("OUTPUT_UNITS", py(program.model.output.out_shape[-1]), "output.units"),
        Constant("OUTPUT_ACTIVATION", py(program.model.output_activation), "output.activation"),
        Constant("CLASS_NAME", py(program.model.class_name), "name, as the model's class"),
        Constant("METRICS", py(list(program.metrics)), "the task's metrics, loss first"),
    ]
    system_group = [
        Constant("SEED", py(training.seed), "training.seed"),
        Constant("DEVICE", py(training.device), "training.device"),
    ]
    if training.threads is not None:
        system_group.append(Constant("THREADS", py(training.threads), "training.threads"))
    system_group.append(Constant("EVAL_BATCH", py(EVAL_BATCH), "rows per evaluation forward pass"))
    system_group.append(Constant("CHECKPOINT_SECONDS", py(CHECKPOINT_SECONDS),
                                 "least time between checkpoint writes"))  # fmt: skip

    groups = [
        ConstantGroup("data", tuple(data_group)),
        ConstantGroup("model (recorded in summary.json)", tuple(model_group)),
        ConstantGroup("loss", tuple(loss_group)),
        ConstantGroup("regularizers (weights only, never biases)", tuple(reg_group)),
        ConstantGroup("optimizer", tuple(opt_group)),
        ConstantGroup(f"schedule: {training.schedule.name}", tuple(sched_group)),
        ConstantGroup("stopping", tuple(stop_group)),
        ConstantGroup("system", tuple(system_group)),
    ]
    return TrainContext(
        title=_title(program),
        name=program.name,
        description=program.description,
        task=program.task,
        classification=classification,
        data_kind=data.kind,
        sklearn_loader=SKLEARN_LOADERS.get(data.dataset or "") if data.kind == "sklearn" else None,
        data_file=data_file,
        stratify=bool(data.stratify) and program.task in ("binary", "multiclass"),
        data_constants=_data_constants(program, data_file),
        constants=tuple(g for g in groups if g.constants),
        loss=loss.name,
        smoothing=smoothing,
        penalties=tuple(penalties),
        max_norm=regs.max_norm is not None,
        weight_noise=regs.weight_noise > 0,
        gradient_clip=regs.gradient_clip is not None,
        schedule=training.schedule.name,
        optimizer_call=optimizer_call,
        param_groups=param_groups,
        augments=augments,
        early=early is not None,
        refit=refit,
        restore_best=restore_best,
        metrics=tuple(program.metrics),
        monitor=monitor,
        monitor_mode=mode,
        monitor_split="val" if data.val > 0 else "train",
        tracker="EarlyStopping" if early is not None else "BestWeights",
        normalize=program.model.normalize != "none",
        uses_functional=loss.name in ("cross_entropy", "binary_cross_entropy")
        or any(a.kind == "shift" for a in augments),
        shift=any(a.kind == "shift" for a in augments),
        batchnorm=_has_batchnorm(program.model.layers),
        threads=training.threads is not None,
        output_activation=program.model.output_activation,
        input_shape=tuple(program.model.input_shape),
        output_units=program.model.output.out_shape[-1],
        class_name=program.model.class_name,
    )
