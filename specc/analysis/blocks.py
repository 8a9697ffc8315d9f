"""A flat view of the hidden layers: each layer with its YAML path, kind, params and activation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from specc.analysis.kinds import LAYER_KINDS
from specc.analysis.report import Path
from specc.schema.layers import layer_kind, layer_params


@dataclass(frozen=True)
class Site:
    """One hidden layer of one block, with the YAML path of its list item."""

    path: Path
    kind: str
    params: Any
    """The parameter model (for `activation` layers: the activation itself)."""

    @property
    def params_path(self) -> Path:
        """Path of the layer's parameter mapping (`layers[i].<kind>`)."""
        return (*self.path, self.kind)

    @property
    def activation(self) -> Any | None:
        """The activation model this layer applies, or None for layers without one."""
        if self.kind == "activation":
            return self.params
        return self.params.activation if LAYER_KINDS[self.kind].own_activation else None

    @property
    def activation_path(self) -> Path:
        """Path of the node that names this layer's activation."""
        if self.kind == "activation":
            return (*self.params_path, "name")
        return (*self.params_path, "activation", "name")


def sites_of(layers: Sequence[Any], prefix: Path = ("layers",)) -> list[Site]:
    """The layers of one block (not descending into residual blocks)."""
    return [
        Site((*prefix, i), layer_kind(item), layer_params(item)) for i, item in enumerate(layers)
    ]


def all_blocks(layers: Sequence[Any], prefix: Path = ("layers",)) -> Iterator[list[Site]]:
    """The top-level block, then every residual block's inner layers, depth first."""
    block = sites_of(layers, prefix)
    yield block
    for site in block:
        if site.kind == "residual":
            yield from all_blocks(site.params.layers, (*site.params_path, "layers"))


def act_name(activation: Any | None) -> str | None:
    """The name of an activation model, or None."""
    return None if activation is None else activation.name


def following_activation(block: Sequence[Site], i: int) -> tuple[str, Path] | None:
    """The activation applied to layer i's output and where it is named.

    Its own activation when non-linear; otherwise the next `activation` layer, looking past
    normalisation, dropout and noise layers; None when nothing follows (a linear output).
    """
    own = block[i].activation
    if own is not None and own.name != "linear":
        return own.name, block[i].activation_path
    for site in block[i + 1 :]:
        if site.kind == "activation":
            return site.params.name, site.activation_path
        if not LAYER_KINDS[site.kind].transparent:
            break
    return None
