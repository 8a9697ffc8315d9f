"""Semantic analysis: a validated Spec becomes the IR `Program`, with every problem found.

The passes are independent where they can be (output/loss rules, shapes, data, cross-field
rules, lints), so one run reports all problems; the Program is built only when none is an
error. Each pass names the top-level sections it reads and runs whenever those are valid,
so a schema error in one section does not hide what the valid sections show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from specc.analysis import rules, sharing
from specc.analysis.adversarial import ADVERSARIAL_RULES, adversarial_ir
from specc.analysis.blocks import all_blocks, sites_of
from specc.analysis.datasets import check_data, data_ir
from specc.analysis.ensemble import ENSEMBLE_RULES, ensemble_ir
from specc.analysis.export_lints import export_lints
from specc.analysis.heads import (
    HeadShapes,
    check_head_data,
    check_head_ensemble,
    check_head_rules,
    heads_ir,
    infer_heads,
)
from specc.analysis.ir import (
    OPTIMIZER_OPTIONS,
    SCHEDULE_OPTIONS,
    EarlyStoppingIR,
    LayerIR,
    LossIR,
    ModelIR,
    OptimizerIR,
    Program,
    RegularizersIR,
    ScheduleIR,
    TrackingIR,
    TrainingIR,
)
from specc.analysis.lints import run_lints
from specc.analysis.naming import class_name
from specc.analysis.reconstruct import (
    RECONSTRUCT_RULES,
    check_reconstruct_data,
    is_reconstruct,
    reconstruct_metrics,
)
from specc.analysis.report import Finding, to_diagnostic
from specc.analysis.rules import reads
from specc.analysis.shapes import infer_block, infer_output
from specc.analysis.threads import auto_threads, flops_per_step
from specc.diagnostics import Diagnostic
from specc.schema.spec import Loss, Spec
from specc.source.yamlpos import PosTree

EVERY_SECTION = frozenset(Spec.model_fields)
LOSS_ADAPTER: TypeAdapter[Loss] = TypeAdapter(Loss)
"""Built once: building a TypeAdapter costs more than checking a whole spec."""


class Pass(NamedTuple):
    """An analysis pass: the spec sections it reads, and its handler."""

    inputs: frozenset[str]
    check: Callable[[rules.Context], list[Finding]]


def _layer_rules(ctx: rules.Context) -> list[Finding]:
    """The parameter rules of every hidden layer, residual blocks included."""
    return [f for block in all_blocks(ctx.spec.layers) for s in block for f in rules.check_layer(s)]


PASSES: tuple[Pass, ...] = (
    Pass(reads("output"), lambda ctx: rules.check_output_units(ctx.spec)),
    Pass(reads("output", "loss"), lambda ctx: rules.check_loss(ctx.spec)),
    Pass(reads("output", "loss"), lambda ctx: rules.check_label_smoothing(ctx.spec)),
    Pass(reads("layers"), _layer_rules),
    # heads: their targets are left out of the default features, so the data needs them valid
    Pass(reads("data", "input", "output", "heads", "task"), check_reconstruct_data(check_data)),
    Pass(reads("heads"), check_head_rules),
    Pass(reads("data", "heads"), check_head_data),
    Pass(reads("heads", "ensemble"), check_head_ensemble),
    *(Pass(r.inputs, r.check) for r in rules.CROSS_RULES),
    *(Pass(r.inputs, r.check) for r in ENSEMBLE_RULES),
    *(Pass(r.inputs, r.check) for r in ADVERSARIAL_RULES),
    *(Pass(r.inputs, r.check) for r in RECONSTRUCT_RULES),
)
"""Passes that only find problems (shapes, which also build the model, run beside them)."""

SHAPE_INPUTS = reads("input", "init", "layers", "output")


def analyze(
    spec: Spec,
    tree: PosTree | None,
    file: str,
    spec_dir: FsPath,
    valid: frozenset[str] = EVERY_SECTION,
) -> tuple[Program | None, list[Diagnostic]]:
    """The Program of a spec (None when any error is found) and all diagnostics.

    `valid` names the sections that passed the schema (all of them by default); a spec
    with fewer is a partial one, checked as far as its valid sections allow.
    """
    rule = (
        rules.output_rule(spec.output.activation, spec.output.units) if "output" in valid else None
    )
    if rule is not None and "task" in valid and is_reconstruct(spec):  # task: reconstruct
        rule = rule._replace(task="reconstruct")
    ctx = rules.Context(spec, rule.task if rule is not None else None, FsPath(spec_dir))
    found = [f for p in PASSES if p.inputs <= valid for f in p.check(ctx)]
    shapes = None
    if valid >= SHAPE_INPUTS:
        shapes, more = infer_shapes(spec)
        found += more
    head_shapes: HeadShapes | None = {} if not spec.heads else None  # branches off the trunk
    if shapes is not None and spec.heads and "heads" in valid:
        head_shapes, more = infer_heads(spec, shapes[1].in_shape)
        found += more
    found += _sharing(spec, valid, shapes)
    found += run_lints(spec, valid)
    diags = [to_diagnostic(f, tree, file) for f in found]
    complete = valid >= EVERY_SECTION
    if not complete or rule is None or shapes is None or any(f.severity == "error" for f in found):
        return None, diags
    program = build_program(spec, file, FsPath(spec_dir), rule, build_model(spec, *shapes))
    if head_shapes:  # the module's parameters are the heads' too (summary.json's params)
        heads = heads_ir(spec, head_shapes, loss_ir)
        model = replace(program.model, params=program.model.params + sum(h.params for h in heads))
        program = replace(program, heads=heads, model=model)
    # what will not export needs the resolved program (its parameter count)
    diags += [to_diagnostic(f, tree, file) for f in export_lints(program)]
    return program, diags


def infer_shapes(
    spec: Spec,
) -> tuple[tuple[tuple[LayerIR, ...], LayerIR] | None, list[Finding]]:
    """Shapes and parameter counts of the hidden layers and the output unit (None: unknown)."""
    scheme = spec.init.weights
    layers, out, found = infer_block(sites_of(spec.layers), tuple(spec.input.shape), scheme)
    if out is None:
        return None, found
    output, more = infer_output(spec.output, out, scheme)
    if output is None:
        return None, found + more
    return (layers, output), found + more


def _sharing(
    spec: Spec, valid: frozenset[str], shapes: tuple[tuple[LayerIR, ...], LayerIR] | None
) -> list[Finding]:
    """Layer names, `share:` and `regularizers.tie` (shapes once the names are sound)."""
    if "layers" not in valid:
        return []
    with_tie = "regularizers" in valid
    found = sharing.check_names(spec, with_tie)
    if shapes is not None and not any(f.severity == "error" for f in found):
        found += sharing.check_shapes(spec, shapes[0], with_tie)
    return found


def build_model(spec: Spec, layers: tuple[LayerIR, ...], output: LayerIR) -> ModelIR:
    """The model's IR from its inferred layers and output unit (shared weights resolved)."""
    layers, ties = sharing.resolve(spec, layers)
    return ModelIR(
        class_name=class_name(spec.name),
        input_shape=tuple(spec.input.shape),
        normalize=spec.data.normalize,
        layers=layers,
        output=output,
        output_activation=spec.output.activation,
        bias_init=spec.init.bias,
        params=sum(layer.params for layer in layers) + output.params,
        weights_scheme=spec.init.weights,
        ties=ties,
        normalize_target=spec.data.normalize_target,
    )


def build_program(
    spec: Spec, file: str, spec_dir: FsPath, rule: rules.OutputRule, model: ModelIR
) -> Program:
    """Assemble the Program of an error-free spec."""
    loss = loss_ir(spec, rule)
    resolved = spec.model_dump(mode="json")
    if spec.loss is None:
        resolved["loss"] = LOSS_ADAPTER.validate_python(loss.name).model_dump(mode="json")
    return Program(
        name=spec.name,
        description=spec.description,
        spec_path=file,
        resolved=resolved,
        task=rule.task,
        metrics=reconstruct_metrics(model.layers)
        if rule.task == "reconstruct"
        else rules.METRICS[rule.task],
        data=data_ir(spec, spec_dir, rule.task),
        model=model,
        loss=loss,
        training=training_ir(spec, model),
        onnx_opset=spec.export.onnx.opset if spec.export.onnx is not None else None,
        tracking=TrackingIR(tensorboard=spec.tracking.tensorboard),
        ensemble=ensemble_ir(spec),
        onnx_part=spec.export.onnx.part if spec.export.onnx is not None else "model",
    )


def loss_ir(spec: Spec, rule: rules.OutputRule) -> LossIR:
    """The spec's loss, or the table's default for the output unit."""
    if spec.loss is None:
        return LossIR(name=rule.losses[0], inferred=True)
    return LossIR(
        name=spec.loss.name,
        label_smoothing=getattr(spec.loss, "label_smoothing", 0.0),
        delta=getattr(spec.loss, "delta", 1.0),
    )


def options_of(model: Any, *exclude: str) -> dict[str, Any]:
    """A spec model's fields as plain values (lists as tuples), minus `exclude`."""
    dumped = model.model_dump(mode="python", exclude=set(exclude))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dumped.items()}


def optimizer_ir(spec: Spec) -> OptimizerIR:
    """The optimizer with the options of its name, defaults taken from the schema."""
    opt = spec.optimizer
    options = OPTIMIZER_OPTIONS[opt.name](**options_of(opt, "name", "lr", "schedule"))
    return OptimizerIR(opt.name, opt.lr, options)


def schedule_ir(spec: Spec) -> ScheduleIR:
    """The schedule with lengths defaulted to training.epochs and plateau's metric and mode
    derived from its monitor."""
    schedule = spec.optimizer.schedule
    options = options_of(schedule, "name")
    if "epochs" in options and options["epochs"] is None:
        options["epochs"] = spec.training.epochs
    if schedule.name == "plateau":
        monitor = options.pop("monitor")
        options["metric"] = monitor.removeprefix("val_")
        options["mode"] = rules.monitor_mode(monitor)
    return ScheduleIR(schedule.name, SCHEDULE_OPTIONS[schedule.name](**options))


def early_ir(spec: Spec) -> EarlyStoppingIR | None:
    """Early stopping with its metric and mode derived from the monitored name."""
    early = spec.stopping.early
    if early is None:
        return None
    return EarlyStoppingIR(
        monitor=early.monitor,
        metric=early.monitor.removeprefix("val_"),
        mode="max" if rules.monitor_mode(early.monitor) == "max" else "min",
        patience=early.patience,
        min_delta=early.min_delta,
        restore_best=early.restore_best,
    )


def regularizers_ir(spec: Spec) -> RegularizersIR:
    """Penalties, constraints and noise with Lp flattened."""
    reg = spec.regularizers
    return RegularizersIR(
        l1=reg.l1,
        l2=reg.l2,
        lp_p=reg.lp.p if reg.lp is not None else None,
        lp_alpha=reg.lp.alpha if reg.lp is not None else 0.0,
        max_norm=reg.max_norm,
        input_noise=reg.input_noise,
        weight_noise=reg.weight_noise,
        gradient_clip=reg.gradient_clip,
        adversarial=adversarial_ir(reg.adversarial),
    )


def training_ir(spec: Spec, model: ModelIR) -> TrainingIR:
    """The loop's settings; `threads: auto` by work per step (specc.analysis.threads)."""
    training = spec.training
    threads: int | None
    if training.threads == "auto":
        work = flops_per_step(model, training.batch_size)
        threads = auto_threads(work, training.devices)
    else:
        threads = training.threads
    early = early_ir(spec)
    return TrainingIR(
        epochs=training.epochs,
        batch_size=training.batch_size,
        seed=training.seed,
        device=training.device,
        threads=threads,
        optimizer=optimizer_ir(spec),
        schedule=schedule_ir(spec),
        regularizers=regularizers_ir(spec),
        early=early,
        refit=spec.stopping.refit if early is not None else "none",
        monitor_split="val" if spec.data.split.val > 0 else "train",
        devices=training.devices,
    )
