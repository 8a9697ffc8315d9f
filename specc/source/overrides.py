"""`--set KEY=VALUE` overrides: dotted paths into a loaded spec, values read as YAML.

Overridden nodes get positions in a pseudo-file named after the override
(`--set optimizer.lr=abc`, line 1, column of the value within `KEY=VALUE`), so that a
diagnostic about an overridden value names the override that produced it.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

from specc.diagnostics import Diagnostic
from specc.source.yamlpos import Pos, PosTree, load_value

__all__ = ["apply_overrides", "override_file", "parse_override"]

Path = tuple[str | int, ...]
_INDEX = re.compile(r"[0-9]+")


def override_file(text: str) -> str:
    """The pseudo-file name that diagnostics about the override `text` carry."""
    return f"--set {text}"


def parse_override(text: str) -> tuple[Path, Any] | Diagnostic:
    """`a.b.0.c=VALUE` as (('a', 'b', 0, 'c'), value), or an `invalid-override` diagnostic.

    Integer segments index lists; VALUE is read with the spec loader's safe rules, so
    `0.01` is a float, `[1, 2]` a list, `{name: sgd}` a mapping and an empty VALUE null.
    """
    parsed = _parse(text)
    return parsed if isinstance(parsed, Diagnostic) else (parsed[0], parsed[1])


def apply_overrides(
    value: Any, tree: PosTree | None, overrides: list[str]
) -> tuple[Any, PosTree, list[Diagnostic]]:
    """A new value and position tree with each override applied in order (inputs untouched).

    Missing intermediate mappings (and null ones) are created; an out-of-range list index
    or a path through a scalar is an `invalid-override` error and that override is skipped.
    """
    value = copy.deepcopy(value)
    tree = tree.copy() if tree is not None else PosTree(Pos(1, 1))
    diags: list[Diagnostic] = []
    for text in overrides:
        parsed = _parse(text)
        if isinstance(parsed, Diagnostic):
            diags.append(parsed)
            continue
        path, new, new_tree, cols = parsed
        value, problem = _set(value, tree, text, path, cols, new, new_tree)
        if problem is not None:
            diags.append(problem)
    return value, tree, diags


def _parse(text: str) -> tuple[Path, Any, PosTree, list[int]] | Diagnostic:
    """Path, value, value positions and the 1-based column of each path segment."""
    file = override_file(text)
    key, eq, raw = text.partition("=")
    if not eq:
        return _error(file, 1, f"'{text}' is not KEY=VALUE", "write e.g. --set training.epochs=5")
    if not key.strip():
        return _error(file, 1, "the key before '=' is empty", "write e.g. --set training.epochs=5")
    path: list[str | int] = []
    cols: list[int] = []
    col = 1
    for seg in key.split("."):
        if not seg.strip():
            return _error(file, col, f"empty segment in the key '{key}'")
        path.append(int(seg) if _INDEX.fullmatch(seg) else seg)
        cols.append(col)
        col += len(seg) + 1
    value, tree, diags = load_value(raw, file)
    if diags:  # the loader's own diagnostic (yaml-syntax, unsafe-tag, ...), moved onto VALUE
        first = diags[0]
        at = first.col + col - 1 if first.line == 1 else len(text) + 1  # past the end: EOF
        return dataclasses.replace(first, line=1, col=min(at, len(text) + 1), hints=())
    return tuple(path), value, _shift(tree or PosTree(Pos(1, 1)), col - 1, file), cols


def _set(
    value: Any, tree: PosTree, text: str, path: Path, cols: list[int], new: Any, new_tree: PosTree
) -> tuple[Any, Diagnostic | None]:
    """Put `new` at `path` inside `value` (in place; it is already a copy), and its positions."""
    file = override_file(text)
    if not path:
        return value, None
    cur, node = value, tree
    for i, seg in enumerate(path):
        where = ".".join(map(str, path[:i])) or "the spec"
        key, problem = _slot(cur, seg, where, file, cols[i])
        if problem is not None:
            return value, problem
        if i == len(path) - 1:
            cur[key] = new
            node.children[key] = PosTree(new_tree.pos, Pos(1, cols[i], file), new_tree.children)
            return value, None
        if isinstance(cur, dict) and cur.get(key) is None:
            cur[key] = {}  # a missing (or null) intermediate mapping
            node.children[key] = PosTree(Pos(1, cols[i + 1], file), Pos(1, cols[i], file))
        cur = cur[key]
        node = node.children.setdefault(key, PosTree(Pos(1, cols[i], file)))
    return value, None


def _slot(
    container: Any, seg: str | int, where: str, file: str, col: int
) -> tuple[str | int, Diagnostic | None]:
    """The key or index `seg` addresses in `container`, or why it cannot be set there."""
    if isinstance(container, dict):
        return str(seg), None
    if isinstance(container, list):
        if not isinstance(seg, int):
            return seg, _error(file, col, f"{where} is a list: index it with a number, not '{seg}'")
        if seg >= len(container):
            n = len(container)
            msg = f"index {seg} is out of range: {where} has {n} item{'s' * (n != 1)}"
            return seg, _error(file, col, msg)
        return seg, None
    return seg, _error(file, col, f"cannot set '{seg}' inside {where}: it is not a mapping")


def _shift(tree: PosTree, offset: int, file: str) -> PosTree:
    """Positions parsed from VALUE, moved to their columns within KEY=VALUE in `file`."""

    def move(pos: Pos | None) -> Pos | None:
        if pos is None:
            return None
        return Pos(pos.line, pos.col + (offset if pos.line == 1 else 0), file)

    kids = {k: _shift(v, offset, file) for k, v in tree.children.items()}
    return PosTree(move(tree.pos) or Pos(1, 1, file), move(tree.key_pos), kids)


def _error(file: str, col: int, message: str, *hints: str) -> Diagnostic:
    """An `invalid-override` error at a column of the override text."""
    return Diagnostic(file, 1, col, "error", "invalid-override", message, hints)
