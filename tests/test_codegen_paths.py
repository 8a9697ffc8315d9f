"""Generated code stays lint-clean wherever the spec lives: a long spec path (the header names
it relative to the working directory) must not produce over-long lines. CI clones into deep
directories; users do too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ruff.__main__ import find_ruff_bin

ROOT = Path(__file__).resolve().parent.parent


def test_long_spec_path_keeps_generated_code_lint_clean(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "and-another-level-of-nesting"
    deep.mkdir(parents=True)
    spec = deep / "digit_properties.yaml"
    shutil.copy(ROOT / "specs" / "digit_properties.yaml", spec)
    # its data file far from the output folder: the relative path in data.py gets long
    shutil.copytree(ROOT / "specs" / "data", deep / "data")
    out = tmp_path / "o" / ("nested-output-folder-" * 3) / "out"
    subprocess.run(
        [sys.executable, "-m", "specc", "compile", str(spec), "-o", str(out)],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    # the header names the spec relative to the working directory, on a line of its own
    label = spec.relative_to(tmp_path).as_posix()
    assert f"#   {label}  # noqa: E501\n" in (out / "model.py").read_text()
    assert "digit_properties.csv" in (out / "data.py").read_text()
    lint = subprocess.run(
        [os.fsdecode(find_ruff_bin()), "check", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
