"""Time the generated train.py at scale against a tight hand-written loop and the matmul bounds.

The job (issue 13): a seeded synthetic npz of 200,000 rows x 256 features and 10 classes, written
to a temporary directory; the spec 256 -> 512 ReLU -> 512 ReLU -> 10 softmax, cross-entropy, Adam
1e-3, batch 256, validation split 0.1 (180,000 training rows), compiled with specc. Per epoch and
in one run it reports

* ``generated``: the generated ``train_epoch`` plus ``evaluate`` on the validation split, i.e. the
  work of one epoch of the generated loop (checkpoint writes aside);
* ``tight``: ``reference_loops.tight_epoch`` (randperm + slices, no host sync per step) on the
  same rows, standardised once beforehand, plus the same validation pass (1024-row forward
  passes, loss and accuracy);
* two bounds on the same threads: ``step GEMMs`` times only the matrix products of one training
  step (per layer the forward product and the two backward ones), ``peak GEMM`` converts a
  2048 x 2048 matmul's FLOP/s into samples/s at 6 x weights FLOPs per sample.

Variants run in interleaved rounds whose order rotates; the ratios are per round, then the
median. ``--threads N`` sets torch's intra-op threads for everything (default: the generated
code's THREADS, else what ``training.threads: auto`` gives a large step at run time, the cores
less one; see ``specc/analysis/threads.py``); ``--busy`` runs a CPU-burning process pinned to
the last core while timing. ``--max-steps N`` times only the first N * batch training rows of
each epoch (samples/s stay comparable; for slow cases such as 2 threads with --busy).
``--unfused`` adds the generated loop with its optimizer built without ``fused=True`` (torch's
default for-loop step, what the generated code used before ``harness.fused``). ``--size
small|mid`` swaps in smaller MLPs (64-128-64-10 batch 64, 128-256-256-10 batch 128) for the
thread-policy measurements. OpenMP's variables (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``) act
only when set before the command, since torch reads them at import. The last line says how many
cores other processes kept busy meanwhile (the shared machine is rarely idle). The default run
(large, 3 rounds of one full epoch per variant) takes about a minute on an idle 2-core machine.

Usage::

    python bench/scale_speed.py [--size large] [--rounds 3] [--epochs 1] [--threads N]
                                [--busy] [--max-steps N] [--unfused] [--script]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import reference_loops as ref  # noqa: E402
from generated_code import compile_spec_text, import_train, run_script  # noqa: E402

from specc.analysis.threads import auto_threads, share_of_cores  # noqa: E402

EVAL_BATCH = 1024  # the generated harness's rows per evaluation forward pass
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Size:
    """One MLP job: synthetic rows x features, hidden widths, 10 classes, a batch size."""

    rows: int
    features: int
    hidden: tuple[int, ...]
    batch: int
    classes: int = 10

    @property
    def dims(self) -> tuple[int, ...]:
        """Widths from the input to the output."""
        return (self.features, *self.hidden, self.classes)

    @property
    def weights(self) -> int:
        """Weight-matrix entries (biases aside): what the matmuls scale with."""
        return sum(a * b for a, b in zip(self.dims, self.dims[1:], strict=False))

    @property
    def flops_per_sample(self) -> float:
        """Forward (2 x weights) plus backward (4 x weights) FLOPs of one training row."""
        return 6.0 * self.weights


SIZES = {
    "small": Size(rows=20_000, features=64, hidden=(128, 64), batch=64),  # the digits MLP's shape
    "mid": Size(rows=50_000, features=128, hidden=(256, 256), batch=128),
    "large": Size(rows=200_000, features=256, hidden=(512, 512), batch=256),  # issue 13's job
}

SPEC = """\
name: bench_scale_mlp
data:
  source: {source}
  split: {{val: 0.1, test: 0.0, seed: 0}}
  normalize: standard
input: {{shape: [{features}]}}
init: {{weights: torch}}
layers:
{layers}
output: {{units: {classes}, activation: softmax}}
loss: cross_entropy
optimizer: {{name: adam, lr: 1.0e-3}}
training: {{epochs: {epochs}, batch_size: {batch}, seed: 0}}
"""


def make_npz(path: Path, size: Size, seed: int = 0) -> None:
    """Seeded Gaussian features; labels the arg-max of a random linear map plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size.rows, size.features), dtype=np.float32)
    w = rng.standard_normal((size.features, size.classes), dtype=np.float32)
    noise = rng.standard_normal((size.rows, size.classes), dtype=np.float32)
    y = (x @ w + 4.0 * noise).argmax(axis=1).astype(np.int64)
    np.savez(path, x=x, y=y)


def compile_spec(directory: Path, size: Size, epochs: int) -> Path:
    """Write the job's spec beside data.npz and compile it with specc into directory/code."""
    layers = "\n".join(f"  - dense: {{units: {u}, activation: relu}}" for u in size.hidden)
    text = SPEC.format(
        source="data.npz",
        features=size.features,
        layers=layers,
        classes=size.classes,
        epochs=epochs,
        batch=size.batch,
    )
    return compile_spec_text(directory / "bench_scale_mlp.yaml", text)


@dataclass
class Epoch:
    """One timed epoch: training seconds, validation seconds, and the two losses."""

    train_s: float
    val_s: float
    train_loss: float
    val_loss: float

    @property
    def seconds(self) -> float:
        """The epoch as the generated loop spends it: training then validation."""
        return self.train_s + self.val_s


def run_generated(
    train, data: dict[str, torch.Tensor], epochs: int, seed: int = 0, unfused: bool = False
) -> list[Epoch]:
    """The generated code's model, optimizer, train_epoch and evaluate, as its main loop calls
    them (raw features: the standardiser is inside the model). unfused: the same optimizer built
    without fused=True (torch's default for-loop step), the difference --unfused measures."""
    train.harness.seed_everything(seed)
    model = train.build_model()
    model.normalize.fit(data["x_train"])
    optimizer = train.build_optimizer(model)
    if unfused:
        optimizer = type(optimizer)(
            model.parameters(), **{**optimizer.defaults, "foreach": None, "fused": None}
        )
    # newer generated code takes the loss module (DDP-wrapped under torchrun) before the optimizer
    lead = (
        (train.harness.replicate(train.Objective(model), seed),)
        if hasattr(train, "Objective")
        else ()
    )
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        _, mean_loss = train.train_epoch(
            model, *lead, optimizer, data["x_train"], data["y_train"], rng
        )
        train_loss = float(mean_loss)  # the epoch's one host sync, as in the generated loop
        t1 = time.perf_counter()
        val = train.evaluate(model, data["x_val"], data["y_val"])
        out.append(Epoch(t1 - t0, time.perf_counter() - t1, train_loss, val["loss"]))
    return out


def build_mlp(dims: tuple[int, ...]) -> nn.Sequential:
    """Linear + ReLU between the widths, a plain Linear at the end (PyTorch's default init)."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-2], dims[-1]))


@torch.no_grad()
def validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The generated evaluate's work by hand: eval mode, 1024-row forwards, loss and accuracy."""
    model.eval()
    logits = torch.cat([model(x[i : i + EVAL_BATCH]) for i in range(0, x.shape[0], EVAL_BATCH)])
    loss = F.cross_entropy(logits, y)
    accuracy = (logits.argmax(dim=1) == y).float().mean()
    return float(loss), float(accuracy)


def run_tight(size: Size, data: dict[str, torch.Tensor], epochs: int, seed: int = 0) -> list[Epoch]:
    """The tight loop on pre-standardised rows, then the same validation pass."""
    torch.manual_seed(seed)
    model = build_mlp(size.dims)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    shuffle = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        mean = ref.tight_epoch(
            model, optimizer, data["xs_train"], data["y_train"], size.batch, shuffle
        )
        train_loss = float(mean)
        t1 = time.perf_counter()
        val_loss, _ = validate(model, data["xs_val"], data["y_val"])
        out.append(Epoch(t1 - t0, time.perf_counter() - t1, train_loss, val_loss))
    return out


def gemm_step_seconds(size: Size, steps: int = 60) -> float:
    """Seconds of one step's matrix products alone: per layer x @ W.T, dY @ W and dY.T @ x."""
    b, dims = size.batch, size.dims
    acts = [torch.randn(b, d) for d in dims]
    mats = [torch.randn(o, i) for i, o in zip(dims, dims[1:], strict=False)]

    def step() -> None:
        for layer, w in enumerate(mats):
            torch.mm(acts[layer], w.t())  # forward
            torch.mm(acts[layer + 1], w)  # gradient of the layer's input
            torch.mm(acts[layer + 1].t(), acts[layer])  # gradient of the weight

    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(3):  # best of 3: a bound is what the hardware can do, not its average
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def peak_gflops(n: int = 2048, reps: int = 4) -> float:
    """GFLOP/s of an n x n float32 matmul, best of 3 timings."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - start) / reps)
    return 2.0 * n**3 / best / 1e9


@contextlib.contextmanager
def busy_core(enabled: bool) -> Iterator[int | None]:
    """A Python process spinning on the last allowed core while the block runs (its cpu)."""
    if not enabled:
        yield None
        return
    cpu = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n    pass\n"
    burner = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)  # let it start spinning before anything is timed
        yield cpu
    finally:
        burner.terminate()
        burner.wait()


class OtherLoad:
    """CPU time the rest of the machine spends from now on: /proc/stat's busy time minus this
    process's own, so a result can say whether someone else was computing meanwhile."""

    def __init__(self) -> None:
        """Take the starting readings."""
        self.start = time.perf_counter(), self.busy(), self.own()

    @staticmethod
    def busy() -> float:
        """Seconds of non-idle CPU time of all cores since boot (0 where /proc is missing)."""
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return 0.0
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own() -> float:
        """This process's CPU seconds, all threads."""
        t = os.times()
        return t.user + t.system

    def cores(self) -> float:
        """Average cores the other processes kept busy since the start."""
        wall0, busy0, own0 = self.start
        wall = time.perf_counter() - wall0
        return max(0.0, (self.busy() - busy0) - (self.own() - own0)) / wall


def prepare(train, npz: Path, max_steps: int | None, batch: int) -> dict[str, torch.Tensor]:
    """The generated data.load() splits as tensors, plus standardised copies for the tight loop."""
    splits = train.load(str(npz))
    rows = splits.x_train.shape[0] if max_steps is None else max_steps * batch
    data = {
        "x_train": torch.from_numpy(splits.x_train[:rows]),
        "y_train": torch.from_numpy(splits.y_train[:rows]),
        "x_val": torch.from_numpy(splits.x_val),
        "y_val": torch.from_numpy(splits.y_val),
    }
    full = torch.from_numpy(splits.x_train)
    mean, std = full.mean(dim=0), full.std(dim=0).clamp_min(1e-12)
    data["xs_train"] = (data["x_train"] - mean) / std
    data["xs_val"] = (data["x_val"] - mean) / std
    return data


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def header(size: Size, args: argparse.Namespace, rows: int) -> str:
    """The first line: the job, threads (and what `auto` picks), load and OpenMP environment."""
    auto = auto_threads(size.flops_per_sample * size.batch, 1)
    auto_text = "1" if auto is not None else "cores - 1 = " + str(share_of_cores(cores(), 1))
    env = ", ".join(
        f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ
    )
    steps = -(-rows // size.batch)
    return (
        f"{'->'.join(map(str, size.dims))} MLP, batch {size.batch}, {rows} training rows timed "
        f"({steps} steps/epoch), {size.flops_per_sample / 1e6:.2f} MFLOP/sample, "
        f"{size.flops_per_sample * size.batch / 1e6:.0f} MFLOP/step; "
        f"{torch.get_num_threads()} thread(s) (auto: {auto_text}), "
        f"{'other core busy' if args.busy else 'idle'}, load {os.getloadavg()[0]:.2f}, "
        f"torch {torch.__version__}{'; ' + env if env else ''}"
    )


@dataclass
class Rounds:
    """Everything the rounds measured: epochs per variant, per-round ratios to tight, bounds."""

    epochs: dict[str, list[Epoch]]
    ratios: dict[str, list[float]]
    step_bounds: list[float]
    peak_bounds: list[float]
    other_cores: float = 0.0


def run_rounds(runners: dict[str, Callable[[], list[Epoch]]], size: Size, count: int) -> Rounds:
    """Interleaved rounds whose order rotates; each ends by measuring both bounds."""
    out = Rounds({n: [] for n in runners}, {n: [] for n in runners}, [], [])
    others = OtherLoad()
    for r in range(count):
        k = r % len(runners)
        medians = {}
        for name in list(runners)[k:] + list(runners)[:k]:  # rotate who goes first
            result = runners[name]()
            out.epochs[name].extend(result)
            medians[name] = statistics.median(e.seconds for e in result)
        out.step_bounds.append(size.batch / gemm_step_seconds(size))
        out.peak_bounds.append(peak_gflops() * 1e9 / size.flops_per_sample)
        for name in runners:
            out.ratios[name].append(medians[name] / medians["tight"])
        ratios = ", ".join(f"{n}/tight {out.ratios[n][-1]:.3f}" for n in runners if n != "tight")
        print(
            f"  round {r + 1}: "
            + ", ".join(f"{n} {medians[n]:.2f}" for n in runners)
            + f" s/epoch; {ratios}; bounds {out.step_bounds[-1]:,.0f} (step GEMMs), "
            f"{out.peak_bounds[-1]:,.0f} (peak) samples/s"
        )
    out.other_cores = others.cores()
    return out


def print_table(rounds: Rounds, rows: int) -> None:
    """Medians per variant, samples/s as % of both bounds, and the run's summary line."""
    step_bound = statistics.median(rounds.step_bounds)
    peak_bound = statistics.median(rounds.peak_bounds)
    print(
        f"{'variant':<10} {'s/epoch':>8} {'train s':>8} {'val s':>6} {'samples/s':>10} "
        f"{'% step GEMMs':>13} {'% peak':>7} {'train loss':>11} {'vs tight':>9}"
    )
    for name, result in rounds.epochs.items():
        train_s = statistics.median(e.train_s for e in result)
        rate = rows / train_s
        print(
            f"{name:<10} {statistics.median(e.seconds for e in result):>8.2f} {train_s:>8.2f} "
            f"{statistics.median(e.val_s for e in result):>6.2f} {rate:>10,.0f} "
            f"{100 * rate / step_bound:>12.0f}% {100 * rate / peak_bound:>6.0f}% "
            f"{result[-1].train_loss:>11.4f} {statistics.median(rounds.ratios[name]):>9.3f}"
        )
    ratios = rounds.ratios["generated"]
    print(
        f"generated/tight per epoch: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}); bounds {step_bound:,.0f} samples/s "
        f"(step GEMMs), {peak_bound:,.0f} (peak GEMM); other processes (the --busy burner "
        f"included) kept {rounds.other_cores:.2f} cores busy on average while timing"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="large", help="job (large)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per variant and round")
    parser.add_argument("--threads", type=int, help="torch threads (default: the generated code's)")
    parser.add_argument("--busy", action="store_true", help="burn the last core while timing")
    parser.add_argument("--max-steps", type=int, help="time only this many steps per epoch")
    parser.add_argument("--script", action="store_true", help="also run train.py end to end")
    parser.add_argument(
        "--unfused", action="store_true", help="add the generated loop without a fused optimizer"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        make_npz(directory / "data.npz", size)
        code = compile_spec(directory, size, args.epochs)
        train = import_train(code)
        threads = args.threads or getattr(train, "THREADS", None)
        if threads is None:  # `auto` for large steps: this process's share of the cores
            threads = share_of_cores(cores(), 1)
        torch.set_num_threads(threads)
        data = prepare(train, directory / "data.npz", args.max_steps, size.batch)
        rows = data["x_train"].shape[0]
        print(header(size, args, rows))
        runners: dict[str, Callable[[], list[Epoch]]] = {
            "generated": lambda: run_generated(train, data, args.epochs),
            "tight": lambda: run_tight(size, data, args.epochs),
        }
        if args.unfused:
            runners["unfused"] = lambda: run_generated(train, data, args.epochs, unfused=True)
        with busy_core(args.busy):
            warm = {**data, "x_train": data["x_train"][: 30 * size.batch]}
            warm["xs_train"] = data["xs_train"][: 30 * size.batch]
            run_generated(train, warm, 1)  # first touches of kernels and allocator, untimed
            run_tight(size, warm, 1)
            rounds = run_rounds(runners, size, args.rounds)
        print_table(rounds, rows)
        if args.script:
            per_epoch, wall, rc = run_script(code, directory)
            print(
                f"generated script end to end: {per_epoch:.2f} s/epoch (metrics.csv), "
                f"{wall:.1f} s wall for {args.epochs} epoch(s) (rc {rc}, its own threads)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
