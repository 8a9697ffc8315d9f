"""data.normalize_target: only regression targets are standardised; Huber's delta is in σ."""

from __future__ import annotations

from typing import Any

from specc.analysis.report import Finding, error, warning


def check_normalize_target(ctx: Any) -> list[Finding]:
    """normalize_target: standard needs a linear output unit (regression): class labels and
    probabilities have no units to standardise."""
    if ctx.spec.data.normalize_target == "none" or ctx.task in (None, "regression", "reconstruct"):
        return []
    activation = ctx.spec.output.activation
    msg = (
        f"data.normalize_target: standard standardises regression targets, but output.activation"
        f" is {activation!r} ({ctx.task} classification: its targets are labels, not values)"
    )
    hint = "remove normalize_target, or use output.activation: linear for regression"
    return [error(("data", "normalize_target"), "normalize-target-needs-regression", msg, hint)]


HUBER_DELTA_SIGMAS = 3.0
"""Above this many standard deviations a Huber delta on standardised targets rarely applies."""


def check_huber_delta(ctx: Any) -> list[Finding]:
    """With standardised targets Huber's delta is in target standard deviations: a delta kept
    from the targets' own units (say 10) leaves almost every residual inside it (plain mse/2)."""
    loss = ctx.spec.loss
    if ctx.spec.data.normalize_target == "none" or getattr(loss, "name", None) != "huber":
        return []
    if loss.delta <= HUBER_DELTA_SIGMAS:
        return []
    msg = (
        f"loss.delta {loss.delta:g} is in standard deviations of the targets with"
        f" data.normalize_target: standard; residuals beyond {loss.delta:g} σ are rare, so the"
        " loss is in effect mse / 2"
    )
    hint = "use a delta near 1 (the default), or divide a delta in target units by their std"
    return [warning(("loss", "delta"), "huber-delta-standardised", msg, hint)]
