"""Every example spec, trained with its full settings by the real `specc train`, reaches a
sensible test metric. Slow (about two minutes on two cores): deselect with -m 'not slow'.

The runs are the session's `runs.trained(name)`, which test_export.py exports as well."""

from __future__ import annotations

import csv
import json
import math

import pytest

# (spec, split, metric, at least / at most): chance levels are 1/3, ~0.63, r2 0, 0.1, ~0.5
EXPECTED = [
    ("iris", "test", "accuracy", ">=", 0.85),
    ("breast_cancer", "test", "accuracy", ">=", 0.93),
    ("diabetes", "test", "r2", ">=", 0.3),
    ("digits_mlp", "test", "accuracy", ">=", 0.95),
    ("digits_ddp", "test", "accuracy", ">=", 0.95),  # two processes under torchrun
    ("digits_cnn", "test", "accuracy", ">=", 0.9),
    ("digits_lstm", "test", "accuracy", ">=", 0.9),
    ("digit_properties", "test", "accuracy", ">=", 0.85),
    ("digits_multitask", "test", "accuracy", ">=", 0.9),  # the main output; heads: test_heads.py
    # XOR has no held-out rows: all four are the training set, and the network must fit them
    ("xor", "train", "loss", "<=", 0.01),
    ("wine_bagging", "test", "accuracy", ">=", 0.9),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "split", "metric", "op", "bound"), EXPECTED)
def test_example_trains_to_a_sensible_metric(
    runs, name: str, split: str, metric: str, op: str, bound: float
) -> None:
    run = runs.trained(name)  # `specc train specs/NAME.yaml`, which must exit 0
    summary = json.loads((run / "summary.json").read_text())
    value = summary["metrics"][split][metric]
    assert value is not None and math.isfinite(value)
    assert value >= bound if op == ">=" else value <= bound, (name, split, metric, value)
    member = summary["members"][0] if "members" in summary else None  # an ensemble's first
    with (run / ("members/0/" if member else "") / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    # one row per epoch; refit epochs (after early stopping) are appended to the main ones
    assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= (member or summary)["epochs_run"]
    # every example asks for export.onnx, so training also wrote the verified ONNX file
    assert (run / "model.onnx").stat().st_size > 0
