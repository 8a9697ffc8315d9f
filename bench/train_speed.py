"""Time the generated train.py's step loop against the hand-written reference loops.

The job is the benchmark digits MLP (``specs/digits_mlp.yaml``'s network: 64 -> 128 ReLU -> Dropout
0.2 -> 64 ReLU -> 10, cross-entropy, Adam 1e-3, batch 64). The spec below is compiled with specc;
its generated ``train_epoch`` (randperm + slices, loss from log-softmax, no host sync per step, the
standardiser inside the model) is timed per epoch on the same tensors as ``run_tight`` and
``run_dataloader`` of ``bench/reference_loops.py``, in interleaved rounds whose order rotates, with
one intra-op thread for all (what the generated code picks for this model size). The goal:
generated within 5% of the tight loop. Then the generated script is run once end to end (``python
train.py``), and its own per-epoch seconds (training + evaluation of train and val) and wall time
are shown.

Usage::

    python bench/train_speed.py [--epochs 30] [--rounds 5] [--no-script]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import reference_loops as ref  # noqa: E402
from generated_code import compile_spec_text, import_train, run_script  # noqa: E402

SPEC = """\
name: bench_digits_mlp
data:
  source: sklearn:digits
  split: {val: 0.2, test: 0.2, seed: 0, stratify: true}
  normalize: standard
input: {shape: [64]}
init: {weights: torch}
layers:
  - dense: {units: 128, activation: relu}
  - dropout: {rate: 0.2}
  - dense: {units: 64, activation: relu}
output: {units: 10, activation: softmax}
loss: cross_entropy
optimizer: {name: adam, lr: 1.0e-3}
training: {epochs: %d, batch_size: 64, seed: 0}
"""


def compile_spec(directory: Path, epochs: int) -> Path:
    """Write the benchmark spec and compile it with specc into directory/code."""
    return compile_spec_text(directory / "bench_digits_mlp.yaml", SPEC % epochs)


def run_generated(train, data: dict[str, torch.Tensor], epochs: int, seed: int = 0) -> list[float]:
    """The generated code's model, optimizer and train_epoch; seconds per training epoch."""
    train.harness.seed_everything(seed)
    model = train.build_model()
    model.normalize.fit(data["x_train"])
    optimizer = train.build_optimizer(model)
    rng = torch.Generator().manual_seed(seed)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        _, mean_loss = train.train_epoch(
            model, train.Objective(model), optimizer, data["x_train"], data["y_train"], rng
        )
        float(mean_loss)  # the one host sync of the epoch, as in the generated loop
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--no-script", action="store_true", help="skip the end-to-end script run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        code = compile_spec(directory, args.epochs)
        train = import_train(code)
        ref.set_threads(train.THREADS if hasattr(train, "THREADS") else 1)
        data = ref.prepare_digits(0)
        runners = {
            "tight": lambda: list(ref.run_tight(data, args.epochs)),
            "dataloader": lambda: list(ref.run_dataloader(data, args.epochs)),
            "generated": lambda: run_generated(train, data, args.epochs),
        }
        print(
            f"digits MLP, {args.epochs} epochs x {args.rounds} rounds, batch 64, "
            f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"
        )
        epoch_ms: dict[str, list[float]] = {name: [] for name in runners}
        ratios: dict[str, list[float]] = {"generated": [], "dataloader": []}
        names = list(runners)
        for r in range(args.rounds):
            order = names[r % 3 :] + names[: r % 3]  # rotate who runs first
            medians = {}
            for name in order:
                ms = [1000 * s for s in runners[name]()]
                epoch_ms[name].extend(ms)
                medians[name] = statistics.median(ms)
            for name in ratios:
                ratios[name].append(medians[name] / medians["tight"])
            print(
                f"  round {r + 1}: "
                + ", ".join(f"{n} {medians[n]:.1f}" for n in names)
                + f" ms/epoch; generated/tight {ratios['generated'][-1]:.3f}"
            )
        print(f"{'variant':<12} {'ms/epoch (median)':>18} {'vs tight (median of rounds)':>28}")
        for name in names:
            ratio = 1.0 if name == "tight" else statistics.median(ratios[name])
            print(f"{name:<12} {statistics.median(epoch_ms[name]):>18.1f} {ratio:>28.3f}")
        if not args.no_script:
            per_epoch, wall, rc = run_script(code, directory)
            print(
                f"generated script end to end: {1000 * per_epoch:.1f} ms/epoch "
                f"(training + evaluation), {wall:.1f} s wall for {args.epochs} epochs (rc {rc})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
