"""YAML with source positions beside the data (dagster-style).

The loader returns the plain value (dicts, lists, str, int, float, bool, None) and, beside
it, a `PosTree` of 1-based line/column positions that mirrors the value's shape. Problems
are returned as `Diagnostic`s; nothing here raises for any input text.

Only plain data is accepted, read as YAML 1.2 reads it (the version yaml-language-server
and other editors use, so the editor and `specc check` agree on every file):

- plain scalars resolve by the YAML 1.2 core schema: `true`/`false` (any of three
  spellings) are booleans, `yes`/`no`/`on`/`off` are text; `null`, `~` and nothing are
  null; `017` is 17, `0o17` 15 and `0x1f` 31; `1e-4`, `.5`, `.inf`, `.nan` are floats;
  `1_000`, `0b101`, `1:30` and timestamps stay text;
- only CR, LF and CRLF end a line: NEL (U+0085), LS (U+2028) and PS (U+2029) are ordinary
  characters, so line and column agree with the editor's;
- any tag beyond the plain ones is rejected before anything is constructed, keys must be
  strings, duplicate keys are errors (the first value is kept and the rest of the file is
  still read), `<<` merge keys are applied, and the size and nesting are capped, whichever
  PyYAML (with or without libyaml, and whatever its own limits) is installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import (
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from specc.diagnostics import Diagnostic, quoted
from specc.source.layout import layout_problem

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Pos",
    "PosTree",
    "load_file",
    "load_value",
    "load_yaml",
    "yaml11_boolean",
]

MAX_NODES = 100_000  # constructed nodes, aliases expanded: the billion-laughs guard
MAX_DEPTH = 100  # nesting levels; libyaml has its own limit (1000 in PyYAML 6.0.4's)

_TAG = "tag:yaml.org,2002:"
_NULL, _STR, _TIMESTAMP = _TAG + "null", _TAG + "str", _TAG + "timestamp"
_BOOL, _INT, _FLOAT = _TAG + "bool", _TAG + "int", _TAG + "float"
_SEQ, _MAP, _MERGE = _TAG + "seq", _TAG + "map", _TAG + "merge"
_SCALAR_TAGS = {_NULL, _STR, _TIMESTAMP, _BOOL, _INT, _FLOAT}
_KEY_KINDS = {_NULL: "null", _BOOL: "a boolean", _INT: "an integer", _FLOAT: "a number"}

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), plus `<<`.
_CORE = {
    _NULL: r"~|null|Null|NULL|",
    _BOOL: r"true|True|TRUE|false|False|FALSE",
    _INT: r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+",
    _FLOAT: r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
    _MERGE: r"<<",
}
_FIRST = {
    _NULL: ["~", "n", "N", ""],
    _BOOL: list("tTfF"),
    _INT: list("-+0123456789"),
    _FLOAT: list("-+0123456789."),
    _MERGE: ["<"],
}
_FULL = {tag: re.compile(rf"(?:{rx})\Z") for tag, rx in _CORE.items()}
_YAML11_BOOLEANS = {
    **dict.fromkeys(("yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "off", "Off", "OFF"), False),
}
_UNICODE_BREAKS = "\x85\u2028\u2029"  # line breaks in YAML 1.1 (and PyYAML), not in 1.2
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _CoreResolver(BaseResolver):
    """Implicit tags by the YAML 1.2 core schema instead of PyYAML's YAML 1.1 rules."""


for _tag in _CORE:  # in this order: `12` is an int before it is a float
    _CoreResolver.add_implicit_resolver(_tag, _FULL[_tag], _FIRST[_tag])


class _PureLoader(Reader, Scanner, Parser, Composer, _CoreResolver):
    """PyYAML's pure-Python parser: slower, but without libyaml's nesting limit."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)


_FastLoader: type = _PureLoader
if getattr(yaml, "__with_libyaml__", False):  # libyaml when available: ~10x faster
    from yaml._yaml import CParser  # libyaml's binding, which yaml.cyaml re-exports

    class _CLoader(CParser, _CoreResolver):
        """libyaml's parser with the YAML 1.2 core resolver."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _CoreResolver.__init__(self)

    _FastLoader = _CLoader


def yaml11_boolean(value: object) -> bool | None:
    """The boolean YAML 1.1 would have read `value` as (`yes` -> True), else None.

    Such words are text in YAML 1.2; a diagnostic about one where a boolean belongs can say
    "write true or false".
    """
    return _YAML11_BOOLEANS.get(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Pos:
    """A 1-based position; `file` is set only when it differs from the spec file."""

    line: int
    col: int
    file: str | None = None


@dataclass
class PosTree:
    """Positions of a value's nodes, mirroring its shape (keys: str, list indices: int)."""

    pos: Pos
    key_pos: Pos | None = None
    children: dict[str | int, PosTree] = field(default_factory=dict)

    def node(self, path: tuple) -> PosTree | None:
        """The subtree at `path`, or None when some segment does not exist."""
        cur: PosTree | None = self
        for seg in path:
            cur = cur.children.get(seg) if cur is not None else None
        return cur

    def deepest(self, path: tuple) -> PosTree:
        """The deepest existing subtree along `path` (the nearest ancestor of a missing key)."""
        cur = self
        for seg in path:
            nxt = cur.children.get(seg)
            if nxt is None:
                break
            cur = nxt
        return cur

    def locate(self, path: tuple) -> Pos:
        """Position of the value at `path`, falling back to the nearest existing ancestor."""
        return self.deepest(path).pos

    def locate_key(self, path: tuple) -> Pos:
        """Position of the key at `path` when it is a mapping key, else `locate(path)`."""
        node = self.node(path)
        if node is not None and node.key_pos is not None:
            return node.key_pos
        return self.locate(path)

    def copy(self) -> PosTree:
        """A deep copy (positions are immutable and shared)."""
        kids = {k: v.copy() for k, v in self.children.items()}
        return PosTree(self.pos, self.key_pos, kids)


def load_yaml(text: str, file: str) -> tuple[Any, PosTree | None, list[Diagnostic]]:
    """Parse a spec's text: (value, positions, diagnostics); the top level must be a mapping.

    Never raises. The value and tree are None after a fatal error (the text is no YAML,
    too large, not one mapping); after other errors they are the data as read, less what
    was refused (a duplicate key keeps its first value; a tagged value is None; a key that
    is no string is left out), so that the rest of the spec can still be checked.
    """
    return _load(text, file, require_mapping=True)


def load_value(text: str, file: str) -> tuple[Any, PosTree | None, list[Diagnostic]]:
    """Parse any YAML value (scalar, flow list or mapping) with the same rules; never raises."""
    return _load(text, file, require_mapping=False)


def load_file(path: str | Path) -> tuple[Any, PosTree | None, list[Diagnostic]]:
    """Read a UTF-8 spec file and `load_yaml` it, diagnostics naming the path as given.

    An unreadable file or one that is not UTF-8 is not a spec problem: this raises
    `OSError` / `UnicodeDecodeError`, which the CLI reports with exit status 2.
    """
    text = Path(path).read_text(encoding="utf-8")
    return load_yaml(text, str(path))


_FATAL = {"yaml-too-large", "not-a-mapping"}
"""The builder's codes after which the data is no spec to check further."""


def _load(text: str, file: str, require_mapping: bool) -> tuple[Any, PosTree | None, list]:
    """Compose, check and construct one document."""
    text, restore = _hide_unicode_breaks(text)
    root, problem = _compose(text, file, restore)
    if problem is not None:
        return None, None, [problem]
    if root is None or (root.tag == _NULL and root.value == ""):
        if require_mapping:
            return None, None, [_diag(file, 1, 1, "empty-file", "the file holds no YAML data")]
        return None, PosTree(Pos(1, 1)), []
    builder = _Builder(file, restore)
    value, tree = builder.build(root)
    diags = builder.diags
    if require_mapping and not isinstance(root, MappingNode):
        msg = f"the top level must be a mapping of keys to values, got {_kind(root)}"
        diags.insert(0, _at(file, root, "not-a-mapping", msg))
    if any(d.code in _FATAL for d in diags):
        return None, None, diags
    return value, tree, diags


def _hide_unicode_breaks(text: str) -> tuple[str, Callable[[str], str]]:
    """`text` with NEL, LS and PS swapped for unused private-use characters, and the undo.

    PyYAML ends lines at them (YAML 1.1); YAML 1.2 and editors do not. One character for
    one keeps every column, and the undo puts the original back into keys and values.
    """
    present = [ch for ch in _UNICODE_BREAKS if ch in text]
    if not present:
        return text, _same
    lowered = text.lower()
    free = (
        chr(c)
        for c in range(0xE000, 0xF900)
        if chr(c) not in text and f"{c:04x}" not in lowered  # nor written as an escape
    )
    hide = {ord(ch): next(free) for ch in present}
    undo = {ord(v): chr(k) for k, v in hide.items()}
    return text.translate(hide), lambda s: s.translate(undo)


def _same(text: str) -> str:
    """The identity on text."""
    return text


def _compose(
    text: str, file: str, restore: Callable[[str], str]
) -> tuple[Node | None, Diagnostic | None]:
    """The single document's node graph, or the first problem found while parsing."""
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line, col = _line_col(text, bad.start())
        msg = f"character U+{ord(restore(bad.group())):04X} is not allowed in a YAML file"
        return None, _diag(file, line, col, "yaml-syntax", msg)
    try:
        problem = _scan_events(_FastLoader, text, file)
        if problem is not None:
            return None, problem
        loader = _FastLoader(text)
        try:
            return loader.get_single_node(), None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return None, _deep_or_multiple(text, file) or _syntax(exc, text, file, restore)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # last line of defence
        msg = f"cannot parse YAML: {restore(str(exc))}"
        return None, _diag(file, 1, 1, "yaml-syntax", msg)


def _deep_or_multiple(text: str, file: str) -> Diagnostic | None:
    """After a parser error: our own limits, when the pure parser meets them first.

    libyaml looks far ahead inside `[[[[...` and stops at its own nesting limit (in
    PyYAML 6.0.4; earlier releases have none) before the events reach our depth check;
    PyYAML's pure parser has no such limit and looks ahead at most one line.
    """
    if _FastLoader is _PureLoader:
        return None
    try:
        return _scan_events(_PureLoader, text, file)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


def _scan_events(loader_cls: type, text: str, file: str) -> Diagnostic | None:
    """Reject a second document and deep nesting before the (recursive) composer runs."""
    loader = loader_cls(text)
    try:
        depth = docs = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, DocumentStartEvent):
                docs += 1
                if docs > 1:
                    msg = "a spec file holds one YAML document, found a second one"
                    hint = "remove the '---' separator and everything after it"
                    return _at(file, event, "multiple-documents", msg, hint)
            elif isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return _at(file, event, "yaml-too-large", _too_deep())
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
        return None
    finally:
        loader.dispose()


class _Builder:
    """Turns a composed node graph into plain values plus a PosTree, collecting diagnostics."""

    def __init__(self, file: str, restore: Callable[[str], str]) -> None:
        self.file = file
        self.restore = restore
        self.diags: list[Diagnostic] = []
        self.count = 0
        self.active: list[int] = []  # ids of the nodes being built: an alias cycle check
        self.stopped = False

    def build(self, node: Node, key_pos: Pos | None = None) -> tuple[Any, PosTree]:
        """The value and position tree of one node (aliases are expanded as copies)."""
        tree = PosTree(_pos(node), key_pos)
        if self._over_limits(node):
            return None, tree
        self.active.append(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, tree), tree
            if isinstance(node, SequenceNode):
                return self._sequence(node, tree), tree
            assert isinstance(node, ScalarNode)  # the composer makes only these three kinds
            return self._scalar(node), tree
        finally:
            self.active.pop()

    def _over_limits(self, node: Node) -> bool:
        """Stop (with one error) on too many nodes, too deep nesting, or an alias cycle."""
        if self.stopped:
            return True
        self.count += 1
        if id(node) in self.active:
            msg = "an alias refers to a node that contains it, so the data would be infinite"
        elif self.count > MAX_NODES:
            msg = f"the document expands to more than {MAX_NODES} values (through aliases)"
        elif len(self.active) >= MAX_DEPTH:
            msg = _too_deep()
        else:
            return False
        self.stopped = True
        self.diags.append(_at(self.file, node, "yaml-too-large", msg))
        return True

    def _tag_ok(self, node: Node, expected: set[str] | str) -> bool:
        """True for a plain tag; otherwise report `unsafe-tag` (the node is never constructed)."""
        if node.tag == expected or node.tag in expected:
            return True
        tag = quoted(self.restore(_short_tag(node.tag)))
        msg = f"YAML tag {tag} is not allowed: a spec holds plain data only"
        self.diags.append(_at(self.file, node, "unsafe-tag", msg, "remove the tag"))
        return False

    def _scalar(self, node: ScalarNode) -> Any:
        """A scalar by the YAML 1.2 core schema (explicit `!!timestamp` text stays text)."""
        if not self._tag_ok(node, _SCALAR_TAGS | {_MERGE}):
            return None
        text = self.restore(node.value)
        if node.tag in (_STR, _TIMESTAMP, _MERGE):
            return text
        value = _construct(node.tag, text)
        if value is _INVALID:
            msg = f"cannot read {quoted(text)} as {_short_tag(node.tag)}"
            self.diags.append(_at(self.file, node, "yaml-syntax", msg))
            return None
        return value

    def _sequence(self, node: SequenceNode, tree: PosTree) -> list | None:
        """A list, filling `tree.children` by index."""
        if not self._tag_ok(node, _SEQ):
            return None
        out = []
        for i, item in enumerate(node.value):
            value, tree.children[i] = self.build(item)
            out.append(value)
        return out

    def _mapping(self, node: MappingNode, tree: PosTree) -> dict | None:
        """A dict with string keys (merge keys applied), filling `tree.children` by key.

        A key given twice is reported at its second place and the first value is kept.
        """
        if not self._tag_ok(node, _MAP):
            return None
        out: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node, own in self._pairs(node, []):
            key = self._key(key_node)
            if key is None:
                continue
            if own and key in seen:
                hint = f"{quoted(key)} is first given on line {seen[key].start_mark.line + 1}"
                msg = f"duplicate key {quoted(key)}"
                hint2 = "the first value is used; remove one of them"
                self.diags.append(_at(self.file, key_node, "duplicate-key", msg, hint, hint2))
                continue
            if own:
                seen[key] = key_node
            out.pop(key, None)  # an own entry replaces a merged one, and takes its place
            out[key], tree.children[key] = self.build(value_node, _pos(key_node))
        return out

    def _pairs(self, node: MappingNode, chain: list[int]) -> list[tuple[Node, Node, bool]]:
        """Key/value node pairs with `<<` merge keys expanded; `own` is False for merged ones."""
        merged: list[tuple[Node, Node, bool]] = []
        own: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node, True))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for src in reversed(sources):  # earlier sources take precedence
                if not isinstance(src, MappingNode) or id(src) in chain:
                    msg = "a merge key '<<' takes a mapping or a list of mappings"
                    self.diags.append(_at(self.file, src, "yaml-syntax", msg))
                elif self._tag_ok(src, _MAP):
                    sub = self._pairs(src, [*chain, id(node)])
                    merged.extend((k, v, False) for k, v, _ in sub)
        return merged + own

    def _key(self, node: Node) -> str | None:
        """A mapping key as a string, or None after reporting `invalid-key` / `unsafe-tag`."""
        if isinstance(node, ScalarNode) and node.tag in (_STR, _TIMESTAMP):
            return self.restore(node.value)
        if isinstance(node, ScalarNode) and node.tag in _KEY_KINDS:
            text = self.restore(node.value)
            if node.tag == _NULL and text in ("", "~"):
                msg, hint = "a key is missing before ':'", "write a name before the ':'"
            else:
                msg = f"key {quoted(text)} is read as {_KEY_KINDS[node.tag]}, not a string"
                hint = f"write it in quotes: {quoted(text, quote=chr(34))}"
            self.diags.append(_at(self.file, node, "invalid-key", msg, hint))
        elif isinstance(node, ScalarNode):
            self._tag_ok(node, _SCALAR_TAGS)
        else:
            msg = f"a key must be a plain string, not {_kind(node)}"
            self.diags.append(_at(self.file, node, "invalid-key", msg))
        return None


_INVALID = object()


def _construct(tag: str, text: str) -> Any:
    """A null, bool, int or float scalar by the YAML 1.2 core schema, or `_INVALID`.

    Only reached with a text that does not fit when the tag was written (`!!int x`).
    """
    if not _FULL[tag].match(text):
        return _INVALID
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return text.lower() == "true"
    if tag == _INT:
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        try:
            return int(text[2:] if base != 10 else text, base)
        except ValueError:  # more digits than Python converts (sys.int_info)
            return _INVALID
    if text.lstrip("+-").lower() == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if text.lower() == ".nan" else float(text)


def _pos(node: Node) -> Pos:
    """The 1-based start position of a node."""
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _diag(file: str, line: int, col: int, code: str, msg: str, *hints: str) -> Diagnostic:
    """An error diagnostic."""
    return Diagnostic(file, line, col, "error", code, msg, tuple(h for h in hints if h))


def _at(file: str, item: Any, code: str, msg: str, *hints: str) -> Diagnostic:
    """An error at the start of a node or event."""
    mark = item.start_mark
    return _diag(file, mark.line + 1, mark.column + 1, code, msg, *hints)


def _syntax(
    exc: yaml.MarkedYAMLError, text: str, file: str, restore: Callable[[str], str]
) -> Diagnostic:
    """A `yaml-syntax` error: a tab or a misaligned key in words, else the parser's own."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    layout = layout_problem(_LINE_BREAK.split(text), line)
    if layout is not None:
        line, col, msg, *hints = layout
        return _diag(file, line, col, "yaml-syntax", restore(msg), *map(restore, hints))
    msg = restore(exc.problem or exc.context or "invalid YAML")
    hint = ""
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        hint = restore(f"{exc.context}{where}")
    return _diag(file, line, col, "yaml-syntax", msg, hint)


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index (lines end at CR, LF or CRLF)."""
    starts = [m.end() for m in _LINE_BREAK.finditer(text, 0, index)]
    return len(starts) + 1, index - (starts[-1] if starts else 0) + 1


def _kind(node: Node) -> str:
    """'a mapping', 'a list' or 'a scalar' for messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    return "a list" if isinstance(node, SequenceNode) else "a scalar"


def _short_tag(tag: str) -> str:
    """'tag:yaml.org,2002:int' as '!!int'; other tags unchanged."""
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _too_deep() -> str:
    """The message for nesting beyond MAX_DEPTH."""
    return f"the data is nested more than {MAX_DEPTH} levels deep"
