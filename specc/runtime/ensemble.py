"""Bagging ensembles (`ensemble:`) at run time: train the members, combine their vote.

`specc train` runs `RUN_DIR/code/train.py --member K --out RUN_DIR/members/K` for K = 0, 1, ...
one after another, each an ordinary run of the generated code (its own early stopping, refit,
checkpoints and summary.json); `--resume` skips the members that finished and resumes the first
unfinished one. Then `combine` writes RUN_DIR/summary.json: the ensemble's metrics on the train,
val and test splits (and out of bag), and each member's. `EnsembleModel` is the vote as one
module, the model `specc export` traces into one ONNX graph and verifies against.
docs/training.md, "Ensembles", gives the formulas.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specc.runtime import launch

MEMBERS_DIR = "members"
"""RUN_DIR/members/K/: member K's run directory."""
THRESHOLD = 0.5
"""A sigmoid member votes for the positive class when its probability is at least this."""


def is_ensemble(spec: dict[str, Any]) -> bool:
    """Whether a resolved spec trains an ensemble."""
    return isinstance(spec.get("ensemble"), dict)


def settings(spec: dict[str, Any]) -> tuple[int, bool, str]:
    """(members, bootstrap, vote) of a resolved spec's ensemble."""
    ens = spec["ensemble"]
    return int(ens["members"]), bool(ens["bootstrap"]), str(ens["vote"])


def member_dir(run_dir: Path, k: int) -> Path:
    """RUN_DIR/members/K."""
    return run_dir / MEMBERS_DIR / str(k)


def finished(path: Path) -> bool:
    """Whether a member's run directory holds its final weights and summary."""
    return (path / "model.pt").is_file() and (path / "summary.json").is_file()


# --- training -------------------------------------------------------------------------------


def train_members(
    run_dir: Path,
    members: int,
    resume: bool,
    retrain_finished: bool,
    quiet: bool,
    run_child: Callable[[list[str]], int],
    interrupted: Callable[[], bool],
    devices: int = 1,
) -> int:
    """Train every member in turn with the run's code (`devices` processes each, torchrun when
    more than one); the first non-zero status ends it.

    With `resume`, a finished member is skipped (unless `retrain_finished`: training.epochs
    grew, so every member trains on) and one with a last.pt resumes from it."""
    code = run_dir / "code" / "train.py"
    for k in range(members):
        out = member_dir(run_dir, k)
        if resume and finished(out) and not retrain_finished:
            continue
        if interrupted():
            return 130
        again = resume and (out / "last.pt").is_file()
        if not quiet:
            verb = "resuming" if again else "training"
            print(f"ensemble: {verb} member {k} of 0..{members - 1} in {out}", file=sys.stderr)
        args = ["--out", str(out), "--member", str(k), *["--resume"] * again, *["--quiet"] * quiet]
        command = launch.command(code, args, devices)
        status = run_child(command)
        if status != 0:
            return status
    return 0


# --- the vote -------------------------------------------------------------------------------


def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A generated model's predict(x): its output unit applied to the logits."""
    method: Callable[[torch.Tensor], torch.Tensor] = getattr(model, "predict")  # noqa: B009
    return method(x)


class EnsembleModel(torch.nn.Module):
    """The members' vote as one module (contract §7): predict(x) is, for a soft vote, the mean
    of the members' predict(x) (probabilities, or values for regression); for a hard vote, the
    share of members voting for each class (the class a member ranks first; for sigmoid
    outputs, p >= 0.5 per unit). forward is predict, so that it traces as one graph."""

    def __init__(self, members: list[torch.nn.Module], task: str, vote: str, units: int) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.task, self.vote, self.units = task, vote, units

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The vote on a batch x [batch, *input_shape]: [batch, units]."""
        outputs = torch.stack([predict(m, x) for m in self.members])  # [k, batch, units]
        if self.vote == "soft":
            return outputs.mean(dim=0)
        if self.task == "multiclass":
            votes = torch.nn.functional.one_hot(outputs.argmax(dim=2), self.units)
        else:  # sigmoid units: each unit a yes/no vote
            votes = outputs >= THRESHOLD
        return votes.to(outputs.dtype).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)


def load_members(run: Any) -> tuple[EnsembleModel, tuple[int, ...], int]:
    """The ensemble of an export Run (spec, code, members/K/model.pt): its model, input
    shape and output units; ExportError when a member is missing or unfinished."""
    from specc.exitcodes import EXIT_USAGE
    from specc.runtime.export import ExportError, load_model

    count, _, vote = settings(run.spec)
    models = []
    shape: tuple[int, ...] = ()
    units = 0
    for k in range(count):
        path = member_dir(run.path, k)
        if not (path / "model.pt").is_file():
            raise ExportError(
                f"{run.path}: member {k} has not finished ({path / 'model.pt'} is missing): "
                f"resume with `specc train SPEC -o {run.path} --resume`",
                EXIT_USAGE,
            )
        model, shape, units = load_model(replace(run, weights=path / "model.pt"))
        models.append(model)
    task = run.summary.get("task") or _member_summary(run.path, 0).get("task")
    return EnsembleModel(models, str(task), vote, units).eval(), shape, units


def _member_summary(run_dir: Path, k: int) -> dict[str, Any]:
    """members/K/summary.json ({} when unreadable)."""
    try:
        value = json.loads((member_dir(run_dir, k) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


# --- metrics --------------------------------------------------------------------------------


def metrics(task: str, loss: Any, p: Any, y: Any) -> dict[str, float]:
    """The task's metrics (contract §5) of ensemble outputs p (probabilities or values)
    against a split's targets y as data.py gives them; nan for an empty split."""
    from specc.runtime.evaluate import classification_loss, regression_metrics

    names = ("loss", "accuracy") if task != "regression" else ("loss", "mae", "rmse", "r2")
    if len(p) == 0:
        return {name: math.nan for name in names}
    p = np.asarray(p, dtype=np.float64)
    if task == "multiclass":
        y = np.asarray(y, dtype=np.int64)
        onehot = np.eye(p.shape[1])[y]
        return {
            "loss": classification_loss(loss, p, onehot),
            "accuracy": float(np.mean(p.argmax(axis=1) == y)),
        }
    t = np.asarray(y, dtype=np.float64).reshape(p.shape)
    if task in ("binary", "multilabel"):
        return {
            "loss": classification_loss(loss, p, t),
            "accuracy": float(np.mean((p >= THRESHOLD) == (t > 0.5))),
        }
    return regression_metrics(loss, p, t)


def combine_outputs(outputs: Any, task: str, vote: str) -> Any:
    """The vote over member outputs [k, n, units] in numpy (EnsembleModel.predict's rule)."""
    if vote == "soft":
        return outputs.mean(axis=0)
    if task == "multiclass":
        votes = np.eye(outputs.shape[2])[outputs.argmax(axis=2)]
    else:
        votes = outputs >= THRESHOLD
    return votes.astype(np.float64).mean(axis=0)


def out_of_bag(outputs: Any, bags: list[list[int]], task: str, vote: str) -> tuple[Any, Any]:
    """Breiman's out-of-bag estimate: each training row voted on only by the members that
    never drew it; (the rows with at least one such member, their vote)."""
    k, n, _ = outputs.shape
    mask = np.zeros((k, n), dtype=bool)
    for member, rows in enumerate(bags):
        mask[member, rows] = True
    voted = np.flatnonzero(mask.any(axis=0))
    votes = [combine_outputs(outputs[mask[:, i], i][:, None], task, vote)[0] for i in voted]
    return voted, np.stack(votes).reshape(len(voted), outputs.shape[2])


# --- combining ------------------------------------------------------------------------------


def combine(run_dir: Path) -> dict[str, Any]:
    """Write RUN_DIR/summary.json for a trained ensemble and return it: the ensemble's metrics
    on the train, val and test splits (and out of bag when bootstrapping), and each member's
    own summary; raises ExportError (a member or the code cannot be read)."""
    from specc.runtime.evaluate import spec_loss
    from specc.runtime.export import import_file, read_run

    run = read_run(run_dir)
    count, bootstrap, vote = settings(run.spec)
    model, _, _ = load_members(run)
    splits = import_file(run_dir / "code" / "data.py", "data").load()
    summaries = [_member_summary(run_dir, k) for k in range(count)]
    task = str(summaries[0].get("task"))
    loss = spec_loss(run.spec, task)

    def member_outputs(x: Any) -> Any:
        with torch.no_grad():
            xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
            return np.stack([predict(m, xt).double().numpy() for m in model.members])

    result: dict[str, dict[str, float]] = {}
    train_outputs, oob_rows = None, None
    for split in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
        outputs = member_outputs(x)
        if split == "train":
            train_outputs = outputs
        result[split] = metrics(task, loss, combine_outputs(outputs, task, vote), y)
    if bootstrap and train_outputs is not None:
        bags = [list(s.get("out_of_bag") or []) for s in summaries]
        rows, votes = out_of_bag(train_outputs, bags, task, vote)
        result["oob"] = metrics(task, loss, votes, np.asarray(splits.y_train)[rows])
        oob_rows = len(rows)
    first = summaries[0]
    summary = {
        "epochs_run": sum(int(s.get("epochs_run") or 0) for s in summaries),
        "best_epoch": None,
        "stopped_early": all(bool(s.get("stopped_early")) for s in summaries),
        "params": sum(int(s.get("params") or 0) for s in summaries),
        "seconds": round(sum(float(s.get("seconds") or 0.0) for s in summaries), 3),
        "metrics": result,
        "ensemble": {"members": count, "bootstrap": bootstrap, "vote": vote, "oob_rows": oob_rows},
        "members": [
            {
                "member": k,
                "dir": f"{MEMBERS_DIR}/{k}",
                "seed": s.get("seed"),
                "epochs_run": s.get("epochs_run"),
                "best_epoch": s.get("best_epoch"),
                "stopped_early": s.get("stopped_early"),
                "metrics": s.get("metrics"),
            }
            for k, s in enumerate(summaries)
        ],
        **{
            key: first.get(key)
            for key in (
                "task",
                "labels",
                "features",
                "input_shape",
                "output_units",
                "output_activation",
                "class_name",
            )
        },
    }
    _write_json(run_dir / "summary.json", summary)
    print(closing_line(summary, run_dir))  # as a member's `done:` line, also when quiet
    return summary


def closing_line(summary: dict[str, Any], run_dir: Path) -> str:
    """`done: ensemble of K ...; test <metric> E (members: median M, from A to B)`."""
    metric = "accuracy" if summary["task"] != "regression" else "r2"
    values = [m["metrics"]["test"].get(metric) for m in summary["members"] if m.get("metrics")]
    values = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    test = summary["metrics"]["test"]
    shown = ", ".join(f"{name} {value:.4g}" for name, value in test.items())
    spread = (
        f" (members' {metric}: median {statistics.median(values):.4g}, "
        f"{min(values):.4g} to {max(values):.4g})"
        if values
        else ""
    )
    count = summary["ensemble"]["members"]
    return f"done: ensemble of {count} members; test {shown}{spread}; wrote {run_dir}"


def _write_json(path: Path, obj: Any) -> None:
    """JSON with nan as null, written atomically."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(clean(obj), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
