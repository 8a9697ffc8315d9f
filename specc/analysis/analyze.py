"""Semantic analysis: a validated Spec becomes the IR `Program`, with every problem found.

The passes are independent where they can be (output/loss rules, shapes, data, cross-field
rules, lints), so one run reports all problems; the Program is built only when none is an
error.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from pydantic import TypeAdapter

from specc.analysis import rules
from specc.analysis.blocks import all_blocks, sites_of
from specc.analysis.datasets import check_data, data_ir
from specc.analysis.export_lints import export_lints
from specc.analysis.ir import (
    EarlyStoppingIR,
    LossIR,
    ModelIR,
    OptimizerIR,
    Program,
    RegularizersIR,
    ScheduleIR,
    TrainingIR,
)
from specc.analysis.lints import run_lints
from specc.analysis.naming import class_name
from specc.analysis.report import Finding, to_diagnostic
from specc.analysis.shapes import infer_block, infer_output
from specc.diagnostics import Diagnostic
from specc.schema.spec import Loss, Spec
from specc.source.yamlpos import PosTree

THREADS_PARAMS_LIMIT = 2_000_000
"""`threads: auto` uses one thread below this many parameters (small models run faster so)."""


def analyze(
    spec: Spec, tree: PosTree | None, file: str, spec_dir: FsPath
) -> tuple[Program | None, list[Diagnostic]]:
    """The Program of a validated spec (None when any error is found) and all diagnostics."""
    found: list[Finding] = []
    rule, more = rules.check_output(spec)
    found += more + rules.check_label_smoothing(spec)
    task = rule.task if rule is not None else None
    found += [f for block in all_blocks(spec.layers) for s in block for f in rules.check_layer(s)]
    model, more = build_model(spec)
    found += more
    found += check_data(spec, FsPath(spec_dir))
    context = rules.Context(spec, task)
    found += [f for r in rules.CROSS_RULES for f in r.check(context)]
    found += run_lints(spec)
    diags = [to_diagnostic(f, tree, file) for f in found]
    if rule is None or model is None or any(f.severity == "error" for f in found):
        return None, diags
    program = build_program(spec, file, FsPath(spec_dir), rule, model)
    # what will not export needs the resolved program (its parameter count)
    diags += [to_diagnostic(f, tree, file) for f in export_lints(program)]
    return program, diags


def build_model(spec: Spec) -> tuple[ModelIR | None, list[Finding]]:
    """Shapes and parameter counts of the hidden layers and the output unit."""
    scheme = spec.init.weights
    shape = tuple(spec.input.shape)
    layers, out, found = infer_block(sites_of(spec.layers), shape, scheme)
    if out is None:
        return None, found
    output, more = infer_output(spec.output, out, scheme)
    if output is None:
        return None, found + more
    total = sum(layer.params for layer in layers) + output.params
    model = ModelIR(
        class_name=class_name(spec.name),
        input_shape=shape,
        normalize=spec.data.normalize,
        layers=layers,
        output=output,
        output_activation=spec.output.activation,
        bias_init=spec.init.bias,
        params=total,
    )
    return model, found


def build_program(
    spec: Spec, file: str, spec_dir: FsPath, rule: rules.OutputRule, model: ModelIR
) -> Program:
    """Assemble the Program of an error-free spec."""
    loss = loss_ir(spec, rule)
    resolved = spec.model_dump(mode="json")
    if spec.loss is None:
        resolved["loss"] = TypeAdapter(Loss).validate_python(loss.name).model_dump(mode="json")
    return Program(
        name=spec.name,
        description=spec.description,
        spec_path=file,
        resolved=resolved,
        task=rule.task,
        metrics=rules.METRICS[rule.task],
        data=data_ir(spec, spec_dir, rule.task),
        model=model,
        loss=loss,
        training=training_ir(spec, model.params),
        onnx_opset=spec.export.onnx.opset if spec.export.onnx is not None else None,
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


def schedule_ir(spec: Spec) -> ScheduleIR:
    """The schedule with lengths defaulted to training.epochs and plateau's mode derived."""
    schedule = spec.optimizer.schedule
    options = options_of(schedule, "name")
    if "epochs" in options and options["epochs"] is None:
        options["epochs"] = spec.training.epochs
    if schedule.name == "plateau":
        options["mode"] = rules.monitor_mode(schedule.monitor)
    return ScheduleIR(schedule.name, options)


def early_ir(spec: Spec) -> EarlyStoppingIR | None:
    """Early stopping with its mode derived from the monitored metric."""
    early = spec.stopping.early
    if early is None:
        return None
    return EarlyStoppingIR(
        monitor=early.monitor,
        mode=rules.monitor_mode(early.monitor),
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
    )


def training_ir(spec: Spec, params: int) -> TrainingIR:
    """The loop's settings; `threads: auto` is 1 for small models, else torch's default."""
    training, opt = spec.training, spec.optimizer
    threads = training.threads
    if threads == "auto":
        threads = 1 if params < THREADS_PARAMS_LIMIT else None
    return TrainingIR(
        epochs=training.epochs,
        batch_size=training.batch_size,
        seed=training.seed,
        device=training.device,
        threads=threads,
        optimizer=OptimizerIR(opt.name, opt.lr, options_of(opt, "name", "lr", "schedule")),
        schedule=schedule_ir(spec),
        regularizers=regularizers_ir(spec),
        early=early_ir(spec),
        refit=spec.stopping.refit,
    )
