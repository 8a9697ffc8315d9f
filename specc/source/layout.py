"""Plain words for the layout mistakes behind most YAML syntax errors: tabs and misaligned keys.

PyYAML says "found character that cannot start any token" for a tab in the indentation,
and "mapping values are not allowed in this context" or "did not find expected '-'
indicator" for a key indented one space too far or too little. When the parser stops on
such a line, `layout_problem` reads the lines above it the way a person would (which keys
and list items are still open, at which columns) and says what to change instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from specc.diagnostics import quoted

__all__ = ["layout_problem"]

_ITEM = re.compile(r"-(?: +|$)")
_BLOCK_SCALAR = re.compile(r"(?:^|[ \t])[|>][-+0-9]*[ \t]*(?:#.*)?$")
_KEY = re.compile(
    r"""("[^"]*"|'[^']*'|[^\s#'"\[\]{},&*!|>%@`?:-][^#]*?|[-?:][^\s#][^#]*?)[ \t]*:(?:[ \t]|$)"""
)


@dataclass(frozen=True)
class _Entry:
    """A list item's '-' or a mapping key that starts at a 0-based column of a line."""

    col: int
    key: str | None  # None for a list item
    line: int  # 1-based

    def name(self) -> str:
        """How a message refers to it."""
        return quoted(self.key) if self.key is not None else "the '-'"


def layout_problem(lines: list[str], line: int) -> tuple[int, int, str, str, str] | None:
    """(line, col, message, hint, hint) for a tab or a misaligned key on `line`, else None.

    `lines` is the text split at its line breaks; `line` is 1-based, where the parser
    stopped. Only a line that is indented differently from every key (or list item) that
    is still open above it is reported: anything else is left to the parser's message.
    """
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    indent = text[: len(text) - len(text.lstrip(" \t"))]
    if "\t" in indent:
        col = indent.index("\t") + 1
        msg = f"line {line} is indented with a tab; YAML needs spaces"
        return line, col, msg, "replace the tab with spaces (2 for each level)", ""
    entries, _ = _entries(text, line)
    if not entries or not _balanced(text):
        return None
    here = entries[0]
    open_entries = _open_entries(lines, line)
    if open_entries is None:
        return None
    same = [e for e in open_entries if (e.key is None) == (here.key is None)]
    if not same or any(e.col == here.col for e in same):
        return None
    deeper = min((e for e in same if e.col > here.col), key=lambda e: e.col, default=None)
    shallower = max((e for e in same if e.col < here.col), key=lambda e: e.col, default=None)
    first, second = deeper, shallower
    if deeper is None or (
        shallower is not None and here.col - shallower.col < deeper.col - here.col
    ):
        first, second = shallower, deeper
    assert first is not None
    what = quoted(here.key) if here.key is not None else "this list item"
    amount, way = _move(here, first)
    more = "more" if way == "out" else "less"
    msg = f"{what} is indented {amount} {more} than {first.name()} on line {first.line}"
    hint = f"{way}dent it by {amount} to line up with {first.name()}"
    other = ""
    if second is not None:
        amount2, way2 = _move(here, second)
        other = (
            f"or {way2}dent it by {amount2} to line up with {second.name()} on line {second.line}"
        )
    return line, here.col + 1, msg, hint, other


def _move(here: _Entry, target: _Entry) -> tuple[str, str]:
    """('2 spaces', 'in' or 'out'): how to move `here` to `target`'s column."""
    d = abs(target.col - here.col)
    return f"{d} space{'s' * (d != 1)}", "in" if target.col > here.col else "out"


def _open_entries(lines: list[str], line: int) -> list[_Entry] | None:
    """The keys and list items above `line` that a new line may still line up with.

    Walking up from the line before, each structure line adds its entries left of every
    column seen so far. None when the line right above opens a block (a deeper line is
    its child, not a mistake) and `line` is deeper, or inside flow brackets.
    """
    found: list[_Entry] = []
    bound: int | None = None
    here = len(lines[line - 1]) - len(lines[line - 1].lstrip(" "))
    text_lines = _block_scalar_text(lines[: line - 1])
    for number in range(line - 1, 0, -1):
        text = lines[number - 1]
        stripped = text.strip()
        if not stripped or stripped.startswith("#") or number in text_lines:
            continue
        if not _balanced(text):
            return None
        entries, opens = _entries(text, number)
        if not entries:
            return None  # a scalar continued over lines: not a layout this reads
        if bound is None and opens and here > entries[-1].col:
            return None  # the first line of a nested block
        new = [e for e in entries if bound is None or e.col < bound]
        found.extend(new)
        if new:
            bound = new[0].col
        if bound == 0:
            break
    return found


def _block_scalar_text(lines: list[str]) -> set[int]:
    """The 1-based numbers of the lines that are the text of a `|` or `>` block scalar."""
    inside: set[int] = set()
    header_col: int | None = None
    for number, text in enumerate(lines, start=1):
        indent = len(text) - len(text.lstrip(" "))
        if header_col is not None and (not text.strip() or indent > header_col):
            inside.add(number)
            continue
        header_col = None
        entries, _ = _entries(text, number)
        if entries and _BLOCK_SCALAR.search(text):
            header_col = entries[-1].col
    return inside


def _entries(text: str, number: int) -> tuple[list[_Entry], bool]:
    """The '-' items and the key at the start of a line, and whether it opens a block."""
    entries: list[_Entry] = []
    pos = len(text) - len(text.lstrip(" "))
    while True:
        item = _ITEM.match(text, pos)
        if item is None:
            break
        entries.append(_Entry(pos, None, number))
        pos = item.end()
    key = _KEY.match(text, pos)
    if key is not None:
        entries.append(_Entry(pos, key.group(1).strip("'\""), number))
        rest = text[key.end() :].strip()
        return entries, not rest or rest.startswith("#")
    return entries, bool(entries) and not text[pos:].strip()


def _balanced(text: str) -> bool:
    """False when a line leaves a flow bracket open (or closes one opened above)."""
    return text.count("[") == text.count("]") and text.count("{") == text.count("}")
