"""A real PostgreSQL server (tests/pg.py) as the shared storage of an Optuna study: the setup
behind `specc tune --storage postgresql://...`, where worker processes on several machines
work on one study (contract §7)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import REPO_ROOT

WORKER = """
import sys

import optuna

url, name, worker = sys.argv[1:]
optuna.logging.set_verbosity(optuna.logging.WARNING)
sampler = optuna.samplers.RandomSampler(seed=int(worker))
study = optuna.create_study(study_name=name, storage=url, sampler=sampler, load_if_exists=True)


def objective(trial):
    trial.set_user_attr("worker", worker)
    x = trial.suggest_float("x", -1.0, 1.0)
    return x * x


study.optimize(objective, n_trials=3)
"""
"""One worker process: joins (or creates) the study in the database, runs 3 trials."""


def start_worker(url: str, study: str, worker: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, study, str(worker)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_two_worker_processes_share_one_optuna_study_on_postgresql(postgres_url: str) -> None:
    """Two processes started together, each creating the study or joining it (whichever comes
    second finds it), run 3 trials each: the study holds 6 complete trials, 3 from each.

    The tables are made first, by this process: Optuna's RDBStorage creates its schema with
    CREATE TYPE/TABLE statements that two processes on an empty database race on (a unique
    violation on pg_type), so whoever sets up a shared database makes the tables once."""
    optuna.storages.RDBStorage(postgres_url)  # the schema, no study yet
    workers = [start_worker(postgres_url, "shared", k) for k in (1, 2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert sorted(t.user_attrs["worker"] for t in trials) == ["1", "1", "1", "2", "2", "2"]
    assert all(t.value == pytest.approx(t.params["x"] ** 2) for t in trials)


def test_each_test_gets_an_empty_database_of_its_own(postgres_url: str) -> None:
    """No study of another test is visible."""
    assert optuna.study.get_all_study_summaries(storage=postgres_url) == []


SEARCH_SPEC = """\
name: iris_search
data: {source: "sklearn:iris", split: {val: 0.2, test: 0.2, seed: 0}}
input: {shape: [4]}
layers:
  - dense: {units: 8, activation: tanh}
output: {units: 3, activation: softmax}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 3, batch_size: 16}
search:
  metric: val_loss
  trials: 4
  sampler: random
  space:
    optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
"""


def start_tune(spec: Path, out: Path, url: str) -> subprocess.Popen[str]:
    """`specc tune SPEC -o OUT --storage URL --trials 4`, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "specc", "tune", str(spec), "-o", str(out), "--storage", url,
         "--trials", "4"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_two_specc_tune_processes_share_one_study_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two `specc tune --storage URL` processes (as on two machines: each its own run
    directory), started together on an empty database, run the 4 trials of one study between
    them; each trial is a run directory of the process that ran it. Both exit 0; exactly one
    of them (the one that claims the finished study) writes trials.csv, best.yaml, search.png
    and final/, after the last trial of either ended."""
    spec = tmp_path / "search.yaml"
    spec.write_text(SEARCH_SPEC)
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = [start_tune(spec, run, postgres_url) for run in runs]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="iris_search", storage=postgres_url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.number for t in complete) == [0, 1, 2, 3]
    trained = [sorted(p.name for p in (run / "trials").iterdir()) for run in runs]
    assert all(trained), f"one process ran no trial: {trained}"
    assert sorted(trained[0] + trained[1]) == ["0000", "0001", "0002", "0003"]
    outputs = ("trials.csv", "best.yaml", "search.png", "final")
    writers = [run for run in runs if (run / "trials.csv").exists()]
    assert len(writers) == 1, "trials.csv written by both processes, or by neither"
    (writer,) = writers
    (other,) = [run for run in runs if run != writer]
    assert all((writer / name).exists() for name in outputs)
    assert not any((other / name).exists() for name in outputs)
    with open(writer / "trials.csv", newline="") as f:
        assert [row["state"] for row in csv.DictReader(f)] == ["complete"] * 4
    ended = max(p.stat().st_mtime for run in runs for p in run.glob("trials/*/summary.json"))
    assert (writer / "trials.csv").stat().st_mtime >= ended
    assert (writer / "final" / "summary.json").is_file()
