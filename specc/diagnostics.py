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


ALIASES: dict[str, str] = {
    "swish": "silu",
    "gpu": "cuda",
    "identity": "linear",
    "none": "linear",
    "logistic": "sigmoid",
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "ce": "cross_entropy",
    "nll": "cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "bce": "binary_cross_entropy",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "l1": "mae",
    "smooth_l1": "huber",
    "linear_layer": "dense",
    "fc": "dense",
    "fully_connected": "dense",
    "batch_norm": "batchnorm",
    "batch_normalization": "batchnorm",
    "layer_norm": "layernorm",
    "layer_normalization": "layernorm",
    "simple_rnn": "rnn",
    "simplernn": "rnn",
    "rms_prop": "rmsprop",
    "adam_w": "adamw",
}
"""Names other libraries (Keras, PyTorch) use for things specc calls otherwise, in lower case.
An alias is proposed only where its target is one of the allowed names."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close.

    Tries, in order: the same name in other letter case or with '-'/' ' for '_', another
    library's name for it (`swish` -> `silu`), a close spelling, names it is the start of.
    """
    options = sorted(set(map(str, choices)))
    if not options:
        return None
    key = str(word).strip().lower().replace("-", "_").replace(" ", "_")
    folded = {o.lower(): o for o in options}
    if key in folded and folded[key] != word:
        return f"did you mean '{folded[key]}'?"
    alias = ALIASES.get(key)
    if alias in options:
        return f"did you mean '{alias}'?"
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    if close and folded[close[0]] != word:
        return f"did you mean '{folded[close[0]]}'?"
    starts = [o for o in options if len(key) >= 2 and o.lower().startswith(key) and o != word]
    if 1 <= len(starts) <= 3:
        return "did you mean " + " or ".join(f"'{o}'" for o in starts) + "?"
    return None
