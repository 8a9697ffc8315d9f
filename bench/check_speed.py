"""Time `specc check` on every spec against `python -c "import torch"` in the same interleaved run.

``specc check`` must not import torch (contract, section 3), so a check of one spec should cost
a small fraction of a torch import: the goal is a ratio check/import-torch of at most 0.3.
Each round runs ``import torch`` once and ``specc check FILE`` once per spec, all as fresh
subprocesses of this interpreter (``sys.executable``), so machine noise hits both alike; the
table shows medians over the rounds.

Usage (from anywhere)::

    python bench/check_speed.py [SPEC ...] [--runs 5] [--goal 0.3] [--enforce]

Without SPEC arguments every ``specs/*.yaml`` of the repository is timed. Exit status: 0, or 1
with ``--enforce`` when the worst ratio is above the goal; 2 when ``specc check`` cannot run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPORT_TORCH = [sys.executable, "-c", "import torch"]
# exit statuses of `specc check` that mean it ran: 0 valid, 1 the spec has errors
CHECK_RAN = (0, 1)


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one command, and the exit statuses seen."""

    label: str
    command: list[str]
    seconds: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)

    @property
    def median(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.seconds)


class CheckUnavailable(RuntimeError):
    """`python -m specc check` could not run at all (not installed, no CLI yet, or it crashed)."""


def run_once(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command from the repository root; return its wall-clock seconds and result."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def check_command(spec: Path) -> list[str]:
    """Return the `specc check` command line for one spec."""
    return [sys.executable, "-m", "specc", "check", str(spec)]


def probe(spec: Path) -> None:
    """Run `specc check` once (a warm-up); raise CheckUnavailable if it did not really run."""
    _, result = run_once(check_command(spec))
    output = (result.stderr or "") + (result.stdout or "")
    if "No module named specc" in output:
        raise CheckUnavailable(
            "`python -m specc` is not runnable yet (no specc/__main__.py or specc not installed "
            f"in {sys.executable}):\n  {output.strip().splitlines()[-1]}"
        )
    if "Traceback (most recent call last)" in output or result.returncode not in CHECK_RAN:
        tail = "\n  ".join(output.strip().splitlines()[-5:]) or "(no output)"
        raise CheckUnavailable(
            f"`python -m specc check {spec}` exited with status {result.returncode}:\n  {tail}"
        )


def measure(specs: list[Path], runs: int) -> tuple[Timing, list[Timing]]:
    """Time import torch and each spec's check, interleaved over `runs` rounds."""
    torch_timing = Timing("python -c 'import torch'", IMPORT_TORCH)
    checks = [Timing(f"specc check {_display(spec)}", check_command(spec)) for spec in specs]
    run_once(IMPORT_TORCH)  # warm the file cache for torch too, so neither side starts cold
    for _ in range(runs):
        for timing in [torch_timing, *checks]:
            seconds, result = run_once(timing.command)
            timing.seconds.append(seconds)
            timing.statuses.add(result.returncode)
    return torch_timing, checks


def _display(path: Path) -> str:
    """Return a path relative to the repository root when possible."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def report(torch_timing: Timing, checks: list[Timing], goal: float) -> float:
    """Print the table and summary; return the worst check/import-torch ratio."""
    base = torch_timing.median
    width = max(len(t.label) for t in [torch_timing, *checks])
    print(f"{'command':<{width}}  {'median s':>9}  {'vs torch':>8}  exit")
    print(f"{torch_timing.label:<{width}}  {base:>9.3f}  {1.0:>8.2f}  {_statuses(torch_timing)}")
    for timing in checks:
        ratio = timing.median / base
        flag = "" if ratio <= goal else "  <- above goal"
        print(
            f"{timing.label:<{width}}  {timing.median:>9.3f}  {ratio:>8.2f}  "
            f"{_statuses(timing)}{flag}"
        )
    ratios = [t.median / base for t in checks]
    worst = max(ratios)
    verdict = "meets" if worst <= goal else "MISSES"
    print(
        f"check/import-torch: median {statistics.median(ratios):.2f}, worst {worst:.2f} "
        f"over {len(checks)} spec(s) -> {verdict} the goal of <= {goal:.2f}"
    )
    return worst


def _statuses(timing: Timing) -> str:
    """Format the set of exit statuses seen."""
    return ",".join(str(s) for s in sorted(timing.statuses))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", type=Path, help="spec files (default specs/*.yaml)")
    parser.add_argument("--runs", type=int, default=5, help="rounds; medians over them")
    parser.add_argument("--goal", type=float, default=0.3, help="target check/import-torch ratio")
    parser.add_argument(
        "--enforce", action="store_true", help="exit 1 if any spec's ratio is above --goal"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be positive")

    specs = [p.resolve() for p in args.specs] or sorted((REPO_ROOT / "specs").glob("*.yaml"))
    missing = [p for p in specs if not p.is_file()]
    if missing:
        print(f"error: no such spec file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    if not specs:
        print(f"error: no specs to time: {REPO_ROOT / 'specs'} has no *.yaml", file=sys.stderr)
        return 2
    try:
        probe(specs[0])
    except CheckUnavailable as exc:
        print(f"error: cannot time specc check: {exc}", file=sys.stderr)
        return 2

    print(f"{len(specs)} spec(s), {args.runs} interleaved round(s), python {sys.executable}")
    torch_timing, checks = measure(specs, args.runs)
    broken = [t.label for t in checks if not t.statuses <= set(CHECK_RAN)]
    worst = report(torch_timing, checks, args.goal)
    if broken:
        print(f"warning: specc check did not run cleanly on: {', '.join(broken)}", file=sys.stderr)
    return 1 if args.enforce and worst > args.goal else 0


if __name__ == "__main__":
    sys.exit(main())
