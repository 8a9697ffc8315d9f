"""`specc tune` through the real command: tiny iris searches (3 epochs, 2-3 trials) on Optuna,
each trial an ordinary run directory; pruning, failed trials, resume after a kill or Ctrl-C,
two workers on the journal, a sqlite database, and reproducibility."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, specc

pytestmark = pytest.mark.slow  # every test here runs specc tune, which trains

pytest.importorskip("optuna")

BASE = """\
name: iris_tune
data:
  source: sklearn:iris
  split: {val: 0.2, test: 0.2, seed: 0}
input: {shape: [4]}
layers:
  - dense: {units: 16, activation: relu}
output: {units: 3, activation: softmax}
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
training: {epochs: 3, batch_size: 16}
stopping:
  early: {monitor: val_loss, patience: 2, restore_best: true}
  refit: continue
"""

RANDOM = """\
search:
  metric: val_loss
  trials: 3
  sampler: random
  seed: 0
  space:
    optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
    layers.0.dense.units: {choice: [4, 8, 16]}
"""


def write_spec(folder: Path, search: str, name: str = "spec.yaml") -> Path:
    spec = folder / name
    spec.write_text(BASE + search, encoding="utf-8")
    return spec


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def tune(spec: Path, run: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return specc("tune", str(spec), "-o", str(run), *args, timeout=timeout)


def without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def random_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One random search of 3 trials: (spec, run directory, stderr)."""
    folder = tmp_path_factory.mktemp("tune")
    spec = write_spec(folder, RANDOM)
    done = tune(spec, folder / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    return spec, folder / "run", done.stderr


def test_random_search_writes_every_output(random_search: tuple[Path, Path, str]) -> None:
    spec, run, stderr = random_search
    rows = read_csv(run / "trials.csv")
    assert list(rows[0]) == [
        "number", "state", "value", "epochs", "seconds",
        "optimizer.lr", "layers.0.dense.units", "message",
    ]  # fmt: skip
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert all(1e-3 <= float(r["optimizer.lr"]) <= 1e-1 for r in rows)
    assert all(r["layers.0.dense.units"] in ("4", "8", "16") for r in rows)
    assert all(r["epochs"] == "3" for r in rows)
    # one progress line per trial, with the best so far
    lines = [line for line in stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3 and all("best " in line for line in lines), stderr
    best_row = min(rows, key=lambda r: float(r["value"]))
    # trial directories are ordinary runs: spec.yaml without search, trained without refit
    for r in rows:
        trial = run / "trials" / f"{int(r['number']):04d}"
        trial_spec = yaml.safe_load((trial / "spec.yaml").read_text())
        assert "search" not in trial_spec
        assert trial_spec["stopping"]["refit"] == "none"
        assert trial_spec["optimizer"]["lr"] == pytest.approx(float(r["optimizer.lr"]), rel=1e-5)
        summary = json.loads((trial / "summary.json").read_text())
        assert summary["metrics"]["val"]["loss"] == pytest.approx(float(r["value"]))
        code = "".join(p.read_text() for p in (trial / "code").glob("*.py"))
        assert "optuna" not in code  # the generated code never imports Optuna
    # best.yaml: the best trial's values with the spec's own refit rule; final/ trained from it
    best = yaml.safe_load((run / "best.yaml").read_text())
    assert "search" not in best and best["stopping"]["refit"] == "continue"
    assert best["layers"][0]["dense"]["units"] == int(best_row["layers.0.dense.units"])
    final = json.loads((run / "final" / "summary.json").read_text())
    assert final["refit"]["strategy"] == "continue" and "test" in final["metrics"]
    assert (run / "search.png").stat().st_size > 1000
    assert (run / "study.journal").is_file()


def test_trial_spec_reproduces_with_specc_train(
    random_search: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, run, _ = random_search
    done = specc("train", str(run / "trials" / "0000" / "spec.yaml"), "-o", str(tmp_path / "again"))
    assert done.returncode == 0, done.stderr[-3000:]
    again = without_seconds(read_csv(tmp_path / "again" / "metrics.csv"))
    assert again == without_seconds(read_csv(run / "trials" / "0000" / "metrics.csv"))


def test_one_seeded_worker_gives_the_same_trials(
    random_search: tuple[Path, Path, str], tmp_path: Path
) -> None:
    spec, run, _ = random_search
    done = tune(spec, tmp_path / "rerun", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    first = without_seconds(read_csv(run / "trials.csv"))
    assert without_seconds(read_csv(tmp_path / "rerun" / "trials.csv")) == first


def test_median_pruner_prunes_a_terrible_learning_rate(tmp_path: Path) -> None:
    # grid seed 5 tries the choices in order: the good lr first, then the two that barely learn
    spec = write_spec(
        tmp_path,
        "search:\n  trials: 3\n  sampler: grid\n  pruner: median\n  seed: 5\n  space:\n"
        "    optimizer.lr: {choice: [0.1, 1.0e-6, 2.0e-6]}\n",
    )
    done = tune(spec, tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert [r["optimizer.lr"] for r in rows] == ["0.1", "1e-06", "2e-06"]
    assert rows[0]["state"] == "complete"
    assert [r["state"] for r in rows[1:]] == ["pruned", "pruned"], rows
    for r in rows[1:]:
        assert int(r["epochs"]) < 3
        trial = tmp_path / "run" / "trials" / f"{int(r['number']):04d}"
        assert len(read_csv(trial / "metrics.csv")) == int(r["epochs"])
        assert json.loads((trial / "summary.json").read_text())["epochs_run"] == int(r["epochs"])
    assert "pruned after epoch 1" in done.stderr


def test_failed_trial_is_failed_with_its_message(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        "search:\n  trials: 2\n  sampler: grid\n  seed: 5\n  space:\n"
        "    optimizer.lr: {choice: [0.1, 1.0e+30]}\n",
    )
    done = tune(spec, tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["optimizer.lr"]: r for r in read_csv(tmp_path / "run" / "trials.csv")}
    assert rows["1e+30"]["state"] == "failed"  # never "pruned"
    assert "loss became nan" in rows["1e+30"]["message"]
    assert rows["0.1"]["state"] == "complete"
    import optuna

    study = optuna.load_study(
        study_name="iris_tune",
        storage=optuna.storages.journal.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "run" / "study.journal"))
        ),
    )
    states = {t.params["optimizer.lr"]: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "FAIL"}
    assert all("test" not in key for t in study.trials for key in t.user_attrs)


REFUSED = """\
search:
  metric: val_loss
  trials: 2
  sampler: random
  seed: 7
  space:
    optimizer.nesterov: {choice: [false, true]}
    optimizer.momentum: {choice: [0.0, 0.9]}
    optimizer.lr: {choice: [0.05, 0.1]}
    layers.0.dense.units: {choice: [8, 16]}
    layers.0.dense.activation: {choice: [relu, tanh]}
    training.batch_size: {choice: [16, 32]}
    data.split.seed: {choice: [0, 1]}
"""
"""128 corners, more than the 64 that specc check combines: each value alone is checked, and
passes, but nesterov: true with momentum: 0 does not (seed 7 draws it first, then a good one)."""


def test_trial_the_checker_refuses_is_failed_with_its_message(tmp_path: Path) -> None:
    # within the corner limit no trial can fail the checker (docs/search.md, and the property
    # test in test_search_check.py); beyond it a combination can, and is a failed trial
    spec = write_spec(tmp_path, REFUSED)
    checked = specc("check", str(spec))
    assert checked.returncode == 0, checked.stderr
    done = tune(spec, tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert [r["state"] for r in rows] == ["failed", "complete"], rows
    assert (rows[0]["optimizer.nesterov"], rows[0]["optimizer.momentum"]) == ("true", "0")
    assert rows[0]["message"] == (
        f"{spec}:9:12: error[invalid-value]: optimizer: nesterov: true needs momentum > 0"
    )
    assert rows[0]["epochs"] == "" and not (tmp_path / "run" / "trials" / "0000").exists()
    assert "trial 0 [1/2] failed: " in done.stderr  # the progress line says why
    alone = write_spec(tmp_path, REFUSED.replace("trials: 2", "trials: 1"), "alone.yaml")
    done = tune(alone, tmp_path / "alone")  # every trial refused by the checker: exit 1
    assert done.returncode == 1 and "no trial completed" in done.stderr, done.stderr[-3000:]


def _start(spec: Path, run: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    command = [sys.executable, "-m", "specc", "tune", str(spec), "-o", str(run), "--quiet", *args]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_resume_after_a_kill_retries_the_running_trial(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, RANDOM.replace("trials: 3", "trials: 2"))
    run = tmp_path / "run"
    proc = _start(spec, run)
    _wait_for(run / "trials" / "0001" / "last.pt", proc)  # trial 1 is training
    os.killpg(proc.pid, signal.SIGKILL)  # tune, and the trial's train.py with it
    proc.wait()
    again = tune(spec, run)
    assert again.returncode == 2 and "--resume" in again.stderr  # not without --resume
    done = tune(spec, run, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trial 1 was left running: retried" in done.stderr
    rows = read_csv(run / "trials.csv")
    states = [r["state"] for r in rows]
    assert states.count("complete") == 2 and states[1] == "retried", rows
    retry = next(r for r in rows[2:] if r["state"] == "complete")
    assert (retry["optimizer.lr"], retry["layers.0.dense.units"]) == (
        rows[1]["optimizer.lr"],
        rows[1]["layers.0.dense.units"],
    )
    assert (run / "final" / "summary.json").is_file()


def test_ctrl_c_exits_130_and_resumes(tmp_path: Path) -> None:
    # trial 0 lasts 200 epochs: the Ctrl-C after its first checkpoint always finds it training
    spec = write_spec(tmp_path, RANDOM.replace("trials: 3", "trials: 2"))
    spec.write_text(
        spec.read_text().replace("epochs: 3", "epochs: 200").replace("patience: 2", "patience: 150")
    )
    run = tmp_path / "run"
    proc = _start(spec, run)
    _wait_for(run / "trials" / "0000" / "last.pt", proc)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    rows = read_csv(run / "trials.csv")
    assert rows[0]["state"] == "retried"
    done = tune(spec, run, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(run / "trials.csv")
    assert [r["state"] for r in rows].count("complete") == 2
    assert rows[1]["optimizer.lr"] == rows[0]["optimizer.lr"]  # the interrupted values first


def test_two_workers_on_the_journal(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, RANDOM)
    done = tune(spec, tmp_path / "run", "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(tmp_path / "run" / "trials.csv")
    assert [r["state"] for r in rows] == ["complete"] * 3, rows
    for r in rows:
        trial_spec = yaml.safe_load(
            (tmp_path / "run" / "trials" / f"{int(r['number']):04d}" / "spec.yaml").read_text()
        )
        assert trial_spec["training"]["threads"] == 1


def _pids_of(*words: str) -> list[int]:
    """The processes whose command line holds each of `words`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args]
        if proc.name.isdigit() and all(w in text for w in words):
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds workers in /proc")
def test_a_killed_worker_has_its_trial_retried(tmp_path: Path) -> None:
    # the journal has no heartbeat: specc tune sees its worker process die, and the trial it
    # left running is failed and retried (the other worker, waiting for it, runs it again)
    spec = write_spec(
        tmp_path,
        RANDOM.replace("trials: 3", "trials: 2"),
    )
    spec.write_text(
        spec.read_text().replace("epochs: 3", "epochs: 200").replace("patience: 2", "patience: 150")
    )
    run = tmp_path / "run"
    proc = _start(spec, run, "--workers", "2")
    for number in ("0000", "0001"):  # both workers are training
        _wait_for(run / "trials" / number / "last.pt", proc)
    (worker,) = _pids_of("--worker", "1", str(run))
    os.kill(worker, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr[-3000:]
    assert "worker 1 exited with status 137; trial " in stderr, stderr
    rows = read_csv(run / "trials.csv")
    states = [r["state"] for r in rows]
    assert sorted(states) == ["complete", "complete", "retried"], rows
    lost = next(r for r in rows if r["state"] == "retried")
    again = rows[2]
    assert again["state"] == "complete" and again["optimizer.lr"] == lost["optimizer.lr"]
    assert (run / "final" / "summary.json").is_file()


def test_sqlite_storage(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, RANDOM.replace("trials: 3", "trials: 2"))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    done = tune(spec, tmp_path / "run", "--storage", url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "study.db").is_file() and not (tmp_path / "run" / "study.journal").exists()
    assert [r["state"] for r in read_csv(tmp_path / "run" / "trials.csv")] == ["complete"] * 2
    assert json.loads((tmp_path / "run" / "tune.json").read_text())["storage"] == url


def test_usage_and_spec_errors(tmp_path: Path) -> None:
    plain = write_spec(tmp_path, "", "plain.yaml")
    done = tune(plain, tmp_path / "a")
    assert done.returncode == 2 and "no search: section" in done.stderr
    bad = write_spec(tmp_path, RANDOM.replace("val_loss", "test_loss"), "bad.yaml")
    done = tune(bad, tmp_path / "b")
    assert done.returncode == 1 and "search-on-test" in done.stderr
    spec = write_spec(tmp_path, RANDOM)
    done = tune(spec, tmp_path / "c", "--resume")
    assert done.returncode == 2 and "nothing to resume" in done.stderr
    done = specc("tune", str(spec), "--workers", "0", "-o", str(tmp_path / "d"))
    assert done.returncode == 2
    done = specc("tune", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "no such file" in done.stderr


OUTPUTS = ("trials.csv", "search.png", "best.yaml", "final")


def written_after_every_trial(outputs: Path, *runs: Path) -> None:
    """trials.csv lists every trial finished, and was written after the last trial ended (its
    summary.json) in any of the run directories."""
    rows = read_csv(outputs / "trials.csv")
    assert "running" not in [r["state"] for r in rows], rows
    ended = [p.stat().st_mtime for run in runs for p in run.glob("trials/*/summary.json")]
    assert ended and (outputs / "trials.csv").stat().st_mtime >= max(ended)


def test_two_workers_and_one_trial(tmp_path: Path) -> None:
    # the worker left without a trial waits for the other's, and ends well; the outputs are
    # written once, by `specc tune` itself, after the trial
    spec = write_spec(tmp_path, RANDOM)
    run = tmp_path / "run"
    done = tune(spec, run, "--workers", "2", "--trials", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "worker " not in done.stderr  # no worker process exited with an error
    assert [r["state"] for r in read_csv(run / "trials.csv")] == ["complete"]
    assert [p.name for p in (run / "trials").iterdir()] == ["0000"]
    written_after_every_trial(run, run)
    assert (run / "final" / "summary.json").is_file() and (run / "best.yaml").is_file()
    assert done.stdout.count("done: 1 trials; best trial 0") == 1


def test_two_processes_and_one_trial_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    # two processes on one database study, as on two machines, each in its own RUN_DIR: one
    # trains the only trial, the other waits for it; both exit 0, and exactly one of them
    # (the one that claims the finished study) writes trials.csv, best.yaml and final/
    spec = write_spec(tmp_path, RANDOM)
    runs = [tmp_path / "a", tmp_path / "b"]
    first = _start(spec, runs[0], "--storage", postgres_url, "--trials", "1")
    done = tune(spec, runs[1], "--storage", postgres_url, "--trials", "1", "--quiet")
    out, err = first.communicate(timeout=400)
    assert first.returncode == 0, err[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    writers = [run for run in runs if (run / "trials.csv").exists()]
    assert len(writers) == 1, "trials.csv written by both processes, or by neither"
    (writer,) = writers
    (other,) = [run for run in runs if run != writer]
    assert all((writer / name).exists() for name in OUTPUTS)
    assert not any((other / name).exists() for name in OUTPUTS)
    assert [r["state"] for r in read_csv(writer / "trials.csv")] == ["complete"]
    trained = [p.name for p in tmp_path.glob("[ab]/trials/*")]
    assert trained == ["0000"]
    written_after_every_trial(writer, *runs)
    report = (out if other == runs[0] else done.stdout).strip().splitlines()[-1]
    assert report.startswith("done: 1 trials; best trial 0 (val_loss ") and report.endswith(
        f"trials.csv, best.yaml and final/ are written by {socket.gethostname()}:{writer.resolve()}"
    ), report


def test_without_the_tune_extra(tmp_path: Path) -> None:
    from tests.test_cli_extras import specc_without

    args = ("tune", "specs/digits_search.yaml", "-o", str(tmp_path / "r"))
    result = specc_without(("optuna",), *args, tmp=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "specc tune: error: the tune extras are not installed (no module named 'optuna'): "
        "pip install 'specc[tune]'"
    ]
    assert not (tmp_path / "r").exists()
