"""Inference latency: ONNX Runtime vs PyTorch eager on the same exported digits MLP.

    .venv/bin/python bench/inference_speed.py [--run RUN_DIR] [--rounds 15] [--threads N]

Without --run, trains specs/digits_mlp.yaml for 5 epochs into a temporary run directory
(`specc train`). The run is exported with `specc export`'s own code (verified), then both
engines run `predict` on batches of 1 and 1024 rows of the test split in the same process,
interleaved round by round (so drift on a shared machine hits both alike), with the same
number of intra-op threads. Each round times a block of calls; the medians of the per-call
times are reported, with the ratio torch / onnxruntime (> 1: ONNX Runtime is faster).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from specc.runtime import onnx_common as oc
from specc.runtime.export import export_run, import_file, load_model, read_run

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 1024)
CALL_SECONDS = 0.2
"""Rough time each round spends per engine and batch size."""


def train_digits_mlp(out: Path, epochs: int) -> Path:
    """`specc train specs/digits_mlp.yaml` for a few epochs into `out`."""
    command = [sys.executable, "-m", "specc", "train", str(REPO_ROOT / "specs" / "digits_mlp.yaml")]
    command += ["-o", str(out), "--set", f"training.epochs={epochs}"]
    subprocess.run(command, check=True, cwd=REPO_ROOT, capture_output=True)
    return out


def inputs(run_dir: Path, size: int) -> np.ndarray:
    """`size` rows of the run's test split (cycled), float32, C-contiguous."""
    x = import_file(run_dir / "code" / "data.py", "data").load().x_test
    return np.ascontiguousarray(x[np.arange(size) % len(x)], dtype=np.float32)


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call over a block of `calls` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_for(fn: Callable[[], object]) -> int:
    """How many calls fill about CALL_SECONDS (after a warm-up)."""
    for _ in range(3):
        fn()
    once = per_call(fn, 5)
    return max(5, int(CALL_SECONDS / max(once, 1e-7)))


def engines(run_dir: Path, onnx_path: Path, threads: int) -> dict[str, Callable]:
    """Factories: engine name -> (batch -> a no-argument predict call)."""
    model, _, _ = load_model(read_run(run_dir))
    sess = oc.session(str(onnx_path), threads=threads)

    def torch_call(x: np.ndarray) -> Callable[[], object]:
        tensor = torch.from_numpy(x)

        def call() -> object:
            with torch.inference_mode():
                return model.predict(tensor)

        return call

    def ort_call(x: np.ndarray) -> Callable[[], object]:
        return lambda: sess.run([oc.OUTPUT_NAME], {oc.INPUT_NAME: x})

    return {"torch": torch_call, "onnxruntime": ort_call}


def bench(run_dir: Path, onnx_path: Path, rounds: int, threads: int) -> dict:
    """Median seconds per call for each (engine, batch), interleaved over rounds."""
    torch.set_num_threads(threads)
    data = inputs(run_dir, max(BATCHES))
    calls = {
        (name, b): make(data[:b]) for name, make in engines(run_dir, onnx_path, threads).items()
        for b in BATCHES
    }  # fmt: skip
    counts = {key: calls_for(fn) for key, fn in calls.items()}
    times: dict[tuple[str, int], list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            times[key].append(per_call(fn, counts[key]))
    return {key: statistics.median(v) for key, v in times.items()}


def report(medians: dict, threads: int) -> None:
    """Print latencies (µs per call and per row) and the torch / onnxruntime ratio."""
    print(f"digits MLP predict, {threads} intra-op thread(s), medians of interleaved rounds")
    print(f"{'batch':>6} {'torch eager':>14} {'onnxruntime':>14} {'torch/ort':>10}")
    for b in BATCHES:
        t, o = medians[("torch", b)], medians[("onnxruntime", b)]
        print(f"{b:>6} {t * 1e6:>11.1f} µs {o * 1e6:>11.1f} µs {t / o:>9.2f}x")
    for b in BATCHES[1:]:
        t, o = medians[("torch", b)], medians[("onnxruntime", b)]
        print(f"per row at {b}: torch {t / b * 1e9:.0f} ns, onnxruntime {o / b * 1e9:.0f} ns")


def main() -> int:
    """Parse arguments, prepare the run and its export, benchmark, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a digits_mlp run directory (default: train)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs when training")
    parser.add_argument("--rounds", type=int, default=15)
    # one thread each by default: on a shared 2-core machine torch's two threads collapse
    # whenever another process is busy (docs/deployment.md, "Inference speed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train_digits_mlp(Path(tmp) / "run", args.epochs)
        onnx_path = Path(tmp) / "digits_mlp.onnx"
        print(export_run(run_dir, onnx_path).line())
        report(bench(run_dir, onnx_path, args.rounds, args.threads), args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
