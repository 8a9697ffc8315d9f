"""Generation as a pure function: Program -> {relative path: formatted source text}."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import jinja2

from specc.analysis.ir import Program
from specc.codegen.literals import LINE_LENGTH, header
from specc.codegen.model_ctx import model_context
from specc.codegen.train_ctx import train_context
from specc.exitcodes import UsageError

OUTPUT_FILES = ("model.py", "data.py", "train.py", "harness.py")
"""One template per output file: templates/<file>.j2 (harness.py is the same for every spec)."""


def spec_label(spec: str | Path, root: Path | None = None) -> str:
    """How the header of generated code names a spec, whatever the spelling it was given in:
    its resolved path relative to root (default: the working directory) when it lies below
    root, else its file name alone, never a machine-specific absolute path."""
    path = Path(spec).resolve()
    base = (Path.cwd() if root is None else root).resolve()
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.name


class CodegenError(RuntimeError):
    """An internal error: a template rendered code that does not parse or format."""


def environment() -> jinja2.Environment:
    """The one Jinja2 environment: strict undefined, whitespace-controlled blocks."""
    return jinja2.Environment(
        # the top-level templates/ folder is the package specc.templates (see pyproject.toml)
        loader=jinja2.PackageLoader("specc.templates", "."),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


_NO_RUFF = "cannot format the generated code: {}; reinstall specc, which depends on ruff"


def _ruff() -> str:
    """The ruff executable of this installation; a UsageError (exit 2) when there is none."""
    try:
        from ruff.__main__ import find_ruff_bin

        return os.fsdecode(find_ruff_bin())
    except ImportError:
        raise UsageError(_NO_RUFF.format("ruff is not installed")) from None
    except FileNotFoundError:  # the package without its binary
        raise UsageError(_NO_RUFF.format("the ruff executable is missing")) from None


def format_source(text: str, name: str) -> str:
    """Parse, then format with ruff; an unparsable result is an internal error, a missing or
    unrunnable ruff a UsageError (one line, exit 2)."""
    try:
        ast.parse(text, filename=name)
    except SyntaxError as exc:
        raise CodegenError(f"generated {name} does not parse: {exc}\n{text}") from exc
    ruff = _ruff()
    try:
        proc = subprocess.run(
            [ruff, "format", "--isolated", "--line-length", str(LINE_LENGTH),
             "--stdin-filename", name, "-"],
            input=text, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError as exc:  # not executable, or removed since it was found
        raise UsageError(_NO_RUFF.format(f"cannot run {ruff}: {exc.strerror or exc}")) from None
    if proc.returncode != 0:
        raise CodegenError(f"ruff could not format generated {name}: {proc.stderr}")
    return proc.stdout


def compile_program(program: Program, out_dir: Path, source: str | None = None) -> dict[str, str]:
    """Render every output file for `program` as it will live in `out_dir` (paths in the code,
    such as the data file, are written relative to it). `source` is how the header names the
    spec (default: `spec_label` of the spec's path, relative to the working directory)."""
    env = environment()
    context = {
        "header": header(spec_label(program.spec_path) if source is None else source),
        "program": program,
        "model": model_context(program),
        "train": train_context(program, out_dir),
    }
    files = {}
    for name in OUTPUT_FILES:
        text = env.get_template(f"{name}.j2").render(**context)
        files[name] = format_source(text, name)
    return files


def write_files(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write rendered files into out_dir (created if needed); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = out_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
