"""Parameter checks of a `transformer_encoder` layer (shape-independent, like rules.LAYER_RULES).

- `transformer-heads` (error): the width must split evenly into the heads, d = heads · d_head,
  as nn.MultiheadAttention requires.
- `transformer-no-positions` (warning): without positions self-attention is permutation
  equivariant, so with `reduce: mean` the model cannot tell the order of the steps at all.
"""

from __future__ import annotations

from specc.analysis.blocks import Site
from specc.analysis.report import Finding, error, warning


def _divisors(n: int, near: int) -> list[int]:
    """The divisors of n closest to `near`, smallest first (at most two)."""
    found = sorted((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - near), d))
    return sorted(found[:2])


def check_transformer(site: Site) -> list[Finding]:
    """`transformer-heads` and `transformer-no-positions` for one transformer_encoder layer."""
    p, at = site.params, site.params_path
    found = []
    if p.width % p.heads:
        msg = (
            f"width {p.width} does not split into {p.heads} heads: each head attends with"
            " width / heads dimensions, so width must be a multiple of heads"
        )
        options = " or ".join(str(d) for d in _divisors(p.width, p.heads))
        hint = f"use heads: {options}, or width: {p.width + (-p.width) % p.heads}"
        found.append(error((*at, "heads"), "transformer-heads", msg, hint))
    if p.positional == "none":
        msg = (
            "with positional: none the encoder does not know the order of the steps:"
            " self-attention treats the sequence as a set"
        )
        hint = "use positional: learned or sinusoidal, unless the order really does not matter"
        found.append(warning((*at, "positional"), "transformer-no-positions", msg, hint))
    return found
