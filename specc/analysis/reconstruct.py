"""Autoencoders (`task: reconstruct`) and the VAE bottleneck (`gaussian_latent`): their checks,
metrics and the facts codegen needs.

The target of a reconstruct model is its own normalised input, flattened: no labels are read.
The loss is summed over the output units and averaged over the rows (the scale on which the
KL term of a `gaussian_latent` is added, summed over the latent units and averaged over rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from specc.analysis.blocks import all_blocks
from specc.analysis.ir import GaussianLatentOptions, LayerIR, Program
from specc.analysis.report import Finding, error, fmt_shape
from specc.analysis.rules import Context, Rule, reads

LATENT = "gaussian_latent"
PLAIN_METRICS = ("loss", "mse")
"""A plain or denoising autoencoder: the loss and the mean squared error per element."""
VAE_METRICS = ("loss", "recon", "kl", "mse")
"""With a gaussian_latent: the loss = recon + kl_weight * kl, its two parts, and mse."""
COLLAPSE_NATS = 1e-3
"""A validation KL below this (nats per row) means the posterior collapsed onto the prior."""
LOSSES = {"linear": "mse", "sigmoid": "binary_cross_entropy"}
"""The reconstruction loss each output unit takes."""


def is_reconstruct(spec: Any) -> bool:
    """`task: reconstruct` (read only where the `task` section is valid)."""
    return getattr(spec, "task", None) == "reconstruct"


def reconstruct_metrics(layers: tuple[LayerIR, ...]) -> tuple[str, ...]:
    """The metrics of a reconstruct model: VAE_METRICS with a latent, else PLAIN_METRICS."""
    return VAE_METRICS if latent_of(layers) is not None else PLAIN_METRICS


def latent_of(layers: tuple[LayerIR, ...]) -> LayerIR | None:
    """The top-level gaussian_latent layer, if the model has one."""
    return next((layer for layer in layers if layer.kind == LATENT), None)


def latent_options(program: Program) -> GaussianLatentOptions | None:
    """The gaussian_latent's options, or None without one."""
    layer = latent_of(program.model.layers)
    if layer is None:
        return None
    assert isinstance(layer.options, GaussianLatentOptions)
    return layer.options


def _latent_sites(spec: Any) -> list[Any]:
    """Every gaussian_latent of the spec, residual blocks included, in order."""
    return [s for block in all_blocks(spec.layers) for s in block if s.kind == LATENT]


def _latents(ctx: Context) -> list[Finding]:
    """At most one gaussian_latent, at the top level, and only in a reconstruct model."""
    sites, found = _latent_sites(ctx.spec), []
    for site in sites[1:]:
        msg = "a second gaussian_latent: a VAE has one stochastic bottleneck"
        first = ".".join(map(str, sites[0].path))
        found.append(error(site.path, "latent-once", msg, f"keep the one at {first}"))
    for site in sites:
        if len(site.path) > 2:
            msg = "gaussian_latent cannot sit inside a residual block"
            hint = "put it in the top-level layers list, between the encoder and the decoder"
            found.append(error(site.path, "latent-in-block", msg, hint))
    if sites and not is_reconstruct(ctx.spec):
        msg = "gaussian_latent is a VAE bottleneck: it needs task: reconstruct"
        hint = "add task: reconstruct (the target is the input), or use a dense layer"
        found.append(error(sites[0].path, "latent-needs-reconstruct", msg, hint))
    return found


def _units(ctx: Context) -> list[Finding]:
    """The output reproduces the flattened input: output.units == prod(input.shape)."""
    spec = ctx.spec
    if not is_reconstruct(spec):
        return []
    size = math.prod(spec.input.shape)
    if spec.output.units == size:
        return []
    shape = fmt_shape(tuple(spec.input.shape))
    msg = f"task: reconstruct outputs the input {shape}: output.units must be {size}"
    msg += f", not {spec.output.units}"
    return [error(("output", "units"), "reconstruct-units", msg, f"use output.units: {size}")]


def _loss(ctx: Context) -> list[Finding]:
    """mse with a linear output, binary_cross_entropy with a sigmoid one on minmax inputs."""
    spec = ctx.spec
    if not is_reconstruct(spec):
        return []
    activation = spec.output.activation
    wanted = LOSSES.get(activation)
    if wanted is None:
        msg = f"task: reconstruct needs a linear or sigmoid output, not {activation}"
        hint = "use activation: sigmoid (with data.normalize: minmax) or linear (with mse)"
        return [error(("output", "activation"), "reconstruct-output", msg, hint)]
    found = []
    if spec.loss is not None and spec.loss.name != wanted:
        msg = f"task: reconstruct with a {activation} output uses loss {wanted}"
        msg += f", not {spec.loss.name}"
        found.append(error(("loss", "name"), "reconstruct-loss", msg, f"use loss: {wanted}"))
    if activation == "sigmoid" and spec.data.normalize != "minmax":
        msg = "a sigmoid reconstruction needs inputs in [0, 1], but data.normalize is "
        msg += f"{spec.data.normalize}"
        hint = "use data.normalize: minmax, or a linear output with loss: mse"
        found.append(error(("data", "normalize"), "reconstruct-needs-minmax", msg, hint))
    return found


def _target(ctx: Context) -> list[Finding]:
    """The target is the input: data.target is an error."""
    spec = ctx.spec
    if not is_reconstruct(spec):
        return []
    found = []
    if spec.data.target is not None:
        msg = "task: reconstruct trains on the input itself: data.target has no use"
        found.append(error(("data", "target"), "reconstruct-target", msg, "remove data.target"))
    return found


def check_reconstruct_data(
    check: Callable[[Any, Any], list[Finding]],
) -> Callable[[Context], list[Finding]]:
    """The data pass: `check` (datasets.check_data), whose output-unit comparison with the
    dataset's labels does not apply when the target is the input."""

    def run(ctx: Context) -> list[Finding]:
        found = check(ctx.spec, ctx.spec_dir)
        if is_reconstruct(ctx.spec):
            found = [f for f in found if f.code != "data-output-mismatch"]
        return found

    return run


def _plain_monitor(ctx: Context) -> list[Finding]:
    """val_recon and val_kl exist only with a gaussian_latent."""
    spec = ctx.spec
    if not is_reconstruct(spec) or _latent_sites(spec):
        return []
    found = []
    watched = [(("stopping", "early", "monitor"), getattr(spec.stopping.early, "monitor", None))]
    if spec.optimizer.schedule.name == "plateau":
        watched.append((("optimizer", "schedule", "monitor"), spec.optimizer.schedule.monitor))
    for path, monitor in watched:
        if monitor in ("val_recon", "val_kl"):
            msg = f"monitor '{monitor}' exists only with a gaussian_latent layer (a VAE)"
            hint = "monitor val_loss or val_mse"
            found.append(error(path, "unknown-monitor", msg, hint))
    return found


UNSUPPORTED = (
    (("heads",), "heads", "heads: (multitask heads need labelled targets)"),
    (("ensemble",), "ensemble", "ensemble: (its vote is over predictions of labels or values)"),
    (("regularizers", "adversarial"), "adversarial", "regularizers.adversarial"),
)


def _combinations(ctx: Context) -> list[Finding]:
    """Issue 11's features that need labelled targets do not combine with reconstruct."""
    spec = ctx.spec
    if not is_reconstruct(spec):
        return []
    found = []
    for path, what, text in UNSUPPORTED:
        value: Any = spec
        for key in path:
            value = getattr(value, key)
        if value:
            msg = f"task: reconstruct cannot be combined with {text}"
            found.append(error(path, "reconstruct-unsupported", msg, f"remove {what}"))
    if spec.data.normalize_target != "none":
        msg = "task: reconstruct targets are the normalised inputs: "
        msg += "data.normalize_target has no use"
        path = ("data", "normalize_target")
        found.append(error(path, "reconstruct-unsupported", msg, "remove data.normalize_target"))
    return found


def _encoder_part(ctx: Context) -> list[Finding]:
    """export.onnx.part: encoder exports input -> mu, so it needs a gaussian_latent."""
    onnx = ctx.spec.export.onnx
    if onnx is None or onnx.part != "encoder" or _latent_sites(ctx.spec):
        return []
    msg = "export.onnx.part: encoder exports the gaussian_latent's mu, but the model has none"
    hint = "add a gaussian_latent layer, or use part: model"
    return [error(("export", "onnx", "part"), "encoder-needs-latent", msg, hint)]


RECONSTRUCT_RULES: tuple[Rule, ...] = (
    Rule("latent-once", "one gaussian_latent, top level, reconstruct only",
         reads("layers", "task"), _latents),
    Rule("reconstruct-units", "output.units == prod(input.shape)",
         reads("task", "input", "output"), _units),
    Rule("reconstruct-loss", "mse (linear) or binary_cross_entropy (sigmoid, minmax)",
         reads("task", "output", "loss", "data"), _loss),
    Rule("reconstruct-target", "no data.target; bundled datasets", reads("task", "data"), _target),
    Rule("reconstruct-unsupported", "no heads, ensemble, adversarial, normalize_target",
         reads("task", "heads", "ensemble", "regularizers", "data"), _combinations),
    Rule("unknown-monitor", "val_recon and val_kl need a gaussian_latent",
         reads("task", "layers", "stopping", "optimizer"), _plain_monitor),
    Rule("encoder-needs-latent", "part: encoder needs a gaussian_latent",
         reads("export", "layers"), _encoder_part),
)  # fmt: skip
"""The reconstruct task's and the latent's rules, in the order they run."""
