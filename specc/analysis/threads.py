"""`training.threads: auto`: a training process's intra-op threads, from its work per step.

Measured with ``bench/scale_speed.py`` and a tight loop on the 2-core machine this project runs
on (torch 2.13 CPU, OpenMP + MKL), samples/s, median of 2-11 runs (docs/training.md, "Speed at
scale", has the table):

* idle, 2 threads against 1: x1.1 at 7 MFLOP per step (a digits-sized MLP, batch 64), x1.15 at
  77 MFLOP (128-256-256-10, batch 128), x1.6-2.0 at 612 MFLOP (issue 13's 256-512-512-10,
  batch 256: 67.5k against 33.6k samples/s with the generated loop);
* another process busy on the other core: 2 threads fall to 0.07-0.4x of 1 thread at every size
  (large: 3.4k unpinned, 12k pinned, against 31k), since OpenMP splits each op evenly and every
  barrier then waits for the thread that shares a core; 1 thread loses nothing;
* no OpenMP wait setting fixes both: OMP_WAIT_POLICY=PASSIVE stops the collapse (large 28k busy)
  but makes idle 2 threads slower than 1 (26k, waking a halted vCPU is slow in a VM), and
  GOMP_SPINCOUNT=1000 / 30000 are each bad in one of the two cases;
* the thread count must not follow the load of the moment either: a reduction over more than
  torch's grain size sums in a different order on 2 threads (a 4M-element sum changed in the 6th
  digit), and a run must give the same metrics.csv whenever it is repeated on one machine.

So: one thread while a step is too small for a second one to pay (below FLOPS_PER_STEP_LIMIT,
which lies between the 77 and 612 MFLOP measured), else as many threads as leave one core for
everything else, shared among the processes of `training.devices`; on a 2-core machine that is
1, the choice that is never more than 2x slower and never 10x slower. Compiled code must not
depend on the machine that compiled it, so the second case is None in the IR and the generated
code computes `share_of_cores` when it starts.
"""

from __future__ import annotations

from specc.analysis.ir import LayerIR, ModelIR, Shape

FLOPS_PER_STEP_LIMIT = 200e6
"""Training FLOPs per step and process below which `auto` is one thread."""

SEQUENCE_KINDS = frozenset({"lstm", "gru", "rnn", "transformer_encoder"})
"""Kinds whose weights are applied once per step of their input sequence."""


def positions(shape: Shape) -> int:
    """How often a layer's weights are applied per example: 1 for vectors, T for [T, F]
    sequences, H * W for [C, H, W] images."""
    if len(shape) == 2:
        return shape[0]
    if len(shape) == 3:
        return shape[1] * shape[2]
    return 1


def layer_macs(layer: LayerIR) -> int:
    """Multiply-adds of one example's forward pass through the layer: each parameter once per
    position (a residual block: its children's, plus its projection's)."""
    if layer.children:
        own = layer.params - sum(child.params for child in layer.children)
        return sum(layer_macs(child) for child in layer.children) + own * positions(layer.out_shape)
    shape = layer.in_shape if layer.kind in SEQUENCE_KINDS else layer.out_shape
    return layer.params * positions(shape)


def flops_per_example(model: ModelIR) -> float:
    """Training FLOPs of one example: forward 2 per multiply-add, backward twice the forward
    (the gradients of the inputs and of the weights), so 6 x the weights' uses."""
    return 6.0 * sum(layer_macs(layer) for layer in (*model.layers, model.output))


def flops_per_step(model: ModelIR, batch_size: int) -> float:
    """Training FLOPs of one minibatch: what a step's matrix products scale with."""
    return flops_per_example(model) * batch_size


def auto_threads(flops_per_step: float, devices: int = 1) -> int | None:
    """`auto` for one of `devices` processes, each doing its share of a step: 1 below the
    limit, else None (share_of_cores at run time)."""
    per_process = flops_per_step / max(1, devices)
    return 1 if per_process < FLOPS_PER_STEP_LIMIT else None


def share_of_cores(cores: int, devices: int = 1) -> int:
    """What None means at run time: the cores this process may use, less one left for the rest
    of the machine, divided among the processes training together (at least 1)."""
    return max(1, (cores - 1) // max(1, devices))
