"""Bagging ensembles (`ensemble:`): the rules that check them, and their IR."""

from __future__ import annotations

from typing import Any

from specc.analysis.ir import EnsembleIR
from specc.analysis.report import Finding, error, warning
from specc.analysis.rules import Context, Rule, reads

MANY_MEMBERS = 10
"""Above this many members the `ensemble-members` lint warns (the notes: ensembles of more
than a few networks grow costly to train and serve, for ever smaller gains)."""


def ensemble_ir(spec: Any) -> EnsembleIR | None:
    """The ensemble of a spec, or None for a single network."""
    ens = spec.ensemble
    if ens is None:
        return None
    return EnsembleIR(members=ens.members, bootstrap=ens.bootstrap, vote=ens.vote)


def _hard_vote_task(ctx: Context) -> list[Finding]:
    """A hard vote counts classes: a regression (linear output) has none to count."""
    ens = ctx.spec.ensemble
    if ens is None or ens.vote != "hard" or ctx.task != "regression":
        return []
    msg = "vote: hard counts the members' classes, but a linear output unit has no classes"
    hint = "use vote: soft (the mean of the members' values)"
    return [error(("ensemble", "vote"), "ensemble-hard-regression", msg, hint)]


def _with_search(ctx: Context) -> list[Finding]:
    """`specc tune` runs single networks; an ensemble in a searched spec is refused."""
    if ctx.spec.ensemble is None or ctx.spec.search is None:
        return []
    msg = "ensemble: and search: cannot be combined (each trial would train every member)"
    hint = (
        "tune the single network without ensemble:, then add ensemble: to the best.yaml it writes"
    )
    return [error(("ensemble",), "ensemble-with-search", msg, hint)]


def _many_members(ctx: Context) -> list[Finding]:
    """More than MANY_MEMBERS members: k times the training and inference cost."""
    ens = ctx.spec.ensemble
    if ens is None or ens.members <= MANY_MEMBERS:
        return []
    msg = (
        f"{ens.members} members train {ens.members} networks and run them all for every "
        f"prediction; beyond {MANY_MEMBERS} the vote rarely improves"
    )
    hint = "5 to 10 members are usually enough; spend the time on a larger network instead"
    return [warning(("ensemble", "members"), "ensemble-members", msg, hint)]


ENSEMBLE_RULES: tuple[Rule, ...] = (
    Rule(
        "ensemble-hard-regression",
        "a hard vote needs a classifier",
        reads("output", "ensemble"),
        _hard_vote_task,
    ),
    Rule(
        "ensemble-with-search",
        "specc tune does not train ensembles",
        reads("ensemble", "search"),
        _with_search,
    ),
    Rule(
        "ensemble-members",
        "more than 10 members cost much for little",
        reads("ensemble"),
        _many_members,
    ),
)
"""The ensemble's rules and its lint, in the order they run."""
