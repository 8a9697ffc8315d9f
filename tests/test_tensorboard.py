"""`tracking: {tensorboard: true}` (contract §7): event files in RUN_DIR/tensorboard/ beside
metrics.csv, read back with TensorBoard's own reader (the one its UI uses), which also applies
the purge a resumed session asks for."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SPECS, specc

from specc.codegen.render import compile_program
from specc.pipeline import load_program
from specc.schema.jsonschema import spec_json_schema

ON = "tracking.tensorboard=true"
MISSING = "tracking.tensorboard needs tensorboardX: pip install tensorboardX"
QUICK = ("export.onnx=null",)  # no ONNX export: these tests are about the event files
TAGS = {"train_loss", "val_loss", "val_accuracy", "lr"}  # iris's metrics.csv but epoch, seconds


def train(run: Path, *overrides: str, resume: bool = False) -> None:
    """`specc train specs/iris.yaml -o RUN --set ...` (with tracking on), which must succeed."""
    sets = [arg for o in (ON, *QUICK, *overrides) for arg in ("--set", o)]
    done = specc("train", str(SPECS / "iris.yaml"), "-o", str(run), *sets, *["--resume"] * resume)
    assert done.returncode == 0, done.stderr[-3000:]


def metrics_csv(run: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv as {column: [(epoch, value), ...]} for the columns TensorBoard gets."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {tag: [(int(r["epoch"]), float(r[tag])) for r in rows] for tag in TAGS}


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of RUN/tensorboard/ as TensorBoard shows it: {tag: [(step, value)]}."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(run / "tensorboard"), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_same(tb: dict, expected: dict) -> None:
    """The same tags, steps and values (TensorBoard stores float32; metrics.csv has 8 digits)."""
    assert set(tb) == set(expected)
    for tag, series in expected.items():
        assert [s for s, _ in tb[tag]] == [s for s, _ in series], tag
        assert [v for _, v in tb[tag]] == pytest.approx([v for _, v in series], rel=1e-6), tag


@pytest.mark.slow
def test_event_files_hold_each_epochs_metrics_csv_values(tmp_path: Path) -> None:
    """Per epoch, refit epochs included: train_loss, val_* and lr at global step = epoch."""
    run = tmp_path / "run"
    train(run, "training.epochs=3")  # iris refits (`continue`): epochs 4.. on train + val
    (event_file,) = (run / "tensorboard").iterdir()
    assert event_file.name.startswith("events.out.tfevents.")
    expected = metrics_csv(run)
    assert len(expected["lr"]) > 3  # the refit phase wrote rows too
    assert_same(scalars(run), expected)
    code = (run / "code" / "train.py").read_text()
    assert "from tensorboardX import SummaryWriter" in code and "and tensorboardX):" in code
    harness = (run / "code" / "harness.py").read_text()
    assert harness == compiled()["harness.py"], "harness.py is the same, tracking on or off"


@pytest.mark.slow
def test_a_resumed_run_adds_an_event_file_and_purges_the_epochs_it_trains_again(
    tmp_path: Path,
) -> None:
    """--resume writes a new event file in the same directory; when the checkpoint it resumes
    from is older than the event files (a killed run), the epochs trained again replace the old
    ones in TensorBoard instead of doubling them."""
    run = tmp_path / "run"
    base = ("stopping.refit=none",)
    train(run, *base, "training.epochs=2")
    shutil.copy(run / "last.pt", tmp_path / "epoch2.pt")
    train(run, *base, "training.epochs=4", resume=True)
    assert len(list((run / "tensorboard").iterdir())) == 2
    assert_same(scalars(run), metrics_csv(run))

    # as if killed after epoch 4 with last.pt still at epoch 2: epochs 3 and 4 are written again
    shutil.copy(tmp_path / "epoch2.pt", run / "last.pt")
    train(run, *base, "training.epochs=4", resume=True)
    assert len(list((run / "tensorboard").iterdir())) == 3
    tb = scalars(run)
    assert [step for step, _ in tb["train_loss"]] == [1, 2, 3, 4]
    assert_same(tb, metrics_csv(run))


def compiled(*overrides: str) -> dict[str, str]:
    """The generated files of specs/iris.yaml with `overrides`."""
    program, diagnostics = load_program(SPECS / "iris.yaml", overrides)
    assert program is not None, diagnostics
    return compile_program(program, Path("code"), source="specs/iris.yaml")


def test_the_writer_is_in_train_py_only_when_the_spec_turns_it_on() -> None:
    """Off (the default): no trace of TensorBoard in any file, generated/ stays as it was; on:
    train.py gains the writer and harness.py (shared by every spec) is unchanged."""
    off, on = compiled(), compiled(ON)
    assert not any("tensorboard" in text.lower() for text in off.values())
    assert on["harness.py"] == off["harness.py"]
    assert on["model.py"] == off["model.py"] and on["data.py"] == off["data.py"]
    assert "class TensorBoard:" in on["train.py"]
    assert on["train.py"].count("tensorboard.add(row)") == 2  # the loop and the refit loop


@pytest.mark.slow
def test_without_tensorboardX_train_py_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    """The generated train.py needs tensorboardX only when tracking is on; missing, it stops
    before reading data, with one line (no traceback)."""
    code = tmp_path / "code"
    done = specc("compile", str(SPECS / "iris.yaml"), "-o", str(code), "--set", ON)
    assert done.returncode == 0, done.stderr
    shadow = tmp_path / "shadow" / "tensorboardX"  # an installed tensorboardX that cannot load
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named tensorboardX')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    done = subprocess.run(
        [sys.executable, str(code / "train.py"), "--out", str(tmp_path / "run"), "--quiet"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"error: {MISSING}\n"
    assert not (tmp_path / "run" / "last.pt").exists()


def test_the_json_schema_offers_tracking_tensorboard_to_editors() -> None:
    """`specc schema`: tracking.tensorboard is a boolean, false by default, documented."""
    schema = spec_json_schema()
    assert schema["properties"]["tracking"]["default"] == {"tensorboard": False}
    field = schema["$defs"]["Tracking"]["properties"]["tensorboard"]
    assert field["type"] == "boolean" and field["default"] is False
    assert "RUN_DIR/tensorboard/" in field["description"]
