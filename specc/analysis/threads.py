"""`training.threads: auto`: how many intra-op threads a training process gets, by work per step.

PLACEHOLDER: the figures are being measured (bench/scale_speed.py).
"""

from __future__ import annotations

from specc.analysis.ir import LayerIR, ModelIR, Shape

FLOPS_PER_STEP_LIMIT = 50e6
"""Below this many training FLOPs per step (per process), one thread."""

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
    """The `auto` thread count of one of `devices` processes: 1, or None for the process's
    share of the machine's cores (resolved at run time, since compiled code must not depend
    on the machine that compiled it)."""
    per_process = flops_per_step / max(1, devices)
    return 1 if per_process < FLOPS_PER_STEP_LIMIT else None
