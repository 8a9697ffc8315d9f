"""Pydantic errors become diagnostics at the right place, with the right code."""

from __future__ import annotations

import textwrap
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from specc.diagnostics import Diagnostic
from specc.schema import spec
from specc.schema.common import Bool, Float, PositiveInt
from specc.schema.validate import CODES, allowed_keys, resolve_loc, validate
from specc.source.overrides import apply_overrides
from specc.source.yamlpos import load_yaml

# --- a small spec language of the same shape as specc's --------------------------------


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeakyRelu(Base):
    name: Literal["leaky_relu"]
    slope: float = Field(default=0.01, ge=0)


class Elu(Base):
    name: Literal["elu"]
    alpha: float = Field(default=1.0, gt=0)


Activation = (
    Literal["relu", "tanh", "gelu"] | Annotated[LeakyRelu | Elu, Field(discriminator="name")]
)


class DenseParams(Base):
    units: int = Field(ge=1)
    activation: Activation = "relu"


class DropoutParams(Base):
    rate: float = Field(ge=0, lt=1)


class Dense(Base):
    dense: DenseParams


class Dropout(Base):
    dropout: DropoutParams


def first_key(value: Any) -> str | None:
    """The tag of a one-key mapping."""
    if isinstance(value, dict) and value:
        return next(iter(value))
    return None


Layer = Annotated[
    Annotated[Dense, Tag("dense")] | Annotated[Dropout, Tag("dropout")], Discriminator(first_key)
]


class Sgd(Base):
    name: Literal["sgd"]
    lr: float = Field(gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    nesterov: bool = False

    @model_validator(mode="after")
    def _momentum(self) -> Sgd:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: true needs momentum > 0")
        return self


class Adam(Base):
    name: Literal["adam"]
    lr: float = Field(default=1e-3, gt=0)
    betas: list[float] = Field(default=[0.9, 0.999], min_length=2, max_length=2)


class Training(Base):
    epochs: int = Field(default=10, ge=1)
    shuffle: bool = True
    threads: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    target: str | list[str] | None = None


class Model(Base):
    name: str
    layers: list[Layer] = []
    optimizer: Annotated[Sgd | Adam, Field(discriminator="name")] | None = None
    training: Training = Training()
    grid: list[list[int]] = []


def check(text: str, model: type[BaseModel] = Model) -> list[Diagnostic]:
    """Load and validate dedented YAML; the loader itself must be clean."""
    value, tree, diags = load_yaml(textwrap.dedent(text), "m.yaml")
    assert diags == []
    result, diags = validate(model, value, tree, "m.yaml")
    assert (result is None) == bool(diags)
    return diags


def where(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    """(line, col, code) of each diagnostic."""
    return [(d.line, d.col, d.code) for d in diags]


# --- valid ------------------------------------------------------------------------------


def test_valid_value_gives_the_model() -> None:
    value, tree, _ = load_yaml("name: x\nlayers:\n  - dense: {units: 3}\n", "m.yaml")
    model, diags = validate(Model, value, tree, "m.yaml")
    assert diags == []
    assert isinstance(model, Model)
    assert model.layers[0].dense.units == 3


# --- one case per error kind ------------------------------------------------------------


def test_unknown_layer_type_at_its_key_with_did_you_mean() -> None:
    diags = check("name: x\nlayers:\n  - densse: {units: 3}\n")
    assert where(diags) == [(3, 5, "unknown-name")]
    assert diags[0].message == "layers.0: unknown name 'densse'"
    assert diags[0].hints[0] == "did you mean 'dense'?"
    assert diags[0].hints[1] == "expected one of: dense, dropout"


def test_unknown_key_at_the_key_with_did_you_mean() -> None:
    diags = check("name: x\nlayers:\n  - dense:\n      units: 3\n      activaton: relu\n")
    assert where(diags) == [(5, 7, "unknown-key")]
    assert diags[0].message == "layers.0.dense: unknown key 'activaton'"
    assert diags[0].hints == ("did you mean 'activation'?",)


def test_unknown_top_level_key() -> None:
    diags = check("name: x\ntrainig: {}\n")
    assert where(diags) == [(2, 1, "unknown-key")]
    assert diags[0].message == "unknown key 'trainig'"
    assert diags[0].hints == ("did you mean 'training'?",)


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    diags = check("name: x\ntraining: {zzz: 1}\n")
    assert where(diags) == [(2, 12, "unknown-key")]
    assert diags[0].hints == ("allowed here: epochs, shuffle, threads, target",)


def test_second_key_in_a_one_key_item() -> None:
    diags = check("name: x\nlayers:\n  - dense: {units: 3}\n    dropout: {rate: 0.1}\n")
    assert where(diags) == [(4, 5, "unknown-key")]
    assert diags[0].message == "layers.0: unknown key 'dropout'"
    assert "give it a list item of its own" in diags[0].hints[0]


def test_missing_key_at_the_parent_mapping() -> None:
    diags = check("name: x\nlayers:\n  - dense: {activation: tanh}\n")
    assert where(diags) == [(3, 12, "missing-key")]
    assert diags[0].message == "missing required key 'units' in 'layers.0.dense'"


def test_missing_top_level_key() -> None:
    diags = check("layers: []\n")
    assert where(diags) == [(1, 1, "missing-key")]
    assert diags[0].message == "missing required key 'name'"


def test_missing_discriminator_key() -> None:
    diags = check("name: x\noptimizer:\n  lr: 0.1\n")
    assert where(diags) == [(3, 3, "missing-key")]
    assert diags[0].message == "missing required key 'name' in 'optimizer'"
    assert diags[0].hints == ("expected one of: sgd, adam",)


def test_unknown_name_tag_at_the_name_value() -> None:
    diags = check("name: x\noptimizer: {name: adm}\n")
    assert where(diags) == [(2, 19, "unknown-name")]
    assert diags[0].message == "optimizer.name: unknown name 'adm'"
    assert diags[0].hints[0] == "did you mean 'adam'?"


def test_literal_in_a_union_gives_one_diagnostic() -> None:
    diags = check("name: x\nlayers:\n  - dense: {units: 3, activation: rellu}\n")
    assert where(diags) == [(3, 35, "unknown-name")]
    assert diags[0].message == "layers.0.dense.activation: unknown name 'rellu'"
    assert diags[0].hints[0] == "did you mean 'relu'?"


def test_mapping_branch_of_a_union_reports_its_own_problem_only() -> None:
    diags = check(
        "name: x\nlayers:\n  - dense:\n      units: 3\n      activation: {name: elu, alfa: 2}\n"
    )
    assert where(diags) == [(5, 31, "unknown-key")]
    assert diags[0].hints == ("did you mean 'alpha'?",)


def test_value_fitting_no_union_branch_gives_one_merged_diagnostic() -> None:
    diags = check("name: x\nlayers:\n  - dense: {units: 3, activation: [1]}\n")
    assert where(diags) == [(3, 35, "invalid-type")]
    assert diags[0].message == (
        "layers.0.dense.activation: expected one of relu, tanh, gelu or a mapping, got a list"
    )


def test_string_or_list_union() -> None:
    diags = check("name: x\ntraining: {target: {a: 1}}\n")
    assert where(diags) == [(2, 20, "invalid-type")]
    assert diags[0].message == "training.target: expected a string or a list, got a mapping"


def test_int_or_literal_union() -> None:
    diags = check("name: x\ntraining: {threads: many}\n")
    assert [d.message for d in diags] == [
        "training.threads: expected an integer or 'auto', got 'many'"
    ]
    assert check("name: x\ntraining: {threads: 0}\n")[0].message == (
        "training.threads: must be >= 1, got 0"
    )


@pytest.mark.parametrize(
    ("yaml_value", "message"),
    [
        ("-0.1", "optimizer.lr: must be > 0, got -0.1"),
        ("0", "optimizer.lr: must be > 0, got 0"),
        ("abc", "optimizer.lr: expected a number, got 'abc'"),
        ("[1]", "optimizer.lr: expected a number, got a list"),
    ],
)
def test_lr(yaml_value: str, message: str) -> None:
    diags = check(f"name: x\noptimizer:\n  name: sgd\n  lr: {yaml_value}\n")
    assert [d.message for d in diags] == [message]
    assert (diags[0].line, diags[0].col) == (4, 7)


@pytest.mark.parametrize(
    ("rate", "code", "message"),
    [
        ("1.0", "out-of-range", "must be < 1, got 1.0"),
        ("-0.5", "out-of-range", "must be >= 0, got -0.5"),
        ("high", "invalid-type", "expected a number, got 'high'"),
        ("null", "invalid-type", "expected a number, got null"),
    ],
)
def test_constrained_float(rate: str, code: str, message: str) -> None:
    diags = check(f"name: x\nlayers:\n  - dropout: {{rate: {rate}}}\n")
    assert where(diags) == [(3, 21, code)]
    assert diags[0].message == f"layers.0.dropout.rate: {message}"


@pytest.mark.parametrize(
    ("text", "line", "col", "code", "message"),
    [
        ("training: {epochs: 2.5}", 2, 20, "invalid-type", "expected an integer, got 2.5"),
        ("training: {epochs: '10x'}", 2, 20, "invalid-type", "expected an integer, got '10x'"),
        ("training: {shuffle: maybe}", 2, 21, "invalid-type", "expected true or false"),
        ("training: 3", 2, 11, "invalid-type", "expected a mapping, got 3"),
        ("layers: {dense: 1}", 2, 9, "invalid-type", "expected a list, got a mapping"),
        ("optimizer: {name: adam, betas: [0.9]}", 2, 32, "out-of-range", "at least 2 items"),
        ("grid: [[1, 2], [3, x]]", 2, 20, "invalid-type", "grid.1.1: expected an integer"),
        ("layers: [dense]", 2, 10, "unknown-name", "expected a mapping with one key"),
        ("layers: [dense: 5]", 2, 17, "invalid-type", "layers.0.dense: expected a mapping, got 5"),
    ],
)
def test_error_kinds(text: str, line: int, col: int, code: str, message: str) -> None:
    diags = check(f"name: x\n{text}\n")
    assert where(diags) == [(line, col, code)]
    assert message in diags[0].message


def test_exponent_without_a_dot_still_validates_as_a_float() -> None:
    value, tree, _ = load_yaml("name: x\noptimizer: {name: sgd, lr: 1e-4}\n", "m.yaml")
    model, diags = validate(Model, value, tree, "m.yaml")
    assert diags == []
    assert model.optimizer.lr == 1e-4


def test_yes_is_text_not_a_boolean() -> None:
    """YAML 1.2 (what editors read) takes yes/no as text: an error for a boolean, with a hint,
    and a plain unknown name where a name is expected."""

    class Stop(Base):
        refit: Literal["none", "continue"] = "none"
        restore: Bool = True

    diags = check("refit: yes\nrestore: no\n", Stop)
    assert where(diags) == [(1, 8, "unknown-name"), (2, 10, "invalid-type")]
    assert diags[0].message == "refit: unknown name 'yes'"
    assert diags[1].message == "restore: expected true or false, got 'no'"
    assert diags[1].hints == ("write true or false (YAML 1.2 reads yes/no/on/off as text)",)


def test_quoted_number_is_not_a_number() -> None:
    """`units: "8"` is text, as the editor says: not silently the number 8."""

    class Layer(Base):
        units: PositiveInt
        rate: Float = 0.5

    diags = check('units: "8"\nrate: "0.1"\n', Layer)
    assert where(diags) == [(1, 8, "invalid-type"), (2, 7, "invalid-type")]
    assert diags[0].message == "units: expected an integer, got '8'"
    assert diags[1].message == "rate: expected a number, got '0.1'"


def test_too_long_says_how_many_were_given() -> None:
    diags = check("name: x\noptimizer: {name: adam, betas: [0.9, 0.99, 0.999]}\n")
    assert [d.message for d in diags] == ["optimizer.betas: must have at most 2 items, got 3"]


def test_model_validator_error_is_invalid_value_at_the_model() -> None:
    diags = check("name: x\noptimizer: {name: sgd, lr: 0.1, nesterov: true}\n")
    assert where(diags) == [(2, 12, "invalid-value")]
    assert diags[0].message == "optimizer: nesterov: true needs momentum > 0"


def test_not_a_mapping_at_all() -> None:
    _, diags = validate(Model, None, None, "m.yaml")
    assert where(diags) == [(1, 1, "invalid-type")]
    assert diags[0].message == "expected a mapping, got null"


def test_every_problem_is_reported_once() -> None:
    diags = check(
        """\
        name: x
        layers:
          - densse: {units: 3}
          - dense: {units: 0, activaton: relu}
          - dropout: {rate: 2}
        optimizer: {name: sgd}
        trainig: {}
        """
    )
    assert where(diags) == [
        (3, 5, "unknown-name"),
        (4, 20, "out-of-range"),
        (4, 23, "unknown-key"),
        (5, 21, "out-of-range"),
        (6, 12, "missing-key"),
        (7, 1, "unknown-key"),
    ]
    assert len({(d.line, d.col, d.code, d.message) for d in diags}) == len(diags)


def test_messages_never_show_pydantic_internals() -> None:
    diags = check(
        """\
        name: 3
        layers: [{dense: {units: 3, activation: [1]}}, 7, {dense: {units: x}}]
        optimizer: [1]
        training: {threads: [1], target: 5}
        """
    )
    assert diags
    for d in diags:
        text = d.render()
        for internal in ("pydantic", "http", "function-", "literal[", "tagged-union", "Input "):
            assert internal not in text


def test_override_positions_name_the_override() -> None:
    value, tree, _ = load_yaml("name: x\noptimizer: {name: sgd, lr: 0.1}\n", "m.yaml")
    value, tree, diags = apply_overrides(value, tree, ["optimizer.lr=abc", "training.epochs=0"])
    assert diags == []
    _, diags = validate(Model, value, tree, "m.yaml")
    assert [(d.file, d.line, d.col, d.code) for d in diags] == [
        ("--set optimizer.lr=abc", 1, 14, "invalid-type"),
        ("--set training.epochs=0", 1, 17, "out-of-range"),
    ]


# --- the generic helpers ----------------------------------------------------------------


def test_resolve_loc_drops_discriminator_tags_and_union_labels() -> None:
    value = {"layers": [{"dense": {"units": 3, "activation": {"name": "elu", "x": 1}}}]}
    loc = ("layers", 0, "dense", "dense", "activation", "tagged-union[LeakyRelu,Elu]", "elu", "x")
    assert resolve_loc(value, loc) == ("layers", 0, "dense", "activation", "x")
    assert resolve_loc({"a": "s"}, ("a", "str")) == ("a",)
    assert resolve_loc({"a": 1}, ("a", "function-after[f(), int]")) == ("a",)


def test_resolve_loc_drops_a_missing_key_and_bad_indices() -> None:
    assert resolve_loc({"a": {}}, ("a", "units")) == ("a",)
    assert resolve_loc({"a": [1]}, ("a", 3)) == ("a",)
    assert resolve_loc({"a": [1]}, ("a", "0")) == ("a",)


def test_resolve_loc_keeps_the_later_of_a_tag_and_an_equal_key() -> None:
    item = {"dense": {"units": 3}, "dropout": {"rate": 0.1}}
    assert resolve_loc({"layers": [item]}, ("layers", 0, "dense", "dropout")) == (
        "layers",
        0,
        "dropout",
    )


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.integers() | st.text(max_size=3),
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
        ),
        max_leaves=10,
    ),
    st.lists(st.integers(0, 3) | st.text(max_size=3), max_size=6),
)
def test_resolve_loc_is_always_a_real_path(value: Any, loc: list) -> None:
    path = resolve_loc(value, loc)
    node = value
    for seg in path:
        node = node[seg]  # never raises: every kept segment exists
    assert all(seg in loc for seg in path)


def test_allowed_keys_walks_lists_unions_and_optionals() -> None:
    value = {"layers": [{"dense": {}}], "optimizer": {"name": "adam"}}
    assert allowed_keys(Model, (), value) == ["name", "layers", "optimizer", "training", "grid"]
    assert allowed_keys(Model, ("layers", 0, "dense"), value) == ["units", "activation"]
    assert allowed_keys(Model, ("optimizer",), value) == ["name", "lr", "betas"]
    assert allowed_keys(Model, ("training",), value) == ["epochs", "shuffle", "threads", "target"]


@pytest.mark.parametrize(
    ("err_type", "code"),
    [
        ("extra_forbidden", "unknown-key"),
        ("missing", "missing-key"),
        ("union_tag_invalid", "unknown-name"),
        ("literal_error", "unknown-name"),
        ("greater_than", "out-of-range"),
        ("less_than_equal", "out-of-range"),
        ("too_short", "out-of-range"),
        ("multiple_of", "out-of-range"),
        ("value_error", "invalid-value"),
    ],
)
def test_code_table(err_type: str, code: str) -> None:
    assert CODES[err_type] == code


# --- the real spec language ------------------------------------------------------------


def test_real_spec_misspelt_layer_and_unknown_key() -> None:
    diags = check(
        """\
        name: iris_mlp
        data: {source: "sklearn:iris"}
        input: {shape: [4]}
        layers:
          - densse: {units: 16, activation: relu}
          - dense: {units: 16, activaton: relu}
        output: {units: 3, activation: softmax}
        optimizer: {name: adam, lr: 0.01}
        """,
        spec.Spec,
    )
    assert where(diags) == [(5, 5, "unknown-name"), (6, 24, "unknown-key")]
    assert diags[0].hints[0] == "did you mean 'dense'?"
    assert diags[1].hints == ("did you mean 'activation'?",)


_JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "layers", "dense", "units", "activation", "optimizer", "lr", "x"]
            ),
            kids,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSONISH)
def test_validate_never_raises_and_places_every_diagnostic(value: Any) -> None:
    model, diags = validate(Model, value, None, "m.yaml")
    assert (model is None) == bool(diags)
    assert all(d.line >= 1 and d.col >= 1 and d.message and d.file == "m.yaml" for d in diags)
