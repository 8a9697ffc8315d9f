"""Check specc's CUDA path end to end on a machine with a GPU (or every step of it on the CPU).

Steps, each reported pass/fail; a failed step never stops the ones after it:

1. environment: torch and its CUDA, cuDNN and NCCL versions, the device's name;
2. train every example spec with ``specc train SPEC -o DIR --set training.device=DEVICE --set
   training.epochs=K --quiet`` (``digits_search.yaml``: ``specc tune --trials N`` on a copy with
   the same device and epochs), recording exit status, wall seconds, epochs, the test metrics of
   ``summary.json`` and where the weights lived: ``summary.json``'s ``device`` when it has one,
   else the storage location that ``torch.save`` recorded for ``model.pt``'s tensors;
3. resume: a longer run interrupted with SIGINT (to its process group, as Ctrl-C) after its first
   epoch, continued with ``--resume``, against an uninterrupted run: ``metrics.csv`` without
   ``seconds`` must be equal on the CPU, and within ``--cuda-rtol`` on CUDA (kernels may be
   nondeterministic), the largest relative difference reported either way;
4. export each trained run with ``specc export RUN_DIR -o RUN_DIR/check/model.onnx``, then ONNX
   Runtime on the test rows against PyTorch's ``predict`` of ``model.pt``, on the CPU and on the
   training device;
5. DDP with one process: ``torchrun --standalone --nproc-per-node=1 RUN_DIR/code/train.py --out
   OTHER`` (as ``python -m torch.distributed.run``: the same entry point, found without a
   ``torchrun`` script on PATH), nccl on CUDA, gloo on the CPU, against the single-process run;
6. a JSON report and a Markdown table (``--report PATH``: PATH.json and PATH.md); exit status 0
   only when every step passed.

Usage (``bash bench/cuda_check.sh`` installs a venv first, see docs/cuda.md)::

    python bench/cuda_check.py [--device cuda|cpu] [--epochs 3] [--specs SPEC...]
        [--report PATH] [--workdir DIR] [--tune-trials 2] [--resume-spec NAME]
        [--resume-epochs 100] [--ddp-spec NAME]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_TOL = 1e-4
"""Contract §6: ONNX Runtime vs PyTorch within 1e-4 * max(1, |torch|), element by element."""


def specc_command() -> list[str]:
    """The `specc` console script beside this interpreter, else `python -m specc`."""
    script = Path(sys.executable).parent / "specc"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "specc"]


SPECC = specc_command()


@dataclass
class Step:
    """One checked step: its kind (env, train, tune, resume, export, ddp), verdict and figures."""

    kind: str
    name: str
    ok: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class Check:
    """What the steps share: the options, the work directory and the runs trained in step 2."""

    args: argparse.Namespace
    work: Path
    runs: dict[str, Path] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def device(self) -> str:
        return str(self.args.device)


# --- running things ---------------------------------------------------------------------------


def run_logged(command: list[str], log: Path, timeout: float, env: dict | None = None) -> int:
    """Run `command` with stdout and stderr into `log`; its exit status (124 on a time-out)."""
    with log.open("w") as out:
        try:
            return subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env
            ).returncode
        except subprocess.TimeoutExpired:
            return 124


def tail(log: Path, chars: int = 1200) -> str:
    """The end of a log, for a failed step's report."""
    return log.read_text(errors="replace")[-chars:] if log.is_file() else ""


def timed(step: Step, action: Callable[[Step], None]) -> Step:
    """Run one step's `action`; an exception fails that step only (with its traceback's end)."""
    start = time.perf_counter()
    try:
        action(step)
    except Exception as exc:  # noqa: BLE001 - every step is reported, whatever breaks in one
        step.ok = False
        step.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"
    step.detail.setdefault("wall_s", round(time.perf_counter() - start, 2))
    mark = "PASS" if step.ok else "FAIL"
    print(f"[{mark}] {step.kind} {step.name} ({step.detail['wall_s']} s)", flush=True)
    if step.error:
        print("  " + step.error.strip().replace("\n", "\n  ")[-2000:], flush=True)
    return step


# --- 1. the environment -----------------------------------------------------------------------


def environment(check: Check, step: Step) -> None:
    """torch, CUDA, cuDNN, NCCL and the device, as this interpreter sees them."""
    import numpy
    import onnxruntime
    import torch
    import torch.distributed as dist

    import specc

    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # other processes' share
        "specc": specc.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "device_count": torch.cuda.device_count() if cuda else 0,
        "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
        "nccl_available": dist.is_nccl_available(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "driver": nvidia_driver(),
    }
    step.detail.update(info)
    for key, value in info.items():
        print(f"  {key}: {value}", flush=True)
    if check.device == "cuda":
        step.ok = cuda and bool(info["nccl_available"])
        if not step.ok:
            step.error = "torch sees no CUDA device (or has no NCCL): the cuda steps will fail"
    else:
        step.ok = True


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version from nvidia-smi, when there is one."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    done = subprocess.run(query, capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or None


# --- 2. training every example ----------------------------------------------------------------


def device_flags(check: Check, epochs: int) -> list[str]:
    """The --set flags of every training command of the check."""
    return ["--set", f"training.device={check.device}", "--set", f"training.epochs={epochs}"]


def train(check: Check, spec: Path, step: Step) -> None:
    """specc train on the device for --epochs epochs; the run's figures and the device it used."""
    out = check.work / spec.stem
    command = [*SPECC, "train", str(spec), "-o", str(out), *device_flags(check, check.args.epochs)]
    command += devices_flags(check, spec, step)
    record_run(check, step, [*command, "--quiet"], out, out)


def devices_flags(check: Check, spec: Path, step: Step) -> list[str]:
    """On CUDA, `--set training.devices=N` for a spec asking for more processes than there are
    GPUs (one process per GPU); nothing otherwise (several CPU processes share the cores)."""
    data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    wanted = int((data.get("training") or {}).get("devices", 1))
    if check.device != "cuda":
        return []
    import torch

    gpus = max(1, torch.cuda.device_count())
    if wanted <= gpus:
        return []
    step.detail["devices"] = f"{wanted} -> {gpus} (GPUs on this machine)"
    return ["--set", f"training.devices={gpus}"]


def tune(check: Check, spec: Path, step: Step) -> None:
    """specc tune --trials N on a copy of the spec with the device and epochs set; final/ is the
    run that is checked (tune takes no --set)."""
    copy = check.work / "specs" / spec.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data.setdefault("training", {}).update(device=check.device, epochs=check.args.epochs)
    source = str(data.get("data", {}).get("source", ""))
    if source and not source.startswith("sklearn:"):  # relative to the spec file
        data["data"]["source"] = str((spec.parent / source).resolve())
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    out = check.work / spec.stem
    command = [*SPECC, "tune", str(copy), "-o", str(out), "--trials", str(check.args.tune_trials)]
    record_run(check, step, [*command, "--quiet"], out, out / "final")
    trials = out / "trials.csv"
    if trials.is_file():
        with trials.open(newline="") as handle:
            states = [row.get("state") for row in csv.DictReader(handle)]
        step.detail["trials"] = states


def record_run(check: Check, step: Step, command: list[str], out: Path, run: Path) -> None:
    """Run a training command; exit status, wall time, epochs, test metrics, device; ok when it
    exited 0 with finite test metrics and its weights on the device asked for."""
    step.detail["command"] = " ".join(command)
    start = time.perf_counter()
    status = run_logged(command, out.with_name(out.name + ".log"), check.args.timeout)
    step.detail.update(exit=status, wall_s=round(time.perf_counter() - start, 2))
    if status != 0:
        step.error = f"exit {status}: {tail(out.with_name(out.name + '.log'))}"
        return
    summary = json.loads((run / "summary.json").read_text())
    split, test = reported_metrics(summary)
    step.detail.update(
        epochs=summary.get("epochs_run"),
        split=split,
        test=test,
        train_seconds=summary.get("seconds"),
    )
    recorded = summary.get("device")
    where = weights_location(run)
    step.detail.update(summary_device=recorded, weights_on=where)
    seen = str(recorded or where)
    finite = all(isinstance(v, int | float) and math.isfinite(v) for v in test.values())
    step.ok = seen.startswith(check.device) and finite and bool(test)
    if not step.ok:
        step.error = f"weights on {seen!r} (asked for {check.device}); test metrics {test}"
    check.runs[step.name] = run


def reported_metrics(summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The test split's metrics, or the training split's for a spec without test rows (xor's 4
    rows all train; its val and test metrics are null)."""
    metrics = summary.get("metrics", {})
    for split in ("test", "train"):
        values = metrics.get(split) or {}
        if any(value is not None for value in values.values()):
            return split, values
    return "test", metrics.get("test") or {}


def weights_location(run: Path) -> str:
    """Where model.pt's tensors were when torch.save wrote them ('cuda:0', 'cpu'): read from the
    file's storage records, so that a CUDA checkpoint is readable on a CPU-only machine too."""
    import torch

    weights = run / "model.pt"
    if not weights.is_file():  # an ensemble: its members' weights
        weights = run / "members" / "0" / "model.pt"
    seen: set[str] = set()

    def note(storage: Any, location: str) -> Any:
        seen.add(location)
        return storage

    torch.load(weights, map_location=note, weights_only=True)
    return ",".join(sorted(seen))


# --- 3. interrupt and resume ------------------------------------------------------------------


def metrics_rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows (none when it does not exist yet)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def compare_metrics(a: Path, b: Path) -> dict[str, Any]:
    """metrics.csv of two runs without `seconds`: equal?, rows, the largest relative difference
    (|x - y| / max(|x|, |y|, 1e-12)) over the rows both have, and where it is."""
    rows_a, rows_b = metrics_rows(a), metrics_rows(b)
    result: dict[str, Any] = {"rows": [len(rows_a), len(rows_b)], "max_rel_diff": 0.0}
    columns = [c for c in (rows_a[0] if rows_a else {}) if c != "seconds"]
    other = [c for c in (rows_b[0] if rows_b else {}) if c != "seconds"]
    result["same_columns"] = columns == other
    if columns != other or not rows_a or not rows_b:
        result["equal"], result["max_rel_diff"] = False, math.inf
        return result
    worst, where = 0.0, None
    equal = len(rows_a) == len(rows_b)  # a run that stopped at another epoch is never equal
    for row_a, row_b in zip(rows_a, rows_b, strict=False):
        for column in columns:
            x, y = float(row_a[column]), float(row_b[column])
            equal = equal and row_a[column] == row_b[column]
            rel = abs(x - y) / max(abs(x), abs(y), 1e-12)
            if rel > worst:
                worst, where = rel, f"{column} at epoch {row_a['epoch']}"
    result.update(equal=equal, max_rel_diff=worst, worst_at=where)
    return result


def close(check: Check, comparison: dict[str, Any]) -> bool:
    """Equal metrics.csv files; on CUDA also the same rows within --cuda-rtol."""
    same_rows = comparison["rows"][0] == comparison["rows"][1]
    return comparison["equal"] or (
        check.device == "cuda" and same_rows and comparison["max_rel_diff"] <= check.args.cuda_rtol
    )


def interrupted_run(check: Check, command: list[str], out: Path, step: Step) -> int:
    """Start `command` in its own process group, wait for metrics.csv's first epoch row, send
    SIGINT to the group (what a terminal's Ctrl-C does); its exit status."""
    log = out.with_name(out.name + ".log")
    with log.open("w") as handle:
        proc = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + check.args.timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if metrics_rows(out / "metrics.csv"):
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            status = proc.wait(timeout=check.args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
    step.detail["interrupted_log"] = tail(log, 400)
    return status


def resume(check: Check, spec: Path, step: Step) -> None:
    """An interrupted and resumed run against an uninterrupted one of the same spec."""
    flags = [*device_flags(check, check.args.resume_epochs), "--quiet"]
    base, again = check.work / "resume-reference", check.work / "resume-interrupted"
    reference = [*SPECC, "train", str(spec), "-o", str(base), *flags]
    status = run_logged(reference, base.with_name(base.name + ".log"), check.args.timeout)
    step.detail["reference_exit"] = status
    command = [*SPECC, "train", str(spec), "-o", str(again), *flags]
    step.detail["command"] = " ".join(command)
    interrupted = interrupted_run(check, command, again, step)
    at_epoch = len(metrics_rows(again / "metrics.csv"))
    step.detail.update(interrupt_exit=interrupted, interrupted_after_epoch=at_epoch)
    resumed = run_logged(
        [*command, "--resume"], again.with_name(again.name + ".resume.log"), check.args.timeout
    )
    step.detail["resume_exit"] = resumed
    comparison = compare_metrics(base / "metrics.csv", again / "metrics.csv")
    step.detail.update(comparison)
    epochs = comparison["rows"][0]
    mid_run = 1 <= at_epoch < epochs
    step.ok = (status, interrupted, resumed) == (0, 130, 0) and mid_run and close(check, comparison)
    if not step.ok:
        step.error = (
            f"reference exit {status}, interrupted exit {interrupted} after epoch {at_epoch} of "
            f"{epochs}, resume exit {resumed}; metrics.csv {comparison}"
            + (f"\n{tail(again.with_name(again.name + '.resume.log'))}" if resumed else "")
        )


# --- 4. export --------------------------------------------------------------------------------


def export(check: Check, run: Path, step: Step) -> None:
    """specc export of a device-trained run; ONNX Runtime vs PyTorch's predict on the test rows,
    on the CPU and on the device (the contract's tolerance on the CPU, --device-tol there)."""
    import numpy as np
    import torch

    target = run / "check" / "model.onnx"
    command = [*SPECC, "export", str(run), "-o", str(target)]
    step.detail["command"] = " ".join(command)
    log = run / "check.log"
    target.parent.mkdir(exist_ok=True)
    status = run_logged(command, log, check.args.timeout)
    step.detail["exit"] = status
    if status != 0:
        step.error = f"exit {status}: {tail(log)}"
        return
    model, x = torch_model_and_rows(run)
    with torch.no_grad():
        on_cpu = model.predict(x).numpy()
        device = torch.device(check.device)
        on_device = model.to(device).predict(x.to(device)).cpu().numpy()
    got = onnx_outputs(target, x.numpy())
    for name, expected in (("cpu", on_cpu), ("device", on_device)):
        diff = np.abs(got.astype(np.float64) - expected)
        step.detail[f"{name}_max_abs"] = float(diff.max())
        step.detail[f"{name}_max_rel"] = float((diff / np.maximum(1.0, np.abs(expected))).max())
    step.detail["rows"] = int(x.shape[0])
    step.ok = (
        step.detail["cpu_max_rel"] <= CONTRACT_TOL
        and step.detail["device_max_rel"] <= check.args.device_tol
    )
    if not step.ok:
        step.error = f"ONNX Runtime vs torch: {step.detail}"


def torch_model_and_rows(run: Path) -> tuple[Any, Any]:
    """The run's exported module as specc export builds it (the model, an ensemble's vote or a
    VAE's encoder) in eval mode on the CPU, and the test rows of its code/data.py."""
    import torch

    from specc.runtime.export import import_file, load_model, read_run, select_part

    found = read_run(run)
    model, shape, units = load_model(found)
    part, _ = select_part(found, model, shape, units)
    splits = import_file(run / "code" / "data.py", "data").load()
    x = splits.x_test if len(splits.x_test) else splits.x_train
    return part.eval(), torch.from_numpy(x).reshape(-1, *shape).float()


def onnx_outputs(path: Path, x: Any) -> Any:
    """ONNX Runtime's `output` for `x` (CPU execution provider, the one specc export verifies)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


# --- 5. DDP with one process ------------------------------------------------------------------


HOOK = """\
import json, os

import torch.distributed as dist


def hook(epoch, row):
    \"\"\"After the first epoch, record the process group this train.py trains in.\"\"\"
    if epoch == 1:
        group = dist.is_initialized()
        info = {
            "initialized": group,
            "backend": dist.get_backend() if group else None,
            "world_size": dist.get_world_size() if group else 1,
        }
        with open(os.environ["SPECC_CHECK_GROUP"], "w") as out:
            json.dump(info, out)
    return False
"""
"""An --epoch-hook for train.py: the process group's backend, as torch.distributed reports it."""


def ddp(check: Check, run: Path, step: Step) -> None:
    """The run's generated train.py under torchrun with one process (nccl on CUDA, gloo on the
    CPU) against the single-process run: metrics.csv and the test metrics. An --epoch-hook
    records the process group's backend from inside the training process."""
    out, hook = check.work / "ddp-one-process", check.work / "group_hook.py"
    hook.write_text(HOOK, encoding="utf-8")
    group_file = check.work / "group.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node=1", str(run / "code" / "train.py"), "--out", str(out), "--quiet"]
    step.detail["command"] = " ".join(command)
    env = dict(os.environ, SPECC_CHECK_GROUP=str(group_file), PYTHONUNBUFFERED="1")
    if Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    log = out.with_name(out.name + ".log")
    status = run_logged([*command, "--epoch-hook", str(hook)], log, check.args.timeout, env)
    step.detail["exit"] = status
    if status != 0:
        step.error = f"exit {status}: {tail(log, 2000)}"
        return
    group = json.loads(group_file.read_text()) if group_file.is_file() else {}
    expected = "nccl" if check.device == "cuda" else "gloo"
    step.detail.update(backend=group.get("backend"), world_size=group.get("world_size"))
    step.detail["weights_on"] = weights_location(out)
    comparison = compare_metrics(run / "metrics.csv", out / "metrics.csv")
    step.detail.update(comparison)
    ours = json.loads((out / "summary.json").read_text())["metrics"]["test"]
    theirs = json.loads((run / "summary.json").read_text())["metrics"]["test"]
    step.detail["test"], step.detail["single_process_test"] = ours, theirs
    step.ok = (
        close(check, comparison)
        and group.get("backend") == expected
        and group.get("world_size") == 1
    )
    if not step.ok:
        step.error = (
            f"process group {group or 'none'} (expected {expected}); metrics.csv {comparison}"
        )


# --- 6. the report ----------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A figure for the Markdown table."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown(check: Check, env: dict[str, Any]) -> str:
    """The report as Markdown tables, one per kind of step."""
    ok = all(s.ok for s in check.steps)
    lines = [
        f"# specc CUDA path check: device {check.device}, {check.args.epochs} epochs",
        "",
        f"{'PASS' if ok else 'FAIL'}: {sum(s.ok for s in check.steps)} of {len(check.steps)} "
        "steps passed.",
        "",
        f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}, "
        f"NCCL {env.get('nccl')}), device {env.get('device_name')}, driver {env.get('driver')}, "
        f"Python {env.get('python')}, {env.get('cpus')} CPUs, specc {env.get('specc')}; load "
        f"average {env.get('load_average')} at the start, {load_end()} at the end.",
        "",
        "| spec | verb | ok | exit | wall s | epochs | weights on | test metrics |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in check.steps:
        if s.kind in ("train", "tune"):
            d = s.detail
            test = ", ".join(f"{k} {fmt(v)}" for k, v in (d.get("test") or {}).items())
            test += " (train split: no test rows)" if d.get("split") == "train" else ""
            name = s.name + (f" (devices {d['devices']})" if "devices" in d else "")
            lines.append(
                f"| {name} | {s.kind} | {'yes' if s.ok else 'NO'} | {fmt(d.get('exit'))} | "
                f"{fmt(d.get('wall_s'))} | {fmt(d.get('epochs'))} | "
                f"{d.get('summary_device') or d.get('weights_on') or ''} | {test} |"
            )
    lines += ["", "| check | ok | figures |", "|---|---|---|"]
    for s in check.steps:
        if s.kind in ("resume", "ddp"):
            d = s.detail
            figures = (
                f"rows {d.get('rows')}, equal {d.get('equal')}, max rel diff "
                f"{fmt(d.get('max_rel_diff'))}"
                + (
                    f", interrupted after epoch {d['interrupted_after_epoch']}"
                    if s.kind == "resume"
                    else ""
                )
                + (f", backend {d.get('backend')}" if s.kind == "ddp" else "")
            )
            lines.append(f"| {s.kind} {s.name} | {'yes' if s.ok else 'NO'} | {figures} |")
    lines += [
        "",
        "| export of | ok | rows | ONNX vs torch on CPU: max abs / rel | vs torch on device |",
        "|---|---|---|---|---|",
    ]
    for s in check.steps:
        if s.kind == "export":
            d = s.detail
            lines.append(
                f"| {s.name} | {'yes' if s.ok else 'NO'} | {fmt(d.get('rows'))} | "
                f"{fmt(d.get('cpu_max_abs'))} / {fmt(d.get('cpu_max_rel'))} | "
                f"{fmt(d.get('device_max_abs'))} / {fmt(d.get('device_max_rel'))} |"
            )
    failed = [s for s in check.steps if not s.ok]
    if failed:
        lines += ["", "## Failures", ""]
        for s in failed:
            lines += [f"- **{s.kind} {s.name}**:", "", "```", s.error.strip()[-1500:], "```", ""]
    return "\n".join(lines) + "\n"


def load_end() -> list[float]:
    """The load averages now (1, 5, 15 minutes): other processes that slowed the wall times."""
    return [round(x, 2) for x in os.getloadavg()]


def write_report(check: Check, path: Path) -> None:
    """PATH.json (every step's figures) and PATH.md (the tables)."""
    env = next((s.detail for s in check.steps if s.kind == "env"), {})
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": check.device,
        "epochs": check.args.epochs,
        "ok": all(s.ok for s in check.steps),
        "workdir": str(check.work),
        "load_average_end": load_end(),
        "steps": [asdict(s) for s in check.steps],
    }
    text = json.dumps(report, indent=2, default=str, allow_nan=True)
    path.with_suffix(".json").write_text(text + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(markdown(check, env), encoding="utf-8")
    print(f"wrote {path.with_suffix('.json')} and {path.with_suffix('.md')}", flush=True)


# --- the command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each example (3)")
    parser.add_argument(
        "--specs", nargs="+", type=Path, help="the specs to train (default: specs/*.yaml)"
    )
    parser.add_argument("--report", type=Path, default=Path("cuda_check"), help="PATH.json/.md")
    parser.add_argument("--workdir", type=Path, help="run directories (default: a new temp dir)")
    parser.add_argument(
        "--tune-trials", type=int, default=2, help="specc tune trials of a spec with search: (2)"
    )
    parser.add_argument("--resume-spec", help="spec name for step 3 (default digits_mlp)")
    parser.add_argument("--resume-epochs", type=int, default=100)
    parser.add_argument("--ddp-spec", help="spec name for step 5 (default iris)")
    parser.add_argument(
        "--cuda-rtol",
        type=float,
        default=1e-3,
        help="largest relative metrics.csv difference accepted on CUDA (CPU: equal)",
    )
    parser.add_argument(
        "--device-tol",
        type=float,
        default=1e-3,
        help="ONNX vs torch on the device, relative to max(1, |torch|) (TF32 convolutions)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per command")
    parser.add_argument(
        "--jobs", type=int, default=1, help="trainings and exports at a time (1: clean timings)"
    )
    return parser.parse_args(argv)


def pick(specs: list[Path], wanted: str | None, default: str) -> Path | None:
    """The spec named `wanted` (or `default` when present, else the first) among `specs`."""
    by_name = {spec.stem: spec for spec in specs}
    if wanted:
        return by_name.get(wanted) or Path(wanted)
    return by_name.get(default) or (specs[0] if specs else None)


def main(argv: list[str] | None = None) -> int:
    """Run every step, write the report; 0 when every step passed."""
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="specc-cuda-check-"))
    work.mkdir(parents=True, exist_ok=True)
    check = Check(args, work.resolve())
    print(f"specc CUDA path check on {args.device}; runs in {check.work}", flush=True)
    specs = [s.resolve() for s in (args.specs or sorted((ROOT / "specs").glob("*.yaml")))]

    def add(*steps: tuple[str, str, Callable[[Step], None]]) -> None:
        """Run steps, --jobs at a time, and record them in the order given."""
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            done = pool.map(lambda step: timed(Step(step[0], step[1]), step[2]), steps)
            check.steps.extend(done)

    add(("env", "torch", lambda s: environment(check, s)))
    trainings = []
    for spec in specs:
        searches = "search" in (yaml.safe_load(spec.read_text(encoding="utf-8")) or {})
        if searches and args.tune_trials > 0:
            trainings.append(("tune", spec.stem, partial(tune, check, spec)))
        else:
            trainings.append(("train", spec.stem, partial(train, check, spec)))
    add(*trainings)
    resume_spec = pick(specs, args.resume_spec, "digits_mlp")
    if resume_spec is not None:
        add(("resume", resume_spec.stem, partial(resume, check, resume_spec)))
    runs = [(name, check.runs[name]) for _, name, _ in trainings if name in check.runs]
    add(*(("export", name, partial(export, check, run)) for name, run in runs))
    ddp_spec = pick(specs, args.ddp_spec, "iris")
    if ddp_spec is not None:
        run = check.runs.get(ddp_spec.stem)
        if run is None:
            add(("ddp", ddp_spec.stem, partial(fail, why="its step-2 run did not succeed")))
        else:
            add(("ddp", ddp_spec.stem, partial(ddp, check, run)))
    write_report(check, args.report)
    ok = all(s.ok for s in check.steps)
    print(f"{'PASS' if ok else 'FAIL'}: {sum(s.ok for s in check.steps)}/{len(check.steps)} steps")
    return 0 if ok else 1


def fail(step: Step, *, why: str) -> None:
    """A step that cannot run: failed, saying why."""
    step.ok, step.error = False, why


if __name__ == "__main__":
    sys.exit(main())
