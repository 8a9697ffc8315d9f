"""`specc tune SPEC [-o RUN_DIR] [--trials N] [--workers N] [--storage URL] [--resume]`: the
hyperparameter search of the spec's `search:` section, on Optuna (docs/search.md).

RUN_DIR holds the study (study.journal, unless the search names a database), tune.json (which
storage and study), epoch_hook.py, one ordinary run directory per trial (trials/NNNN/, trained
with stopping.refit none: a refit would train on the validation split that ranks the trials),
and at the end trials.csv, search.png, best.yaml (the best trial's spec with the spec's own
stopping and refit rules, without `search`) and final/ (best.yaml trained by `specc train`: the
one evaluation on the test split). Trials report only validation values to the study. Of the
processes that work on one study (--storage), the one that claims the finished study writes those
(study.claim_final); the others print its result and who writes them.

Exit statuses: 0 done, 1 spec errors (or no trial completed because the checker refused every
one), 2 usage errors, bad data, an unusable RUN_DIR, 130 interrupted (`--resume` continues).
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any, Literal

from specc.diagnostics import render_text
from specc.exitcodes import EXIT_ERRORS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from specc.runtime.train import lock_run_dir

STATE_FILE = "tune.json"
JOURNAL = "study.journal"
WORKER_POLL_SECONDS = 0.2
"""How often `specc tune --workers N` looks whether a worker process ended."""


def _error(message: str) -> None:
    print(f"specc tune: error: {message}", file=sys.stderr)


def _fixed(resolved: dict[str, Any], workers: int) -> tuple[str, ...]:
    """The overrides every trial gets: no refit (it would train on the validation split the
    trial is ranked by), one thread per trial when several workers share the CPUs, and one
    process per trial (the epoch hook talks to train.py through pipes, which torchrun does not
    pass on to its processes; final/ trains with the spec's training.devices)."""
    fixed = []
    if (resolved.get("stopping") or {}).get("refit", "none") != "none":
        fixed.append("stopping.refit=none")
    if (resolved.get("training") or {}).get("devices", 1) != 1:
        fixed.append("training.devices=1")
    if workers > 1 and (resolved.get("training") or {}).get("threads") == "auto":
        fixed.append("training.threads=1")
    return tuple(fixed)


def _fingerprint(resolved: dict[str, Any]) -> str:
    """What a resumed or joined study must share with this spec: all of it but the number of
    trials and the storage."""
    search = {k: v for k, v in (resolved.get("search") or {}).items() if k not in ("trials",)}
    search.pop("storage", None)
    return json.dumps({**resolved, "search": search}, sort_keys=True, default=str)


def run_tune(
    spec_path: str,
    run_dir: str | None,
    trials: int | None,
    workers: int,
    storage_url: str | None,
    resume: bool,
    worker: int | None = None,
    quiet: bool = False,
) -> int:
    """Run (or join, or resume) the search of `spec_path`; the exit status."""
    from specc.runtime.train import default_run_dir
    from specc.runtime.tune import study as st
    from specc.runtime.tune.trial import HOOK, Base, load_base
    from specc.runtime.tune.worker import Job

    st.quiet_optuna()
    try:
        program, value, tree, diags = load_base(spec_path)
    except FileNotFoundError:
        raise UsageError(f"cannot read {spec_path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {spec_path}: not UTF-8 text ({exc.reason})") from None
    if diags and worker is None:
        print(render_text(diags), file=sys.stderr)
    if program is None or value is None:
        return EXIT_ERRORS
    if program.search is None:
        _error(f"{spec_path} has no search: section (specc train trains it as written)")
        return EXIT_USAGE
    if workers < 1 or (trials is not None and trials < 1):
        _error("--trials and --workers take a number >= 1")
        return EXIT_USAGE
    if resume and run_dir is None:
        _error("--resume needs the run directory: specc tune SPEC -o RUN_DIR --resume")
        return EXIT_USAGE
    out = Path(run_dir) if run_dir is not None else default_run_dir(f"{program.name}-tune")
    search = program.search
    base = Base(
        spec_path,
        Path(spec_path).resolve().parent,
        value,
        tree,
        program,
        search,
        _fixed(program.resolved, workers),
    )
    job = Job(
        base,
        out,
        st.target(search, trials or search.trials),
        f"{socket.gethostname()}:{out.resolve()}",
        workers > 1,
        quiet,
    )
    if worker is not None:  # a process of --workers N: its parent holds the lock
        return _work(job, storage_url, worker)

    state = out / STATE_FILE
    if out.exists() and not out.is_dir():
        _error(f"{out} exists and is not a directory")
        return EXIT_USAGE
    if resume and not state.is_file():
        _error(f"{state} does not exist; nothing to resume (run it without --resume)")
        return EXIT_USAGE
    if not resume and out.is_dir() and any(out.iterdir()):
        _error(f"{out} already exists and is not empty; pick another -o, or add --resume")
        return EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(out)  # held to the end of `specc tune`
    if lock is None:
        _error(f"{out} is in use by another specc tune; wait for it, or pick another -o")
        return EXIT_USAGE
    if resume:
        saved = json.loads(state.read_text(encoding="utf-8"))
        storage_url = storage_url or saved.get("storage")
    else:
        storage_url = storage_url or search.storage
        state.write_text(
            json.dumps({"study": program.name, "storage": storage_url}, indent=2) + "\n",
            encoding="utf-8",
        )
    (out / "epoch_hook.py").write_text(HOOK, encoding="utf-8")
    if not quiet:
        print(f"tune directory: {out}", file=sys.stderr)
    try:
        return _search(job, storage_url, workers, resume)
    finally:
        lock.close()


def _open_study(job: Any, url: str | None, create: bool) -> Any:
    """The study in its storage (created when `create`), with this spec's sampler and pruner."""
    import optuna

    from specc.runtime.tune import study as st

    search = job.base.search
    storage = st.storage(url, str(job.run / JOURNAL))
    epochs = int(job.base.program.resolved["training"]["epochs"])
    kwargs: dict[str, Any] = {
        "study_name": job.base.program.name,
        "storage": storage,
        "sampler": st.sampler(search, 0, 0),
        "pruner": st.pruner(search, epochs),
    }
    if create:
        direction: Literal["minimize", "maximize"] = (
            "maximize" if search.direction == "max" else "minimize"
        )
        return optuna.create_study(direction=direction, load_if_exists=True, **kwargs)
    return optuna.load_study(**kwargs)


def _work(job: Any, url: str | None, worker: int) -> int:
    """`specc tune --worker K`: one worker process of --workers N."""
    from specc.runtime.train import SIGNALS
    from specc.runtime.tune.worker import work

    SIGNALS.install()
    try:
        work(job, _open_study(job, url, create=False), worker)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def _search(job: Any, url: str | None, workers: int, resume: bool) -> int:
    """Open the study, run its workers until no trial of it runs, then (the one process that
    claims it, of all those that worked on the study) write the outputs and train final/."""
    from specc.runtime.train import SIGNALS
    from specc.runtime.tune import study as st
    from specc.runtime.tune.worker import work

    SIGNALS.install()
    try:
        study = _open_study(job, url, create=True)
    except Exception as exc:  # an unreachable database, a corrupt journal: one line
        _error(f"cannot open the study in {url or job.run / JOURNAL}: {exc}")
        return EXIT_USAGE
    mark = _fingerprint(job.base.program.resolved)
    if "spec" not in study.user_attrs:
        study.set_user_attr("spec", mark)
    elif study.user_attrs["spec"] != mark:
        _error(
            f"the study {study.study_name!r} was started from another spec (or search); "
            "resume it with the spec it started with, or pick another -o"
        )
        return EXIT_USAGE
    for number in st.fail_stale(study, job.owner):
        print(f"trial {number} was left running: retried", file=sys.stderr)

    interrupted = False
    try:
        if workers == 1:
            work(job, study, 0)  # returns when no trial of the study runs
        else:
            interrupted = _run_workers(job, study, url, workers)
    except KeyboardInterrupt:
        interrupted = True
    interrupted = interrupted or SIGNALS.received
    if interrupted:  # a snapshot (running trials listed as such); the end rewrites them
        _reports(job, study)
        again = ["specc", "tune", job.base.path, "-o", str(job.run), "--resume"]
        print(f"specc tune: interrupted; resume with: {shlex.join(again)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    counted = st.counted(study.get_trials(deepcopy=False))
    if counted < job.trials:
        _reports(job, study)
        _error(f"only {counted} of {job.trials} trials ran (a worker failed; see above)")
        return EXIT_USAGE
    holder = st.claim_final(study, job.owner)
    if holder != job.owner:  # another process finished the study with this one: it reports
        return _joined(job, study, holder)
    _reports(job, study)
    return _final(job, study, resume)


def _reports(job: Any, study: Any) -> None:
    """trials.csv and search.png in RUN_DIR."""
    from specc.runtime.tune import report

    report.write_trials_csv(job.run / "trials.csv", study, job.base.search)
    report.plot_search(job.run / "search.png", study, job.base.search, job.base.program.name)


def _run_workers(job: Any, study: Any, url: str | None, workers: int) -> bool:
    """N processes `specc tune --worker K` on the study; True when interrupted. The trial of a
    worker that dies (killed, out of memory) is failed and retried: the journal has no
    heartbeat, and the other workers wait for every running trial."""
    from specc.runtime.train import SIGNALS
    from specc.runtime.tune import study as st
    from specc.runtime.tune.trial import exit_status

    command = [sys.executable, "-m", "specc", "tune", job.base.path, "-o", str(job.run)]
    command += ["--trials", str(job.trials), "--workers", str(workers)]
    command += ["--storage", url] if url else []
    command += ["--quiet"] * job.quiet
    running = {k: SIGNALS.start([*command, "--worker", str(k)]) for k in range(workers)}
    statuses = []
    while running:
        for k, child in list(running.items()):
            if child.poll() is None:
                continue
            statuses.append(exit_status(SIGNALS.wait(running.pop(k))))
            if statuses[-1] not in (EXIT_OK, EXIT_INTERRUPTED) and not SIGNALS.received:
                lost = "".join(f"; trial {n} retried" for n in st.abandoned(study, job.owner, k))
                print(f"worker {k} exited with status {statuses[-1]}{lost}", file=sys.stderr)
        if running:
            time.sleep(WORKER_POLL_SECONDS)
    return any(s == EXIT_INTERRUPTED for s in statuses)


def _no_trial(study: Any) -> int:
    """The exit status of a study without a complete trial: 1 when the checker refused every
    trial that failed, else 2."""
    _error("no trial completed; see trials.csv for why")
    failed = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("message")]
    checker = all(t.user_attrs.get("exit_status") == 1 for t in failed)
    return EXIT_ERRORS if failed and checker else EXIT_USAGE


def _joined(job: Any, study: Any, holder: str) -> int:
    """The end of a process that helped with a study another process finishes: the result."""
    from specc.runtime.tune import study as st
    from specc.runtime.tune.worker import best

    top = best(study)
    if top is None:
        return _no_trial(study)
    n = st.counted(study.get_trials(deepcopy=False))
    metric = job.base.search.metric
    print(f"done: {n} trials; best trial {top.number} ({metric} {top.value:.6g}); "
          f"trials.csv, best.yaml and final/ are written by {holder}")  # fmt: skip
    return EXIT_OK


def _final(job: Any, study: Any, resume: bool) -> int:
    """best.yaml and final/: the best trial's values with the spec's own stopping and refit
    rules, trained once more; its test metrics are the search's only test evaluation."""
    from specc.runtime.train import SIGNALS, run_train
    from specc.runtime.tune import study as st
    from specc.runtime.tune.trial import first_error, relocate, trial_spec, write_spec
    from specc.runtime.tune.worker import best

    top = best(study)
    search = job.base.search
    if top is None:
        return _no_trial(study)
    values = {k: st.value_of(search, k, v) for k, v in top.params.items()}
    resolved, diags = trial_spec(job.base, values, fixed=False)
    if resolved is None:
        _error(f"the best trial's spec fails: {first_error(diags)}")
        return EXIT_ERRORS
    best_yaml = job.run / "best.yaml"
    write_spec(relocate(resolved, job.base.spec_dir, job.run), best_yaml)
    final = job.run / "final"
    if (final / "summary.json").is_file() and resume:
        print(f"final/ is trained already: {final}", file=sys.stderr)
        status = EXIT_OK
    else:
        if not job.quiet:
            print(f"best trial {top.number}: {search.metric} {top.value:.6g}; training final/")
        SIGNALS.install()
        again = resume and (final / "last.pt").is_file()
        status = run_train(str(best_yaml), str(final), [], again, job.quiet)
    if status == EXIT_OK:
        print(f"done: {job.trials} trials; best trial {top.number} ({search.metric} "
              f"{top.value:.6g}); wrote {best_yaml} and {final}")  # fmt: skip
    return status
