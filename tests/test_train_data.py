"""The generated data.py: readers, label encoding, the seeded (stratified) split and shapes."""

from __future__ import annotations

import numpy as np
import pytest
from test_train_codegen import DATA, REPO, compile_to, import_data, write_spec

FLOWERS = """\
name: flowers
data:
  source: {source}
  target: species
  split: {{val: 0.2, test: 0.2, seed: 3}}
input: {{shape: [4]}}
output: {{units: 3, activation: softmax}}
"""


def load(tmp_path, text, name="s.yaml", overrides=()):
    code = compile_to(
        write_spec(tmp_path, text, name), tmp_path / name.replace(".", "_"), overrides
    )
    return import_data(code).load()


def test_string_labels_are_sorted_and_kept_as_strings(tmp_path):
    splits = load(tmp_path, FLOWERS.format(source=DATA / "iris_string_labels.csv"))
    assert splits.labels == ["setosa", "versicolor", "virginica"]
    assert splits.features == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    # stratified 60/20/20 of 50 per class: exactly 30/10/10 per class
    for y, per_class in ((splits.y_train, 30), (splits.y_val, 10), (splits.y_test, 10)):
        assert np.bincount(y).tolist() == [per_class] * 3


def test_parquet_reads_the_same_as_csv(tmp_path):
    a = load(tmp_path, FLOWERS.format(source=DATA / "iris_string_labels.csv"), "a.yaml")
    b = load(tmp_path, FLOWERS.format(source=DATA / "iris_string_labels.parquet"), "b.yaml")
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.labels == b.labels


def test_split_is_seeded_disjoint_and_complete(tmp_path):
    text = FLOWERS.format(source=DATA / "iris_string_labels.csv")
    a = load(tmp_path, text, "a.yaml")
    again = load(tmp_path, text, "b.yaml")
    other = load(tmp_path, text.replace("seed: 3", "seed: 4"), "c.yaml")
    np.testing.assert_array_equal(a.x_val, again.x_val)
    assert not np.array_equal(a.x_val, other.x_val)
    rows = np.concatenate([a.x_train, a.x_val, a.x_test])
    every = np.loadtxt(DATA / "iris_string_labels.csv", delimiter=",", skiprows=1, usecols=range(4))
    by_row = lambda m: m[np.lexsort(m.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(by_row(rows), by_row(every.astype(np.float32)))  # a partition


def test_unstratified_split_sizes(tmp_path):
    text = FLOWERS.format(source=DATA / "iris_string_labels.csv").replace(
        "{val: 0.2, test: 0.2, seed: 3}", "{val: 0.1, test: 0.3, seed: 3, stratify: false}"
    )
    splits = load(tmp_path, text)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (90, 15, 45)


def test_npz_regression_and_multilabel_csv(tmp_path):
    npz = f"""\
name: diab
data: {{source: {DATA / "diabetes.npz"}}}
input: {{shape: [10]}}
output: {{units: 1, activation: linear}}
"""
    splits = load(tmp_path, npz, "n.yaml")
    assert splits.labels is None and splits.y_train.shape[1:] == (1,)
    assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) == 442
    assert splits.features[0] == "age"

    code = compile_to(REPO / "specs" / "digit_properties.yaml", tmp_path / "multi")
    splits = import_data(code).load()
    assert splits.labels == ["even", "large", "prime"]
    assert splits.y_train.shape[1:] == (3,) and set(np.unique(splits.y_train)) <= {0.0, 1.0}


def test_images_are_shaped_to_the_input_shape(tmp_path):
    code = compile_to(REPO / "specs" / "digits_cnn.yaml", tmp_path / "cnn")
    splits = import_data(code).load()
    assert splits.x_train.shape[1:] == (1, 8, 8)
    assert splits.labels == [str(i) for i in range(10)]


def test_numeric_class_labels_sort_as_numbers(tmp_path):
    path = tmp_path / "n.csv"
    lines = ["a,b,label"] + [f"{i},{i * 2},{[10, 9, 2][i % 3]}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    text = f"""\
name: numeric
data: {{source: {path}, target: label}}
input: {{shape: [2]}}
output: {{units: 3, activation: softmax}}
"""
    splits = load(tmp_path, text)
    assert splits.labels == ["2", "9", "10"]


def test_sklearn_source_rejects_data_override(tmp_path):
    code = compile_to(REPO / "specs" / "iris.yaml", tmp_path / "iris")
    data = import_data(code)
    with pytest.raises(data.DataError, match="cannot replace the bundled dataset sklearn:iris"):
        data.load("x.csv")
