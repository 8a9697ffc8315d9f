"""YAML with source positions beside the data (dagster-style).

The loader returns the plain value (dicts, lists, str, int, float, bool, None) and, beside
it, a `PosTree` of 1-based line/column positions that mirrors the value's shape. Problems
are returned as `Diagnostic`s; nothing here raises for any input text.

Only plain data is accepted: PyYAML's safe composer builds the node graph and each scalar
is constructed with `SafeConstructor` (so `yes` is a bool and `1.0e-4` a float, as with
`yaml.safe_load`). On top of the safe loader: any tag beyond the plain ones is rejected
before anything is constructed, keys must be strings, duplicate keys are errors,
timestamps stay strings, and the size is capped so that aliases cannot blow up (billion
laughs). As with `yaml.safe_load`, `1e-4` (no dot) is the string '1e-4'; Pydantic's lax
mode still reads it into a float field, and `yaml.safe_dump` output round-trips exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader

from specc.diagnostics import Diagnostic

__all__ = ["MAX_DEPTH", "MAX_NODES", "Pos", "PosTree", "load_file", "load_value", "load_yaml"]

MAX_NODES = 100_000  # constructed nodes, aliases expanded: the billion-laughs guard
MAX_DEPTH = 100  # nesting levels; libyaml's recursive composer crashes on deep input

_TAG = "tag:yaml.org,2002:"
_NULL, _STR, _TIMESTAMP = _TAG + "null", _TAG + "str", _TAG + "timestamp"
_SEQ, _MAP, _MERGE = _TAG + "seq", _TAG + "map", _TAG + "merge"
_SCALAR_TAGS = {_NULL, _STR, _TIMESTAMP, _TAG + "bool", _TAG + "int", _TAG + "float"}
_KEY_KINDS = {
    _NULL: "null",
    _TAG + "bool": "a boolean",
    _TAG + "int": "an integer",
    _TAG + "float": "a number",
}


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


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

    Never raises. With errors the value and tree are best effort (None when the text
    could not be parsed at all); callers should stop when any error is reported.
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


def _load(text: str, file: str, require_mapping: bool) -> tuple[Any, PosTree | None, list]:
    """Compose, check and construct one document."""
    root, problem = _compose(text, file)
    if problem is not None:
        return None, None, [problem]
    if root is None or (root.tag == _NULL and root.value == ""):
        if require_mapping:
            return None, None, [_diag(file, 1, 1, "empty-file", "the file holds no YAML data")]
        return None, PosTree(Pos(1, 1)), []
    builder = _Builder(file)
    value, tree = builder.build(root)
    diags = builder.diags
    if require_mapping and not isinstance(root, MappingNode):
        msg = f"the top level must be a mapping of keys to values, got {_kind(root)}"
        diags.insert(0, _at(file, root, "not-a-mapping", msg))
    return value, tree, diags


def _compose(text: str, file: str) -> tuple[Node | None, Diagnostic | None]:
    """The single document's node graph, or the first problem found while parsing."""
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line, col = _line_col(text, bad.start())
        msg = f"character U+{ord(bad.group()):04X} is not allowed in a YAML file"
        return None, _diag(file, line, col, "yaml-syntax", msg)
    try:
        problem = _scan_events(text, file)
        if problem is not None:
            return None, problem
        loader = _Loader(text)
        try:
            return loader.get_single_node(), None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return None, _syntax(exc, file)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # last line of defence
        return None, _diag(file, 1, 1, "yaml-syntax", f"cannot parse YAML: {exc}")


def _scan_events(text: str, file: str) -> Diagnostic | None:
    """Reject a second document and deep nesting before the (recursive) composer runs."""
    loader = _Loader(text)
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

    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []
        self.count = 0
        self.active: list[int] = []  # ids of the nodes being built: an alias cycle check
        self.stopped = False
        self.ctor = SafeConstructor()

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
        msg = f"YAML tag '{_short_tag(node.tag)}' is not allowed: a spec holds plain data only"
        self.diags.append(_at(self.file, node, "unsafe-tag", msg, "remove the tag"))
        return False

    def _scalar(self, node: ScalarNode) -> Any:
        """A scalar constructed exactly as `yaml.safe_load` would (timestamps stay text)."""
        if node.tag in (_TIMESTAMP, _MERGE):
            return node.value
        if not self._tag_ok(node, _SCALAR_TAGS):
            return None
        try:
            return SafeConstructor.yaml_constructors[node.tag](self.ctor, node)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            msg = f"cannot read {node.value!r} as {_short_tag(node.tag)}"
            self.diags.append(_at(self.file, node, "yaml-syntax", msg))
            return None

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
        """A dict with string keys (merge keys applied), filling `tree.children` by key."""
        if not self._tag_ok(node, _MAP):
            return None
        out: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node, own in self._pairs(node, []):
            key = self._key(key_node)
            if key is None:
                continue
            if own and key in seen:
                hint = f"'{key}' is first given on line {seen[key].start_mark.line + 1}"
                msg = f"duplicate key '{key}'"
                self.diags.append(_at(self.file, key_node, "duplicate-key", msg, hint))
            if own:
                seen[key] = key_node
            out.pop(key, None)  # a later entry wins, and takes the later place
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
            return node.value
        if isinstance(node, ScalarNode) and node.tag in _KEY_KINDS:
            if node.tag == _NULL and node.value in ("", "~"):
                msg, hint = "a key is missing before ':'", "write a name before the ':'"
            else:
                msg = f"key '{node.value}' is read as {_KEY_KINDS[node.tag]}, not a string"
                hint = f'write it in quotes: "{node.value}"'
            self.diags.append(_at(self.file, node, "invalid-key", msg, hint))
        elif isinstance(node, ScalarNode):
            self._tag_ok(node, _SCALAR_TAGS)
        else:
            msg = f"a key must be a plain string, not {_kind(node)}"
            self.diags.append(_at(self.file, node, "invalid-key", msg))
        return None


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


def _syntax(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    """A `yaml-syntax` error at the parser's problem mark, with its context as a hint."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    msg = exc.problem or exc.context or "invalid YAML"
    hint = ""
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        hint = f"{exc.context}{where}"
    return _diag(file, line, col, "yaml-syntax", msg, hint)


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


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
