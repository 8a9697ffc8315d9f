"""What the bench scripts do with specc's output: compile a spec, import the generated train.py,
run it end to end as a user would."""

from __future__ import annotations

import csv
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType


def compile_spec_text(spec: Path, text: str) -> Path:
    """Write the spec text to `spec` and compile it with specc into spec.parent / "code"."""
    from specc.codegen.render import compile_program, write_files
    from specc.pipeline import load_program

    spec.write_text(text)
    program, diags = load_program(spec)
    if program is None:
        raise SystemExit("\n".join(d.render() for d in diags))
    code = spec.parent / "code"
    write_files(compile_program(program, code), code)
    return code


def import_train(code: Path) -> ModuleType:
    """Import the generated train.py (its model, data and harness modules from code/)."""
    sys.path.insert(0, str(code))
    spec = importlib.util.spec_from_file_location("generated_train", code / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(code: Path, directory: Path) -> tuple[float, float, int]:
    """Run the generated train.py end to end: (median s/epoch from metrics.csv, wall s, rc)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(code / "train.py"), "--out", str(directory / "run"), "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return float("nan"), wall, proc.returncode
    with open(directory / "run" / "metrics.csv", newline="") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    return statistics.median(seconds), wall, 0
