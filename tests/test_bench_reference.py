"""Tests for the data files in specs/data/ and the hand-written benchmark reference loops."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT / "specs" / "data"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def reference_loops():
    """Import bench/reference_loops.py the way the bench scripts do (bench/ on sys.path)."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import reference_loops
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
    return reference_loops


def test_xor_is_the_exact_truth_table():
    """xor.csv holds exactly the four XOR rows."""
    assert (DATA / "xor.csv").read_text() == "x1,x2,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


def test_digit_properties_agree_with_sklearn_digits():
    """Pixels equal sklearn's digits and every row's labels follow from its digit."""
    frame = pd.read_csv(DATA / "digit_properties.csv")
    digits = datasets.load_digits()
    pixel_columns = [f"p{i}" for i in range(64)]
    assert list(frame.columns) == [*pixel_columns, "even", "large", "prime"]
    assert frame.shape == (1797, 67)
    assert all(dtype.kind == "i" for dtype in frame.dtypes)
    np.testing.assert_array_equal(frame[pixel_columns].to_numpy(), digits.data.astype(np.int64))
    target = digits.target
    np.testing.assert_array_equal(frame["even"], (target % 2 == 0).astype(int))
    np.testing.assert_array_equal(frame["large"], (target >= 5).astype(int))
    np.testing.assert_array_equal(frame["prime"], np.isin(target, [2, 3, 5, 7]).astype(int))


@pytest.mark.parametrize("name", ["iris_string_labels.csv", "iris_string_labels.parquet"])
def test_iris_string_labels_agree_with_sklearn_iris(name):
    """Both iris files hold sklearn's iris features and its class names as strings."""
    path = DATA / name
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    iris = datasets.load_iris()
    assert list(frame.columns) == [*IRIS_FEATURES, "species"]
    assert frame.shape == (150, 5)
    np.testing.assert_allclose(frame[IRIS_FEATURES].to_numpy(), iris.data, rtol=0, atol=1e-12)
    assert frame["species"].tolist() == [str(iris.target_names[t]) for t in iris.target]


def test_diabetes_npz_matches_sklearn_without_pickles():
    """diabetes.npz has float32 x [442, 10], y [442] and feature_names, loadable without pickle."""
    diabetes = datasets.load_diabetes()
    with np.load(DATA / "diabetes.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["feature_names", "x", "y"]
        assert npz["x"].dtype == np.float32 and npz["x"].shape == (442, 10)
        assert npz["y"].dtype == np.float32 and npz["y"].shape == (442,)
        np.testing.assert_array_equal(npz["x"], diabetes.data.astype(np.float32))
        np.testing.assert_array_equal(npz["y"], diabetes.target.astype(np.float32))
        assert npz["feature_names"].tolist() == list(diabetes.feature_names)
    with zipfile.ZipFile(DATA / "diabetes.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_data_files_regenerate_byte_identically():
    """make_data.py rebuilds every shipped file with the same bytes."""
    sys.path.insert(0, str(DATA))
    try:
        import make_data
    finally:
        sys.path.remove(str(DATA))
    assert make_data.check(DATA) == []


def test_prepare_digits_splits_60_20_20_and_standardises(reference_loops):
    """The reference data is a stratified 60/20/20 split, standardised on the training split."""
    data = reference_loops.prepare_digits(seed=0)
    sizes = {name: len(data[f"y_{name}"]) for name in ("train", "val", "test")}
    assert sizes == {"train": 1077, "val": 360, "test": 360}
    x_train = data["x_train"]
    assert x_train.shape == (1077, 64)
    varying = x_train.std(dim=0, unbiased=False) > 0
    assert x_train.mean(dim=0).abs().max() < 1e-5
    assert (x_train.std(dim=0, unbiased=False)[varying] - 1).abs().max() < 1e-4


def test_run_tight_two_epochs(reference_loops):
    """Two tight-loop epochs give two positive timings and better-than-chance test accuracy."""
    data = reference_loops.prepare_digits(seed=0)
    times = reference_loops.run_tight(data, epochs=2, seed=0)
    assert len(times) == 2
    assert all(isinstance(s, float) and s > 0 for s in times)
    assert times.test_accuracy > 0.5
    assert np.isfinite(times.train_loss)
