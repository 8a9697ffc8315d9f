"""Time `specc tune` against training the same trials one after another with `specc train`.

The search is ``specs/digits_search.yaml`` (the digits MLP; lr, l2, units, dropout and batch size
searched with TPE, 40 epochs with early stopping) with ``pruner: none``, so that every trial trains
as long as its spec says and the sequential runs below do the same work. Three timings, each a
fresh run directory:

1. ``specc tune SPEC --trials N``: one worker; the time to the end of the last trial (when tune
   prints "training final/") and the whole command (final/ included);
2. ``specc train RUN/trials/NNNN/spec.yaml`` for each of those N trials, one after another: the
   same specs, the same metrics.csv (each trial directory is an ordinary run);
3. ``specc tune SPEC --trials N --workers 2``: two worker processes, each trial with one thread
   (its own draws: TPE seeded per worker, so the trials are not the same ones as in 1).

It prints each run's wall time as it ends, with the load average before and after (other
processes share the CPUs), then the ratios.

Usage::

    python bench/tune_speed.py [--trials 20] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "digits_search.yaml"
SPECC = [sys.executable, "-m", "specc"]


def bench_spec(directory: Path) -> Path:
    """specs/digits_search.yaml without the pruner, in `directory`."""
    text = SPEC.read_text(encoding="utf-8")
    assert "  pruner: median\n" in text, "specs/digits_search.yaml changed: update the bench"
    spec = directory / "digits_search.yaml"
    spec.write_text(text.replace("  pruner: median\n", "  pruner: none\n"), encoding="utf-8")
    return spec


def load() -> str:
    """The 1-minute load average, for the record."""
    return f"{os.getloadavg()[0]:.1f}"


def timed_tune(spec: Path, run: Path, trials: int, workers: int) -> tuple[float, float]:
    """(seconds to the end of the last trial, seconds of the whole command)."""
    command = [*SPECC, "tune", str(spec), "-o", str(run), "--trials", str(trials)]
    command += ["--workers", str(workers)]
    log = run.with_name(f"{run.name}.log")
    start = time.perf_counter()
    trials_done = None
    with (
        log.open("w") as err,
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:  # "best trial K: ...; training final/" once the trials end
            if "training final/" in line and trials_done is None:
                trials_done = time.perf_counter() - start
    total = time.perf_counter() - start
    if proc.returncode != 0 or trials_done is None:
        sys.exit(f"specc tune failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return trials_done, total


def timed_trains(run: Path, out: Path) -> float:
    """Seconds to train every trial spec of `run` with `specc train`, one after another."""
    specs = sorted(run.glob("trials/*/spec.yaml"))
    start = time.perf_counter()
    for spec in specs:
        done = subprocess.run(
            [*SPECC, "train", str(spec), "-o", str(out / spec.parent.name), "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"specc train {spec} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="leave the run directories here")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="specc-tune-bench-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    name = SPEC.relative_to(ROOT)
    print(f"{args.trials} trials of {name} (pruner: none), {os.cpu_count()} CPUs")
    print(f"{'run':<34} {'trials (s)':>10} {'+ final/ (s)':>13} {'load':>11}", flush=True)

    def row(what: str, seconds: float, total: float | None, before: str) -> None:
        total_text = "" if total is None else f"{total:.1f}"
        print(f"{what:<34} {seconds:>10.1f} {total_text:>13} {before + '->' + load():>11}")
        sys.stdout.flush()

    try:
        spec = bench_spec(root)
        before = load()
        one, one_total = timed_tune(spec, root / "tune1", args.trials, 1)
        row("specc tune, 1 worker", one, one_total, before)
        trained = len(list((root / "tune1").glob("trials/*/spec.yaml")))
        before = load()
        sequential = timed_trains(root / "tune1", root / "train")
        row(f"specc train x {trained}, one after another", sequential, None, before)
        before = load()
        many, many_total = timed_tune(spec, root / f"tune{args.workers}", args.trials, args.workers)
        row(f"specc tune, {args.workers} workers", many, many_total, before)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"tune, 1 worker / train x {trained}: {one / sequential:.2f} (trials only)")
    print(
        f"tune, {args.workers} workers / train x {trained}: {many / sequential:.2f} (trials only)"
    )
    print(f"tune, {args.workers} workers / tune, 1 worker: {many / one:.2f}")
    print("load: the 1-minute load average before -> after each run (shared CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
