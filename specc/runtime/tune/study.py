"""The Optuna side of `specc tune`: storage, sampler, pruner, drawing a trial's values from the
SearchIR, and the bookkeeping of retried trials.

A trial that never finished (its process was killed, or Ctrl-C stopped it) is failed and its
values are enqueued again with the user attribute `retry_of` naming it; such a failed trial is
`retried`, and does not count towards the number of trials. A worker finds those trials: on
`--resume`, every trial left running by this run directory (attribute `owner`: the tune process
holding the directory's lock is the only one that can run them); in a database shared by several
machines, also any trial whose heartbeat stopped (Optuna's RDB heartbeat).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
import optuna.storages.journal
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from specc.analysis.ir import ChoiceIR, FloatRangeIR, IntRangeIR, SearchIR

HEARTBEAT_SECONDS = 20
"""How often a trial on a database storage records that its process is alive."""
GRACE_SECONDS = 90
"""A database trial whose heartbeat is older than this is stale: failed and retried."""
SCHEMA_TRIES = 5
"""Tries at opening a database storage (tests/test_postgres.py starts two workers together)."""


def quiet_optuna() -> None:
    """Optuna's own log lines and experimental-feature warnings would drown the progress."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module="optuna")


def storage(url: str | None, journal: str) -> optuna.storages.BaseStorage:
    """A database URL as RDBStorage (with heartbeats, so that a dead machine's trials are
    retried), else the journal file (appends under a file lock: several local workers)."""
    if url is not None:
        import sqlalchemy.exc

        def rdb() -> optuna.storages.RDBStorage:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=retry,
            )

        for _ in range(SCHEMA_TRIES - 1):  # processes that start together on an empty database
            try:  # race to create Optuna's tables; all but one lose, once they exist
                return rdb()
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                time.sleep(0.2)
        return rdb()
    backend = optuna.storages.journal.JournalFileBackend(journal)
    return optuna.storages.journal.JournalStorage(backend)


def sampler(ir: SearchIR, draws: int, worker: int) -> optuna.samplers.BaseSampler:
    """The sampler for the next trial. random and tpe are seeded per draw (seed, trials so far,
    worker), so a resumed study never repeats the first draws and one worker always draws the
    same sequence; qmc and grid keep one seed, their sequence lives in the storage."""
    seed = (ir.seed * 1_000_003 + draws * 7919 + worker * 104_729) % 2**32
    if ir.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if ir.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, startup(ir)))
    if ir.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=ir.seed, scramble=True)
    return optuna.samplers.GridSampler(grid(ir), seed=ir.seed)


def startup(ir: SearchIR) -> int:
    """Trials a pruner (and TPE) waits for before it compares: a quarter of the trials,
    between 1 and 5 (Optuna's default 5 would never prune a small search)."""
    return max(1, min(5, ir.trials // 4))


def pruner(ir: SearchIR, epochs: int) -> optuna.pruners.BasePruner:
    """median: below the median of earlier trials at the same epoch; hyperband over 1..epochs."""
    if ir.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup(ir), n_warmup_steps=0)
    if ir.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def grid(ir: SearchIR) -> dict[str, list[Any]]:
    """Every value of each (discrete) dimension, in Optuna's terms: choices by index."""
    out: dict[str, list[Any]] = {}
    for p in ir.space:
        d = p.distribution
        if isinstance(d, ChoiceIR):
            out[p.key] = list(range(len(d.values)))
        elif isinstance(d, IntRangeIR):
            out[p.key] = list(range(d.low, d.high + 1, d.step))
        elif d.step is not None:
            n = int(math.floor((d.high - d.low) / d.step + 1e-9))
            out[p.key] = [float(f"{d.low + i * d.step:.12g}") for i in range(n + 1)]
        else:  # analysis rejects a grid over a continuous range
            raise ValueError(f"{p.key}: a grid needs discrete values")
    return out


def target(ir: SearchIR, trials: int) -> int:
    """Trials to run: `trials`, or the grid's size when that is smaller."""
    if ir.sampler == "grid" and ir.grid_size is not None:
        return min(trials, ir.grid_size)
    return trials


def distributions(ir: SearchIR) -> dict[str, BaseDistribution]:
    """Each key's Optuna distribution (a choice is the index of a value)."""
    out: dict[str, BaseDistribution] = {}
    for p in ir.space:
        d = p.distribution
        if isinstance(d, ChoiceIR):
            out[p.key] = optuna.distributions.CategoricalDistribution(list(range(len(d.values))))
        elif isinstance(d, IntRangeIR):
            step = 1 if d.log else d.step
            out[p.key] = optuna.distributions.IntDistribution(d.low, d.high, log=d.log, step=step)
        else:
            out[p.key] = optuna.distributions.FloatDistribution(
                d.low, d.high, log=d.log, step=d.step
            )
    return out


def draw(trial: Trial, ir: SearchIR) -> dict[str, Any]:
    """The trial's value of every key, in spec order: a choice's value itself (a scalar, a
    mapping or a list), drawn as its index."""
    values: dict[str, Any] = {}
    for p in ir.space:
        d = p.distribution
        if isinstance(d, ChoiceIR):
            values[p.key] = d.values[trial.suggest_categorical(p.key, list(range(len(d.values))))]
        elif isinstance(d, IntRangeIR):
            step = 1 if d.log else d.step
            values[p.key] = trial.suggest_int(p.key, d.low, d.high, step=step, log=d.log)
        else:
            assert isinstance(d, FloatRangeIR)
            x = trial.suggest_float(p.key, d.low, d.high, log=d.log, step=d.step)
            values[p.key] = float(f"{x:.12g}") if d.step is not None else x
    return values


def value_of(ir: SearchIR, key: str, param: Any) -> Any:
    """A stored Optuna parameter as the spec value (a choice's index as its value)."""
    for p in ir.space:
        if p.key == key and isinstance(p.distribution, ChoiceIR):
            return p.distribution.values[int(param)]
    return param


def tell(study: optuna.Study, trial: Trial | int, **kwargs: Any) -> None:
    """study.tell; GridSampler calls study.stop() when the grid is used up, which raises outside
    study.optimize, after the trial is stored (Optuna stores it in a `finally`)."""
    try:
        study.tell(trial, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue an unfinished trial's values again (also Optuna's stale-heartbeat callback)."""
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def retried(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of the trials that a later trial retries."""
    return {int(t.user_attrs["retry_of"]) for t in trials if "retry_of" in t.user_attrs}


def counts(trial: FrozenTrial, retried_numbers: set[int]) -> bool:
    """Whether a trial counts towards the number of trials: finished or running, not retried
    and not surplus."""
    if trial.user_attrs.get("surplus"):
        return False
    if trial.state == TrialState.FAIL:
        return trial.number not in retried_numbers
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def counted(trials: list[FrozenTrial], below: int | None = None) -> int:
    """How many trials count (only those numbered below `below`, when given)."""
    again = retried(trials)
    return sum(counts(t, again) for t in trials if below is None or t.number < below)


def fail_stale(study: optuna.Study, owner: str) -> list[int]:
    """Fail and retry the trials left running by this run directory's earlier processes (the
    caller holds its lock), and those whose heartbeat stopped; their numbers."""
    optuna.storages.fail_stale_trials(study)  # heartbeat storages: calls retry() itself
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("owner") == owner:
            tell(study, t.number, state=TrialState.FAIL)
            retry(study, t)
            stale.append(t.number)
    return stale


CLAIM_WAIT_SECONDS = 5.0
"""How long a process that lost the claim waits for the winner to write its name."""


def claim_final(study: optuna.Study, owner: str) -> str:
    """Claim the writing of the study's outputs (trials.csv, search.png, best.yaml, final/) at
    its present number of trials N, its trials all finished; who holds the claim (`owner` when
    this process does, now or since an earlier process of the same run directory).

    The claim is an empty study NAME:final:N in the same storage (a spec's name has no colon):
    creating a study is atomic in every Optuna storage (a database's unique study name; the
    journal's order of operations), so of the processes that finish a study together exactly
    one creates it. A study that a later run takes further (`--trials` raised) is claimed anew
    at its new number of trials."""
    n = counted(study.get_trials(deepcopy=False))
    name = f"{study.study_name}:final:{n}"
    store = study._storage
    try:
        claim = store.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    except optuna.exceptions.DuplicatedStudyError:
        claim = store.get_study_id_from_name(name)
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        while time.monotonic() < deadline:  # the winner writes its name right after
            holder = store.get_study_user_attrs(claim).get("owner")
            if holder is not None:
                return str(holder)
            time.sleep(0.1)
        # the winner died between the two writes: nobody else will write the outputs
    store.set_study_user_attr(claim, "owner", owner)
    return owner


def abandoned(study: optuna.Study, owner: str, worker: int) -> list[int]:
    """Fail and retry the trials that worker process `worker` of this run directory left
    running when it died; their numbers."""
    lost = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("owner") == owner and t.user_attrs.get("worker") == worker:
            tell(study, t.number, state=TrialState.FAIL)
            retry(study, t)
            lost.append(t.number)
    return lost


@dataclass
class Heartbeat:
    """Records a database trial's heartbeat every HEARTBEAT_SECONDS while it trains."""

    storage: optuna.storages.BaseStorage
    trial_id: int

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        beats = getattr(self.storage, "get_heartbeat_interval", lambda: None)()
        if beats:  # a database storage (the study wraps it in a cache that passes it on)
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)  # type: ignore[attr-defined]
            if self.stop.wait(HEARTBEAT_SECONDS):
                return
