"""Layer names, parameter sharing (`share:`) and parameter tying (`regularizers.tie`).

Names are unique across the whole spec (residual blocks included). A layer shares the weight
of a layer that comes *before* it in the spec (document order, residual blocks depth first):
as with a variable, a weight is defined before it is used again; a forward reference or a
layer naming itself is an error. Sharing is between layers of one kind (dense, conv1d,
conv2d) whose weights have the same shape, dense weights optionally transposed; a chain of
shares (c shares b, b shares a) is one tensor, a's.

Checks run in two steps: names, order and kinds need only `layers` (and `regularizers` for
tie); shapes need the inferred layers. `resolve` then rewrites the inferred layers of an
error-free spec: a sharing layer's parameter count loses the weight it does not own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from specc.analysis.blocks import Site, sites_of
from specc.analysis.ir import LayerIR, Shape, SharedWeightIR, TieIR
from specc.analysis.naming import source_of
from specc.analysis.report import Finding, Path, error, warning
from specc.diagnostics import did_you_mean

SHARE_KINDS = frozenset({"dense", "conv1d", "conv2d"})
"""Kinds that may share (and be tied): one weight tensor each."""


def document_order(layers: Sequence[Any], prefix: Path = ("layers",)) -> Iterator[Site]:
    """Every hidden layer in the order the spec lists it, residual inner layers right after
    their block."""
    for site in sites_of(layers, prefix):
        yield site
        if site.kind == "residual":
            yield from document_order(site.params.layers, (*site.params_path, "layers"))


def _name(site: Site) -> str | None:
    """The layer's `name` (activation layers have none: their `name` is the activation's)."""
    return None if site.kind == "activation" else site.params.name


@dataclass(frozen=True)
class Names:
    """The named layers of a spec: each name's site and its position in document order."""

    sites: tuple[Site, ...]
    index: dict[str, int]
    """First site index of each name."""

    def site(self, name: str) -> Site | None:
        """The layer a name refers to, or None."""
        i = self.index.get(name)
        return None if i is None else self.sites[i]


def names_of(layers: Sequence[Any]) -> tuple[Names, list[Finding]]:
    """The spec's layer names, and `duplicate-layer-name` for each name given twice."""
    sites = tuple(document_order(layers))
    index: dict[str, int] = {}
    found = []
    for i, site in enumerate(sites):
        name = _name(site)
        if name is None:
            continue
        if name in index:
            first = source_of(sites[index[name]].path)
            msg = f"layer name '{name}' is already used by {first}"
            hint = "give every layer a name of its own"
            found.append(error((*site.params_path, "name"), "duplicate-layer-name", msg, hint))
        else:
            index[name] = i
    return Names(sites, index), found


def _unknown(name: str, names: Names, at: Path, code: str, what: str) -> Finding:
    """An unknown layer name, with a did-you-mean over the spec's names."""
    known = sorted(names.index)
    msg = f"{what} names layer '{name}', but no layer has that name"
    listing = f"named layers: {', '.join(known)}" if known else None
    hint = "give the layer `name: " + name + "`" if not known else None
    return error(at, code, msg, did_you_mean(name, known), listing, hint)


def check_names(spec: Any, with_tie: bool) -> list[Finding]:
    """Duplicate names; each share's name, order and kind; each tie's names and kinds."""
    names, found = names_of(spec.layers)
    for i, site in enumerate(names.sites):
        share = getattr(site.params, "share", None) if site.kind in SHARE_KINDS else None
        if share is not None:
            found += _check_share(site, i, share, names)
    if with_tie:
        for t, tie in enumerate(spec.regularizers.tie):
            found += _check_tie_names(t, tie, names)
    return found


def _check_share(site: Site, i: int, share: Any, names: Names) -> list[Finding]:
    """One `share:`: the name exists, comes earlier, is of this kind; transpose on dense."""
    at = (*site.params_path, "share", "weights")
    other = names.site(share.weights)
    if other is None:
        return [_unknown(share.weights, names, at, "share-unknown-name", "share.weights")]
    j = names.index[share.weights]
    if j == i:
        msg = f"{source_of(site.path)} cannot share its own weights"
        hint = "name the earlier layer whose weights it should use"
        return [error(at, "share-self", msg, hint)]
    if j > i:
        msg = (
            f"share.weights names '{share.weights}' ({source_of(other.path)}), which comes"
            f" after this layer: a layer shares the weights of an earlier one"
        )
        hint = (
            f"share the other way round: name this layer and give {source_of(other.path)} the share"
        )
        return [error(at, "share-forward-reference", msg, hint)]
    if other.kind != site.kind:
        msg = (
            f"a {site.kind} layer cannot share the weights of '{share.weights}',"
            f" a {other.kind} layer ({source_of(other.path)})"
        )
        hint = f"share with a {site.kind} layer of the same weight shape"
        return [error(at, "share-kind-mismatch", msg, hint)]
    if share.transpose and site.kind != "dense":
        msg = f"transpose: true applies to dense weight matrices, not to a {site.kind} kernel"
        hint = "remove transpose (a kernel is shared as it is)"
        path = (*site.params_path, "share", "transpose")
        return [error(path, "share-kind-mismatch", msg, hint)]
    return []


def _check_tie_names(t: int, tie: Any, names: Names) -> list[Finding]:
    """One tie: both names exist, differ and name layers with a weight tensor."""
    found = []
    for j, name in enumerate(tie.layers):
        at = ("regularizers", "tie", t, "layers", j)
        site = names.site(name)
        if site is None:
            found.append(_unknown(name, names, at, "tie-unknown-name", "regularizers.tie"))
        elif j == 1 and name == tie.layers[0]:
            msg = f"regularizers.tie ties layer '{name}' to itself: the penalty is always 0"
            found.append(error(at, "tie-same-layer", msg, "tie two different layers"))
        elif site.kind not in SHARE_KINDS:
            msg = (
                f"regularizers.tie needs layers with a weight tensor (dense, conv1d, conv2d),"
                f" but '{name}' is a {site.kind} layer ({source_of(site.path)})"
            )
            found.append(error(at, "tie-no-weight", msg, "tie dense or convolution layers"))
    return found


# --- shapes -------------------------------------------------------------------------------


def walk(
    layers: tuple[LayerIR, ...], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[LayerIR, tuple[str, ...]]]:
    """Every inferred layer with its attribute path from the model, in document order."""
    for layer in layers:
        path = (*prefix, layer.ident)
        yield layer, path
        yield from walk(layer.children, path)


def weight_shape(layer: LayerIR) -> Shape:
    """The weight as PyTorch stores it for this layer: dense [units, inputs], conv1d
    [filters, channels, k], conv2d [filters, channels, kh, kw]."""
    options: Any = layer.options
    if layer.kind == "dense":
        return (options.units, layer.in_shape[-1])
    if layer.kind == "conv1d":
        return (options.filters, layer.in_shape[-1], options.kernel_size)
    return (options.filters, layer.in_shape[0], *options.kernel_size)


def _by_source(layers: tuple[LayerIR, ...]) -> dict[str, tuple[LayerIR, tuple[str, ...]]]:
    """Inferred layers (and attribute paths) by their `layers[i]...` source."""
    return {layer.source: (layer, path) for layer, path in walk(layers)}


def _dims(shape: Shape) -> str:
    """`64×32` for messages."""
    return "×".join(map(str, shape))


def check_shapes(spec: Any, layers: tuple[LayerIR, ...], with_tie: bool) -> list[Finding]:
    """`share-shape-mismatch` and `tie-shape-mismatch`; `tie-shared` for a pair that is one
    tensor. Only for specs whose names, order and kinds passed `check_names`."""
    names, _ = names_of(spec.layers)
    by_source = _by_source(layers)
    found: list[Finding] = []
    for site in names.sites:
        share = getattr(site.params, "share", None) if site.kind in SHARE_KINDS else None
        if share is None:
            continue
        other = names.site(share.weights)
        if other is None or source_of(site.path) not in by_source:
            continue
        mine = weight_shape(by_source[source_of(site.path)][0])
        theirs = weight_shape(by_source[source_of(other.path)][0])
        used = theirs[::-1] if share.transpose else theirs
        if used != mine:
            found.append(_share_mismatch(site, share, mine, theirs))
    if with_tie:
        found += _check_tie_shapes(spec, names, by_source)
    return found


def _share_mismatch(site: Site, share: Any, mine: Shape, theirs: Shape) -> Finding:
    """The shape error, with the transpose hint when the other orientation fits."""
    what = "a [units, inputs]" if site.kind == "dense" else "a [filters, channels, kernel]"
    used = f"{_dims(theirs[::-1])} (transposed)" if share.transpose else _dims(theirs)
    msg = (
        f"this {site.kind} layer needs {what} weight of {_dims(mine)}, but"
        f" '{share.weights}' gives {used}"
    )
    at = (*site.params_path, "share", "weights")
    if site.kind == "dense" and (theirs if share.transpose else theirs[::-1]) == mine:
        flip = "false" if share.transpose else "true"
        way = "as stored" if share.transpose else "transposed"
        hint = f"set share.transpose: {flip} ('{share.weights}' {way} is {_dims(mine)})"
        return error(at, "share-shape-mismatch", msg, hint)
    if site.kind == "dense":
        hint = f"use units: {theirs[-1] if share.transpose else theirs[0]} on this layer"
        if mine[1] != (theirs[0] if share.transpose else theirs[1]):
            hint = "its input width must match too; share with a layer of the same shape"
        return error(at, "share-shape-mismatch", msg, hint)
    hint = "share kernels only between layers with the same filters, channels and kernel_size"
    return error(at, "share-shape-mismatch", msg, hint)


def _resolve_site(site: Site, names: Names) -> tuple[Site, bool]:
    """The layer that holds a site's weight (following shares) and the net transpose."""
    transpose = False
    seen = {source_of(site.path)}
    while site.kind in SHARE_KINDS and site.params.share is not None:
        other = names.site(site.params.share.weights)
        if other is None or source_of(other.path) in seen:
            break
        transpose ^= site.params.share.transpose
        site = other
        seen.add(source_of(site.path))
    return site, transpose


def _check_tie_shapes(
    spec: Any, names: Names, by_source: dict[str, tuple[LayerIR, tuple[str, ...]]]
) -> list[Finding]:
    """Tied weights have one shape (as the layers use them); a pair that is one tensor warns."""
    found = []
    for t, tie in enumerate(spec.regularizers.tie):
        sites = [names.site(n) for n in tie.layers]
        a, b = sites
        if a is None or b is None or a.kind not in SHARE_KINDS or b.kind not in SHARE_KINDS:
            continue
        if source_of(a.path) not in by_source or source_of(b.path) not in by_source:
            continue
        shape_a = weight_shape(by_source[source_of(a.path)][0])
        shape_b = weight_shape(by_source[source_of(b.path)][0])
        at = ("regularizers", "tie", t, "layers")
        if shape_a != shape_b:
            na, nb = tie.layers
            msg = (
                f"regularizers.tie needs weights of one shape, but '{na}' has {_dims(shape_a)}"
                f" and '{nb}' has {_dims(shape_b)}"
            )
            hint = "tie layers with the same units and inputs (or filters, channels and kernel)"
            if len(shape_a) == 2 and shape_a == shape_b[::-1]:
                hint = (
                    f"the shapes are each other's transpose: to make them one tensor use"
                    f" share: {{weights: {na}, transpose: true}} on '{nb}'"
                )
            found.append(error(at, "tie-shape-mismatch", msg, hint))
            continue
        (root_a, ta), (root_b, tb) = _resolve_site(a, names), _resolve_site(b, names)
        if root_a.path == root_b.path and ta == tb:
            msg = (
                f"'{tie.layers[0]}' and '{tie.layers[1]}' share one weight tensor:"
                " tying them adds a penalty that is always 0"
            )
            hint = "remove this tie (sharing already makes the weights equal)"
            found.append(warning(at, "tie-shared", msg, hint))
    return found


# --- the IR ---------------------------------------------------------------------------------


def resolve(
    spec: Any, layers: tuple[LayerIR, ...]
) -> tuple[tuple[LayerIR, ...], tuple[TieIR, ...]]:
    """The inferred layers with each sharing layer's weight resolved (and left out of its
    parameter count), and the ties, of an error-free spec."""
    names, _ = names_of(spec.layers)
    by_source = _by_source(layers)
    shared: dict[str, SharedWeightIR] = {}
    for site in names.sites:
        if site.kind in SHARE_KINDS and site.params.share is not None:
            root, transpose = _resolve_site(site, names)
            owner = by_source[source_of(root.path)][1]
            shared[source_of(site.path)] = SharedWeightIR(owner, root.params.name, transpose)
    rebuilt = _rebuild(layers, shared, {source_of(s.path): _name(s) for s in names.sites})
    ties = []
    for tie in spec.regularizers.tie:
        a, b = (_known(names, n) for n in tie.layers)
        paths = (by_source[source_of(a.path)][1], by_source[source_of(b.path)][1])
        flips = (_resolve_site(a, names)[1], _resolve_site(b, names)[1])
        ties.append(TieIR((tie.layers[0], tie.layers[1]), paths, flips, tie.alpha))
    return rebuilt, tuple(ties)


def _known(names: Names, name: str) -> Site:
    """The layer of a name that analysis has checked exists."""
    site = names.site(name)
    if site is None:
        raise ValueError(f"unknown layer name {name!r} in an error-free spec")
    return site


def _rebuild(
    layers: tuple[LayerIR, ...], shared: dict[str, SharedWeightIR], names: dict[str, str | None]
) -> tuple[LayerIR, ...]:
    """Layers with names and shares set; a sharer and the blocks holding it lose the weight."""
    out = []
    for layer in layers:
        children = _rebuild(layer.children, shared, names)
        params = layer.params
        params += sum(c.params for c in children) - sum(c.params for c in layer.children)
        share = shared.get(layer.source)
        if share is not None:
            params -= math.prod(weight_shape(layer))
        out.append(
            replace(
                layer,
                children=children,
                params=params,
                name=names.get(layer.source),
                shares=share,
            )
        )
    return tuple(out)
