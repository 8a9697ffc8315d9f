"""training.threads: auto — the work-per-step estimate and the thread rule (no torch, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.analysis.ir import Program
from specc.analysis.threads import (
    FLOPS_PER_STEP_LIMIT,
    auto_threads,
    flops_per_example,
    flops_per_step,
    share_of_cores,
)
from specc.pipeline import check_text

REPO = Path(__file__).resolve().parent.parent
DIGITS = "name: t\ndata: {source: 'sklearn:digits'}\n"
OUT10 = "output: {units: 10, activation: softmax}\n"


def program(text: str) -> Program:
    """The Program of an error-free spec text."""
    checked = check_text(text, "spec.yaml", REPO / "specs")
    assert checked.program is not None, [d.render() for d in checked.diagnostics]
    return checked.program


def mlp(widths: list[int], batch: int, extra: str = "") -> Program:
    """A ReLU MLP on the digits with the given hidden widths, batch size and training keys."""
    layers = "".join(f"  - dense: {{units: {w}, activation: relu}}\n" for w in widths)
    return program(
        DIGITS + f"input: {{shape: [64]}}\nlayers:\n{layers}" + OUT10
        + f"training: {{batch_size: {batch}{extra}}}\n"
    )  # fmt: skip


def test_dense_work_is_six_flops_per_parameter_and_row() -> None:
    """An MLP's estimate is 6 x its parameters per example, times the batch per step."""
    prog = mlp([128, 64], 64)
    assert flops_per_example(prog.model) == 6 * prog.model.params
    assert flops_per_step(prog.model, 64) == 6 * prog.model.params * 64


def test_convolutions_count_each_output_position() -> None:
    """A conv2d's kernel runs once per output pixel; a dense layer after it once per example."""
    prog = program(
        DIGITS + "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        "  - flatten: {}\n" + OUT10
    )  # fmt: skip
    conv, _, out = (*prog.model.layers, prog.model.output)
    assert flops_per_example(prog.model) == 6 * (conv.params * 8 * 8 + out.params)


def test_recurrent_layers_count_each_time_step() -> None:
    """An LSTM that returns only its last state still runs its weights at every step."""
    prog = program(DIGITS + "input: {shape: [8, 8]}\nlayers:\n  - lstm: {units: 16}\n" + OUT10)
    lstm = prog.model.layers[0]
    assert flops_per_example(prog.model) == 6 * (lstm.params * 8 + prog.model.output.params)


@pytest.mark.parametrize(
    ("flops", "devices", "threads"),
    [
        (0.0, 1, 1),
        (FLOPS_PER_STEP_LIMIT - 1, 1, 1),
        (FLOPS_PER_STEP_LIMIT, 1, None),
        (1e12, 1, None),
        (2 * FLOPS_PER_STEP_LIMIT - 1, 2, 1),  # each of 2 processes does half of the step
        (2 * FLOPS_PER_STEP_LIMIT, 2, None),
        (4 * FLOPS_PER_STEP_LIMIT, 8, 1),
    ],
)
def test_rule_boundaries_and_devices(flops: float, devices: int, threads: int | None) -> None:
    """One thread below the limit of work per process and step, else the process's share."""
    assert auto_threads(flops, devices) == threads


def test_analysis_resolves_auto_by_work_per_step() -> None:
    """The digits MLP gets 1 thread; a 64-1024-512-10 MLP at batch 256 (0.9 GFLOP per step) gets
    its share of the cores, at batch 32 (0.11 GFLOP) one thread; a fixed count stays as written;
    two processes each do half of a step."""
    assert mlp([128, 64], 64).training.threads == 1
    assert mlp([1024, 512], 256).training.threads is None
    assert mlp([1024, 512], 32).training.threads == 1
    assert mlp([1024, 512], 256, extra=", threads: 3").training.threads == 3
    assert mlp([1024, 512], 256, extra=", devices: 8").training.threads == 1


@pytest.mark.parametrize(
    ("cores", "devices", "threads"),
    [(1, 1, 1), (2, 1, 1), (3, 1, 2), (16, 1, 15), (16, 2, 7), (2, 2, 1), (4, 8, 1)],
)
def test_share_of_cores_leaves_one_core(cores: int, devices: int, threads: int) -> None:
    """At run time: the cores less one, divided among the processes, never below one thread."""
    assert share_of_cores(cores, devices) == threads


@pytest.mark.parametrize("world", [1, 2])
def test_large_steps_take_the_share_of_cores_when_the_run_starts(tmp_path: Path, world: int):
    """`auto` above the limit compiles to harness.cpu_threads(), which computes share_of_cores
    from the cores this process may use and torchrun's WORLD_SIZE (a fresh process: torch)."""
    import os
    import subprocess
    import sys

    from specc.codegen.render import compile_program, write_files

    prog = mlp([1024, 512], 256)
    code = tmp_path / "code"
    write_files(compile_program(prog, code), code)
    source = (code / "train.py").read_text()
    assert "torch.set_num_threads(harness.cpu_threads())" in source
    assert "THREADS =" not in source
    env = {**os.environ, "WORLD_SIZE": str(world)}
    done = subprocess.run(
        [sys.executable, "-c", "import harness; print(harness.cpu_threads())"],
        cwd=code, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert int(done.stdout) == share_of_cores(len(os.sched_getaffinity(0)), world)
