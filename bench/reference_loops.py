"""Hand-written PyTorch reference loops for the digits MLP, to measure generated train.py against.

The job (the network of ``specs/digits_mlp.yaml``): sklearn digits, 60/20/20 stratified split
with seed 0, inputs standardised with statistics of the training split, an MLP 64 -> 128 ReLU ->
Dropout 0.2 -> 64 ReLU -> 10, cross-entropy, Adam with lr 1e-3, batch 64. Two references:

* ``run_tight``: in-memory tensors, one ``torch.randperm`` gather per epoch and then contiguous
  slices, ``zero_grad(set_to_none=True)``, the epoch loss accumulated as a tensor and read once
  per epoch (no host sync per step). This is the speed target.
* ``run_dataloader``: the idiomatic ``TensorDataset`` + ``DataLoader(shuffle=True)`` loop with
  ``loss.item()`` every step. This is what most hand-written code looks like.

Both time the training pass of each epoch only (evaluation is outside the timed region) and
return the epoch times as an ``EpochTimes`` list that also carries the test accuracy.

Threads: at this model size a step is about a millisecond of Python, dispatcher and optimizer
overhead, and one intra-op thread is as fast as two; with torch's default (one thread per core)
a second busy process on a 2-core machine makes every step wait and an epoch becomes ~4x slower.
So the command line sets ``torch.set_num_threads(1)`` by default (``--threads N`` to change it).
Importers (e.g. ``bench/train_speed.py``) should call ``set_threads`` themselves, with the same
count the generated code they compare against uses; importing this module changes nothing.

Usage::

    python bench/reference_loops.py --epochs 30 [--rounds 3] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

BATCH_SIZE = 64
LEARNING_RATE = 1e-3
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
DEFAULT_THREADS = 1


class EpochTimes(list):
    """Seconds per training epoch (a plain list of floats) plus the run's final metrics."""

    def __init__(self, seconds: list[float], test_accuracy: float, train_loss: float) -> None:
        """Store epoch times, the final test accuracy and the last epoch's mean training loss."""
        super().__init__(seconds)
        self.test_accuracy = test_accuracy
        self.train_loss = train_loss


def set_threads(threads: int = DEFAULT_THREADS) -> None:
    """Set torch's intra-op thread count (1 is fastest and most robust for this tiny model)."""
    torch.set_num_threads(threads)


def prepare_digits(seed: int = 0) -> dict[str, torch.Tensor]:
    """Split digits 60/20/20 (stratified), standardise on train; return float32/int64 tensors."""
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=VAL_FRACTION / (1.0 - TEST_FRACTION),
        stratify=y_rest,
        random_state=seed,
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0.0] = 1.0  # constant pixels (always 0 in the training split): leave them at 0
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    data: dict[str, torch.Tensor] = {}
    for name, (features, labels) in splits.items():
        data[f"x_{name}"] = torch.from_numpy(((features - mean) / std).astype(np.float32))
        data[f"y_{name}"] = torch.from_numpy(labels)
    return data


def build_mlp() -> nn.Sequential:
    """Build the 64 -> 128 ReLU -> Dropout 0.2 -> 64 ReLU -> 10 MLP with PyTorch's default init."""
    return nn.Sequential(
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the fraction of rows whose arg-max logit is the label (model in eval mode)."""
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


def run_tight(data: dict[str, torch.Tensor], epochs: int, seed: int = 0) -> EpochTimes:
    """Train with the tight loop; return per-epoch training seconds (test accuracy attached)."""
    torch.manual_seed(seed)
    model = build_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    x, y = data["x_train"], data["y_train"]
    n = x.shape[0]
    shuffle = torch.Generator().manual_seed(seed)
    seconds: list[float] = []
    train_loss = float("nan")
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=shuffle)
        xs, ys = x[order], y[order]
        total = torch.zeros(())
        for i in range(0, n, BATCH_SIZE):
            xb, yb = xs[i : i + BATCH_SIZE], ys[i : i + BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total.add_(loss.detach(), alpha=yb.shape[0])
        train_loss = total.item() / n  # the one host sync of the epoch
        seconds.append(time.perf_counter() - start)
    test_accuracy = accuracy(model, data["x_test"], data["y_test"])
    return EpochTimes(seconds, test_accuracy, train_loss)


def run_dataloader(data: dict[str, torch.Tensor], epochs: int, seed: int = 0) -> EpochTimes:
    """Train with TensorDataset + DataLoader(shuffle=True), .item() per step; return epoch times."""
    torch.manual_seed(seed)
    model = build_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    dataset = TensorDataset(data["x_train"], data["y_train"])
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    seconds: list[float] = []
    train_loss = float("nan")
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        running, count = 0.0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item() * yb.size(0)
            count += yb.size(0)
        train_loss = running / count
        seconds.append(time.perf_counter() - start)
    test_accuracy = accuracy(model, data["x_test"], data["y_test"])
    return EpochTimes(seconds, test_accuracy, train_loss)


def tight_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: torch.Generator,
) -> torch.Tensor:
    """One epoch of run_tight's loop for any classifier (``bench/scale_speed.py``); returns the
    row-weighted mean loss as a tensor, so the caller decides when to sync."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0], generator=shuffle)
    xs, ys = x[order], y[order]
    total = torch.zeros(())
    for i in range(0, x.shape[0], batch_size):
        xb, yb = xs[i : i + batch_size], ys[i : i + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total.add_(loss.detach(), alpha=yb.shape[0])
    return total / x.shape[0]


RUNNERS = {"tight": run_tight, "dataloader": run_dataloader}


def main(argv: list[str] | None = None) -> int:
    """Time both references in interleaved rounds; print median ms/epoch, ratio and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch intra-op threads (default {DEFAULT_THREADS}; see the module docstring)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split, init and shuffle seed")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--epochs, --rounds and --threads must be positive")

    set_threads(args.threads)
    data = prepare_digits(args.seed)
    epoch_ms: dict[str, list[float]] = {name: [] for name in RUNNERS}
    round_ratios: list[float] = []
    last: dict[str, EpochTimes] = {}
    print(
        f"digits MLP, {args.epochs} epochs x {args.rounds} rounds, batch {BATCH_SIZE}, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, "
        f"train/val/test = {len(data['y_train'])}/{len(data['y_val'])}/{len(data['y_test'])}"
    )
    for r in range(args.rounds):
        # alternate the order so neither variant always runs on a warmer (or busier) machine
        names = list(RUNNERS) if r % 2 == 0 else list(reversed(RUNNERS))
        medians: dict[str, float] = {}
        for name in names:
            times = RUNNERS[name](data, args.epochs, args.seed)
            last[name] = times
            ms = [1000.0 * s for s in times]
            epoch_ms[name].extend(ms)
            medians[name] = statistics.median(ms)
        round_ratios.append(medians["dataloader"] / medians["tight"])
        print(
            f"  round {r + 1}: tight {medians['tight']:.1f} ms/epoch, "
            f"dataloader {medians['dataloader']:.1f} ms/epoch, "
            f"ratio {round_ratios[-1]:.2f}"
        )

    print(f"{'variant':<12} {'ms/epoch (median)':>18} {'test accuracy':>14} {'train loss':>11}")
    for name in RUNNERS:
        print(
            f"{name:<12} {statistics.median(epoch_ms[name]):>18.1f} "
            f"{last[name].test_accuracy:>14.4f} {last[name].train_loss:>11.4f}"
        )
    print(
        f"ratio dataloader/tight: {statistics.median(round_ratios):.2f} "
        f"(median of per-round ratios; min {min(round_ratios):.2f}, max {max(round_ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
