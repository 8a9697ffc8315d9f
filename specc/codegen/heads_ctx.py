"""The multitask heads' pieces of data.py and train.py (heads:), computed from Program.heads.

Each head's loss and metrics are the main output's, from the same tables (train_ctx.LOSSES,
SMOOTHING, METRIC_LINES) with the head's own constants: a head never restates a loss. None of
this appears in the code of a spec without heads.
"""

from __future__ import annotations

from dataclasses import dataclass

from specc.analysis.ir import HeadIR, Program
from specc.codegen import train_ctx as tc
from specc.codegen.literals import py

HEAD_STEP = (
    "logits, outputs = model.forward_heads(xb)  # heads: one pass through the shared layers",
    "loss, head_loss = loss_fn(logits, yb), head_losses(outputs, tb)",
)
"""train_epoch's forward lines with heads (instead of `loss = loss_fn(model(xb), yb)`)."""

OBJECTIVE = "total_loss(loss, head_loss)"
"""What train_epoch differentiates with heads (penalties are added to it as without)."""


@dataclass(frozen=True)
class HeadCode:
    """One head's generated functions: its loss (and target smoothing) and its metrics."""

    name: str
    target: str
    task: str
    smoothing: tc.Code | None
    loss: tc.Code
    metric_lines: tuple[str, ...]


@dataclass(frozen=True)
class HeadsContext:
    """What data.py.j2 and train.py.j2 place for heads."""

    heads: tuple[HeadCode, ...]
    labels: bool
    """Whether a head is a classifier (data.py then encodes its labels as class indices)."""
    loss_items: tuple[str, ...]
    """head_losses()'s dict items: `"even": loss_even(outputs["even"], targets["even"])`."""
    metric_items: tuple[str, ...]
    """evaluate_heads()'s dict items: `"even": metrics_even(outputs["even"], targets["even"])`."""


def _prefix(head: HeadIR) -> str:
    """The prefix of a head's constants: HEAD_EVEN_."""
    return f"HEAD_{head.name.upper()}_"


def _renamed(lines: tuple[str, ...], head: HeadIR, target: str) -> tuple[str, ...]:
    """Loss/smoothing lines of the main tables with the head's constants and functions."""
    p = _prefix(head)
    swaps = (
        ("LABEL_SMOOTHING", f"{p}LABEL_SMOOTHING"),
        ("OUTPUT_UNITS", f"{p}UNITS"),
        ("HUBER_DELTA", f"{p}HUBER_DELTA"),
        ("TARGET", target),
    )
    out = []
    for line in lines:
        for old, new in swaps:
            line = line.replace(old, new)
        out.append(line)
    return tuple(out)


def _head_code(head: HeadIR) -> HeadCode:
    """A head's loss, smoothing and metric functions from the main output's tables."""
    loss = head.loss
    smoothed = loss.label_smoothing > 0
    smoothing = None
    if smoothed:
        table = tc.SMOOTHING[loss.name]
        smoothing = tc.Code(table.doc, _renamed(table.body, head, "y"))
    code = tc.LOSSES[(loss.name, smoothed)]
    target = f"smooth_{head.name}(y)" if smoothed else "y"
    return HeadCode(
        name=head.name,
        target=head.target,
        task=head.task,
        smoothing=smoothing,
        loss=tc.Code(code.doc, _renamed(code.body, head, target)),
        metric_lines=tc.METRIC_LINES[head.task],
    )  # fmt: skip


def heads_context(program: Program) -> HeadsContext | None:
    """The heads' pieces of data.py and train.py; None without heads."""
    if not program.heads:
        return None
    items = [f'{py(h.name)}: {{}}_{h.name}(outputs["{h.name}"], targets["{h.name}"])' for h in
             program.heads]  # fmt: skip
    return HeadsContext(
        heads=tuple(_head_code(h) for h in program.heads),
        labels=any(h.task in ("binary", "multiclass") for h in program.heads),
        loss_items=tuple(item.format("loss") for item in items),
        metric_items=tuple(item.format("metrics") for item in items),
    )


def functional(program: Program) -> bool:
    """Whether a head's loss needs torch.nn.functional (log-softmax, softplus)."""
    return any(h.loss.name in ("cross_entropy", "binary_cross_entropy") for h in program.heads)


def by_head(heads: tuple[HeadIR, ...], values: list[str]) -> str:
    """A `{head: value}` dict literal over the heads, the values already rendered."""
    return "{" + ", ".join(f"{py(h.name)}: {v}" for h, v in zip(heads, values, strict=True)) + "}"


def train_constants(program: Program) -> tuple[tc.Constant, ...]:
    """train.py's head constants: names, weights, metrics, and each loss's options."""
    if not program.heads:
        return ()
    heads = program.heads
    consts = [
        tc.Constant("HEADS", py(tuple(h.name for h in heads)), "heads, in the spec's order"),
        tc.Constant(
            "HEAD_WEIGHTS", by_head(heads, [py(float(h.weight)) for h in heads]),
            "heads.<name>.weight",
        ),
        tc.Constant(
            "HEAD_METRICS", by_head(heads, [py(h.metrics) for h in heads]),
            "each head task's metrics, loss first",
        ),
    ]  # fmt: skip
    for h in heads:
        p, key = _prefix(h), f"heads.{h.name}.loss"
        if h.loss.label_smoothing > 0:
            eps = py(float(h.loss.label_smoothing))
            consts.append(tc.Constant(f"{p}LABEL_SMOOTHING", eps, f"{key}.label_smoothing"))
            if h.loss.name == "cross_entropy":
                units = py(h.output.out_shape[-1])
                consts.append(tc.Constant(f"{p}UNITS", units, f"heads.{h.name}.output.units"))
        if h.loss.name == "huber":
            delta = py(float(h.loss.delta))
            consts.append(tc.Constant(f"{p}HUBER_DELTA", delta, f"{key}.delta"))
    return tuple(consts)


def data_constants(program: Program) -> tuple[tc.ConstantGroup, ...]:
    """data.py's head constants: each head's target column, task and output units."""
    if not program.heads:
        return ()
    heads = program.heads
    targets = by_head(heads, [py(h.target) for h in heads])
    tasks = by_head(heads, [py(h.task) for h in heads])
    units = by_head(heads, [str(h.output.out_shape[-1]) for h in heads])
    constants = (
        tc.Constant("HEAD_TARGETS", targets, "heads.<name>.target"),
        tc.Constant("HEAD_TASKS", tasks, "heads.<name>.output"),
        tc.Constant("HEAD_UNITS", units, "heads.<name>.output.units"),
    )
    return (tc.ConstantGroup("heads (their targets are never features)", constants),)
