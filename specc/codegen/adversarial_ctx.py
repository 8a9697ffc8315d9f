"""train.py's pieces for adversarial training (`regularizers.adversarial`): its constants, the
training step's loss line and the metrics.csv columns it adds. The functions themselves
(fgsm, adversarial_loss, evaluate_adversarial) are fixed text in templates/train.py.j2."""

from __future__ import annotations

from specc.analysis.ir import Program
from specc.codegen.literals import py

CLEAN_LOSS = "loss = loss_fn(model(xb), yb)"
"""The training step's loss line without adversarial training."""
ADVERSARIAL_LOSS = "loss = adversarial_loss(model, xb, yb)  # (1 - w) J(x) + w J(x~)"
"""The training step's loss line with it."""


def adversarial_constants(program: Program) -> tuple[tuple[str, str, str], ...]:
    """(name, literal, spec key) of ADV_EPSILON, ADV_WEIGHT and ADV_METRICS; none when
    adversarial training is off."""
    adv = program.training.regularizers.adversarial
    if adv is None:
        return ()
    key = "regularizers.adversarial"
    names = [f"adv_{m}" for m in program.metrics]
    return (
        ("ADV_EPSILON", py(float(adv.epsilon)), f"{key}.epsilon (normalised units)"),
        ("ADV_WEIGHT", py(float(adv.weight)), f"{key}.weight"),
        ("ADV_METRICS", py(tuple(names)), "the attacked val split's metrics.csv columns"),
    )


def step_loss_line(program: Program) -> str:
    """train_epoch's loss line: the clean loss, or the clean/attacked mix."""
    adv = program.training.regularizers.adversarial
    return CLEAN_LOSS if adv is None else ADVERSARIAL_LOSS
