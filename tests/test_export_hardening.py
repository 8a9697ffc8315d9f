"""`specc export` hardening (issue 8): the relative tolerance, `-o DIR/`, unwritable targets and
tampered run directories, each through the real command (a torch import each: marked slow).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, specc

from specc.runtime import onnx_common as oc
from specc.runtime.export import TOLERANCE, parity

PRICES = """\
name: prices
data:
  source: prices.csv
  target: price
  normalize: standard
input: {shape: [4]}
layers: []
output: {units: 1, activation: linear}
loss: mae
optimizer: {name: adam, lr: 5000.0}
training: {epochs: 4, batch_size: 8}
export:
  onnx: {opset: 18}
"""
"""A regression on house prices (~1e5): a big Adam step reaches them in 4 epochs."""


def specc_limited(*args: str, fsize: int) -> subprocess.CompletedProcess[str]:
    """`python -m specc ARGS` with files limited to `fsize` bytes (RLIMIT_FSIZE): a write past
    it fails with EFBIG, as on a full disk (Python ignores SIGXFSZ, so it is an OSError)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
        preexec_fn=limit, check=False,
    )  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess[str], verb: str) -> str:
    """The single `specc VERB: error: ...` line of a run that exited 2."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"specc {verb}: error: "), line
    return line


# --- the tolerance rule (contract §6) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("torch_value", "onnx_value", "passes"),
    [
        (0.5, 0.5 + 0.9e-4, True),  # probabilities: absolute 1e-4
        (0.5, 0.5 + 1.1e-4, False),
        (-0.2, -0.2 - 1.1e-4, False),
        (1.0e5, 1.0e5 + 0.0078125, True),  # one float32 ulp at 1e5: 7.8e-8 relative
        (1.0e5, 1.0e5 + 9.0, True),  # 9e-5 relative
        (1.0e5, 1.0e5 + 11.0, False),  # 1.1e-4 relative
        (-3.0e6, -3.0e6 + 290.0, True),  # the rule uses |torch|: negative values too
        (-3.0e6, -3.0e6 + 310.0, False),
        (2.0, float("nan"), False),
        (float("nan"), 2.0, False),
    ],
)
def test_tolerance_is_relative_to_max_1_and_the_torch_value(torch_value, onnx_value, passes):
    """|onnx - torch| <= 1e-4 * max(1, |torch|), element by element; a nan never passes."""
    expected = np.array([[0.1, torch_value]], dtype=np.float64)
    got = np.array([[0.1, onnx_value]], dtype=np.float64)
    largest, worst = parity(expected, got)
    assert (worst is None) == passes
    if not passes:
        assert worst[0] == pytest.approx(torch_value, nan_ok=True)
    if passes:
        assert largest == pytest.approx(abs(onnx_value - torch_value))


def test_tolerance_applies_per_element_not_to_the_batch():
    """A large value elsewhere in the batch does not loosen the check of a small one."""
    expected = np.array([[1.0e6, 0.25]])
    got = np.array([[1.0e6 + 50.0, 0.25 + 0.01]])  # 5e-5 relative passes; 0.01 on 0.25 does not
    _, worst = parity(expected, got)
    assert worst == (0.25, 0.26)
    assert TOLERANCE == 1e-4
    assert parity(np.zeros((2, 3)), np.zeros((3, 2)))[0] == float("inf")


@pytest.mark.slow
def test_a_regression_on_prices_trains_and_exports(tmp_path):
    """Outputs ~1e5 differ from PyTorch by float32 rounding (~1e-2 absolute, far above 1e-4):
    `specc train` exports model.onnx and exits 0, and predict gives prices."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (200, 4))
    price = 1e5 * (1 + x @ np.array([1.0, 0.5, 0.25, 2.0])) + rng.normal(0, 1e3, 200)
    lines = ["rooms,area,age,dist,price"]
    lines += [",".join(f"{c:.4f}" for c in r) + f",{p:.2f}" for r, p in zip(x, price, strict=True)]
    (tmp_path / "prices.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "prices.yaml").write_text(PRICES)
    run_dir = tmp_path / "run"
    done = specc("train", str(tmp_path / "prices.yaml"), "-o", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote " in done.stdout + done.stderr and (run_dir / "model.onnx").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["test"]["r2"] > 0.5  # it learnt the prices
    out = specc("predict", str(run_dir / "model.onnx"), str(tmp_path / "prices.csv"))
    assert out.returncode == 0, out.stderr
    predictions = np.array([float(v) for v in out.stdout.split()[1:]])
    assert len(predictions) == 200 and 5e4 < np.median(predictions) < 5e5


# --- -o: a directory, an unwritable target ------------------------------------------------------


@pytest.fixture(scope="module")
def iris_run(runs) -> Path:
    """An untrained iris run (exports in a few seconds)."""
    return runs.untrained("iris")


@pytest.mark.slow
def test_output_into_an_existing_directory(iris_run, tmp_path):
    """`-o DIR` and `-o DIR/` write DIR/model.onnx; `-o NEW/` creates NEW first."""
    (tmp_path / "dir").mkdir()
    done = specc("export", str(iris_run), "-o", str(tmp_path / "dir"))
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'dir' / 'model.onnx'} " in done.stdout
    oc.session(str(tmp_path / "dir" / "model.onnx"))  # a complete model
    done = specc("export", str(iris_run), "-o", f"{tmp_path / 'new'}/")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "model.onnx").is_file()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dir", "model.onnx", "model.onnx", "new"]


@pytest.mark.slow
def test_output_under_a_file_is_one_line_exit_2(iris_run, tmp_path):
    """A path whose folder is a file (ENOTDIR, which stops root too): exit 2, nothing left."""
    (tmp_path / "plain").write_text("not a folder")
    target = tmp_path / "plain" / "model.onnx"
    line = one_error_line(specc("export", str(iris_run), "-o", str(target)), "export")
    assert line == (
        f"specc export: error: {target}: cannot write: {tmp_path / 'plain'} is a file, "
        "not a folder; nothing was written"
    )
    assert (tmp_path / "plain").read_text() == "not a folder"


@pytest.mark.slow
def test_disk_full_keeps_the_earlier_file_and_leaves_no_partial_one(iris_run, tmp_path):
    """Writes fail past 1 kB (RLIMIT_FSIZE: EFBIG, like ENOSPC): exit 2, one line naming the
    file; the earlier model.onnx is intact and no temporary file remains."""
    out = tmp_path / "model.onnx"
    out.write_bytes(b"an earlier export")
    line = one_error_line(
        specc_limited("export", str(iris_run), "-o", str(out), fsize=1024), "export"
    )
    assert line == f"specc export: error: {out}: cannot write: File too large; nothing was written"
    assert out.read_bytes() == b"an earlier export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# --- a tampered run directory -----------------------------------------------------------------

TAMPERED = {
    "not json": ("{'task': 'multiclass',", "summary.json: cannot read: Expecting property name"),
    "a list": ("[1, 2, 3]", "summary.json: not a JSON object (a tampered run directory?)"),
    "labels a number": ({"labels": 5}, "summary.json: 'labels' is 5, not a list of labels"),
    "features a string": ({"features": "abc"}, "'features' is \"abc\", not a list of names"),
    "shape of text": (
        {"input_shape": ["four"]},
        "'input_shape' is [\"four\"], not a list of positive integers",
    ),
    "units negative": ({"output_units": -3}, "'output_units' is -3, not a positive integer"),
    "task a list": ({"task": ["x"]}, "'task' is [\"x\"], not text"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
@pytest.mark.slow
def test_tampered_summary_json_is_one_line_exit_2(iris_run, tmp_path, case):
    """summary.json that is not JSON, not an object, or has a key of the wrong type."""
    run_dir = shutil.copytree(iris_run, tmp_path / "run")
    edit, expected = TAMPERED[case]
    summary = run_dir / "summary.json"
    if isinstance(edit, str):
        summary.write_text(edit)
    else:
        summary.write_text(json.dumps({**json.loads(summary.read_text()), **edit}))
    line = one_error_line(specc("export", str(run_dir)), "export")
    assert f"{summary}" in line and expected in line, line
    assert not (run_dir / "model.onnx").exists()


@pytest.mark.slow
def test_summary_json_without_the_keys_export_reads_still_exports(iris_run, tmp_path):
    """Missing keys are not an error: export falls back to code/model.py and the spec."""
    run_dir = shutil.copytree(iris_run, tmp_path / "run")
    (run_dir / "summary.json").write_text("{}")
    done = specc("export", str(run_dir))
    assert done.returncode == 0, done.stderr
    meta = oc.specc_metadata(oc.session(str(run_dir / "model.onnx")))
    assert meta[oc.META_TASK] == "multiclass"
    assert json.loads(meta[oc.META_LABELS]) == ["setosa", "versicolor", "virginica"]  # data.py
