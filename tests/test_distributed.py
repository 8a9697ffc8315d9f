"""training.devices: N > 1 — torchrun + DistributedDataParallel on CPU (gloo over the loopback).

Real runs of the `specc` command: N processes train what one does (to float rounding), an
interrupted run under torchrun resumes to the uninterrupted one, a resume with another number of
processes is refused, a Ctrl-C ends every process, and the generated train.py still runs as one
process with plain `python` (WORLD_SIZE unset).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SPECC = [sys.executable, "-m", "specc"]

IRIS = """\
name: iris_ddp
data: {source: "sklearn:iris", split: {val: 0.2, test: 0.2, seed: 0}}
input: {shape: [4]}
layers:
  - dense: {units: 16, activation: relu}
  - dense: {units: 8, activation: tanh}
output: {units: 3, activation: softmax}
loss: cross_entropy
regularizers: {l2: 1.0e-3}
optimizer: {name: adam, lr: 0.01}
stopping: {early: {patience: 3}, refit: continue}
training: {epochs: 12, batch_size: 17, seed: 0, devices: 2}
"""
"""No dropout, noise or batch norm; a batch of 17 rows leaves a last minibatch of 5 (90 training
rows), so the two processes' shares are uneven (8/9, then 2/3); refit: continue trains on
train + val after early stopping."""

HEADS = """\
name: digits_heads_ddp
data: {source: "%s", target: digit, split: {val: 0.2, test: 0.2, seed: 0}}
input: {shape: [64]}
layers:
  - dense: {units: 32, activation: relu}
output: {units: 10, activation: softmax}
loss: cross_entropy
heads:
  even: {target: even, output: {units: 1, activation: sigmoid}, loss: binary_cross_entropy,
         weight: 0.5}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
training: {epochs: 3, batch_size: 64, seed: 1, devices: 2}
"""

LONG = """\
name: digits_long_ddp
data: {source: "sklearn:digits", split: {val: 0.2, test: 0.2, seed: 0}}
input: {shape: [64]}
layers:
  - dense: {units: 64, activation: relu}
output: {units: 10, activation: softmax}
loss: cross_entropy
optimizer: {name: adam, lr: 1.0e-3}
training: {epochs: 40, batch_size: 8, seed: 0, devices: 2}
"""
"""About 135 steps per epoch under two processes: long enough to interrupt in the middle."""


def train(spec: Path, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    """`specc train SPEC -o OUT --quiet EXTRA...`."""
    command = [*SPECC, "train", str(spec), "-o", str(out), "--quiet", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def metrics(run: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without the seconds column."""
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def assert_same_metrics(a: Path, b: Path, rtol: float) -> None:
    """The same columns and epochs, every value within rtol (0: the same text)."""
    rows_a, rows_b = metrics(a), metrics(b)
    assert [list(r) for r in rows_a] == [list(r) for r in rows_b]
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b]
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        for column, value in row_a.items():
            if rtol == 0:
                assert value == row_b[column], (row_a["epoch"], column)
            else:
                assert float(value) == pytest.approx(float(row_b[column]), rel=rtol, abs=1e-7), (
                    row_a["epoch"],
                    column,
                )


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    """model.pt of both runs: the same tensors to atol."""
    wa = torch.load(a / "model.pt", weights_only=True)
    wb = torch.load(b / "model.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name], rtol=0, atol=atol), name


def test_two_processes_train_what_one_does(tmp_path):
    """devices: 2 (torchrun, gloo) and devices: 1 give the same metrics.csv (minus seconds, to
    float32 rounding: the gradients' sums are added in another order) and model.pt to 1e-6;
    the devices: 2 code run by plain `python` (no WORLD_SIZE) is the one-process run exactly."""
    spec = tmp_path / "iris.yaml"
    spec.write_text(IRIS)
    two, one = tmp_path / "two", tmp_path / "one"
    done = train(spec, two)
    assert "error" not in done.stderr and "Traceback" not in done.stderr
    train(spec, one, "--set", "training.devices=1")
    assert_same_metrics(two, one, rtol=1e-5)
    assert_same_weights(two, one, atol=1e-6)
    s2, s1 = (json.loads((r / "summary.json").read_text()) for r in (two, one))
    assert s2["epochs_run"] == s1["epochs_run"] and s2["best_epoch"] == s1["best_epoch"]
    assert s2["refit"] == s1["refit"]
    assert (s2["processes"], s1["processes"]) == (2, 1) and s2["device"] == s1["device"] == "cpu"
    for split in ("train", "val", "test"):
        for name, value in s1["metrics"][split].items():
            assert s2["metrics"][split][name] == pytest.approx(value, rel=1e-5, abs=1e-7)
    # the same code as one process: WORLD_SIZE unset means no process group at all
    plain = tmp_path / "plain"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    command = [sys.executable, str(two / "code" / "train.py"), "--out", str(plain), "--quiet"]
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=600)
    assert_same_metrics(plain, one, rtol=0)
    assert_same_weights(plain, one, atol=0)


def test_heads_share_their_targets(tmp_path):
    """Multitask heads under two processes: each head's targets are shared with the rows, and
    the head columns agree with one process."""
    data = tmp_path / "digits.csv"
    from sklearn.datasets import load_digits

    digits = load_digits()
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*(f"p{i}" for i in range(64)), "digit", "even"])
        for x, y in zip(digits.data, digits.target, strict=True):
            writer.writerow([*x.astype(int), y, int(y % 2 == 0)])
    spec = tmp_path / "heads.yaml"
    spec.write_text(HEADS % data.name)
    two, one = tmp_path / "two", tmp_path / "one"
    train(spec, two)
    train(spec, one, "--set", "training.devices=1")
    assert "train_loss_even" in metrics(two)[0]
    assert_same_metrics(two, one, rtol=1e-5)
    assert_same_weights(two, one, atol=1e-6)


def _processes_of(run: Path) -> list[int]:
    """Pids of live processes whose command line names the run directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(run) in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find left-over processes")
def test_ctrl_c_under_torchrun_then_resume_reproduces_the_run(tmp_path):
    """A Ctrl-C (SIGINT to the terminal's process group) while two processes train: specc exits
    130, no process is left, last.pt is resumable; `--resume` then ends with the metrics.csv and
    model.pt of the uninterrupted two-process run, exactly. A resume with another number of
    processes is refused, by specc (the spec changed) and by train.py itself."""
    spec = tmp_path / "long.yaml"
    spec.write_text(LONG)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(spec, whole)
    command = [*SPECC, "train", str(spec), "-o", str(cut), "--quiet"]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (cut / "metrics.csv").is_file() or len(metrics(cut)) < 1:
        assert child.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.2)
    time.sleep(1.0)  # in the middle of some later epoch
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "resume with" in err
    assert _processes_of(cut) == []
    saved = torch.load(cut / "last.pt", weights_only=True)
    assert saved["processes"] == 2 and len(saved["rng_ranks"]) == 2
    assert 1 <= saved["epoch"] < 40

    refused = train(spec, cut, "--resume", "--set", "training.devices=1", check=False)
    assert refused.returncode == 2 and "training.devices" in refused.stderr
    alone = [sys.executable, str(cut / "code" / "train.py"), "--out", str(cut), "--resume"]
    refused = subprocess.run(alone, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "written by a run of 2 process(es)" in refused.stderr, refused.stderr

    train(spec, cut, "--resume")
    assert_same_metrics(cut, whole, rtol=0)
    assert_same_weights(cut, whole, atol=0)


def test_tune_trials_train_in_one_process():
    """specc tune's trials talk to train.py through pipes: each trains in one process."""
    from specc.runtime.tune import _fixed

    assert "training.devices=1" in _fixed({"training": {"devices": 2}}, 1)
    assert not any("devices" in f for f in _fixed({"training": {"devices": 1}}, 1))
