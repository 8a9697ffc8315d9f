"""One trial of `specc tune`: its spec, checked like a file, and its training as an ordinary run
directory, with the epoch hook that feeds the pruner.

A trial's spec is the base spec (its `search:` left out) with each drawn value applied as a
`--set KEY=VALUE` override, so a value the checker refuses is reported like an override on the
command line; `spec.yaml` in the trial's directory is that spec resolved, which `specc train`
trains to the same metrics.csv. The training is `python code/train.py --out TRIAL --epoch-hook
RUN/epoch_hook.py`: the hook (HOOK below, no Optuna in it) writes each epoch's value of the search
metric to a pipe and reads back whether the pruner stops the trial; the generated code never
imports Optuna.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from specc.analysis.ir import Program, SearchIR
from specc.diagnostics import Diagnostic, has_errors
from specc.pipeline import check_value
from specc.runtime.train import SIGNALS
from specc.source.overrides import apply_overrides
from specc.source.yamlpos import Pos, PosTree, load_yaml

HOOK = '''\
"""specc tune's epoch hook (train.py --epoch-hook): after each epoch it sends the value of the
search metric to the tune process through the pipe SPECC_TUNE_HOOK names, and stops the training
when the pruner answers "stop" (or the tune process is gone)."""

import json
import os

_send_fd, _answer_fd = (int(fd) for fd in os.environ["SPECC_TUNE_HOOK"].split(","))
_METRIC = os.environ["SPECC_TUNE_METRIC"]
_send = os.fdopen(_send_fd, "w")
_answer = os.fdopen(_answer_fd, "r")


def hook(epoch: int, row: dict) -> bool:
    """True when the trial is pruned after this epoch."""
    try:
        _send.write(json.dumps([epoch, row[_METRIC]]) + "\\n")
        _send.flush()
    except BrokenPipeError:
        return True
    return _answer.readline().strip() != "go"
'''


@dataclass(frozen=True)
class Base:
    """The spec a search starts from: as loaded without its `search:` section, its Program."""

    path: str
    spec_dir: Path
    value: dict[str, Any]
    tree: PosTree
    program: Program
    search: SearchIR
    fixed: tuple[str, ...] = ()
    """Overrides every trial gets besides its values (stopping.refit=none, training.threads=1)."""


def load_base(
    spec_path: str,
) -> tuple[Program | None, dict[str, Any] | None, PosTree, list[Diagnostic]]:
    """The spec checked as a whole (search included), and its value and positions without the
    search section; the Program is None when the spec has errors."""
    from specc.pipeline import check_text

    text = Path(spec_path).read_text(encoding="utf-8")
    spec_dir = Path(spec_path).resolve().parent
    checked = check_text(text, spec_path, spec_dir)
    value, tree, _ = load_yaml(text, spec_path)
    tree = tree if tree is not None else PosTree(Pos(1, 1))
    if not isinstance(value, dict) or not checked.ok:
        return None, None, tree, checked.diagnostics
    value = {k: v for k, v in value.items() if k != "search"}
    tree = tree.copy()
    tree.children.pop("search", None)
    return checked.program, value, tree, checked.diagnostics


def flow(value: Any) -> str:
    """A value as the VALUE of `--set KEY=VALUE`: YAML flow style on one line (1.0e-05, not
    1e-05, which YAML 1.1 reads as a string)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def overrides(values: dict[str, Any]) -> list[str]:
    """The trial's values as `--set` overrides."""
    return [f"{key}={flow(v)}" for key, v in values.items()]


def trial_spec(
    base: Base, values: dict[str, Any], fixed: bool = True
) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """The resolved spec of a trial (None when the whole checker finds an error) and the
    diagnostics, which name the overrides. `fixed`: with the overrides every trial gets."""
    texts = overrides(values) + list(base.fixed if fixed else ())
    value, tree, diags = apply_overrides(base.value, base.tree, texts)
    if has_errors(diags):
        return None, diags
    checked = check_value(value, tree, base.path, base.spec_dir, diags)
    if not checked.ok or checked.program is None:
        return None, checked.diagnostics
    return checked.program.resolved, checked.diagnostics


def relocate(resolved: dict[str, Any], spec_dir: Path, folder: Path) -> dict[str, Any]:
    """The spec as a file in `folder`: a data file named relative to the base spec's folder is
    named relative to `folder` (so `specc train FOLDER/spec.yaml` reads the same data)."""
    data = dict(resolved.get("data") or {})
    source = data.get("source")
    if isinstance(source, str) and not source.startswith("sklearn:"):
        full = Path(source) if Path(source).is_absolute() else spec_dir / source
        data["source"] = os.path.relpath(full.resolve(), folder.resolve())
        return {**resolved, "data": data}
    return resolved


def write_spec(resolved: dict[str, Any], path: Path) -> None:
    """A resolved spec as YAML, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, path)


def first_error(diags: list[Diagnostic]) -> str:
    """The first error diagnostic as one line (FILE:LINE:COL: error[code]: message)."""
    errors = [d for d in diags if d.severity == "error"]
    return errors[0].render().splitlines()[0] if errors else "the spec has errors"


def exit_status(status: int) -> int:
    """A child's status as a shell gives it: 128 + N when signal N killed it."""
    return 128 - status if status < 0 else status


@dataclass
class Outcome:
    """How a trial's training ended."""

    status: int
    """train.py's exit status."""
    pruned: bool
    message: str
    """The last `error:` line of train.log (empty when there is none)."""


def train(
    run: Path, hook: Path, metric: str, report: Callable[[int, float], bool], threads: bool
) -> Outcome:
    """Train the run directory `run` (its code/ written) with the epoch hook: `report(epoch,
    value)` gets each epoch's value of `metric` and says whether to stop. Output in train.log."""
    values_r, values_w = os.pipe()
    answers_r, answers_w = os.pipe()
    env = dict(os.environ, SPECC_TUNE_HOOK=f"{values_w},{answers_r}", SPECC_TUNE_METRIC=metric)
    if threads:  # several workers: one thread each (torch and the BLAS it calls)
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, str(run / "code" / "train.py"), "--out", str(run), "--quiet"]
    command += ["--epoch-hook", str(hook)]
    pruned = False
    with open(run / "train.log", "wb") as log:
        try:
            child = SIGNALS.start(
                command,
                pass_fds=(values_w, answers_r),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        finally:
            os.close(values_w)
            os.close(answers_r)
        with os.fdopen(values_r, "r") as values, os.fdopen(answers_w, "w") as answers:
            for line in values:
                epoch, value = json.loads(line)
                stop = report(int(epoch), float(value))
                pruned = pruned or stop
                try:
                    answers.write("stop\n" if stop else "go\n")
                    answers.flush()
                except BrokenPipeError:
                    break
        status = exit_status(SIGNALS.wait(child))
    return Outcome(status, pruned, _last_error(run / "train.log"))


def _last_error(log: Path) -> str:
    """The last line of the log that starts with `error:`, without it."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    return errors[-1] if errors else ""


def summary(run: Path) -> dict[str, Any] | None:
    """The trial's summary.json, or None."""
    try:
        data = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def epochs_run(run: Path) -> int:
    """Epochs the trial trained: summary.json's count, else the rows of metrics.csv."""
    data = summary(run)
    if data is not None and isinstance(data.get("epochs_run"), int):
        return int(data["epochs_run"])
    try:
        lines = (run / "metrics.csv").read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    return max(len(lines) - 1, 0)
