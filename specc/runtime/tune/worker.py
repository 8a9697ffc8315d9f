"""A worker of `specc tune`: ask the study for a trial, check and train it, tell the result;
until the study has its number of trials. One worker runs inside `specc tune`; with --workers N,
N processes `specc tune --worker K` share the study's storage.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from specc.codegen.render import compile_program, write_files
from specc.exitcodes import Interrupted
from specc.pipeline import check_file
from specc.runtime.train import SIGNALS
from specc.runtime.tune import study as st
from specc.runtime.tune.trial import (
    Base,
    epochs_run,
    first_error,
    relocate,
    summary,
    train,
    trial_spec,
    write_spec,
)

WAIT_SECONDS = 1.0
"""How often a worker with nothing left to ask looks whether the others' trials ended."""


@dataclass(frozen=True)
class Job:
    """What every worker of one tune run shares."""

    base: Base
    run: Path
    trials: int
    """The number of trials to reach (search.trials or --trials, at most the grid's size)."""
    owner: str
    """Who runs this worker's trials: host and run directory (see study.fail_stale)."""
    threads: bool
    """Train each trial with one thread (several workers)."""
    quiet: bool = False

    @property
    def hook(self) -> Path:
        """The epoch hook file every trial's train.py loads."""
        return self.run / "epoch_hook.py"


def trial_dir(run: Path, number: int) -> Path:
    """RUN/trials/NNNN."""
    return run / "trials" / f"{number:04d}"


def work(job: Job, study: optuna.Study, worker: int) -> None:
    """Run trials until the study counts job.trials of them, then wait until no trial of the
    study runs (the other workers', here or on other machines: one may die and be retried, and
    this worker then runs it). KeyboardInterrupt: the running trial is failed and retried, then
    the interrupt goes on."""
    while True:
        optuna.storages.fail_stale_trials(study)  # a database's dead trials: retried
        trials = study.get_trials(deepcopy=False)
        if st.counted(trials) >= job.trials:
            if not any(t.state == TrialState.RUNNING for t in trials):
                return
            time.sleep(WAIT_SECONDS)
            continue
        study.sampler = st.sampler(job.base.search, len(trials), worker)
        trial = study.ask()
        trial.set_user_attr("owner", job.owner)
        trial.set_user_attr("worker", worker)  # whose trial it is when that process dies
        if st.counted(study.get_trials(deepcopy=False), below=trial.number) >= job.trials:
            trial.set_user_attr("surplus", True)  # another worker asked first: never trained
            st.tell(study, trial, state=TrialState.FAIL)
            continue
        with st.Heartbeat(study._storage, trial._trial_id):
            run_trial(job, study, trial)
        progress(job, study, study.get_trials(deepcopy=False)[trial.number])


def run_trial(job: Job, study: optuna.Study, trial: optuna.Trial) -> None:
    """Draw, check, train and tell one trial."""
    started = time.perf_counter()
    base = job.base
    values = st.draw(trial, base.search)
    folder = trial_dir(job.run, trial.number)

    def fail(message: str, status: int | None = None) -> None:
        trial.set_user_attr("message", message)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
        if status is not None:
            trial.set_user_attr("exit_status", status)
        st.tell(study, trial, state=TrialState.FAIL)

    resolved, diags = trial_spec(base, values)
    if resolved is None:  # a point between the corners specc check tried
        fail(first_error(diags), 1)
        return
    write_spec(relocate(resolved, base.spec_dir, folder), folder / "spec.yaml")
    checked = check_file(folder / "spec.yaml")
    if not checked.ok or checked.program is None:
        fail(first_error(checked.diagnostics), 1)
        return
    write_files(compile_program(checked.program, folder / "code"), folder / "code")

    def report(epoch: int, value: float) -> bool:
        if not math.isfinite(value):
            return False  # train.py stops on a non-finite loss itself
        trial.report(value, epoch)
        return trial.should_prune()

    try:
        outcome = train(folder, job.hook, base.search.metric, report, job.threads)
    except KeyboardInterrupt:
        outcome = None
    trial.set_user_attr("epochs", epochs_run(folder))
    stopped = SIGNALS.received and outcome is not None and outcome.status != 0
    if outcome is None or outcome.status == 130 or stopped:  # stopped: SIGTERM came before
        fail("interrupted", 130)  # train.py armed its handlers (it exits 143, silently)
        st.retry(study, study.get_trials(deepcopy=False)[trial.number])
        raise Interrupted
    if outcome.status != 0:
        fail(outcome.message or f"train.py exited with status {outcome.status}", outcome.status)
        return
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
    if outcome.pruned:
        st.tell(study, trial, state=TrialState.PRUNED)
        return
    data = summary(folder) or {}
    value = data.get("metrics", {}).get("val", {}).get(base.search.metric.removeprefix("val_"))
    if not isinstance(value, int | float) or not math.isfinite(value):
        fail(f"summary.json has no finite {base.search.metric}: {value!r}", 0)
        return
    st.tell(study, trial, values=float(value))


def state_name(trial: FrozenTrial, retried: set[int]) -> str:
    """complete, pruned, failed, retried (failed, its values tried again), running, waiting."""
    if trial.state == TrialState.FAIL:
        return "retried" if trial.number in retried else "failed"
    return {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }[trial.state]


def best(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or None."""
    try:
        return study.best_trial
    except ValueError:
        return None


def shown(value: Any) -> str:
    """A value in a progress line or trials.csv: numbers short, mappings as YAML flow."""
    from specc.runtime.tune.trial import flow

    if isinstance(value, float):
        return f"{value:.6g}"
    return flow(value)


def progress(job: Job, study: optuna.Study, trial: FrozenTrial) -> None:
    """One line per finished trial: its state and value, the best so far, its values."""
    if job.quiet:
        return
    trials = study.get_trials(deepcopy=False)
    metric = job.base.search.metric
    state = state_name(trial, st.retried(trials))
    if trial.state == TrialState.COMPLETE:
        what = f"{metric} {trial.value:.6g}"
    elif trial.state == TrialState.PRUNED:
        what = f"pruned after epoch {trial.user_attrs.get('epochs', '?')}"
        if trial.value is not None:
            what += f" ({metric} {trial.value:.6g})"
    else:
        what = f"{state}: {trial.user_attrs.get('message', '')}"
    top = best(study)
    best_text = f"best {top.value:.6g} (trial {top.number})" if top is not None else "best -"
    params = "  ".join(
        f"{k}={shown(st.value_of(job.base.search, k, v))}" for k, v in trial.params.items()
    )
    done = st.counted(trials)
    seconds = trial.user_attrs.get("seconds", 0.0)
    print(
        f"trial {trial.number} [{done}/{job.trials}] {what}  {best_text}  {params}  {seconds:.1f}s",
        file=sys.stderr,
        flush=True,
    )
