"""Multitask heads (`heads:`): their checks and their IR.

Each head is checked with the rules the main output obeys, reused rather than restated: the
output-unit table (`output-units`, `loss-output-mismatch`, `label-smoothing-too-large`), the
layer parameter rules, shape inference from the shared layers' output, and the data-column
checks against the file's header. Every finding is placed under `heads.<name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Any

from specc.analysis import rules
from specc.analysis.blocks import all_blocks, sites_of
from specc.analysis.datasets import (
    READ_ERRORS,
    _named,
    as_list,
    data_path,
    file_kind,
    read_columns,
)
from specc.analysis.ir import HeadIR, LayerIR, LossIR, Shape
from specc.analysis.naming import class_name
from specc.analysis.report import Finding, Path, error
from specc.analysis.shapes import infer_block, infer_output

HeadShapes = dict[str, tuple[tuple[LayerIR, ...], LayerIR]]
"""Each head's inferred hidden layers and output unit, by head name."""


def under(prefix: Path, found: list[Finding]) -> list[Finding]:
    """Findings of a rule written for the spec's top level, moved under `prefix` (a head)."""
    return [replace(f, path=(*prefix, *f.path)) for f in found]


def head_columns(spec: Any) -> set[str]:
    """The data columns the heads predict (left out of the default features)."""
    return {head.target for head in spec.heads.values()}


def check_head_rules(ctx: rules.Context) -> list[Finding]:
    """Each head's output unit and loss against the table, and its layers' parameter rules."""
    found: list[Finding] = []
    for name, head in ctx.spec.heads.items():
        at: Path = ("heads", name)
        found += under(at, rules.check_output_units(head))
        found += under(at, rules.check_loss(head))
        found += under(at, rules.check_label_smoothing(head))
        for block in all_blocks(head.layers, (*at, "layers")):
            found += [f for site in block for f in rules.check_layer(site)]
            found += [_share_in_head(site) for site in block if _shares(site)]
    return found


def _shares(site: Any) -> bool:
    """Whether a head's layer asks for another layer's weight (`share:`)."""
    return getattr(site.params, "share", None) is not None


def _share_in_head(site: Any) -> Finding:
    """`share:` inside a head: heads own their parameters (sharing is between trunk layers)."""
    msg = "a layer of a head cannot share another layer's weight"
    hint = "sharing is between the layers of `layers:`; give the head its own weights"
    return error((*site.params_path, "share"), "share-in-head", msg, hint)


def check_head_data(ctx: rules.Context) -> list[Finding]:
    """Heads need a table with named columns; each target is a column of it, not the main
    target nor a feature, and a one-column target fits the head's output unit."""
    spec = ctx.spec
    if not spec.heads:
        return []
    source = spec.data.source
    kind = file_kind(source)
    if source.startswith("sklearn:") or kind not in ("csv", "parquet"):
        what = source if source.startswith("sklearn:") else f"'{source}'"
        msg = f"heads need a csv or parquet source with named target columns, not {what}"
        hint = "put the main and the heads' targets in columns of one .csv file"
        return [error(("heads",), "heads-need-table", msg, hint)]
    found: list[Finding] = []
    targets = as_list(spec.data.target)
    features = as_list(spec.data.features)
    for name, head in spec.heads.items():
        at: Path = ("heads", name, "target")
        if head.target in targets:
            msg = f"head '{name}' predicts '{head.target}', which is also data.target"
            hint = "give the head another column, or remove it from data.target"
            found.append(error(at, "head-target-overlap", msg, hint))
        elif head.target in features:
            msg = f"head '{name}' predicts '{head.target}', which data.features lists as an input"
            hint = "remove it from data.features (a head's target is never an input)"
            found.append(error(at, "head-target-overlap", msg, hint))
        found += _one_column_output(name, head)
    found += _head_columns_exist(spec, kind, ctx.spec_dir)
    return found


def _one_column_output(name: str, head: Any) -> list[Finding]:
    """A head predicts one column: linear and sigmoid heads need 1 unit (softmax: k classes)."""
    out = head.output
    if out.activation == "softmax" or out.units == 1:
        return []
    msg = f"head '{name}' predicts the one column '{head.target}', but its {out.activation}"
    msg += f" output unit has {out.units} units"
    hint = "use output.units: 1, or softmax with one unit per class"
    return [error(("heads", name, "output", "units"), "data-output-mismatch", msg, hint)]


def _head_columns_exist(spec: Any, kind: str, spec_dir: Any) -> list[Finding]:
    """`data-column-missing` at each head target the file's header lacks (the data checks'
    own message and did-you-mean hint); an unreadable file is reported by the data checks."""
    path = data_path(spec.data.source, FsPath(spec_dir or "."))
    try:
        cols = read_columns(path, kind)
    except READ_ERRORS:
        return []
    if not cols.names:
        return []
    found: list[Finding] = []
    for name, head in spec.heads.items():
        missing = _named([head.target], cols.names, "target", head.target, "column")
        found += [replace(f, path=("heads", name, "target")) for f in missing]
    return found


def infer_heads(spec: Any, trunk: Shape) -> tuple[HeadShapes | None, list[Finding]]:
    """Shapes of every head from the shared layers' output `trunk` (None: some head fails)."""
    scheme = spec.init.weights
    shapes: HeadShapes = {}
    found: list[Finding] = []
    for name, head in spec.heads.items():
        at: Path = ("heads", name)
        layers, out, more = infer_block(sites_of(head.layers, (*at, "layers")), trunk, scheme)
        found += more
        if out is None:
            continue
        output, more = infer_output(head.output, out, scheme)
        found += under(at, more)
        if output is not None:
            shapes[name] = (layers, output)
    return (shapes if len(shapes) == len(spec.heads) else None), found


def heads_ir(
    spec: Any, shapes: HeadShapes, loss_of: Callable[[Any, rules.OutputRule], LossIR]
) -> tuple[HeadIR, ...]:
    """The heads' IR from their inferred shapes (call only for an error-free spec)."""
    heads = []
    for name, head in spec.heads.items():
        rule = rules.output_rule(head.output.activation, head.output.units)
        assert rule is not None, "check_head_rules rejects output units outside the table"
        layers, output = shapes[name]
        heads.append(
            HeadIR(
                name=name,
                ident=f"head_{name}",
                class_name=f"{class_name(name)}Head",
                target=head.target,
                task=rule.task,
                metrics=rules.METRICS[rule.task],
                layers=layers,
                output=output,
                output_activation=head.output.activation,
                loss=loss_of(head, rule),
                weight=head.weight,
                params=sum(layer.params for layer in layers) + output.params,
            )
        )
    return tuple(heads)


def check_head_ensemble(ctx: rules.Context) -> list[Finding]:
    """An ensemble's bootstrap resamples the main targets only, and its members' vote has no
    heads (regularizers.adversarial has its own rule, adversarial-with-heads)."""
    spec = ctx.spec
    if not spec.heads or getattr(spec, "ensemble", None) is None:
        return []
    msg = "an ensemble cannot be combined with heads (its members resample the main targets)"
    hint = "train the multitask model on its own, or drop heads: to train an ensemble"
    return [error(("ensemble",), "heads-with-ensemble", msg, hint)]
