"""Diagnostics: the one data type every stage returns, rendered once at the CLI edge."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


QUOTE_LIMIT = 60
"""Characters of a quoted value that a message shows before '…'."""
MESSAGE_LIMIT = 1000
"""Characters of a message or hint that a rendering shows before '…' (the last guarantee)."""

# C0 and C1 controls, DEL, the Unicode line/paragraph separators, zero-width and bidi
# controls, the BOM: characters that break a one-line diagnostic or hide what it says.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """`text` on one visible line: control and invisible characters as `\\n`, `\\x85`, `\\u2028`."""
    return _UNPRINTABLE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    """The escape sequence of one character."""
    ch = match.group()
    return _ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def shorten(text: str, limit: int) -> str:
    """`text` escaped (see `escape`) and cut to at most `limit` characters, ending in '…'."""
    text = escape(text[: limit + 1])  # escaping only lengthens: cut first, for a 1 MB value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: object, limit: int = QUOTE_LIMIT, quote: str = "'") -> str:
    """A value as a message quotes it: `'relu'`; escaped and shortened, so one line.

    Use it wherever a message or hint echoes what the user wrote (a key, a name, a value).
    """
    try:
        text = str(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return "an integer too long to show"
    return f"{quote}{shorten(text, limit)}{quote}"


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
        """Render as `FILE:LINE:COL: SEVERITY[CODE]: MESSAGE` plus indented hint lines.

        Each of them is one line whatever the text holds: control characters are escaped
        and messages cut at MESSAGE_LIMIT characters.
        """
        message = shorten(self.message, MESSAGE_LIMIT)
        head = (
            f"{escape(self.file)}:{self.line}:{self.col}: {self.severity}[{self.code}]: {message}"
        )
        return "\n".join([head, *(f"  hint: {shorten(h, MESSAGE_LIMIT)}" for h in self.hints)])

    def to_json(self) -> dict:
        """A JSON-ready mapping (hints as a list), message and hints as `render` shows them."""
        d = asdict(self)
        d["message"] = shorten(self.message, MESSAGE_LIMIT)
        d["hints"] = [shorten(h, MESSAGE_LIMIT) for h in self.hints]
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
