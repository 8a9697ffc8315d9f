"""Weight initialisation: `init.weights` resolved per layer (`auto` picks by the activation)."""

from __future__ import annotations

from collections.abc import Sequence

from specc.analysis.blocks import Site, following_activation
from specc.analysis.kinds import LAYER_KINDS, RELU_LIKE


def auto_for(activation: str | None) -> str:
    """He for ReLU-like units, Xavier for tanh/sigmoid/linear/softmax (and none)."""
    return "he_normal" if activation in RELU_LIKE else "xavier_uniform"


def weight_init(scheme: str, block: Sequence[Site], i: int) -> str:
    """The initialisation of hidden layer i of a block ('torch' for layers without weights)."""
    site = block[i]
    row = LAYER_KINDS[site.kind]
    has_weights = row.weights or (site.kind == "residual" and site.params.projection)
    if not has_weights:
        return "torch"
    if scheme != "auto":
        return scheme
    if row.auto_init is not None:
        return row.auto_init
    found = following_activation(block, i)
    return auto_for(found[0] if found else None)


def output_init(scheme: str) -> str:
    """The output layer's initialisation: Xavier under auto (linear/sigmoid/softmax units)."""
    return "xavier_uniform" if scheme == "auto" else scheme
