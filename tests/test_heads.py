"""Multitask heads (heads:): the total loss against direct arithmetic, the data each head gets,
the metrics.csv columns and summary.json of a real run, and an export with one output.

The diagnostics of heads are case folders (tests/cases/heads-*, head-target-overlap).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from conftest import SPECS, specc
from test_train_codegen import compile_to, import_data, import_generated

EXAMPLE = SPECS / "digits_multitask.yaml"
WEIGHTS = {"even": 0.3, "ink": 0.2}
"""The example's heads.<name>.weight."""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example compiled into a folder of its own."""
    return compile_to(EXAMPLE, tmp_path_factory.mktemp("heads") / "code")


def test_total_loss_is_main_plus_weighted_heads(code: Path) -> None:
    """total_loss = CE(main) + 0.3 * BCE(even) + 0.2 * Huber_1(ink), each written out here."""
    import torch

    train = import_generated(code)
    torch.manual_seed(0)
    logits = torch.randn(6, 10)
    y = torch.tensor([0, 3, 9, 1, 1, 7])
    z_even, t_even = torch.randn(6, 1), torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0]])
    z_ink, t_ink = torch.randn(6, 1) * 2, torch.randn(6, 1)

    rows = logits.tolist()
    pairs = zip(rows, y.tolist(), strict=True)
    ce = -sum(math.log(math.exp(r[k]) / sum(map(math.exp, r))) for r, k in pairs) / 6
    sig = [1 / (1 + math.exp(-z)) for z in z_even[:, 0].tolist()]
    labels = zip(t_even[:, 0].tolist(), sig, strict=True)
    bce = -sum(t * math.log(s) + (1 - t) * math.log(1 - s) for t, s in labels) / 6
    d = (z_ink - t_ink).abs()[:, 0].tolist()
    huber = sum(0.5 * e * e if e <= 1.0 else 1.0 * (e - 0.5) for e in d) / 6
    expected = ce + WEIGHTS["even"] * bce + WEIGHTS["ink"] * huber

    outputs, targets = {"even": z_even, "ink": z_ink}, {"even": t_even, "ink": t_ink}
    head_loss = train.head_losses(outputs, targets)
    assert float(head_loss["even"]) == pytest.approx(bce, rel=1e-5)
    assert float(head_loss["ink"]) == pytest.approx(huber, rel=1e-5)
    total = train.total_loss(train.loss_fn(logits, y), head_loss)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert train.HEAD_WEIGHTS == WEIGHTS


def test_train_epoch_descends_the_total_loss_plus_penalty(code: Path) -> None:
    """One SGD step of train_epoch moves every parameter, heads' included, by -lr times the
    gradient of main + sum(weight * head loss) + L2/2 * sum(w^2), computed here by autograd."""
    import torch

    train = import_generated(code)
    data = import_data(code)
    splits = data.load()
    x = torch.from_numpy(splits.x_train[:40])
    y = torch.from_numpy(splits.y_train[:40])
    targets = {name: torch.from_numpy(parts[0][:40]) for name, parts in splits.heads.items()}
    torch.manual_seed(0)
    model = train.build_model()
    model.normalize.fit(x)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # the same forward pass in both computations
    reference = copy.deepcopy(model)
    train.BATCH_SIZE = 40  # one step over all 40 rows
    lr = 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses, train_loss, head_train = train.train_epoch(
        model, train.Objective(model), optimizer, x, y, torch.Generator().manual_seed(0), targets
    )

    reference.train()
    logits, outputs = reference.forward_heads(x)
    ce = torch.nn.functional.cross_entropy(logits, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(outputs["even"], targets["even"])
    huber = torch.nn.functional.huber_loss(outputs["ink"], targets["ink"], delta=1.0)
    l2 = sum(w.square().sum() for w in reference.weights())
    objective = ce + WEIGHTS["even"] * bce + WEIGHTS["ink"] * huber + train.L2 / 2 * l2
    objective.backward()
    assert float(train_loss) == pytest.approx(ce.item(), rel=1e-5)  # train_loss: the main loss
    assert float(head_train["even"]) == pytest.approx(bce.item(), rel=1e-5)
    assert float(head_train["ink"]) == pytest.approx(huber.item(), rel=1e-5)
    after = dict(model.named_parameters())
    names = [name for name, _ in reference.named_parameters()]
    assert any(name.startswith("head_ink.") for name in names)
    for name, p in reference.named_parameters():
        torch.testing.assert_close(after[name], p - lr * p.grad, rtol=1e-5, atol=1e-6)


def test_data_gives_each_head_its_column(code: Path) -> None:
    """The heads' targets are left out of the features; even is 0/1 [N, 1], ink floats [N, 1]."""
    data = import_data(code)
    splits = data.load()
    assert splits.features == [f"p{i}" for i in range(64)]
    even_train, even_val, even_test = splits.heads["even"]
    assert even_train.shape == (len(splits.y_train), 1)
    assert set(even_train[:, 0].tolist()) == {0.0, 1.0}
    assert (even_train[:, 0] == (splits.y_train % 2 == 0)).all()  # even is the digit's parity
    ink_train = splits.heads["ink"][0]
    pixels = splits.x_train.reshape(len(splits.x_train), -1)
    assert ink_train[:, 0] == pytest.approx(pixels.mean(axis=1), abs=1e-4)
    assert len(even_val) == len(splits.y_val) and len(even_test) == len(splits.y_test)


def test_no_heads_no_head_code(tmp_path: Path) -> None:
    """A spec without heads compiles none of their code."""
    out = compile_to(SPECS / "digit_properties.yaml", tmp_path / "code")
    for name in ("model.py", "train.py", "data.py"):
        text = (out / name).read_text()
        assert not re.search(r"\bheads?\b|head_|HEAD_", text), name


@pytest.mark.slow
def test_train_and_export(tmp_path: Path) -> None:
    """A real `specc train`: metrics.csv's head columns (val_total_loss by its formula),
    summary.json's heads, and `specc export`: ONNX Runtime sees one input and one output."""
    import numpy as np
    import onnxruntime as ort

    run = tmp_path / "run"
    done = specc("train", str(EXAMPLE), "-o", str(run), "--set", "training.epochs=3", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "epoch", "train_loss", "val_loss", "val_accuracy", "val_total_loss",
        "train_loss_even", "val_loss_even", "val_even_accuracy",
        "train_loss_ink", "val_loss_ink", "val_ink_mae", "val_ink_rmse", "val_ink_r2",
        "lr", "seconds",
    ]  # fmt: skip
    assert len(rows) == 3
    for row in rows:
        heads = sum(w * float(row[f"val_loss_{h}"]) for h, w in WEIGHTS.items())
        assert float(row["val_total_loss"]) == pytest.approx(float(row["val_loss"]) + heads, 1e-6)
    assert float(rows[-1]["val_even_accuracy"]) > 0.6  # the even head learns

    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["heads"]) == {"even", "ink"}
    assert summary["heads"]["ink"]["weight"] == WEIGHTS["ink"]
    assert set(summary["heads"]["ink"]["metrics"]["test"]) == {"loss", "mae", "rmse", "r2"}
    assert set(summary["heads"]["even"]["metrics"]["val"]) == {"loss", "accuracy"}
    assert summary["metrics"]["test"].keys() == {"loss", "accuracy"}

    onnx_file = run / "model.onnx"  # the spec has export.onnx: train wrote it; export again
    shutil.move(onnx_file, tmp_path / "first.onnx")
    exported = specc("export", str(run), "-o", str(onnx_file))
    assert exported.returncode == 0, exported.stderr
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    x = np.random.default_rng(0).uniform(0, 16, (5, 64)).astype(np.float32)
    (probs,) = session.run(None, {"input": x})
    assert probs.shape == (5, 10)
    assert probs.sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
