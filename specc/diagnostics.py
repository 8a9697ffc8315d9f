"""Diagnostics: the one data type every stage returns, rendered once at the CLI edge."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a spec, at a 1-based line and column of a file."""

    file: str
    line: int
    col: int
    severity: Severity
    code: str
    message: str
    hints: tuple[str, ...] = field(default=())

    def render(self) -> str:
        """Render as `FILE:LINE:COL: SEVERITY[CODE]: MESSAGE` plus indented hint lines."""
        head = f"{self.file}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"
        return "\n".join([head, *(f"  hint: {h}" for h in self.hints)])

    def to_json(self) -> dict:
        """A JSON-ready mapping (hints as a list)."""
        d = asdict(self)
        d["hints"] = list(self.hints)
        return d


def has_errors(diags: Iterable[Diagnostic], strict: bool = False) -> bool:
    """True when any diagnostic is an error (or, with strict, any at all)."""
    return any(strict or d.severity == "error" for d in diags)


def sort_key(d: Diagnostic) -> tuple:
    """Order by file, position, then errors before warnings."""
    return (d.file, d.line, d.col, d.severity != "error", d.code, d.message)


def render_text(diags: Iterable[Diagnostic]) -> str:
    """All diagnostics as text, sorted, one block per diagnostic."""
    return "\n".join(d.render() for d in sorted(diags, key=sort_key))


def render_json(diags: Iterable[Diagnostic]) -> str:
    """All diagnostics as a JSON list."""
    return json.dumps([d.to_json() for d in sorted(diags, key=sort_key)], indent=2)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
