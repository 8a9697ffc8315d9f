"""Weight initialisation: `init.weights` resolved per layer (`auto` picks by the activation)."""

from __future__ import annotations

from collections.abc import Sequence

from specc.analysis.blocks import RELU_FAMILY, WEIGHTED, Site, following_activation

AUTO_BY_KIND: dict[str, str] = {
    "maxout": "he_normal",  # piecewise linear and unbounded, like the ReLU family
    "rbf": "xavier_uniform",  # Gaussian bumps saturate like sigmoid units
    "lstm": "xavier_uniform",  # input weights; codegen makes recurrent matrices orthogonal
    "gru": "xavier_uniform",
    "rnn": "xavier_uniform",
}
"""Kinds whose `auto` scheme does not depend on the activation that follows."""


def auto_for(activation: str | None) -> str:
    """He for the ReLU family, Xavier for tanh/sigmoid/linear/softmax (and none)."""
    return "he_normal" if activation in RELU_FAMILY else "xavier_uniform"


def weight_init(scheme: str, block: Sequence[Site], i: int) -> str:
    """The initialisation of hidden layer i of a block ('torch' for layers without weights)."""
    site = block[i]
    has_weights = site.kind in WEIGHTED or (site.kind == "residual" and site.params.projection)
    if not has_weights:
        return "torch"
    if scheme != "auto":
        return scheme
    if site.kind in AUTO_BY_KIND:
        return AUTO_BY_KIND[site.kind]
    if site.kind == "residual":
        return "xavier_uniform"  # the projection is a linear map
    found = following_activation(block, i)
    return auto_for(found[0] if found else None)


def output_init(scheme: str) -> str:
    """The output layer's initialisation: Xavier under auto (linear/sigmoid/softmax units)."""
    return "xavier_uniform" if scheme == "auto" else scheme
