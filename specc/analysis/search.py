"""The `search:` section checked before the first trial (contract §7), and its SearchIR.

Each key of `space` is a `--set` path, resolved by the override resolver itself
(`specc.source.overrides.apply_overrides`), and every point checked is a whole spec that goes
through the whole checker (a `CheckFn` the pipeline hands in), so a trial can never meet an
error that `specc check` did not report:

1. each value on its own, the others at the spec's values: both ends of every range, a value
   inside each float range (an integer key refuses it), every value of an integer range of at
   most INT_VALUES_LIMIT values, every choice. A problem at the
   searched value is placed at that value in the space; any other problem of that spec (a
   shape that no longer flows, a loss that no longer fits) at the value that caused it;
2. when the values are each valid and the space has at most CORNER_LIMIT corners (every
   combination of the range ends and choices), every corner; the first one that fails is
   reported at the `space` key, naming its values.

The searched value is put into the spec with the positions of its own YAML node in the
space, so the checker's diagnostics already point into the space.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic import BaseModel

from specc.analysis import rules
from specc.analysis.ir import (
    ChoiceIR,
    DistributionIR,
    FloatRangeIR,
    IntRangeIR,
    SearchIR,
    SearchParamIR,
)
from specc.analysis.report import Finding, error, to_diagnostic, warning
from specc.diagnostics import Diagnostic, Severity, did_you_mean, quoted
from specc.schema.search import Choice, IntUniform, LogIntUniform, LogUniform, Search, Uniform
from specc.source.overrides import apply_overrides, override_file, parse_override
from specc.source.yamlpos import Pos, PosTree

Path = tuple[str | int, ...]
CheckFn = Callable[[Any, PosTree], list[Diagnostic]]
"""The whole checker on a spec value and its positions: every diagnostic it finds."""

SPACE: Path = ("search", "space")
CORNER_LIMIT = 64
"""Most corners checked together; a larger space is checked one value at a time only."""
INT_VALUES_LIMIT = 16
"""An integer range with at most this many values has each of them checked alone."""
LOG_DECADES = 2
"""A uniform range this many decades wide (high/low >= 10**2) on a learning rate or a
penalty is sampled almost only in its top decade: the notes sample those on a log scale."""
LOG_SCALE_KEYS: frozenset[Path] = frozenset(
    {
        ("optimizer", "lr"),
        ("optimizer", "weight_decay"),
        ("regularizers", "l1"),
        ("regularizers", "l2"),
        ("regularizers", "lp", "alpha"),
    }
)
"""Keys the course notes sample on a log scale (learning rate, penalty strengths)."""
PATH_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "lr0": "lr",
    "dropout": "rate",
    "dropout_rate": "rate",
    "num_units": "units",
    "hidden_units": "units",
    "n_units": "units",
    "num_epochs": "epochs",
    "max_epochs": "epochs",
    "batchsize": "batch_size",
}
"""Other libraries' names for a path segment (Keras' learning_rate is specc's lr)."""
SCHEMA_CODES = frozenset(
    {"unknown-key", "missing-key", "unknown-name", "invalid-type", "out-of-range", "invalid-value"}
)
"""The schema's codes: a searched value the spec language refuses (search-invalid-value)."""

Range = Uniform | LogUniform | IntUniform | LogIntUniform


@dataclass(frozen=True)
class Point:
    """One value of a searched key to check, the YAML node it is put there with, and its name."""

    value: Any
    node: PosTree
    label: str
    drawn: bool = False
    """A value inside a range (not written in the spec): checked alone, not in corners."""


@dataclass(frozen=True)
class Param:
    """One key of the space: its dotted text, path, distribution and the points to check."""

    key: str
    path: Path
    dist: Range | Choice
    points: tuple[Point, ...]

    @property
    def corners(self) -> tuple[Point, ...]:
        """The range ends and choices (the points a corner combines)."""
        return tuple(p for p in self.points if not p.drawn)


def check_search(
    search: Search,
    spec: Any,
    valid: frozenset[str],
    value: dict[str, Any],
    tree: PosTree,
    file: str,
    base_ok: bool,
    check: CheckFn,
) -> tuple[SearchIR | None, list[Diagnostic]]:
    """Every problem of the search section, and its IR when there is none.

    `spec` holds the sections named in `valid`; `value`/`tree` are the spec as loaded (and
    overridden); `base_ok` says the spec without its search has no errors (points of the
    space are then checked for every rule, not only for their own values).
    """
    task = _task(spec, valid)
    found = _metric(search, task) + _validation(search, spec, valid)
    params, more, at_keys = _params(search, tree, file)
    diags = [to_diagnostic(f, tree, file) for f in found + more] + at_keys
    base = {k: v for k, v in value.items() if k != "search"}
    base_tree = PosTree(tree.pos, tree.key_pos, {k: v for k, v in tree.children.items()})
    base_tree.children.pop("search", None)
    real = _real_paths(base) + _real_paths(_resolved(spec, valid))
    point_diags, checked = _check_points(
        params, base, base_tree, tree, file, base_ok, check, list(dict.fromkeys(real))
    )
    diags += point_diags
    diags += [to_diagnostic(f, tree, file) for f in _log_scale(checked) + _grid(search, checked)]
    if base_ok and checked == params and not point_diags and len(params) > 1:
        diags += _check_corners(params, base, base_tree, tree, file, check)
    if task is None or any(d.severity == "error" for d in diags):
        return None, diags
    return search_ir(search, params), diags


def search_ir(search: Search, params: list[Param]) -> SearchIR:
    """The IR of an error-free search section."""
    return SearchIR(
        metric=search.metric,
        direction="max" if rules.monitor_mode(search.metric) == "max" else "min",
        trials=search.trials,
        sampler=search.sampler,
        pruner=search.pruner,
        seed=search.seed,
        storage=search.storage,
        space=tuple(SearchParamIR(p.key, p.path, _distribution_ir(p.dist)) for p in params),
        grid_size=_grid_size(params),
    )


def _distribution_ir(dist: Range | Choice) -> DistributionIR:
    """A distribution of the schema as the IR's dataclass."""
    if isinstance(dist, Choice):
        return ChoiceIR(tuple(dist.choice))
    if isinstance(dist, IntUniform | LogIntUniform):
        low, high = _ends(dist)
        int_step = (dist.step or 1) if isinstance(dist, IntUniform) else 1
        return IntRangeIR(int(low), int(high), isinstance(dist, LogIntUniform), int_step)
    low, high = _ends(dist)
    step = dist.step if isinstance(dist, Uniform) else None
    return FloatRangeIR(float(low), float(high), isinstance(dist, LogUniform), step)


# --- the section's own rules ---------------------------------------------------------------


def _task(spec: Any, valid: frozenset[str]) -> rules.Task | None:
    """The spec's task, when its output unit is valid and in the table."""
    if "output" not in valid:
        return None
    rule = rules.output_rule(spec.output.activation, spec.output.units)
    return rule.task if rule is not None else None


def _metric(search: Search, task: rules.Task | None) -> list[Finding]:
    """The metric ranks trials on the validation split: never a test metric, always a
    validation metric of the task."""
    metric, path = search.metric, ("search", "metric")
    if metric.startswith("test_"):
        msg = f"search metric {quoted(metric)} would choose the model on the test split"
        hint = f"use {quoted('val_' + metric.removeprefix('test_'))}: the test split is evaluated"
        hint += " once, on the best spec retrained (final/)"
        return [error(path, "search-on-test", msg, hint)]
    if task is None:
        return []
    allowed = [f"val_{m}" for m in rules.METRICS[task]]
    if metric in allowed:
        return []
    msg = f"unknown search metric {quoted(metric)} for a {task} model"
    hints = (did_you_mean(metric, allowed), f"expected one of: {', '.join(allowed)}")
    return [error(path, "search-unknown-metric", msg, *hints)]


def _validation(search: Search, spec: Any, valid: frozenset[str]) -> list[Finding]:
    """Trials are ranked, and pruned, on the validation split: it must not be empty."""
    if "data" not in valid or spec.data.split.val > 0:
        return []
    hint = "set data.split.val, e.g. 0.2"
    found = [
        error(
            ("search", "metric"),
            "search-needs-validation",
            f"the search ranks trials by {search.metric}, but data.split.val is 0",
            hint,
        )
    ]
    if search.pruner != "none":
        msg = f"the {search.pruner} pruner reads the per-epoch validation value,"
        msg += " but data.split.val is 0"
        found.append(error(("search", "pruner"), "search-needs-validation", msg, hint))
    return found


def _params(
    search: Search, tree: PosTree, file: str
) -> tuple[list[Param], list[Finding], list[Diagnostic]]:
    """The keys of the space that parse as paths and hold a valid range; the problems of the
    ranges, and those of the keys (an empty segment, a key inside another), at the key."""
    params: list[Param] = []
    found: list[Finding] = []
    at_keys: list[Diagnostic] = []

    def at_key(key: str, code: str, message: str, *hints: str) -> None:
        pos = tree.locate_key((*SPACE, key))
        at_keys.append(_diag(pos, file, "error", code, message, hints))

    for key, dist in search.space.items():
        at = (*SPACE, key)
        parsed = parse_override(f"{key}=")
        if isinstance(parsed, Diagnostic):
            at_key(key, "search-unknown-path", f"search key {quoted(key)}: {parsed.message}")
            continue
        path = parsed[0]
        if path[0] == "search":
            msg = f"search key {quoted(key)} is inside the search section, which is not searched"
            at_key(key, "search-unknown-path", msg, "search the keys of the model")
            continue
        clash = next((p for p in params if _overlap(p.path, path)), None)
        if clash is not None:
            msg = f"search key {quoted(key)} overlaps {quoted(clash.key)}: "
            msg += "the same value" if clash.path == path else "one lies inside the other"
            at_key(key, "search-overlapping-keys", msg, "search each value under one key only")
            continue
        problems = _range_problems(key, dist, at)
        found += problems
        if not problems:
            node = tree.node(at) or PosTree(tree.locate(at))
            params.append(Param(key, path, dist, _points(key, dist, node)))
    return params, found, at_keys


def _overlap(a: Path, b: Path) -> bool:
    """True when one path is the other or lies inside it (list indices as ints)."""
    n = min(len(a), len(b))
    return tuple(map(str, a[:n])) == tuple(map(str, b[:n]))


def _range_problems(key: str, dist: Range | Choice, at: Path) -> list[Finding]:
    """A range whose ends are reversed, a log range that does not start above 0, a step
    longer than the range."""
    if isinstance(dist, Choice):
        return []
    kind = _kind(dist)
    low, high = _ends(dist)
    if low > high:
        msg = f"{kind} range of {quoted(key)}: the low end {low} is above the high end {high}"
        return [error((*at, kind), "search-invalid-range", msg, f"write [{high}, {low}]")]
    if isinstance(dist, LogUniform) and low <= 0:
        msg = f"log_uniform range of {quoted(key)} must start above 0, got {low}"
        hint = f"start at a small positive value such as {_num(high / 1e4) if high > 0 else 1e-6}"
        return [error((*at, kind, 0), "search-invalid-range", msg, hint, "or use uniform")]
    if isinstance(dist, LogIntUniform) and low < 1:
        msg = f"log_int_uniform range of {quoted(key)} must start at 1 or above, got {low}"
        return [error((*at, kind, 0), "search-invalid-range", msg, "or use int_uniform")]
    step = getattr(dist, "step", None)
    if step is not None and high > low and step > high - low:
        msg = f"step {step} of {quoted(key)} is longer than its range [{low}, {high}]:"
        msg += f" only {low} can be drawn"
        hint = f"use a step of at most {_num(high - low)}, or a choice"
        return [error((*at, "step"), "search-invalid-range", msg, hint)]
    return []


def _log_scale(params: list[Param]) -> list[Finding]:
    """`search-use-log-scale` for a uniform range of two or more decades on a learning rate
    or a penalty strength."""
    found = []
    for p in params:
        if not isinstance(p.dist, Uniform) or p.path not in LOG_SCALE_KEYS:
            continue
        low, high = _ends(p.dist)
        if low <= 0 or high / low < 10**LOG_DECADES:
            continue
        decades = math.log10(high) - math.log10(low)
        msg = f"uniform [{low}, {high}] on {p.key} spans {decades:.3g} decades:"
        msg += f" {0.9 * high / (high - low):.0%} of the draws land in its top decade"
        hint = f"use {{log_uniform: [{low}, {high}]}}: the course notes sample learning rates"
        hint += " and penalties on a log scale"
        found.append(warning((*SPACE, p.key, "uniform"), "search-use-log-scale", msg, hint))
    return found


def _grid(search: Search, params: list[Param]) -> list[Finding]:
    """A grid needs every dimension discrete, and should fit into `trials`."""
    if search.sampler != "grid":
        return []
    found = []
    for p in params:
        if _count(p.dist) is None:
            kind = _kind(p.dist)
            msg = "sampler: grid needs every key to be a choice or a stepped range, but"
            msg += f" {p.key} is a {kind} range without a step"
            hint = "give the range a step, or use a choice"
            if kind != "uniform":
                hint = "use a choice of values, e.g. {choice: [...]}"
            found.append(error((*SPACE, p.key, kind), "search-grid-not-discrete", msg, hint))
    size = _grid_size(params)
    if size is not None and size > search.trials:
        msg = f"the grid has {size} points but trials is {search.trials}:"
        msg += f" {size - search.trials} of them are never tried"
        hints = (f"set trials: {size}", "or use sampler: random, which the notes prefer to grids")
        found.append(warning(("search", "trials"), "search-grid-too-large", msg, *hints))
    return found


def _count(dist: Range | Choice) -> int | None:
    """Number of distinct values of a discrete distribution (None: continuous)."""
    if isinstance(dist, Choice):
        return len(dist.choice)
    low, high = _ends(dist)
    if isinstance(dist, LogIntUniform):
        return int(high - low) + 1
    if isinstance(dist, IntUniform):
        return int(high - low) // (dist.step or 1) + 1
    if isinstance(dist, Uniform) and dist.step is not None:
        return _steps(high - low, dist.step) + 1
    return None


def _steps(span: float, step: float) -> int:
    """Whole steps within a float span (rounding noise forgiven; huge counts capped)."""
    n = span / step
    return math.floor(n + 1e-9) if math.isfinite(n) and n < 2**62 else 2**62


def _grid_size(params: list[Param]) -> int | None:
    """Points of the grid of the whole space, or None when a dimension is continuous."""
    counts = [_count(p.dist) for p in params]
    return math.prod(cast(list[int], counts)) if None not in counts else None


# --- the points of the space -----------------------------------------------------------------


def _points(key: str, dist: Range | Choice, node: PosTree) -> tuple[Point, ...]:
    """The values of one key to check, each with the YAML node that wrote it."""
    kind = _kind(dist)
    items = node.children.get(kind) or PosTree(node.pos)
    if isinstance(dist, Choice):
        n = len(dist.choice)
        return tuple(
            Point(v, items.children.get(i) or items, f"choice {i + 1} of {n}")
            for i, v in enumerate(dist.choice)
        )
    low, high = _ends(dist)
    top = _top(dist)
    lo_node = items.children.get(0) or items
    hi_node = items.children.get(1) or items
    points = [Point(low, lo_node, f"the low end of {kind} [{low}, {high}]")]
    if top != low:
        label = f"the high end of {kind} [{low}, {high}]"
        if top != high:
            label = f"{top}, the highest value of {kind} [{low}, {high}] on its step"
        points.append(Point(top, hi_node, label))
    inner = _inner(dist)
    if inner is not None:
        label = f"a value drawn from {kind} [{low}, {high}]"
        points.append(Point(inner, PosTree(node.pos), label, drawn=True))
    for value in _between(dist):
        label = f"{value}, a value of {kind} [{low}, {high}]"
        points.append(Point(value, PosTree(node.pos), label, drawn=True))
    return tuple(points)


def _between(dist: Range) -> tuple[int, ...]:
    """The values strictly between an integer range's ends when it has at most
    INT_VALUES_LIMIT of them (each is checked alone, so a rule that is not monotone, a width
    that must split into `heads`, is found before the first trial); none for a float range."""
    if not isinstance(dist, IntUniform | LogIntUniform):
        return ()
    low, top = int(_ends(dist)[0]), int(_top(dist))
    step = (dist.step or 1) if isinstance(dist, IntUniform) else 1
    values = tuple(range(low + step, top, step))
    return values if len(values) + 2 <= INT_VALUES_LIMIT else ()


def _top(dist: Range) -> float | int:
    """The highest value a range can draw: its high end, or the last step below it."""
    low, high = _ends(dist)
    step = getattr(dist, "step", None)
    if step is None:
        return high
    if isinstance(low, int) and isinstance(high, int):
        return low + (high - low) // step * step
    return _num(low + _steps(high - low, step) * step)


def _inner(dist: Range) -> float | None:
    """A float range's value strictly inside it that is no integer (None when it has none):
    a float range on an integer key fails with it."""
    if isinstance(dist, IntUniform | LogIntUniform):
        return None
    low, high = _ends(dist)
    step = getattr(dist, "step", None)
    for f in (0.5, 0.3, 0.7, 0.1):
        if isinstance(dist, LogUniform):
            x = low * (high / low) ** f if low > 0 else low + (high - low) * f
        elif step is not None:
            x = low + _steps((high - low) * f, step) * step
        else:
            x = low + (high - low) * f
        x = _num(x)
        if low < x < high and not float(x).is_integer():
            return x
    return None


def _check_points(
    params: list[Param],
    base: dict[str, Any],
    base_tree: PosTree,
    tree: PosTree,
    file: str,
    base_ok: bool,
    check: CheckFn,
    real_paths: list[Path],
) -> tuple[list[Diagnostic], list[Param]]:
    """Each point of each key alone, the other keys at the spec's values: the problems, and
    the keys whose paths resolved (the others are reported as unknown paths)."""
    diags: list[Diagnostic] = []
    resolved: list[Param] = []
    paths: list[Path] | None = None
    for p in params:
        known, bad = True, False
        skeleton = _skeleton(base, base_tree, [p])
        for point in p.points:
            if point.drawn and bad:  # its ends already fail: a drawn value says nothing new
                continue
            found = _errors(check, skeleton, [(p, point)])
            unknown = _unknown_path(p, found, tree, file)
            if unknown is not None:
                paths = paths if paths is not None else real_paths
                diags.append(_with_path_hint(unknown, p, paths, base))
                known = False
                break
            more = _point_problems(p, point, found, file, base_ok)
            diags += more
            bad = bad or bool(more)
        if known:
            resolved.append(p)
    return diags, resolved


def _check_corners(
    params: list[Param],
    base: dict[str, Any],
    base_tree: PosTree,
    tree: PosTree,
    file: str,
    check: CheckFn,
) -> list[Diagnostic]:
    """Every corner of a space of at most CORNER_LIMIT corners: the first that fails."""
    if math.prod(len(p.corners) for p in params) > CORNER_LIMIT:
        return []
    skeleton = _skeleton(base, base_tree, params)
    for corner in itertools.product(*(p.corners for p in params)):
        assigned = list(zip(params, corner, strict=True))
        found = _errors(check, skeleton, assigned)
        if not found:
            continue
        first = found[0]
        inside = any(_within(first, pt.node, file) for _, pt in assigned)
        values = ", ".join(f"{p.key} = {_show(pt.value)}" for p, pt in assigned)
        pos = Pos(first.line, first.col, first.file) if inside else tree.locate_key(SPACE)
        there = None if inside else f"there: {_place(first)}"
        hints = (
            there,
            *first.hints,
            "specc check tries every combination of the range ends and choices",
        )
        msg = f"the corner {values} fails: {first.message}"
        return [_diag(pos, file, "error", "search-corner-fails", msg, hints)]
    return []


@dataclass(frozen=True)
class Skeleton:
    """The spec with the searched keys' paths made (by the override resolver), their values
    still null; or the resolver's problems."""

    value: Any
    tree: PosTree
    problems: list[Diagnostic]


def _skeleton(base: dict[str, Any], base_tree: PosTree, params: list[Param]) -> Skeleton:
    """Resolve the params' keys once; each point then only copies and fills the skeleton."""
    value, tree, problems = apply_overrides(base, base_tree, [f"{p.key}=" for p in params])
    return Skeleton(value, tree, problems)


def _errors(
    check: CheckFn, skeleton: Skeleton, assigned: list[tuple[Param, Point]]
) -> list[Diagnostic]:
    """The errors of the spec with each key set to its point (override problems included)."""
    if skeleton.problems:
        return skeleton.problems
    value, tree = _plain(skeleton.value), skeleton.tree.copy()
    for p, point in assigned:
        _put(value, tree, p.path, point)
    return [d for d in check(value, tree) if d.severity == "error"]


def _put(value: Any, tree: PosTree, path: Path, point: Point) -> None:
    """Set the (already resolved) path to the point's value, with its node's positions; the
    key keeps the position the override gave it."""
    cur, node = value, tree
    for seg in path[:-1]:
        seg = str(seg) if isinstance(cur, dict) else seg
        cur, node = cur[seg], node.children[seg]
    last = str(path[-1]) if isinstance(cur, dict) else path[-1]
    cur[last] = _plain(point.value)
    old = node.children.get(last)
    node.children[last] = PosTree(point.node.pos, old.key_pos if old else None, point.node.children)


def _plain(value: Any) -> Any:
    """A fresh copy of a value as the loader gives it (the checker may not share it)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _unknown_path(p: Param, found: list[Diagnostic], tree: PosTree, file: str) -> Diagnostic | None:
    """`search-unknown-path` when the key addresses nothing (the override's own error, or an
    unknown key the override had to create), at the key in the space."""
    pseudo = override_file(f"{p.key}=")
    for d in found:
        if d.file == pseudo and d.code in ("invalid-override", "unknown-key"):
            msg = f"search key {quoted(p.key)} is not a path of this spec: {d.message}"
            pos = tree.locate_key((*SPACE, p.key))
            return _diag(pos, file, "error", "search-unknown-path", msg, d.hints)
    return None


def _point_problems(
    p: Param, point: Point, found: list[Diagnostic], file: str, base_ok: bool
) -> list[Diagnostic]:
    """A point's errors: those at the searched value are `search-invalid-value` there; the
    first one elsewhere (when the spec is valid without the search) `search-corner-fails`."""
    pseudo = override_file(f"{p.key}=")
    out: list[Diagnostic] = []
    elsewhere: Diagnostic | None = None
    for d in found:
        at_value = d.file == pseudo or _within(d, point.node, file)
        if at_value and d.code in SCHEMA_CODES:
            pos = point.node.pos if d.file == pseudo else Pos(d.line, d.col, d.file)
            hints = [*d.hints, f"search.space {quoted(p.key)}: {point.label}"]
            if point.drawn and d.code == "invalid-type" and isinstance(p.dist, Uniform):
                hints.insert(0, "use int_uniform for an integer key")
            out.append(_diag(pos, file, "error", "search-invalid-value", d.message, hints))
        elif elsewhere is None and (at_value or base_ok):
            elsewhere = d
    if elsewhere is not None and not out:
        inside = _within(elsewhere, point.node, file)
        pos = Pos(elsewhere.line, elsewhere.col, elsewhere.file) if inside else point.node.pos
        msg = f"with {p.key} = {_show(point.value)} the spec fails: {elsewhere.message}"
        there = None if inside else f"there: {_place(elsewhere)}"
        label = f"search.space {quoted(p.key)}: {point.label}"
        out.append(
            _diag(pos, file, "error", "search-corner-fails", msg, (there, *elsewhere.hints, label))
        )
    return out


def _within(d: Diagnostic, node: PosTree, file: str) -> bool:
    """True when the diagnostic is at the node or inside it (a position of its subtree)."""
    return (d.line, d.col) in _positions(node) and d.file == file


def _positions(node: PosTree) -> set[tuple[int, int]]:
    """Line and column of every value and key in a subtree of the spec file."""
    out = {(node.pos.line, node.pos.col)}
    for child in node.children.values():
        out |= _positions(child)
        if child.key_pos is not None:
            out.add((child.key_pos.line, child.key_pos.col))
    return out


# --- unknown paths ---------------------------------------------------------------------------


def _real_paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path into the spec as loaded (with overrides), the search section left out."""
    out: list[Path] = []
    items: Iterator[tuple[str | int, Any]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list):
        items = iter(enumerate(value))
    else:
        return out
    for k, v in items:
        out.append((*prefix, k))
        out += _real_paths(v, (*prefix, k))
    return out


def _resolved(spec: Any, valid: frozenset[str]) -> dict[str, Any]:
    """The valid sections of the spec with every default spelled out (their paths are real
    even where the file does not write them: regularizers.l2, optimizer.lr)."""
    return cast(dict[str, Any], spec.model_dump(mode="json", include=set(valid) - {"search"}))


def _short_form(value: Any, path: Path) -> tuple[str, str] | None:
    """(dotted key, name) of a name written short (`optimizer: adam`) on the way to `path`."""
    for i, seg in enumerate(path):
        if isinstance(value, str) and i > 0:
            return _dotted(path[:i]), value
        if isinstance(value, dict):
            value = value.get(str(seg))
        elif isinstance(value, list) and isinstance(seg, int) and seg < len(value):
            value = value[seg]
        else:
            return None
    return None


def _with_path_hint(diag: Diagnostic, p: Param, real: list[Path], base: Any) -> Diagnostic:
    """The unknown-path diagnostic with a 'did you mean' over the paths of this spec first."""
    hint = _path_hint(p.path, real)
    short = _short_form(base, p.path)
    if hint is None and short is not None:  # a real path, through a name written short
        at, name = short
        hint = f"write {at}: {{name: {name}}} in the spec, so that the search can set {p.key}"
    if hint is None:
        return diag
    return replace(diag, hints=(hint, *(h for h in diag.hints if "did you mean" not in h)))


def _path_hint(path: Path, real: list[Path]) -> str | None:
    """'did you mean' for a search path: the same path at other list indices, a renamed
    segment (learning_rate: lr), or a close spelling among the spec's paths."""
    if path in real:
        return None
    dotted = [_dotted(r) for r in real]
    same = [
        _dotted(r)
        for r in real
        if len(r) == len(path)
        and all(
            a == b or (isinstance(a, int) and isinstance(b, int))
            for a, b in zip(r, path, strict=True)
        )
    ]
    if 1 <= len(same) <= 3:
        return "did you mean " + " or ".join(quoted(s) for s in same) + "?"
    renamed = _dotted(tuple(PATH_ALIASES.get(s, s) if isinstance(s, str) else s for s in path))
    if renamed in dotted and renamed != _dotted(path):
        return f"did you mean {quoted(renamed)}?"
    known = set(real)
    for i, seg in enumerate(path):  # the first segment that is not there, among its siblings
        if (*path[: i + 1],) in known:
            continue
        siblings = [str(r[i]) for r in real if len(r) == i + 1 and r[:i] == path[:i]]
        hint = did_you_mean(str(seg), siblings)
        if hint is None:
            return None
        guess = hint.removeprefix("did you mean '").split("'", 1)[0]
        fixed = _dotted((*path[:i], guess, *path[i + 1 :]))
        return f"did you mean {quoted(fixed)}?" if fixed in dotted else hint
    return None


# --- small helpers ---------------------------------------------------------------------------


def _kind(dist: BaseModel) -> str:
    """The distribution's key: uniform, log_uniform, ..."""
    return next(iter(type(dist).model_fields))


def _ends(dist: Range) -> tuple[Any, Any]:
    """[low, high] of a range."""
    low, high = getattr(dist, _kind(dist))
    return low, high


def _dotted(path: Path) -> str:
    """A path as its `--set` key: ('layers', 0, 'dense') is layers.0.dense."""
    return ".".join(map(str, path))


def _num(x: float) -> float:
    """A float without the noise of its arithmetic (0.30000000000000004 is 0.3)."""
    return float(f"{x:.12g}")


def _show(value: Any) -> str:
    """A value as a message shows it: YAML flow style (JSON), short, one line."""
    if isinstance(value, str):
        return quoted(value, 40)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = str(value)
    return quoted(text, 40, quote="")


def _place(d: Diagnostic) -> str:
    """`spec.yaml:17:9: error[code]`: where a point's spec failed."""
    return f"{d.file}:{d.line}:{d.col}: {d.severity}[{d.code}]"


def _diag(
    pos: Pos, file: str, severity: Severity, code: str, message: str, hints: Iterable[str | None]
) -> Diagnostic:
    """A diagnostic at a position (its own file, when it has one); empty hints dropped."""
    kept = tuple(h for h in hints if h)
    return Diagnostic(pos.file or file, pos.line, pos.col, severity, code, message, kept)
