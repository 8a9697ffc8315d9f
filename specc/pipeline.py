"""The front end as one call: read -> YAML with positions -> overrides -> schema -> analysis.

Each stage returns diagnostics, and a later stage checks whatever the earlier ones left
valid: the loader's recoverable errors (a duplicate key) still give a value to validate, and
analysis runs each rule whose sections validated. The Program exists only without errors.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specc.analysis.ir import Program
from specc.diagnostics import Diagnostic, has_errors
from specc.schema.spec import Spec


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
    from specc.analysis.analyze import analyze
    from specc.schema.validate import validate_sections
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
    sections, more = validate_sections(Spec, value, tree, file)
    diags += _new_places(more, diags)
    if sections.model is None:
        return Checked(file, None, diags)
    program, more = analyze(sections.model, tree, file, spec_dir, sections.valid)
    diags += _new_places(more, diags)
    return Checked(file, program if not has_errors(diags) else None, diags)


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
