"""Python names for the generated code: the model's class name and per-block layer idents."""

from __future__ import annotations

import re
from collections import Counter

from specc.analysis.kinds import LAYER_KINDS

OUTPUT_IDENT = "output"
"""Attribute name of the output unit's dense layer."""

_SEGMENT = re.compile(r"([a-z_0-9]+)|\[([0-9]+)\]")


def class_name(spec_name: str) -> str:
    """CamelCase class name from a spec name: digits_mlp -> DigitsMlp, mlp_2x -> Mlp2x."""
    return "".join(part[:1].upper() + part[1:] for part in spec_name.split("_") if part) or "Model"


class Namer:
    """Hands out idents unique within one block (a residual block starts its own Namer)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def ident(self, kind: str) -> str:
        """The next ident for a layer of `kind` in this block."""
        prefix = LAYER_KINDS[kind].prefix
        self.counts[prefix] += 1
        return f"{prefix}{self.counts[prefix]}"


def source_of(path: tuple) -> str:
    """`('layers', 3, 'residual', 'layers', 0)` as `layers[3].residual.layers[0]`."""
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def path_of(source: str) -> tuple[str | int, ...]:
    """The inverse of `source_of`: `layers[3].residual` as `('layers', 3, 'residual')`."""
    return tuple(int(index) if index else name for name, index in _SEGMENT.findall(source))
