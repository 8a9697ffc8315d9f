"""`specc summary`: the layer table (ident, type, output shape, parameters) and the total."""

from __future__ import annotations

from specc.analysis.ir import LayerIR, Program
from specc.analysis.report import fmt_shape

HEADER = ("layer", "type", "output shape", "params")
INDENT = "  "
"""Indentation per residual nesting level."""


def walk(layers: tuple[LayerIR, ...], depth: int = 0) -> list[tuple[int, LayerIR]]:
    """Every layer with its nesting depth, residual children right after their block."""
    out: list[tuple[int, LayerIR]] = []
    for layer in layers:
        out.append((depth, layer))
        out.extend(walk(layer.children, depth + 1))
    return out


def rows(program: Program) -> list[tuple[str, str, str, str]]:
    """Table rows: hidden layers (children indented), then the output unit."""
    model = program.model
    entries = [(depth, "", layer) for depth, layer in walk(model.layers)]
    entries.append((0, "", model.output))
    for head in program.heads:  # heads: after the main output, named head_<name>.<layer>
        layers = [*walk(head.layers), (0, head.output)]
        entries += [(depth, f"{head.ident}.", layer) for depth, layer in layers]
    return [
        (
            INDENT * depth + owner + layer.ident,
            kind_cell(layer),
            fmt_shape(layer.out_shape),
            str(layer.params),
        )
        for depth, owner, layer in entries
    ]


def kind_cell(layer: LayerIR) -> str:
    """The type column: the kind, and whose weight a sharing layer uses (counted there)."""
    if layer.shares is None:
        return layer.kind
    return f"{layer.kind} (shares {layer.shares.name}{'.T' if layer.shares.transpose else ''})"


def render_summary(program: Program) -> str:
    """The layer table of a program, ending with `total params: N`."""
    table = [HEADER, *rows(program)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = []
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1].rjust(widths[-1])]).rstrip())
    rule = "-" * len(lines[0])
    return "\n".join([lines[0], rule, *lines[1:], rule, f"total params: {program.model.params}"])
