"""Adversarial training (`regularizers.adversarial`): its IR, its monitor names and its lint."""

from __future__ import annotations

from typing import Any

from specc.analysis.ir import AdversarialIR
from specc.analysis.report import Finding, error, warning
from specc.analysis.rules import Context, Rule, reads

PREFIX = "adv_"
"""metrics.csv names the attacked validation split's metrics val_adv_<metric>."""

LARGE_EPSILON = {"standard": 0.5, "minmax": 0.125}
"""Above these epsilons (normalised units) the `adversarial-epsilon-large` lint warns: half a
standard deviation, or an eighth of the range (half a sigma for a feature spread over about
4 sigma). The notes' adversarial examples are inputs a person cannot tell from the originals;
a larger step changes what the example is, so its label no longer holds. Without a
normaliser epsilon is in raw units, whose scale analysis does not know: no lint."""


def adversarial_ir(adv: Any) -> AdversarialIR | None:
    """The adversarial training of `regularizers.adversarial`, or None when it is off."""
    if adv is None:
        return None
    return AdversarialIR(method=adv.method, epsilon=adv.epsilon, weight=adv.weight)


def adversarial_monitors(metrics: tuple[str, ...]) -> list[str]:
    """The val_adv_<metric> names adversarial training adds to metrics.csv."""
    return [f"val_{PREFIX}{m}" for m in metrics]


def _large_epsilon(ctx: Context) -> list[Finding]:
    """An epsilon above LARGE_EPSILON in normalised units is no longer a small perturbation."""
    adv = ctx.spec.regularizers.adversarial
    normalize = ctx.spec.data.normalize
    limit = LARGE_EPSILON.get(normalize)
    if adv is None or limit is None or adv.epsilon <= limit:
        return []
    unit = "standard deviations" if normalize == "standard" else "of each feature's range"
    msg = (
        f"epsilon {adv.epsilon} moves every normalised feature by {adv.epsilon} {unit}: "
        "adversarial examples should stay close to their originals (their labels must still hold)"
    )
    hint = f"use epsilon: {limit} or less"
    path = ("regularizers", "adversarial", "epsilon")
    return [warning(path, "adversarial-epsilon-large", msg, hint)]


def _with_heads(ctx: Context) -> list[Finding]:
    """The attack perturbs the main output's loss; multitask heads' losses have no attack."""
    if ctx.spec.regularizers.adversarial is None or not ctx.spec.heads:
        return []
    msg = "regularizers.adversarial cannot be combined with heads: (the attack uses one loss)"
    hint = "train the multitask model without adversarial, or drop heads: to train adversarially"
    return [error(("regularizers", "adversarial"), "adversarial-with-heads", msg, hint)]


ADVERSARIAL_RULES: tuple[Rule, ...] = (
    Rule(
        "adversarial-with-heads",
        "adversarial training attacks a single-output model",
        reads("regularizers", "heads"),
        _with_heads,
    ),
    Rule(
        "adversarial-epsilon-large",
        "FGSM's epsilon stays a small perturbation (at most half a sigma)",
        reads("regularizers", "data"),
        _large_epsilon,
    ),
)
"""The adversarial training's rule and lint, in the order they run."""
