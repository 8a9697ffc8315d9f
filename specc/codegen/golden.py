"""The golden loop: compile specs into `generated/<name>/` in memory, and diff that against disk.

`regenerate` is pure (files in memory); `write` puts them on disk; `stale` says, line by line,
what on disk differs from what the specs compile to. `specc compile specs/*.yaml` regenerates,
`specc compile --check specs/*.yaml` fails when anything is stale, and tests/test_golden.py keeps
the committed `generated/` current.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from specc.analysis.ir import Program
from specc.codegen.render import compile_program, spec_label, write_files
from specc.diagnostics import Diagnostic, render_text

GENERATED = Path("generated")
"""Where compiled specs live, relative to the repository root."""

IGNORED = frozenset({"__pycache__"})
"""Names under generated/ that are never golden files (left by importing the code)."""


class SpecError(Exception):
    """A spec that does not compile: it has errors, carried as diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(render_text(diagnostics))
        self.diagnostics = diagnostics


def compile_spec(
    program: Program, spec_path: str | Path, root: Path, folder: Path | None = None
) -> dict[Path, str]:
    """The one compile step of `specc compile`, `--check` and the golden test: the files of
    `program` (checked from spec_path) under folder (default generated/<name>, relative to root,
    or absolute), keyed by that path. The header names the spec by `spec_label(spec_path, root)`,
    so every spelling of the same file compiles to the same bytes."""
    folder = GENERATED / program.name if folder is None else folder
    rendered = compile_program(program, (root / folder).resolve(), spec_label(spec_path, root))
    return {folder / name: text for name, text in rendered.items()}


def regenerate(spec_paths: Iterable[str | Path], root: Path | None = None) -> dict[Path, str]:
    """Compile each spec into `generated/<name>/<file>` (paths relative to root, default the
    working directory). Raises SpecError with every spec's errors if any spec does not compile."""
    from specc.pipeline import check_text

    base = (Path.cwd() if root is None else root).resolve()
    files: dict[Path, str] = {}
    errors: list[Diagnostic] = []
    for spec_path in sorted(Path(p) for p in spec_paths):
        path = spec_path.resolve()
        checked = check_text(path.read_text(encoding="utf-8"), _relative(path, base), path.parent)
        if checked.program is None or not checked.ok:
            errors += [d for d in checked.diagnostics if d.severity == "error"]
            continue
        files.update(compile_spec(checked.program, path, base))
    if errors:
        raise SpecError(errors)
    return files


def write(files: dict[Path, str], root: Path) -> list[Path]:
    """Write regenerated files under root, removing stale files from the folders written."""
    written = []
    for folder in sorted({path.parent for path in files}):
        ours = {path.name: text for path, text in files.items() if path.parent == folder}
        for extra in _files_in(root / folder) - set(ours):
            (root / folder / extra).unlink()
        written += write_files(ours, root / folder)
    return written


def diff(files: dict[Path, str], root: Path) -> list[str]:
    """Human-readable lines for each missing, extra or different file under root, for the
    folders that `files` (relative paths) fill."""
    lines = []
    for folder in sorted({path.parent for path in files}):
        ours = {path.name for path in files if path.parent == folder}
        on_disk = _files_in(root / folder)
        for name in sorted(ours | on_disk):
            path = folder / name
            if name not in on_disk:
                lines.append(f"{path}: missing")
            elif name not in ours:
                lines.append(f"{path}: extra (no spec generates it)")
            elif (root / path).read_text(encoding="utf-8") != files[path]:
                lines.append(f"{path}: differs from what its spec compiles to")
    return lines


def stale(spec_paths: Iterable[str | Path], root: Path, *, every_folder: bool = False) -> list[str]:
    """`diff` of what the specs compile to against root/generated/; with every_folder, folders
    of generated/ that no given spec produces are extra too."""
    files = regenerate(spec_paths, root)
    lines = diff(files, root)
    folders = {path.parent for path in files}
    if every_folder and (root / GENERATED).is_dir():
        for folder in sorted((root / GENERATED).iterdir()):
            relative = GENERATED / folder.name
            if folder.is_dir() and folder.name not in IGNORED and relative not in folders:
                lines.append(f"{relative}/: extra (no spec generates it)")
    return lines


def _relative(path: Path, root: Path) -> str:
    """path relative to root in POSIX form when it lies under root, else as given (how
    diagnostics name a spec; the generated header uses `spec_label`)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _files_in(folder: Path) -> set[str]:
    """Names of the plain files in a folder (none when it does not exist), ignoring caches."""
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and p.name not in IGNORED}
