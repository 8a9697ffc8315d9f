"""Validate a loaded value against a Pydantic model and turn every error into a Diagnostic.

Generic: nothing here knows section or layer names. Pydantic's error locations are
resolved against the actual value (`resolve_loc` drops discriminator tags and union member
labels), then placed with the value's `PosTree`. When a value fails every branch of a
plain union, the branch whose type matches the value speaks; if none does, one "expected
A or B, got C" diagnostic is reported.

Only Pydantic's structured error data is read (`type`, `loc`, `input`, `ctx` values): the
names a literal or a union tag allows come from the model's own types, never from parsing a
message. (`msg` is shown as it is for an error type this module has no words for.)
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from specc.diagnostics import Diagnostic, did_you_mean
from specc.source.yamlpos import Pos, PosTree

__all__ = ["CODES", "Sections", "allowed_keys", "resolve_loc", "validate", "validate_sections"]

M = TypeVar("M", bound=BaseModel)
Path = tuple[str | int, ...]

CODES: dict[str, str] = {
    "extra_forbidden": "unknown-key",
    "missing": "missing-key",
    "union_tag_invalid": "unknown-name",
    "union_tag_not_found": "unknown-name",
    "literal_error": "unknown-name",
    "enum": "unknown-name",
    "greater_than": "out-of-range",
    "greater_than_equal": "out-of-range",
    "less_than": "out-of-range",
    "less_than_equal": "out-of-range",
    "too_short": "out-of-range",
    "too_long": "out-of-range",
    "string_too_short": "out-of-range",
    "string_too_long": "out-of-range",
    "multiple_of": "out-of-range",
    "finite_number": "out-of-range",
    "int_from_float": "invalid-type",
    "none_required": "invalid-type",
    "value_error": "invalid-value",
    "assertion_error": "invalid-value",
}
"""Diagnostic code by Pydantic error type; other `*_type` / `*_parsing` errors are
`invalid-type`, anything else `invalid-value`."""

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "none_required": "null",
}
"""What a type error expected, in the words of a YAML user."""

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


@dataclass(frozen=True)
class _Issue:
    """One Pydantic error, resolved against the value."""

    err: ErrorDetails
    path: Path
    trailing: int  # loc segments after the last real key: > 0 inside a union branch
    code: str
    weak: bool  # a type or literal mismatch: only telling inside a union when no branch fits
    options: tuple[Any, ...]  # a literal error's allowed values (from the model's types)


def validate(
    model_cls: type[M], value: Any, tree: PosTree | None, file: str
) -> tuple[M | None, list[Diagnostic]]:
    """Validate `value`: (model, []) when valid, else (None, one diagnostic per problem)."""
    try:
        return model_cls.model_validate(value), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    issues = _explained_missing_dropped([_issue(err, value, model_cls) for err in errors])
    diags: list[Diagnostic] = []
    for group in _select(issues):
        diag = _diagnose(group, model_cls, value, tree or PosTree(Pos(1, 1)), file)
        if diag not in diags:
            diags.append(diag)
    return None, diags


@dataclass(frozen=True)
class Sections(Generic[M]):
    """A mapping validated section (top-level field) by section.

    `model` is the validated model when every section is valid; otherwise it is built with
    `model_construct` from the sections that validated, and only the fields named in `valid`
    may be read (later stages run the checks whose inputs are all valid).
    """

    model: M | None
    valid: frozenset[str]
    complete: bool


def validate_sections(
    model_cls: type[M], value: Any, tree: PosTree | None, file: str
) -> tuple[Sections[M], list[Diagnostic]]:
    """Validate `value` like `validate`, and also keep every top-level section that is valid
    on its own, so that one bad section does not hide the problems of the others."""
    model, diags = validate(model_cls, value, tree, file)
    names = list(model_cls.model_fields)
    if model is not None:
        return Sections(model, frozenset(names), True), diags
    if not isinstance(value, dict):
        return Sections(None, frozenset(), False), diags
    good: dict[str, Any] = {}
    for name, key in _aliases(model_cls):
        field = model_cls.model_fields[name]
        if key not in value and field.is_required():
            continue
        raw = value[key] if key in value else field.get_default(call_default_factory=True)
        try:  # defaults too: the models validate them (`optimizer: adam`)
            good[name] = _field_adapter(model_cls, name).validate_python(raw)
        except ValidationError:
            continue
    written = {name for name, key in _aliases(model_cls) if key in value and name in good}
    partial = model_cls.model_construct(_fields_set=written, **good)
    return Sections(partial, frozenset(good), False), diags


def _aliases(model_cls: type[BaseModel]) -> list[tuple[str, str]]:
    """(attribute name, key as written) of each field."""
    return [(name, f.alias or name) for name, f in model_cls.model_fields.items()]


@cache
def _field_adapter(model_cls: type[BaseModel], name: str) -> TypeAdapter:
    """A validator for one field of a model, with its constraints (built once)."""
    field = model_cls.model_fields[name]
    annotated: Any = Annotated[field.annotation, field]  # built at run time: not a static type
    return TypeAdapter(annotated)


def resolve_loc(value: Any, loc: Sequence[str | int]) -> Path:
    """The real path inside `value` that Pydantic's `loc` points to.

    Segments that are not keys/indices of the value where they occur (discriminator tags,
    union member labels such as `str` or `function-after[...]`, a missing key) are dropped.
    Where a segment could be either (a tag equal to the key that follows it), the path
    that keeps the most segments wins, and on a tie the later segment is kept.
    """
    return tuple(loc[i] for i in _keep(value, tuple(loc), 0))


def allowed_keys(model_cls: type[BaseModel], path: Path, value: Any) -> list[str]:
    """Best-effort keys a mapping at `path` may hold, found by walking the model's types."""
    keys: list[str] = []
    for tp, _ in _types_at(model_cls, path, value):
        if _is_model(tp):
            keys += [k for k in _field_keys(tp) if k not in keys]
    return keys


# --- resolving locations ----------------------------------------------------------------


def _keep(value: Any, loc: tuple, i: int) -> list[int]:
    """Indices of `loc[i:]` that are real keys/indices, keeping as many as possible."""
    if i == len(loc):
        return []
    skip = _keep(value, loc, i + 1)
    child = _child(value, loc[i])
    if child is _ABSENT:
        return skip
    take = [i, *_keep(child, loc, i + 1)]
    return take if len(take) > len(skip) else skip


_ABSENT = object()


def _child(value: Any, seg: Any) -> Any:
    """`value[seg]` when seg is a real key or index of value, else _ABSENT."""
    if isinstance(value, dict) and isinstance(seg, str) and seg in value:
        return value[seg]
    if isinstance(value, list) and type(seg) is int and 0 <= seg < len(value):
        return value[seg]
    return _ABSENT


def _issue(err: ErrorDetails, value: Any, model_cls: type[BaseModel]) -> _Issue:
    """Resolve one error and classify it."""
    loc = tuple(err["loc"])
    kept = _keep(value, loc, 0)
    path = tuple(loc[i] for i in kept)
    trailing = len(loc) - (kept[-1] + 1 if kept else 0)
    code = _code(err["type"])
    literal = err["type"] in ("literal_error", "enum")
    weak = code == "invalid-type" or literal
    options = _options_at(model_cls, path, value) if literal else ()
    return _Issue(err, path, trailing, code, weak, options)


def _explained_missing_dropped(issues: list[_Issue]) -> list[_Issue]:
    """Drop a missing key that a misspelt key beside it explains (`nmae:` for `name:`): the
    unknown key's did-you-mean says it all, and one slip gives one diagnostic."""
    misspelt: dict[Path, list[str]] = {}
    for i in issues:
        if i.err["type"] == "extra_forbidden":
            key = str(i.err["loc"][-1])
            parent = i.path[:-1] if i.path and i.path[-1] == key else i.path
            misspelt.setdefault(parent, []).append(key)
    return [
        i
        for i in issues
        if not (
            i.err["type"] == "missing"
            and any(
                did_you_mean(w, [str(i.err["loc"][-1])]) or _renamed(w, [str(i.err["loc"][-1])])
                for w in misspelt.get(i.path, [])
            )
        )
    ]


def _code(err_type: str) -> str:
    """The diagnostic code of a Pydantic error type."""
    if err_type in CODES:
        return CODES[err_type]
    return "invalid-type" if err_type.endswith(("_type", "_parsing")) else "invalid-value"


def _select(issues: list[_Issue]) -> Iterator[list[_Issue]]:
    """Groups of issues, one diagnostic each: union branches that do not fit are dropped.

    A type or literal mismatch inside a union branch is noise when another issue at or
    below the same place shows that some branch did accept the value's type; when no branch
    did, all the mismatches at that place merge into one.
    """
    merged: dict[Path, list[_Issue]] = {}
    for issue in issues:
        if not (issue.weak and issue.trailing):
            yield [issue]
            continue
        deeper = any(
            o.path[: len(issue.path)] == issue.path and not o.weak for o in issues if o is not issue
        )
        if not deeper:
            merged.setdefault(issue.path, []).append(issue)
    for group in merged.values():
        yield _names_first(group)


def _names_first(group: list[_Issue]) -> list[_Issue]:
    """A string that is not one of the allowed names is a misspelt name, not a wrong type,
    unless another branch tried to parse the string (an integer or 'auto')."""
    names = [i for i in group if i.err["type"] in ("literal_error", "enum") and _same_kind(i)]
    others = [i for i in group if i not in names]
    if names and all(i.err["type"].endswith("_type") for i in others):
        return names[:1]
    return group


# --- messages ---------------------------------------------------------------------------


def _diagnose(
    group: list[_Issue], model_cls: type[BaseModel], value: Any, tree: PosTree, file: str
) -> Diagnostic:
    """One diagnostic for a group of issues at the same place."""
    issue = group[0]
    err, path = issue.err, issue.path
    if len(group) > 1:
        return _make(tree.locate(path), file, *_alternatives(group))
    handler = _HANDLERS.get(err["type"], _generic)
    pos, code, message, hints = handler(issue, model_cls, value, tree)
    return _make(pos, file, code, message, hints)


def _alternatives(group: list[_Issue]) -> tuple[str, str, tuple[str | None, ...]]:
    """Code, message and hints when a value fits no branch of a union."""
    found = group[0].err["input"]
    expected = " or ".join(dict.fromkeys(_expected(i) for i in group))
    message = f"{_where(group[0].path)}expected {expected}, got {_describe(found)}"
    names = [
        name
        for i in group
        if i.err["type"] in ("literal_error", "enum") and _same_kind(i)
        for name in _names(i.options)
    ]
    code = "unknown-name" if names else "invalid-type"
    return (
        code,
        message,
        (
            did_you_mean(found, names)
            if names
            else _bool_hint(found, [i.err["type"] for i in group]),
        ),
    )


def _make(pos: Pos, file: str, code: str, message: str, hints: Sequence[str | None]) -> Diagnostic:
    """A Diagnostic at pos (in the override's pseudo-file when pos names one)."""
    return Diagnostic(
        pos.file or file, pos.line, pos.col, "error", code, message, tuple(h for h in hints if h)
    )


Handled = tuple[Pos, str, str, Sequence[str | None]]


def _generic(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """Type, range and value errors at the value's own position."""
    err, path = issue.err, issue.path
    where, got = _where(path), _describe(err["input"])
    ctx = err.get("ctx") or {}
    hint = None
    if issue.code == "invalid-type":
        message = f"{where}expected {_expected(issue)}, got {got}"
        hint = _bool_hint(err["input"], [err["type"]])
    elif err["type"] in _BOUNDS:
        key, op = _BOUNDS[err["type"]]
        message = f"{where}must be {op} {_number(ctx[key])}, got {got}"
    elif err["type"] in ("too_short", "too_long", "string_too_short", "string_too_long"):
        message = f"{where}{_length(err['type'], ctx)}, got {ctx.get('actual_length', got)}"
    elif err["type"] == "finite_number":
        message = f"{where}must be a finite number, got {got}"
    elif err["type"] == "multiple_of":
        message = f"{where}must be a multiple of {ctx['multiple_of']}, got {got}"
    elif err["type"] in ("value_error", "assertion_error") and "error" in ctx:
        message = f"{where}{ctx['error']}"
    elif err["type"] == "string_pattern_mismatch":
        message = f"{where}{got} does not match the pattern {ctx['pattern']}"
    else:
        message = f"{where}{_lower_first(err['msg'])}, got {got}"
    if tuple(err["loc"])[-1:] == ("[key]",):  # a mapping key that is not valid: at the key
        return tree.locate_key(path), issue.code, message, (hint,)
    return tree.locate(path), issue.code, message, (hint,)


def _extra(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """An unknown key, at the key, with a did-you-mean against the keys allowed there."""
    path = issue.path
    key = str(issue.err["loc"][-1])
    parent = path[:-1] if path and path[-1] == key else path
    allowed = allowed_keys(model_cls, parent, value)
    others = [k for k in allowed if k != key]
    renamed = _renamed(key, others)
    hint = (
        renamed
        or did_you_mean(key, others)
        or (f"allowed here: {', '.join(others)}" if others else "")
    )
    here = _at(value, parent)
    owners = _owners(model_cls, parent, value, key)
    owned = ""
    if owners and key not in allowed and isinstance(here, dict) and "name" in here:
        owned = f"'{key}' is an option of {_either(owners)}, not of {here['name']}"
        hint, owned = (renamed, owned) if renamed else (owned, "")
    if key in allowed and isinstance(here, dict):  # valid on its own, not in this company
        rest = ", ".join(f"'{k}'" for k in here if k != key)
        hint = f"'{key}' cannot be combined with {rest}" + (
            "; give it a list item of its own" if parent and isinstance(parent[-1], int) else ""
        )
    pos = tree.locate_key((*parent, key))
    return pos, "unknown-key", f"{_where(parent)}unknown key '{key}'", (hint, owned)


KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("lr",),
    "alpha": ("slope",),  # Keras LeakyReLU(alpha=...)
    "negative_slope": ("slope",),  # PyTorch LeakyReLU(negative_slope=...)
    "epsilon": ("eps",),
    "beta_1": ("betas",),
    "beta_2": ("betas",),
    "beta1": ("betas",),
    "beta2": ("betas",),
    "beta": ("momentum", "rho"),  # a momentum coefficient by another letter
    "decay": ("weight_decay", "schedule"),
    "strides": ("stride",),
    "kernel": ("kernel_size",),
    "kernel_size": ("pool_size",),  # PyTorch MaxPool2d(kernel_size=...)
    "out_channels": ("filters",),
    "out_features": ("units",),
    "hidden_size": ("units",),
    "num_units": ("units",),
    "p": ("rate",),  # PyTorch Dropout(p=...)
    "groups": ("depth_multiplier",),
    "use_bias": ("bias",),
    "max_epochs": ("epochs",),
    "bidirectional_merge": ("bidirectional",),
    "dropout_rate": ("rate", "dropout"),
    "recurrent_dropout": ("dropout",),
}
"""Keras and PyTorch names for specc's keys: `learning_rate` is `lr` here. The first of
the names that is allowed where the key was written is proposed."""


def _renamed(key: str, allowed: list[str]) -> str | None:
    """A hint for a key another library spells differently (`learning_rate` -> `lr`)."""
    for name in KEY_ALIASES.get(key.lower(), ()):
        if name in allowed:
            return f"did you mean '{name}'? (specc's name for {key})"
    return None


def _missing(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """A missing required key, at its parent mapping."""
    key, path = issue.err["loc"][-1], issue.path
    inside = f" in '{_dotted(path)}'" if path else ""
    return tree.locate(path), "missing-key", f"missing required key '{key}'{inside}", ()


def _literal(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """A value that is not one of the allowed names."""
    err, path = issue.err, issue.path
    options = _names(issue.options)
    hints: tuple[str | None, ...]
    if isinstance(err["input"], str):
        message = f"{_where(path)}unknown name {_describe(err['input'])}"
        hints = (did_you_mean(err["input"], options), f"expected one of: {', '.join(options)}")
    else:
        message = (
            f"{_where(path)}must be one of {', '.join(options)}, got {_describe(err['input'])}"
        )
        boolean = isinstance(err["input"], bool) and _any_text(issue.options)
        hints = (_BOOL_HINT if boolean else None,)
    return tree.locate(path), "unknown-name", message, hints


_BOOL_HINT = "YAML reads yes/no/on/off/true/false as booleans: quote the word to mean text"


_NUMBER_ERRORS = ("int_type", "int_parsing", "float_type", "float_parsing")


def _bool_hint(found: Any, err_types: Sequence[str]) -> str | None:
    """Where a boolean stands in for a number or text, or a word for a boolean: say how YAML
    reads them."""
    if isinstance(found, str) and "bool_type" in err_types:
        return "write true or false (YAML 1.2 reads yes/no/on/off as text)"
    if isinstance(found, str) and any(t in _NUMBER_ERRORS for t in err_types) and _numeric(found):
        return f"write {found.strip()} without quotes: a quoted value is text"
    if not isinstance(found, bool):
        return None
    if any(t in _NUMBER_ERRORS for t in err_types):
        return "YAML reads yes/no/on/off/true/false as booleans: write a number here"
    return _BOOL_HINT if "string_type" in err_types else None


def _numeric(text: str) -> bool:
    """True for text that reads as a number (`"8"`, `"1e-3"`)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _tag_invalid(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """An unknown name selecting a union member: at the name, whether value or key."""
    ctx = issue.err.get("ctx") or {}
    tag, (_, options) = str(ctx.get("tag")), _union_at(model_cls, issue.path, value)
    here = _at(value, issue.path)
    path = _tag_path(issue.path, here, tag)
    hints = (did_you_mean(tag, options), f"expected one of: {', '.join(options)}")
    if isinstance(here, dict) and tag in here:  # a one-key item `- tag: {...}`
        return (
            tree.locate_key(path),
            "unknown-name",
            f"{_where(issue.path)}unknown name '{tag}'",
            hints,
        )
    return tree.locate(path), "unknown-name", f"{_where(path)}unknown name '{tag}'", hints


def _tag_missing(issue: _Issue, model_cls: Any, value: Any, tree: PosTree) -> Handled:
    """No tag to pick a union member: a missing `name`-like key, or a malformed item."""
    err, path = issue.err, issue.path
    key, tags = _union_at(model_cls, path, value)
    listed = f"expected one of: {', '.join(tags)}" if tags else None
    if key is not None and isinstance(err["input"], dict):  # tagged by a field, e.g. `name`
        for written in err["input"]:  # `{nme: relu}`: the key is there, misspelt
            hint = did_you_mean(str(written), [key])
            if hint and written != key:
                message = f"{_where(path)}unknown key '{written}'"
                return tree.locate_key((*path, written)), "unknown-key", message, (hint, listed)
        inside = f" in '{_dotted(path)}'" if path else ""
        return tree.locate(path), "missing-key", f"missing required key '{key}'{inside}", (listed,)
    got = err["input"]
    message = f"{_where(path)}expected a mapping with one key naming its kind, got {_describe(got)}"
    colon = f"write '{got}:' with a colon to use it as a key" if got in tags else None
    return tree.locate(path), "unknown-name", message, (colon, listed)


_HANDLERS = {
    "extra_forbidden": _extra,
    "missing": _missing,
    "literal_error": _literal,
    "enum": _literal,
    "union_tag_invalid": _tag_invalid,
    "union_tag_not_found": _tag_missing,
}


def _tag_path(path: Path, here: Any, tag: str) -> Path:
    """Where a union tag was written: the key equal to it, or the value (`name: tag`) holding it."""
    if isinstance(here, dict):
        if tag in here:
            return (*path, tag)
        for key, val in here.items():
            if val == tag:
                return (*path, key)
    return path


def _at(value: Any, path: Path) -> Any:
    """The value at a real path (or _ABSENT)."""
    for seg in path:
        value = _child(value, seg)
    return value


def _expected(issue: _Issue) -> str:
    """What a (type) error expected, as words."""
    err = issue.err
    if err["type"] in ("literal_error", "enum"):
        options = _names(issue.options)
        return f"'{options[0]}'" if len(options) == 1 else f"one of {', '.join(options)}"
    return _EXPECTED.get(err["type"]) or _lower_first(err["msg"])


def _names(options: tuple[Any, ...]) -> list[str]:
    """Allowed values as the words a message lists: `relu`, `1`, `True`."""
    return [str(o) for o in options]


def _any_text(options: tuple[Any, ...]) -> bool:
    """True when some allowed value is text (so a message quotes it)."""
    return any(isinstance(o, str) for o in options)


def _same_kind(issue: _Issue) -> bool:
    """True when a literal error's input is a string and the options are strings (or not)."""
    found = issue.err["input"]
    if isinstance(found, dict | list):
        return False
    return isinstance(found, str) == _any_text(issue.options)


def _length(err_type: str, ctx: dict[str, Any]) -> str:
    """'must have at least 1 item' and friends."""
    least = err_type.endswith("short")
    n = ctx["min_length"] if least else ctx["max_length"]
    unit = "character" if err_type.startswith("string") else "item"
    return f"must have {'at least' if least else 'at most'} {n} {unit}{'s' * (n != 1)}"


def _describe(value: Any) -> str:
    """A found value in YAML words: 'abc', 3, true, null, a mapping, a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value if len(value) <= 40 else value[:37] + '...'}'"
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    return repr(value)


def _number(x: Any) -> Any:
    """1.0 as 1 in a bound; other values unchanged."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _dotted(path: Path) -> str:
    """('layers', 0, 'dense') as 'layers.0.dense'."""
    return ".".join(map(str, path))


def _where(path: Path) -> str:
    """'layers.0.dense: ' (nothing at the top level)."""
    return f"{_dotted(path)}: " if path else ""


def _lower_first(text: str) -> str:
    """Pydantic's 'Input should be ...' as 'input should be ...'."""
    return text[:1].lower() + text[1:]


# --- walking the model's types ----------------------------------------------------------

Leaf = tuple[Any, tuple[Any, ...]]  # a non-union, non-Annotated type and the metadata around it


def _types_at(model_cls: Any, path: Path, value: Any) -> list[Leaf]:
    """Candidate types at `path`, narrowed by the value where a union leaves a choice."""
    leaves = _fit(_leaves(model_cls), value)
    for seg in path:
        value = _child(value, seg)
        leaves = _fit([lf for tp, _ in leaves for t in _step(tp, seg) for lf in _leaves(t)], value)
    return leaves


def _leaves(tp: Any, meta: tuple[Any, ...] = ()) -> list[Leaf]:
    """`tp` with Annotated and unions unwrapped into its member types."""
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        return _leaves(inner, (*meta, *extra))
    if origin is Union or origin is types.UnionType:
        return [leaf for arg in get_args(tp) for leaf in _leaves(arg, meta)]
    return [(tp, meta)]


def _step(tp: Any, seg: str | int) -> list[Any]:
    """The types one key or index below a (leaf) type."""
    if _is_model(tp):  # with the field's FieldInfo, which holds a field's discriminator
        return [Annotated[f.annotation, f] for k, f in _fields(tp) if k == seg]
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, set, frozenset) or (origin is tuple and args[-1:] == (Ellipsis,)):
        return [args[0]] if args and isinstance(seg, int) else []
    if origin is tuple and isinstance(seg, int) and seg < len(args):
        return [args[seg]]
    if origin is dict and len(args) == 2 and isinstance(seg, str):
        return [args[1]]
    return []


def _fit(leaves: list[Leaf], value: Any) -> list[Leaf]:
    """The union members a mapping value can be: its literal fields and keys must match."""
    if not isinstance(value, dict) or len(leaves) < 2:
        return leaves
    for test in (_literals_match, _keys_match):
        narrowed = [lf for lf in leaves if not _is_model(lf[0]) or test(lf[0], value)]
        if any(_is_model(tp) for tp, _ in narrowed):
            leaves = narrowed
    return leaves


def _literals_match(model: Any, value: dict) -> bool:
    """No Literal-typed field of the model contradicts the value."""
    for key, f in _fields(model):
        literal = get_origin(f.annotation) is Literal
        if literal and key in value and value[key] not in get_args(f.annotation):
            return False
    return True


def _keys_match(model: Any, value: dict) -> bool:
    """Every key of the value is a field of the model."""
    return set(value) <= set(_field_keys(model))


def _owners(model_cls: Any, path: Path, value: Any, key: str) -> list[str]:
    """The `name`s of the union members at `path` that do have `key` (momentum: sgd, rmsprop)."""
    names: list[str] = []
    for tp, _ in _types_at(model_cls, path[:-1], value) if path else []:
        for sub in _step(tp, path[-1]):
            for member, _ in _leaves(sub):
                if not _is_model(member) or key not in _field_keys(member):
                    continue
                for field_key, f in _fields(member):
                    if field_key == "name" and get_origin(f.annotation) is Literal:
                        names += [str(a) for a in get_args(f.annotation)]
    return list(dict.fromkeys(names))


def _either(names: list[str]) -> str:
    """'sgd', 'sgd or rmsprop', 'a, b or c'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _union_at(model_cls: Any, path: Path, value: Any) -> tuple[str | None, list[str]]:
    """The discriminated union at `path`: the field whose value picks the member (`name`;
    None for a callable discriminator such as a one-key item's), and the tags it takes:
    `Tag(...)` metadata, or the Literal values of that field."""
    field: str | None = None
    members: list[Leaf] = []
    for tp, _ in _types_at(model_cls, path[:-1], value) if path else []:
        for sub in _step(tp, path[-1]):
            for member, member_meta in _leaves(sub):
                members.append((member, member_meta))
                field = field or next(filter(None, map(_discriminator, member_meta)), None)
    tags: list[str] = []
    for member, member_meta in members:
        tags += [m.tag for m in member_meta if isinstance(m, Tag)]
        if _is_model(member):
            for key, f in _fields(member):
                if key == field and get_origin(f.annotation) is Literal:
                    tags += [str(a) for a in get_args(f.annotation)]
    return field, list(dict.fromkeys(tags))


def _discriminator(meta: Any) -> str | None:
    """The field named by `Field(discriminator="name")` or `Discriminator("name")`, if `meta`
    is one of those (a callable discriminator names no field)."""
    if isinstance(meta, FieldInfo | Discriminator):
        found = meta.discriminator
        if isinstance(found, Discriminator):
            found = found.discriminator
        return found if isinstance(found, str) else None
    return None


def _options_at(model_cls: Any, path: Path, value: Any) -> tuple[Any, ...]:
    """The values the Literal (or Enum) types at `path` allow, in declaration order."""
    options: list[Any] = []
    for tp, _ in _types_at(model_cls, path, value):
        if get_origin(tp) is Literal:
            options += get_args(tp)
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            options += [member.value for member in tp]
    return tuple(dict.fromkeys(options))


def _is_model(tp: Any) -> bool:
    """True for a Pydantic model class."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _fields(model: Any) -> list[tuple[str, Any]]:
    """(key as written in YAML, FieldInfo) for each field."""
    return [(f.alias or name, f) for name, f in model.model_fields.items()]


def _field_keys(model: Any) -> list[str]:
    """The keys a model accepts, in declaration order."""
    return [key for key, _ in _fields(model)]
