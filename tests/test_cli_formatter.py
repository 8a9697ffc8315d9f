"""`specc compile` on an installation whose ruff (the formatter of generated code) is missing
or broken: one line on standard error and exit status 2, never a traceback, no files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_RUFF = {
    # the package is there, but not its entry point module
    "not installed": ("", None),
    # the package without its binary (find_ruff_bin raises FileNotFoundError)
    "no binary": ("", "def find_ruff_bin():\n    raise FileNotFoundError('/nowhere/ruff')\n"),
    # a binary that cannot be executed
    "not executable": ("", "def find_ruff_bin():\n    return __file__\n"),
}


@pytest.mark.parametrize("case", list(FAKE_RUFF))
def test_compile_without_a_usable_ruff_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    init, main = FAKE_RUFF[case]
    package = tmp_path / "fake" / "ruff"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    if main is not None:
        (package / "__main__.py").write_text(main)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    out, spec = tmp_path / "out", ROOT / "specs" / "xor.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "specc", "compile", str(spec), "-o", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("specc compile: error: cannot format the generated code: ")
    assert lines[0].endswith("reinstall specc, which depends on ruff")
    assert not out.exists()
