"""bench/cuda_check.py in --device cpu mode on one small spec: every step runs and passes, and the
report says so (the same script checks CUDA on a machine with a GPU; docs/cuda.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_cpu_mode_on_iris_passes_every_step(tmp_path: Path) -> None:
    """Train, interrupt + resume, export and one-process torchrun of iris on the CPU: exit 0,
    and a report whose figures show each step did what it claims."""
    report = tmp_path / "report"
    command = [sys.executable, str(ROOT / "bench" / "cuda_check.py"), "--device", "cpu"]
    command += ["--epochs", "2", "--specs", str(ROOT / "specs" / "iris.yaml")]
    command += ["--resume-epochs", "40", "--workdir", str(tmp_path / "work")]
    command += ["--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    data = json.loads(report.with_suffix(".json").read_text())
    steps = {step["kind"]: step for step in data["steps"]}
    assert data["ok"] and data["device"] == "cpu"
    assert [s["kind"] for s in data["steps"]] == ["env", "train", "resume", "export", "ddp"]
    assert all(s["ok"] for s in data["steps"])
    train = steps["train"]["detail"]
    assert train["exit"] == 0 and train["epochs"] == 2 and train["weights_on"] == "cpu"
    assert set(train["test"]) == {"loss", "accuracy"}
    resume = steps["resume"]["detail"]
    assert resume["interrupt_exit"] == 130 and resume["resume_exit"] == 0
    assert 1 <= resume["interrupted_after_epoch"] < resume["rows"][0] == resume["rows"][1]
    assert resume["equal"] and resume["max_rel_diff"] == 0.0
    export = steps["export"]["detail"]
    assert export["rows"] == 30 and export["cpu_max_rel"] <= 1e-4
    ddp = steps["ddp"]["detail"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 1 and ddp["equal"]
    assert ddp["test"] == train["test"]
    table = report.with_suffix(".md").read_text()
    assert "PASS: 5 of 5 steps passed." in table and "| iris | train | yes | 0 |" in table
