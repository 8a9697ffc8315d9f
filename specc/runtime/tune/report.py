"""What a search leaves in its run directory besides the trials: trials.csv, best.yaml and
search.png (all written atomically, rewritten whenever a tune process ends)."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from specc.analysis.ir import ChoiceIR, SearchIR
from specc.runtime.tune import study as st
from specc.runtime.tune.worker import shown, state_name


def listed(study: optuna.Study) -> list[FrozenTrial]:
    """The trials a report shows: every trial but the surplus ones (asked for, never trained)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_trials_csv(path: Path, study: optuna.Study, search: SearchIR) -> None:
    """trials.csv: number, state, value, epochs, seconds, one column per searched key (its
    value as the spec writes it), message (why a trial failed)."""
    trials = listed(study)
    again = st.retried(trials)
    keys = [p.key for p in search.space]
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["number", "state", "value", "epochs", "seconds", *keys, "message"])
    for t in trials:
        value = "" if t.value is None else repr(float(t.value))
        seconds = t.user_attrs.get("seconds")
        row = [t.number, state_name(t, again), value, t.user_attrs.get("epochs", "")]
        row.append("" if seconds is None else f"{seconds:.3f}")
        row += [shown(st.value_of(search, k, t.params[k])) if k in t.params else "" for k in keys]
        row.append(t.user_attrs.get("message", ""))
        out.writerow(row)
    _atomic(path, text.getvalue().encode())


def plot_search(path: Path, study: optuna.Study, search: SearchIR, title: str) -> bool:
    """search.png: the value against each searched key, one panel each; log x where the
    distribution is log; pruned trials (their last value) and failed ones (at the top) marked.
    False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    trials = [t for t in listed(study) if t.state.is_finished() and not _retried(t, study)]
    finite = [t.value for t in trials if t.value is not None and math.isfinite(t.value)]
    top = max(finite) if finite else 1.0
    n = len(search.space)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, p in zip(axes.flat, search.space, strict=False):
        choice = p.distribution if isinstance(p.distribution, ChoiceIR) else None
        groups: dict[str, tuple[list[Any], list[float]]] = {
            "complete": ([], []),
            "pruned": ([], []),
            "failed": ([], []),
        }
        for t in trials:
            if p.key not in t.params:
                continue
            x = t.params[p.key]
            if t.state == TrialState.COMPLETE and t.value is not None:
                groups["complete"][0].append(x)
                groups["complete"][1].append(t.value)
            elif t.state == TrialState.PRUNED:
                groups["pruned"][0].append(x)
                groups["pruned"][1].append(t.value if t.value is not None else top)
            else:
                groups["failed"][0].append(x)
                groups["failed"][1].append(top)
        styles = {
            "complete": {"marker": "o", "color": "tab:blue"},
            "pruned": {"marker": "x", "color": "tab:orange"},
            "failed": {"marker": "v", "color": "tab:red"},
        }
        for name, (xs, ys) in groups.items():
            if xs:
                ax.scatter(xs, ys, label=name, **styles[name])
        if choice is not None:
            ax.set_xticks(range(len(choice.values)))
            ax.set_xticklabels([shown(v)[:16] for v in choice.values], rotation=20)
        elif getattr(p.distribution, "log", False):
            ax.set_xscale("log")
        ax.set_xlabel(p.key + (" (log)" if getattr(p.distribution, "log", False) else ""))
        ax.set_ylabel(search.metric)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: {search.metric} per trial (failed trials at the top)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    _atomic(path, buffer.getvalue())
    return True


def _retried(trial: FrozenTrial, study: optuna.Study) -> bool:
    return trial.state == TrialState.FAIL and trial.number in st.retried(listed(study))
