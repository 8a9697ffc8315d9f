"""The front end as one call: read -> YAML with positions -> overrides -> schema -> analysis.

Each stage returns diagnostics, and a later stage checks whatever the earlier ones left
valid: the loader's recoverable errors (a duplicate key) still give a value to validate, and
analysis runs each rule whose sections validated. The Program exists only without errors.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.analysis.ir import Program
from specc.diagnostics import Diagnostic, has_errors
from specc.schema.spec import Spec

if TYPE_CHECKING:
    from specc.schema.validate import Sections
    from specc.source.yamlpos import PosTree


@dataclass(frozen=True)
class Checked:
    """The outcome of checking one spec: the IR when it is valid, and every diagnostic."""

    path: str
    program: Program | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return self.program is not None and not has_errors(self.diagnostics)


def check_text(text: str, file: str, spec_dir: Path, overrides: list[str] | None = None) -> Checked:
    """Check a spec given as text; `file` is how diagnostics name it."""
    from specc.source.overrides import apply_overrides
    from specc.source.yamlpos import load_yaml

    value, tree, diags = load_yaml(text, file)
    if value is None:
        return Checked(file, None, diags)
    if overrides:
        value, tree, more = apply_overrides(value, tree, list(overrides))
        diags += more
        if has_errors(more):
            return Checked(file, None, diags)
    return check_value(value, tree, file, spec_dir, diags)


def check_value(
    value: Any,
    tree: PosTree | None,
    file: str,
    spec_dir: Path,
    diags: list[Diagnostic] | None = None,
) -> Checked:
    """Check a loaded (and overridden) spec value; `diags` are the loader's diagnostics."""
    from specc.analysis.analyze import analyze
    from specc.schema.validate import validate_sections
    from specc.source.yamlpos import Pos, PosTree

    diags = list(diags or [])
    tree = tree if tree is not None else PosTree(Pos(1, 1))
    sections, more = validate_sections(Spec, value, tree, file)
    diags += _new_places(more, diags)
    if sections.model is None:
        return Checked(file, None, diags)
    program, more = analyze(sections.model, tree, file, spec_dir, sections.valid)
    diags += _new_places(more, diags)
    program = _with_search(program, sections, value, tree, file, spec_dir, diags)
    return Checked(file, program if not has_errors(diags) else None, diags)


def _with_search(
    program: Program | None,
    sections: Sections[Spec],
    value: Any,
    tree: PosTree,
    file: str,
    spec_dir: Path,
    diags: list[Diagnostic],
) -> Program | None:
    """Check the search section (every point of its space through `check_value`, adding
    to `diags`) and attach its IR; a spec without one keeps no `search: null` in `resolved`."""
    from specc.analysis.search import check_search

    spec = sections.model
    if spec is None or "search" not in sections.valid or spec.search is None:
        if program is not None and "search" in program.resolved:
            resolved = {k: v for k, v in program.resolved.items() if k != "search"}
            return replace(program, resolved=resolved)
        return program
    base_ok = not has_errors(diags)
    ir, more = check_search(
        spec.search,
        spec,
        sections.valid,
        value,
        tree,
        file,
        base_ok,
        lambda v, t: check_value(v, t, file, spec_dir).diagnostics,
    )
    diags += _new_places(more, diags)
    if program is None or ir is None:
        return None
    return replace(program, search=ir)


def _new_places(later: list[Diagnostic], earlier: list[Diagnostic]) -> list[Diagnostic]:
    """The later stage's diagnostics, less those at a node an earlier error is about: a
    value the loader refused (an unsafe tag) is one problem, not also a wrong type."""
    taken = {(d.file, d.line, d.col) for d in earlier if d.severity == "error"}
    return [d for d in later if (d.file, d.line, d.col) not in taken]


def check_file(path: str | Path, overrides: list[str] | None = None) -> Checked:
    """Check a spec file. Raises OSError/UnicodeDecodeError when it cannot be read (exit 2)."""
    text = Path(path).read_text(encoding="utf-8")
    return check_text(text, str(path), Path(path).resolve().parent, overrides)


def load_program(
    path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[Program | None, list[Diagnostic]]:
    """The Program of a spec file (None when it has errors) and its diagnostics."""
    checked = check_file(path, list(overrides))
    return checked.program, checked.diagnostics
