"""Every example spec's generated code, checked as code: import, build, forward, count, lint."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
import torch

from specc.codegen.render import compile_program
from specc.pipeline import load_program

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((REPO_ROOT / "specs").glob("*.yaml"))
RUFF_RULES = "E,F,W,I,B,UP"
"""Lint rules the generated files must pass (the style guide's minimum)."""


@cache
def compiled(spec: Path) -> tuple[object, dict[str, str]]:
    """The Program of a spec and its compiled files."""
    program, diagnostics = load_program(spec)
    assert program is not None, "\n".join(d.render() for d in diagnostics)
    return program, compile_program(program, REPO_ROOT / "generated" / program.name)


def import_model(spec: Path, tmp_path: Path) -> tuple[object, ModuleType]:
    """Write the spec's model.py into tmp_path and import it under a unique name."""
    program, files = compiled(spec)
    path = tmp_path / "model.py"
    path.write_text(files["model.py"], encoding="utf-8")
    name = f"generated_{spec.stem}_model"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return program, module


def ruff(*args: str) -> subprocess.CompletedProcess:
    """Run the pinned ruff, ignoring any project configuration."""
    from ruff.__main__ import find_ruff_bin

    return subprocess.run(
        [str(find_ruff_bin()), *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_model_builds_and_runs_with_the_inferred_shapes(spec, tmp_path):
    """Forward in train and eval mode gives [batch, units]; parameters match specc's count."""
    program, module = import_model(spec, tmp_path)
    torch.manual_seed(0)
    model = module.build_model()
    units = program.model.output_units
    assert tuple(module.INPUT_SHAPE) == tuple(program.model.input_shape)
    assert units == module.OUTPUT_UNITS
    x = torch.randn(4, *program.model.input_shape)
    if program.model.normalize != "none":
        model.normalize.fit(torch.randn(32, *program.model.input_shape))
    assert model.train()(x).shape == (4, units)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (4, units)
        assert model.predict(x).shape == (4, units)
    assert sum(p.numel() for p in model.parameters()) == program.model.params
    listed = {id(w) for w in model.weights()}
    for name, parameter in model.named_parameters():
        if id(parameter) in listed:
            assert "bias" not in name, f"weights() lists {name}"


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_files_are_lint_clean_and_formatted(spec, tmp_path):
    """ruff check and ruff format --check pass on every generated file; none imports specc."""
    _, files = compiled(spec)
    for name, text in files.items():
        assert "import specc" not in text and "from specc" not in text, name
        (tmp_path / name).write_text(text, encoding="utf-8")
    common = ["--isolated", "--line-length", "100", "--target-version", "py311"]
    check = ruff("check", *common, "--select", RUFF_RULES, str(tmp_path))
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = ruff("format", "--check", *common, str(tmp_path))
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
