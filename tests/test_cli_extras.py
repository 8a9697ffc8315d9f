"""An install without the [train] extra: train/export/predict say what to install in one line
(exit 2, no traceback), and the light verbs keep working. The extra is hidden from a real
`specc` subprocess by a sitecustomize that marks its modules as absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HINT = "pip install 'specc[train]'"


def env_without(hidden: tuple[str, ...], tmp: Path) -> dict[str, str]:
    """An environment whose Python processes cannot import the modules `hidden`."""
    site = tmp / "hide"
    site.mkdir(exist_ok=True)
    lines = [f"sys.modules[{name!r}] = None" for name in hidden]
    (site / "sitecustomize.py").write_text("import sys\n" + "\n".join(lines) + "\n")
    return {**os.environ, "PYTHONPATH": str(site)}


def specc_without(hidden: tuple[str, ...], *args: str, tmp: Path) -> subprocess.CompletedProcess:
    """`python -m specc ARGS` in a process where the modules `hidden` cannot be imported."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        cwd=ROOT, env=env_without(hidden, tmp), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_hiding_works(tmp_path: Path) -> None:
    """The premise of these tests: with torch hidden, importing it fails."""
    probe = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env=env_without(("torch",), tmp_path), capture_output=True, text=True,
    )  # fmt: skip
    assert probe.returncode != 0
    assert "ModuleNotFoundError" in probe.stderr


@pytest.mark.parametrize(
    ("hidden", "args", "module"),
    [
        (("torch",), ("train", "specs/iris.yaml", "-o", "{tmp}/run"), "torch"),
        (("onnxruntime",), ("train", "specs/iris.yaml", "-o", "{tmp}/run"), "onnxruntime"),
        (("torch",), ("export", "{tmp}/run"), "torch"),
        (("onnx",), ("export", "{tmp}/run"), "onnx"),
        (("onnxruntime",), ("predict", "{tmp}/m.onnx", "specs/data/xor.csv"), "onnxruntime"),
        (("pandas",), ("predict", "{tmp}/m.onnx", "specs/data/xor.csv"), "pandas"),
    ],
)
def test_heavy_verbs_name_the_missing_extra(
    hidden: tuple[str, ...], args: tuple[str, ...], module: str, tmp_path: Path
) -> None:
    result = specc_without(hidden, *(a.format(tmp=tmp_path) for a in args), tmp=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"specc {args[0]}: error: the training extras are not installed "
        f"(no module named '{module}'): {HINT}"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "args",
    [
        ("check", "specs/digits_cnn.yaml"),
        ("summary", "specs/iris.yaml"),
        ("compile", "specs/xor.yaml", "-o", "{tmp}/out"),
        ("schema", "-o", "{tmp}/schema.json"),
    ],
)
def test_light_verbs_work_without_the_extra(args: tuple[str, ...], tmp_path: Path) -> None:
    hidden = ("torch", "numpy", "sklearn", "pandas", "pyarrow", "onnx", "onnxruntime")
    result = specc_without(hidden, *(a.format(tmp=tmp_path) for a in args), tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
