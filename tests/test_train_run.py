"""`specc train` end to end: real runs of small specs (iris, a few epochs) as subprocesses."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train_codegen import REPO, TINY, import_generated, write_spec

from specc.runtime import train as train_runtime
from specc.runtime.train import default_run_dir

pytestmark = pytest.mark.slow  # every test here trains in a subprocess

SUMMARY_KEYS = {
    "epochs_run", "best_epoch", "stopped_early", "params", "seconds", "metrics", "task",
    "labels", "features", "input_shape", "output_units", "output_activation", "class_name",
    "device", "processes",
}  # fmt: skip
RUN_FILES = {"spec.yaml", "code", "metrics.csv", "best.pt", "last.pt", "model.pt",
             "summary.json", "curves.png"}  # fmt: skip


def specc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the specc command line in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args], cwd=cwd, capture_output=True, text=True,
        check=False, timeout=300,
    )  # fmt: skip


def script(code: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a generated train.py directly."""
    return subprocess.run(
        [sys.executable, str(code / "train.py"), *args, "--quiet"], cwd=cwd,
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows(run)]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One iris run through the CLI, with an override (training.epochs 50 -> 3)."""
    tmp = tmp_path_factory.mktemp("run")
    spec = write_spec(tmp, TINY.replace("epochs: 3", "epochs: 50"))
    proc = specc("train", str(spec), "-o", "run", "--set", "training.epochs=3", cwd=tmp)
    return tmp, spec, proc


def test_run_directory_has_every_contract_file(first_run):
    tmp, _, proc = first_run
    assert proc.returncode == 0, proc.stderr
    run = tmp / "run"
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    assert {p.name for p in (run / "code").iterdir()} >= {"model.py", "data.py", "train.py"}
    assert "Traceback" not in proc.stderr
    assert "epoch 3/3" in proc.stderr  # progress, one line per epoch when not a terminal


def test_metrics_csv_and_summary(first_run):
    tmp, _, _ = first_run
    run = tmp / "run"
    table = rows(run)
    assert list(table[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert [r["epoch"] for r in table] == ["1", "2", "3"]  # --set training.epochs=3 applied
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is False
    assert summary["labels"] == ["setosa", "versicolor", "virginica"]
    assert summary["input_shape"] == [4] and summary["output_units"] == 3
    assert summary["output_activation"] == "softmax" and summary["task"] == "multiclass"
    assert summary["device"] == "cpu" and summary["processes"] == 1
    assert set(summary["metrics"]) == {"train", "val", "test"}
    assert set(summary["metrics"]["test"]) == {"loss", "accuracy"}
    assert "epochs: 3" in (run / "spec.yaml").read_text()
    # model.pt is the final state_dict; last.pt holds everything for --resume
    model_state = torch.load(run / "model.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)  # --resume reads it so: no pickled code
    assert last["epoch"] == 3 and len(last["history"]) == 3
    assert {"model", "optimizer", "rng", "best"} <= set(last)
    assert set(model_state) == set(last["model"])
    assert summary["params"] == sum(
        v.numel() for k, v in model_state.items() if "normalize" not in k
    )


def test_same_spec_and_seed_give_the_same_metrics(first_run):
    tmp, spec, _ = first_run
    proc = specc("train", str(spec), "-o", "again", "--set", "training.epochs=3", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert without_seconds(tmp / "again") == without_seconds(tmp / "run")


def interrupt_at(
    command: list[str], epoch: int | str, cwd: Path, sig=signal.SIGINT, group: bool = True
) -> tuple[int, str]:
    """Run `command` in a new session and send `sig` (to its process group: Ctrl-C; else to the
    process only: kill) once stderr shows `epoch N/` (or a line starting with the given text);
    the exit status and everything on stderr."""
    prefix = f"epoch {epoch}/" if isinstance(epoch, int) else epoch
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    seen = []
    try:
        for line in proc.stderr:  # progress: one line per epoch when not a terminal
            seen.append(line)
            if line.startswith(prefix):
                (os.killpg if group else os.kill)(proc.pid, sig)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, "".join(seen) + err


def test_kill_term_and_resume_give_the_uninterrupted_metrics(first_run):
    """`kill -TERM` of the specc process mid-training: relayed to train.py, which saves last.pt
    and exits 130; resuming (the --set included, as the message says) gives the uninterrupted
    metrics."""
    tmp, spec, _ = first_run
    sets = ["--set", "training.epochs=300"]
    train = [sys.executable, "-m", "specc", "train", str(spec)]
    status, err = interrupt_at([*train, "-o", "cut", *sets], 5, tmp, signal.SIGTERM, group=False)
    assert status == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted: " in err
    assert f"resume with: specc train {spec} -o cut --resume --set training.epochs=300" in err
    stopped = torch.load(tmp / "cut" / "last.pt", weights_only=True)["epoch"]
    assert 5 <= stopped < 300 and len(rows(tmp / "cut")) == stopped
    assert not (tmp / "cut" / "model.pt").exists()
    assert specc("train", str(spec), "-o", "cut", "--resume", *sets, cwd=tmp).returncode == 0
    assert specc("train", str(spec), "-o", "whole", *sets, cwd=tmp).returncode == 0
    assert without_seconds(tmp / "cut") == without_seconds(tmp / "whole")


def test_existing_run_directory_is_never_overwritten(first_run):
    tmp, spec, _ = first_run
    proc = specc("train", str(spec), "-o", "run", cwd=tmp)
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and "Traceback" not in proc.stderr


def test_default_run_directory_gets_a_suffix(tmp_path):
    first = default_run_dir("x", tmp_path, now=0)
    first.mkdir()
    second = default_run_dir("x", tmp_path, now=0)
    second.mkdir()
    assert second.name == first.name + "-2"
    assert default_run_dir("x", tmp_path, now=0).name == first.name + "-3"


def test_spec_errors_exit_1(tmp_path):
    spec = write_spec(tmp_path, TINY.replace("units: 3", "units: 3\n  colour: red"))
    proc = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert proc.returncode == 1
    assert "error[" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_generated_train_py_runs_without_specc(first_run, tmp_path):
    tmp, _, _ = first_run
    code = tmp / "run" / "code"
    # specc is installed in this environment: make `import specc` fail, run from another cwd
    runner = (
        "import runpy, sys; sys.modules['specc'] = None; "
        f"sys.path.insert(0, {str(code)!r}); "
        f"sys.argv = ['train.py', '--out', 'alone', '--quiet']; "
        f"runpy.run_path({str(code / 'train.py')!r}, run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert without_seconds(tmp_path / "alone") == without_seconds(tmp / "run")


def test_nan_loss_stops_with_exit_3_and_keeps_the_last_good_checkpoint(tmp_path):
    text = """\
name: blowup
data: {source: sklearn:diabetes, normalize: none}
input: {shape: [10]}
output: {units: 1, activation: linear}
optimizer: {name: sgd, lr: 1.0e+6}
training: {epochs: 5, batch_size: 8}
"""
    spec = write_spec(tmp_path, text)
    proc = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    message = [line for line in proc.stderr.splitlines() if line.startswith("error:")][0]
    assert "loss became" in message and "at epoch" in message and "step" in message
    assert message.endswith(f"last good checkpoint: {Path('r') / 'last.pt'}")
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert len(rows(tmp_path / "r")) == last["epoch"]


REFIT = TINY.replace("epochs: 3", "epochs: 12") + "stopping: {early: {patience: 2}, refit: %s}\n"


@pytest.mark.parametrize("kind", ["best_epochs", "continue"])
def test_early_stopping_and_refit(tmp_path, kind):
    spec = write_spec(tmp_path, REFIT % kind)
    proc = specc("train", str(spec), "-o", "r", "--set", "optimizer.lr=0.3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "early stopping: no improvement in val_loss for 2 epochs" in proc.stderr
    assert "refit: " in proc.stderr and "on train + val" in proc.stderr
    assert (
        "(early stopping, then " in proc.stdout and " refit epochs on train + val)" in proc.stdout
    )
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    table = rows(tmp_path / "r")
    main, refit = summary["epochs_run"], summary["refit"]["epochs"]
    assert summary["refit"]["strategy"] == kind
    assert len(table) == main + refit
    assert [int(r["epoch"]) for r in table] == list(range(1, main + refit + 1))
    # lr 0.3 overshoots after a few epochs: early stopping must end the first phase
    assert summary["stopped_early"] and main < 12
    assert main - summary["best_epoch"] == 2  # j reached the patience
    best_loss = min(float(r["val_loss"]) for r in table[:main])
    assert float(table[summary["best_epoch"] - 1]["val_loss"]) == best_loss  # i* is the argmin
    if kind == "best_epochs":
        assert refit == summary["best_epoch"]
        # same seed and schedule from scratch: the refit's first lr equals epoch 1's
        assert table[main]["lr"] == table[0]["lr"]
    else:
        assert 1 <= refit <= summary["best_epoch"]
        last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
        target = last["refit"]["target"]
        stopped_on_target = float(table[-1]["val_loss"]) <= target
        assert stopped_on_target or refit == summary["best_epoch"]
        assert all(float(r["val_loss"]) > target for r in table[main:-1])


def test_interrupted_refit_resumes_to_the_uninterrupted_metrics(tmp_path):
    """Ctrl-C right after the refit announcement (a long refit: 150 best epochs from scratch),
    then --resume inside the refit phase: the uninterrupted run's metrics."""
    spec = write_spec(
        tmp_path,
        TINY.replace("epochs: 3", "epochs: 150").replace("lr: 0.01}", "lr: 0.002}")
        + "stopping: {early: {patience: 150}, refit: best_epochs}\n",
    )
    straight = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    code = tmp_path / "r" / "code"
    command = [sys.executable, str(code / "train.py"), "--out", "cut"]
    status, err = interrupt_at(command, "refit: ", tmp_path)
    assert status == 130, err[-2000:]
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["refit"]["phase"] == "refit"
    resumed = script(code, "--out", "cut", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert without_seconds(tmp_path / "cut") == without_seconds(tmp_path / "r")


def test_digits_mlp_full_settings(tmp_path):
    proc = specc("train", str(REPO / "specs" / "digits_mlp.yaml"), "-o", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["metrics"]["test"]["accuracy"] > 0.95


def test_metrics_train_loss_is_the_training_mode_mean_of_the_epoch(tmp_path):
    """metrics.csv's train_loss is the row-weighted mean of the epoch's minibatch losses (with
    dropout on); no separate eval-mode pass over the training split is made or kept."""
    text = TINY.replace("activation: relu}", "activation: relu}\n  - dropout: {rate: 0.5}")
    spec = write_spec(tmp_path, text)
    proc = specc("train", str(spec), "-o", "r", "--set", "training.epochs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = rows(tmp_path / "r")
    history = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["history"]
    # replay the script's first epoch in-process: same seeds, same order of random draws
    train = import_generated(tmp_path / "r" / "code")
    train.harness.seed_everything(train.SEED)
    rng = torch.Generator().manual_seed(train.SEED)
    splits = train.load()
    model = train.build_model()
    model.normalize.fit(torch.from_numpy(splits.x_train))
    x, y = torch.from_numpy(splits.x_train), torch.from_numpy(splits.y_train)
    losses, mean = train.train_epoch(
        model, train.Objective(model), train.build_optimizer(model), x, y, rng
    )
    sizes = [min(train.BATCH_SIZE, len(x) - i) for i in range(0, len(x), train.BATCH_SIZE)]
    assert float(mean) == pytest.approx(float((losses * torch.tensor(sizes)).sum()) / len(x))
    assert float(row["train_loss"]) == pytest.approx(float(mean), rel=1e-5)
    assert history[0]["train_loss"] == pytest.approx(float(mean), rel=1e-5)
    assert set(history[0]) == set(row)  # curves.png plots exactly what metrics.csv holds


def test_run_files_get_the_usual_permissions(first_run):
    """Atomic writes must not leave files readable by their owner only (mkstemp's 0o600)."""
    tmp, _, _ = first_run
    umask = os.umask(0)
    os.umask(umask)
    for name in ("metrics.csv", "last.pt", "best.pt", "model.pt", "summary.json", "curves.png"):
        mode = stat.S_IMODE((tmp / "run" / name).stat().st_mode)
        assert mode == 0o666 & ~umask, (name, oct(mode))
    assert not list((tmp / "run").glob(".*.tmp"))


def test_sigint_to_the_process_group_mid_training_then_resume(tmp_path):
    """A real Ctrl-C: SIGINT to the whole process group of `specc train` while epochs run. Both
    processes handle it (exit 130, no traceback, a resume hint); last.pt is the last completed
    epoch, and resuming gives what an uninterrupted run gives (inverse-time lr included)."""
    text = TINY.replace("epochs: 3", "epochs: 5000").replace(
        "lr: 0.01}", "lr: 0.01, schedule: {name: inverse_time, decay: 0.05}}"
    )
    spec = write_spec(tmp_path, text)
    child = subprocess.Popen(
        [sys.executable, "-m", "specc", "train", str(spec), "-o", "cut"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        seen = []
        for line in child.stderr:  # progress: one line per epoch when not a terminal
            seen.append(line)
            if line.startswith("epoch 20/"):
                os.killpg(child.pid, signal.SIGINT)
                break
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    err = "".join(seen) + err
    assert child.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted: " in err and "resume with: specc train" in err
    cut = tmp_path / "cut"
    stopped = torch.load(cut / "last.pt", weights_only=True)["epoch"]
    assert stopped >= 20 and len(rows(cut)) == stopped
    assert not (cut / "model.pt").exists() and not list(cut.glob(".*.tmp"))
    # resume for a few more epochs, interrupted again; compare with a run cut later still
    code = cut / "code"
    train = [sys.executable, str(code / "train.py")]
    status, err = interrupt_at([*train, "--out", "cut", "--resume"], stopped + 2, tmp_path)
    assert status == 130, err[-2000:]
    resumed = len(rows(cut))
    status, err = interrupt_at([*train, "--out", "straight"], resumed + 1, tmp_path)
    assert status == 130, err[-2000:]
    assert resumed >= stopped + 2 and len(rows(tmp_path / "straight")) > resumed
    assert without_seconds(cut) == without_seconds(tmp_path / "straight")[:resumed]
    for row in rows(cut):  # inverse-time decay per epoch, epochs counted from 0
        assert float(row["lr"]) == pytest.approx(0.01 / (1 + 0.05 * (int(row["epoch"]) - 1)))


def test_ctrl_c_while_loading_data_exits_130_without_a_traceback(first_run, tmp_path):
    """Outside the epoch loop (here: inside data.load) Ctrl-C is a one-line exit 130 too."""
    tmp, _, _ = first_run
    code = tmp / "run" / "code"
    runner = (
        "import runpy, sys; "
        f"sys.path.insert(0, {str(code)!r}); "
        "import data\n"
        "def load(path=None):\n"
        "    raise KeyboardInterrupt\n"
        "data.load = load\n"
        "sys.argv = ['train.py', '--out', 'early', '--quiet']\n"
        f"runpy.run_path({str(code / 'train.py')!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True,
                          text=True, check=False, timeout=300)  # fmt: skip
    assert proc.returncode == 130
    assert proc.stderr.strip() == "interrupted"


def test_specc_train_says_whether_an_interrupted_run_can_resume(tmp_path, monkeypatch, capsys):
    """Status 130 (or death by SIGINT while Python starts): the resume command only when
    last.pt exists, else that there is nothing to resume."""
    spec = write_spec(tmp_path)
    monkeypatch.setattr(train_runtime, "_run_child", lambda command: -signal.SIGINT)
    assert train_runtime.run_train(str(spec), str(tmp_path / "a"), [], False) == 130
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "resume with" not in err
    monkeypatch.setattr(train_runtime, "_run_child", lambda command: 130)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "last.pt").write_bytes(b"")
    (tmp_path / "b" / "spec.yaml").write_text((tmp_path / "a" / "spec.yaml").read_text())
    assert train_runtime.run_train(str(spec), str(tmp_path / "b"), [], True) == 130
    err = capsys.readouterr().err
    assert f"resume with: specc train {spec} -o {tmp_path / 'b'} --resume" in err
    assert "nothing to resume" not in err
