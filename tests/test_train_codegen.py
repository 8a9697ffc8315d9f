"""The generated data.py / train.py as code: helpers the other training tests share, and checks
that the code is clean (ruff), byte-stable, free of specc imports and shows only used features."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from specc.codegen.render import compile_program, write_files
from specc.codegen.train_ctx import relative_data_path
from specc.pipeline import load_program

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "specs" / "data"

TINY = """\
name: tiny
data:
  source: sklearn:iris
  split: {val: 0.2, test: 0.2, seed: 0}
input: {shape: [4]}
layers:
  - dense: {units: 8, activation: relu}
output: {units: 3, activation: softmax}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 3, batch_size: 16}
"""
"""A small, fast spec (iris, 3 epochs); tests vary it with --set overrides."""

_counter = itertools.count()

GENERATED_MODULES = ("model", "data", "harness")
"""The modules train.py imports from its own directory (dropped from sys.modules around each
import, so that every compiled spec gets its own)."""


def write_spec(directory: Path, text: str = TINY, name: str = "spec.yaml") -> Path:
    """Write a spec file into `directory` and return its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def compile_to(spec: Path, out: Path, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Compile `spec` (with overrides) into `out`; fail the test on spec errors."""
    program, diags = load_program(spec, list(overrides))
    assert program is not None, [d.render() for d in diags]
    write_files(compile_program(program, out), out)
    return out


def import_generated(code: Path) -> ModuleType:
    """Import code/train.py as a fresh module (with its own model, data and harness modules)."""
    for name in GENERATED_MODULES:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(code))
    try:
        name = f"generated_train_{next(_counter)}"
        spec = importlib.util.spec_from_file_location(name, code / "train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(code))
        for name in GENERATED_MODULES:
            sys.modules.pop(name, None)
    return module


def generated(tmp_path: Path, *overrides: str, text: str = TINY) -> ModuleType:
    """Compile the spec `text` with overrides into tmp_path/code and import its train.py."""
    spec = write_spec(tmp_path, text)
    return import_generated(compile_to(spec, tmp_path / "code", overrides))


def import_data(code: Path) -> ModuleType:
    """Import code/data.py as a fresh module."""
    name = f"generated_data_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, code / "data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


# --- the checks ---------------------------------------------------------------------------


def _all_specs() -> list[Path]:
    return sorted((REPO / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    """Every example spec compiled once into a temporary directory."""
    root = tmp_path_factory.mktemp("gen")
    return {spec.stem: compile_to(spec, root / spec.stem) for spec in _all_specs()}


def test_generated_code_is_ruff_clean(compiled):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP,SIM", *map(str, compiled.values())],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_code_never_imports_specc(compiled):
    for code in compiled.values():
        for name in ("train.py", "data.py", "harness.py"):
            tree = ast.parse((code / name).read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    assert not any(a.name.split(".")[0] == "specc" for a in node.names)
                elif isinstance(node, ast.ImportFrom):
                    assert (node.module or "").split(".")[0] != "specc"


def test_compilation_is_byte_stable(compiled, tmp_path):
    spec = REPO / "specs" / "iris.yaml"
    program, _ = load_program(spec)
    first = compile_program(program, tmp_path / "a")
    again = compile_program(load_program(spec)[0], tmp_path / "a")
    assert first == again


def test_only_used_features_appear(tmp_path):
    bare = write_spec(tmp_path)
    code = compile_to(bare, tmp_path / "bare")
    text = (code / "train.py").read_text()
    absent_names = ["L1", "L2", "penalty", "MAX_NORM", "renorm", "WEIGHT_NOISE", "clip_grad"]
    absent_names += ["lr_at", "Plateau", "LABEL_SMOOTHING", "augment", "REFIT", "PATIENCE"]
    for absent in absent_names:
        assert absent not in text, absent
    code = compile_to(bare, tmp_path / "full", [
        "regularizers={l1: 0.001, l2: 0.01, max_norm: 2.0, weight_noise: 0.01, gradient_clip: 1.0}",
        "optimizer={name: sgd, lr: 0.1, momentum: 0.9, schedule: {name: step, step_size: 2}}",
        "stopping={early: {patience: 2}, refit: best_epochs}",
    ])  # fmt: skip
    text = (code / "train.py").read_text()
    present_names = ["L1 * sum", "L2 / 2 * sum", "torch.renorm", "add_weight_noise"]
    present_names += ["clip_grad_norm_", "def lr_at", "PATIENCE", 'REFIT = "best_epochs"']
    for present in present_names:
        assert present in text, present
    assert "L2 / 2" in text and "LP_P" not in text


def test_data_path_is_relative_to_the_code_directory(tmp_path):
    assert relative_data_path("/a/b/data/x.csv", Path("/a/b/generated/x")) == "../../data/x.csv"
    spec = write_spec(tmp_path, TINY.replace("sklearn:iris", str(DATA / "iris_string_labels.csv"))
                      .replace("seed: 0}", "seed: 0}\n  target: species"))  # fmt: skip
    code = compile_to(spec, tmp_path / "deep" / "code")
    expected = relative_data_path(str(DATA / "iris_string_labels.csv"), code)
    assert f'DATA_FILE = "{expected}"' in (code / "data.py").read_text()
    assert not expected.startswith("/")
