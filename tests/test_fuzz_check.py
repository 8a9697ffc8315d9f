"""Fuzzing the front end: mutated example specs never crash it, and errors ⇔ no Program.

SPECC_FUZZ_EXAMPLES=3000 runs a longer search than the default 120 examples per test.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.diagnostics import has_errors
from specc.pipeline import check_text

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
FALLBACK = """\
name: fallback
data: {source: 'sklearn:iris', split: {val: 0.2}}
input: {shape: [4]}
layers:
  - dense: {units: 16, activation: relu}
  - residual: {layers: [{dense: {units: 16}}, {dropout: {rate: 0.2}}]}
output: {units: 3, activation: softmax}
optimizer: {name: sgd, lr: 0.1, schedule: {name: plateau}}
stopping: {early: {monitor: val_accuracy, patience: 5}, refit: continue}
"""
TEXTS = [p.read_text() for p in sorted(SPECS_DIR.glob("*.yaml"))] or [FALLBACK]
SETTINGS = settings(
    max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["relu", "same", "val_loss", "sklearn:iris", "x.csv", "conv2d", "auto"]),
    st.lists(st.integers(-3, 70), max_size=4),
    st.dictionaries(st.sampled_from(["units", "name", "rate", "dense", "zz"]), st.integers(-2, 9)),
)


def check(text: str) -> None:
    """Run the whole front end on text; it must not raise, and errors ⇔ no Program."""
    checked = check_text(text, "spec.yaml", SPECS_DIR)
    errors = has_errors(checked.diagnostics)
    assert (checked.program is None) == errors, [d.render() for d in checked.diagnostics]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node below the root of a plain value."""
    out = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def parent_of(value: Any, path: tuple) -> Any:
    """The container holding the node at path."""
    for seg in path[:-1]:
        value = value[seg]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """An example spec with a few keys deleted, values replaced or garbage inserted."""
    value = copy.deepcopy(yaml.safe_load(draw(st.sampled_from(TEXTS))))
    for _ in range(draw(st.integers(1, 4))):
        nodes = paths(value)
        if not nodes:
            break
        path = draw(st.sampled_from(nodes))
        parent, key = parent_of(value, path), path[-1]
        action = draw(st.sampled_from(["delete", "replace", "insert"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(GARBAGE)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(GARBAGE)
        else:
            parent.insert(key, draw(GARBAGE))
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


@SETTINGS
@given(mutated())
def test_mutated_specs(text: str) -> None:
    check(text)


@SETTINGS
@given(st.sampled_from(TEXTS), st.floats(0, 1))
def test_truncated_specs(text: str, at: float) -> None:
    check(text[: int(len(text) * at)])


@SETTINGS
@given(st.sampled_from(TEXTS), st.floats(0, 1), st.text(min_size=1, max_size=6))
def test_text_insertions(text: str, at: float, junk: str) -> None:
    i = int(len(text) * at)
    check(text[:i] + junk + text[i:])


SMALL = st.integers(1, 5)
LAYERS = {
    "dense": st.fixed_dictionaries({"units": SMALL}),
    "dropout": st.fixed_dictionaries({"rate": st.sampled_from([0, 0.2, 0.7])}),
    "batchnorm": st.just({}),
    "layernorm": st.just({}),
    "activation": st.sampled_from(["relu", "tanh", "softmax", "prelu"]),
    "maxout": st.fixed_dictionaries({"units": SMALL}),
    "rbf": st.fixed_dictionaries({"units": SMALL}),
    "flatten": st.just(None),
    "global_avgpool": st.just(None),
    "conv1d": st.fixed_dictionaries(
        {"filters": SMALL, "kernel_size": SMALL, "stride": st.integers(1, 3),
         "padding": st.sampled_from([0, 2, "same", "valid"])}
    ),
    "conv2d": st.fixed_dictionaries(
        {"filters": SMALL, "kernel_size": st.one_of(SMALL, st.lists(SMALL, min_size=2, max_size=2)),
         "dilation": st.integers(1, 3), "padding": st.sampled_from([0, 1, "same"])}
    ),
    "separable_conv2d": st.fixed_dictionaries({"filters": SMALL, "kernel_size": SMALL}),
    "maxpool1d": st.fixed_dictionaries({"pool_size": SMALL, "padding": st.integers(0, 2)}),
    "avgpool2d": st.fixed_dictionaries({"pool_size": SMALL, "padding": st.integers(0, 2)}),
    "lstm": st.fixed_dictionaries({"units": SMALL, "return_sequences": st.booleans()}),
    "gru": st.fixed_dictionaries({"units": SMALL, "bidirectional": st.booleans()}),
}  # fmt: skip


@st.composite
def layer(draw: st.DrawFn, depth: int = 0) -> dict:
    """One random layer item (a residual block holds a few more)."""
    kinds = [*LAYERS, "residual"] if depth < 2 else list(LAYERS)
    kind = draw(st.sampled_from(kinds))
    if kind == "residual":
        inner = draw(st.lists(layer(depth + 1), min_size=1, max_size=3))
        return {"residual": {"layers": inner, "projection": draw(st.booleans())}}
    return {kind: draw(LAYERS[kind])}


@SETTINGS
@given(
    st.sampled_from([[64], [8, 8], [1, 8, 8], [4, 4, 4], [2, 32]]),
    st.lists(layer(), max_size=6),
    st.sampled_from([(10, "softmax"), (1, "sigmoid"), (1, "linear"), (3, "sigmoid")]),
)
def test_random_layer_stacks(shape: list[int], layers: list[dict], output: tuple) -> None:
    spec = {
        "name": "stack",
        "data": {"source": "sklearn:digits"},
        "input": {"shape": shape},
        "layers": layers,
        "output": {"units": output[0], "activation": output[1]},
    }
    check(yaml.safe_dump(spec, sort_keys=False))


def test_examples_are_valid() -> None:
    for text in TEXTS:
        check(text)
        assert check_text(text, "spec.yaml", SPECS_DIR).program is not None
