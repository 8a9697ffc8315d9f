"""Findings: problems at a path into the spec, turned into positioned Diagnostics at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from specc.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from specc.source.yamlpos import PosTree

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One problem found by an analysis pass, at a path into the spec's YAML value."""

    path: Path
    code: str
    message: str
    hints: tuple[str, ...] = ()
    severity: Severity = "error"


def error(path: Path, code: str, message: str, *hints: str | None) -> Finding:
    """An error finding (empty hints are dropped)."""
    return Finding(path, code, message, tuple(h for h in hints if h), "error")


def warning(path: Path, code: str, message: str, *hints: str | None) -> Finding:
    """A warning finding (empty hints are dropped)."""
    return Finding(path, code, message, tuple(h for h in hints if h), "warning")


def to_diagnostic(finding: Finding, tree: PosTree | None, file: str) -> Diagnostic:
    """Place a finding at its YAML node (nearest ancestor when the key is absent).

    A position that carries its own file (an overridden value, `--set KEY=VALUE`) names it.
    """
    line, col, where = 1, 1, file
    if tree is not None:
        pos = tree.locate(finding.path)
        line, col, where = pos.line, pos.col, pos.file or file
    return Diagnostic(
        where, line, col, finding.severity, finding.code, finding.message, finding.hints
    )


def plural(n: int, word: str) -> str:
    """'1 class', '3 classes', '2 units'."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "x")) else f"{n} {word}s"


def fmt_shape(shape: tuple[int, ...]) -> str:
    """A per-example shape as `[16, 8, 8]`."""
    return "[" + ", ".join(str(n) for n in shape) + "]"
