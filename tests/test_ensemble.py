"""Bagging ensembles (`ensemble:`): the vote and out-of-bag rules against direct arithmetic,
the generated member code, and real `specc train` / export / predict / evaluate runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SPECS, specc

from specc.codegen.render import compile_program
from specc.pipeline import load_program
from specc.runtime import ensemble as ens
from specc.runtime.evaluate import Loss

WINE = """\
name: wine_bag
data: {source: "sklearn:wine", split: {val: 0.2, test: 0.3, seed: 0}, normalize: standard}
input: {shape: [13]}
layers:
  - dense: {units: 8, activation: relu}
output: {units: 3, activation: softmax}
optimizer: {name: adam, lr: 0.01}
training: {epochs: 12, batch_size: 16}
stopping: {early: {monitor: val_loss, patience: 4}}
ensemble: {members: 3, bootstrap: true, vote: soft}
export: {onnx: {opset: 18}}
"""


class Fixed(torch.nn.Module):
    """A stand-in member whose predict(x) is a fixed [batch, units] output."""

    def __init__(self, out: list[list[float]]) -> None:
        super().__init__()
        self.out = torch.tensor(out)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.out


# --- the vote, against direct arithmetic ---------------------------------------------------


def test_soft_vote_is_the_mean_of_member_probabilities():
    members = [[[0.7, 0.2, 0.1]], [[0.1, 0.5, 0.4]], [[0.4, 0.4, 0.2]]]
    model = ens.EnsembleModel([Fixed(m) for m in members], "multiclass", "soft", 3)
    got = model.predict(torch.zeros(1, 2))
    expected = [(0.7 + 0.1 + 0.4) / 3, (0.2 + 0.5 + 0.4) / 3, (0.1 + 0.4 + 0.2) / 3]
    assert got.tolist()[0] == pytest.approx(expected)
    assert ens.combine_outputs(np.array(members), "multiclass", "soft")[0] == pytest.approx(
        expected
    )


def test_hard_vote_is_the_share_of_class_votes():
    """Members vote for classes 0, 1, 1: shares 1/3, 2/3, 0 (the majority is class 1, even
    though the mean probability ranks class 0 first)."""
    members = [[[0.9, 0.05, 0.05]], [[0.3, 0.4, 0.3]], [[0.35, 0.4, 0.25]]]
    model = ens.EnsembleModel([Fixed(m) for m in members], "multiclass", "hard", 3)
    assert model.predict(torch.zeros(1, 2)).tolist()[0] == pytest.approx([1 / 3, 2 / 3, 0.0])
    soft = ens.combine_outputs(np.array(members), "multiclass", "soft")[0]
    assert soft.argmax() == 0
    hard = ens.combine_outputs(np.array(members), "multiclass", "hard")[0]
    assert hard == pytest.approx([1 / 3, 2 / 3, 0.0])


def test_hard_vote_of_sigmoid_units_counts_p_at_least_one_half():
    members = [[[0.6, 0.1]], [[0.5, 0.2]], [[0.2, 0.9]], [[0.4, 0.3]]]
    model = ens.EnsembleModel([Fixed(m) for m in members], "multilabel", "hard", 2)
    assert model.predict(torch.zeros(1, 2)).tolist()[0] == pytest.approx([2 / 4, 1 / 4])


def test_out_of_bag_votes_only_with_members_that_never_drew_the_row():
    """Row 0 is out of bag for members 0 and 2, row 2 for member 1 only, row 1 for none."""
    outputs = np.array(
        [
            [[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]],
            [[0.3, 0.7], [0.5, 0.5], [0.6, 0.4]],
            [[0.4, 0.6], [0.5, 0.5], [0.2, 0.8]],
        ]
    )
    rows, votes = ens.out_of_bag(outputs, [[0], [2], [0]], "multiclass", "soft")
    assert rows.tolist() == [0, 2]
    assert votes[0] == pytest.approx([(0.8 + 0.4) / 2, (0.2 + 0.6) / 2])
    assert votes[1] == pytest.approx([0.6, 0.4])


def test_metrics_of_the_vote_match_numpy():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    y = np.array([0, 2, 1])
    got = ens.metrics("multiclass", Loss("cross_entropy", 0.0, 1.0), p, y)
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["loss"] == pytest.approx(-(np.log(0.6) + np.log(0.6) + np.log(0.4)) / 3)
    values, t = np.array([[1.0], [3.0]]), np.array([[2.0], [3.0]])
    reg = ens.metrics("regression", Loss("mse", 0.0, 1.0), values, t)
    assert reg == pytest.approx({"loss": 0.5, "mae": 0.5, "rmse": np.sqrt(0.5), "r2": -1.0})


# --- the generated code --------------------------------------------------------------------


def _compiled(text: str, tmp_path: Path) -> dict[str, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    program, diags = load_program(str(spec), [])
    assert program is not None, diags
    return {Path(k).name: v for k, v in compile_program(program, tmp_path / "code").items()}


def test_member_code_appears_only_with_ensemble(tmp_path):
    files = _compiled(WINE, tmp_path)
    train = files["train.py"]
    assert "--member K" in train and "def bootstrap(" in train and "seed = SEED + member" in train
    assert 'splits_xy["oob"]' in train and "harness.seed_everything(seed)" in train
    single = _compiled(
        WINE.replace("ensemble: {members: 3, bootstrap: true, vote: soft}\n", ""), tmp_path
    )
    for marker in ("member", "bootstrap", "oob", "MEMBERS", "dataclasses"):
        assert marker not in single["train.py"]
    no_bag = _compiled(WINE.replace("bootstrap: true", "bootstrap: false"), tmp_path)["train.py"]
    assert "--member K" in no_bag and "def bootstrap(" not in no_bag and "oob" not in no_bag


@pytest.mark.slow
def test_generated_member_draws_the_documented_bootstrap(tmp_path):
    """train.py's bootstrap(): n rows with replacement from torch.randint seeded SEED + K; the
    out-of-bag rows are exactly those never drawn; val/test untouched. And --member is required."""
    files = _compiled(WINE, tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    for name, text in files.items():
        (code / name).write_text(text)
    probe = (
        "import sys; sys.argv = ['train.py', '--member', '2', '--out', 'x']\n"
        "import train, data\n"
        "member = train.member_arg(); s = data.load()\n"
        "sample, oob = train.bootstrap(s, train.SEED + member)\n"
        "import json, torch\n"
        "drawn = torch.randint(len(s.y_train), (len(s.y_train),),"
        " generator=torch.Generator().manual_seed(2)).tolist()\n"
        "print(json.dumps({'member': member, 'oob': oob, 'drawn': drawn, 'n': len(s.y_train),"
        " 'same_val': bool((sample.x_val == s.x_val).all()),"
        " 'rows_ok': bool((sample.x_train == s.x_train[drawn]).all())}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=code, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["member"] == 2 and got["same_val"] and got["rows_ok"]
    assert got["oob"] == sorted(set(range(got["n"])) - set(got["drawn"]))
    missing = subprocess.run(
        [sys.executable, str(code / "train.py"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2
    assert "--member K is required: this spec is an ensemble of 3 members" in missing.stderr


# --- real runs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory) -> Path:
    """A 3-member soft-vote wine ensemble trained by `specc train` (model.onnx included)."""
    root = tmp_path_factory.mktemp("wine_bag")
    spec = root / "wine_bag.yaml"
    spec.write_text(WINE)
    done = specc("train", str(spec), "-o", str(root / "run"), "--quiet", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done: ensemble of 3 members" in done.stdout
    return root / "run"


@pytest.mark.slow
def test_ensemble_run_layout_and_summary(wine_run):
    summary = json.loads((wine_run / "summary.json").read_text())
    assert summary["ensemble"]["members"] == 3 and summary["ensemble"]["vote"] == "soft"
    assert set(summary["metrics"]) == {"train", "val", "test", "oob"}
    assert summary["ensemble"]["oob_rows"] > 0
    for k, member in enumerate(summary["members"]):
        path = wine_run / "members" / str(k)
        for name in ("metrics.csv", "best.pt", "last.pt", "model.pt", "summary.json"):
            assert (path / name).is_file()
        own = json.loads((path / "summary.json").read_text())
        assert own["member"] == k and own["seed"] == k == member["seed"]
        assert member["metrics"] == own["metrics"] and "oob" in own["metrics"]
    assert summary["epochs_run"] == sum(m["epochs_run"] for m in summary["members"])
    assert (wine_run / "model.onnx").is_file()


@pytest.mark.slow
def test_ensemble_is_at_least_as_good_as_the_median_member(wine_run):
    summary = json.loads((wine_run / "summary.json").read_text())
    members = [m["metrics"]["test"] for m in summary["members"]]
    test = summary["metrics"]["test"]
    assert test["accuracy"] >= statistics.median(m["accuracy"] for m in members)
    # the soft vote's cross-entropy is at most the members' mean (-log is convex: Jensen)
    assert test["loss"] <= statistics.mean(m["loss"] for m in members) + 1e-6


def _test_split(run: Path):
    from specc.runtime.export import import_file

    return import_file(run / "code" / "data.py", "data").load()


@pytest.mark.slow
def test_onnx_predict_and_evaluate_give_the_ensembles_outputs(wine_run, tmp_path):
    """One ONNX graph (input `input`, output `output`) whose outputs are the mean of the
    members' PyTorch probabilities; `specc evaluate RUN_DIR` gives summary.json's test metrics."""
    import onnx

    from specc.runtime.export import load_model, read_run

    proto = onnx.load(str(wine_run / "model.onnx"))
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    splits = _test_split(wine_run)
    run = read_run(wine_run)
    x = torch.from_numpy(splits.x_test)
    with torch.no_grad():
        probs = [
            load_model(replace(run, weights=wine_run / "members" / str(k) / "model.pt"))[0].predict(
                x
            )
            for k in range(3)
        ]
    mean = torch.stack(probs).mean(dim=0).numpy()
    np.savez(tmp_path / "test.npz", x=splits.x_test, y=splits.y_test)
    out = tmp_path / "pred.csv"
    done = specc(
        "predict", str(wine_run / "model.onnx"), str(tmp_path / "test.npz"), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out)
    got = frame[[c for c in frame.columns if c.startswith("p_")]].to_numpy()
    assert got == pytest.approx(mean, abs=1e-5)
    frame = pd.DataFrame(splits.x_test.astype(np.float64), columns=splits.features)
    frame["target"] = [splits.labels[k] for k in splits.y_test]
    frame.to_csv(tmp_path / "test.csv", index=False)
    done = specc("evaluate", str(wine_run), str(tmp_path / "test.csv"), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    test = json.loads((wine_run / "summary.json").read_text())["metrics"]["test"]
    assert doc["metrics"]["accuracy"] == pytest.approx(test["accuracy"])
    assert doc["metrics"]["loss"] == pytest.approx(test["loss"], abs=1e-4)


@pytest.mark.slow
def test_resume_continues_at_the_first_unfinished_member(wine_run, tmp_path):
    """Member 2 unfinished (its model.pt and summary.json gone, last.pt kept): --resume
    skips members 0 and 1 and resumes member 2, then combines again."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(wine_run, run)
    for name in ("model.pt", "summary.json"):
        (run / "members" / "2" / name).unlink()
    (run / "summary.json").unlink()
    before = {k: (run / "members" / str(k) / "model.pt").stat().st_mtime_ns for k in (0, 1)}
    spec = tmp_path / "wine_bag.yaml"
    spec.write_text(WINE)
    done = specc("train", str(spec), "-o", str(run), "--resume", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming member 2" in done.stderr
    assert "member 0" not in done.stderr and "member 1" not in done.stderr
    for k in (0, 1):
        assert (run / "members" / str(k) / "model.pt").stat().st_mtime_ns == before[k]
    assert (run / "members" / "2" / "model.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["ensemble"]["members"] == 3


@pytest.mark.slow
def test_hard_vote_binary_ensemble_exports_the_vote_share(tmp_path):
    """breast_cancer, 3 members without bootstrap, hard vote: the ONNX output is the share
    of members with p >= 0.5, so a multiple of 1/3."""
    spec = tmp_path / "bc.yaml"
    spec.write_text(
        (SPECS / "breast_cancer.yaml").read_text()
        + "ensemble: {members: 3, bootstrap: false, vote: hard}\n"
    )
    done = specc(
        "train", str(spec), "-o", str(tmp_path / "run"), "--quiet",
        "--set", "training.epochs=3", timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "oob" not in summary["metrics"] and summary["ensemble"]["vote"] == "hard"
    assert [m["seed"] for m in summary["members"]] == [0, 1, 2]
    done = specc("export", str(tmp_path / "run"), "-o", str(tmp_path / "bc.onnx"))
    assert done.returncode == 0, done.stderr
    splits = _test_split(tmp_path / "run")
    np.savez(tmp_path / "x.npz", x=splits.x_test)
    done = specc("predict", str(tmp_path / "bc.onnx"), str(tmp_path / "x.npz"))
    assert done.returncode == 0, done.stderr
    import io

    p = pd.read_csv(io.StringIO(done.stdout)).filter(like="p_").to_numpy()
    assert np.allclose(p * 3, np.round(p * 3), atol=1e-5)
