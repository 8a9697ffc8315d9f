"""Every per-kind table agrees with the schema: one row per layer kind and per activation.

The facts live in specc/analysis/kinds.py; the per-kind functions live with their stage
(shape rules in shapes.HANDLERS, model code in model_ctx.LAYER_CODE). A kind added to the
schema and forgotten in one table fails here, not in a generated file.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from specc.analysis import rules, shapes
from specc.analysis.inits import auto_for
from specc.analysis.ir import LayerIR, PReluOptions
from specc.analysis.kinds import (
    ACTIVATIONS,
    LAYER_KINDS,
    OUTPUT_OPTIONS,
    RELU_LIKE,
    SATURATING,
    family,
)
from specc.codegen import model_ctx
from specc.pipeline import check_text
from specc.schema import activations as schema_activations
from specc.schema.activations import ACTIVATION_NAMES
from specc.schema.layers import LAYER_TYPES

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "tests/export_zoo").glob("*.yaml"))


def test_layer_kinds_are_the_schema_kinds_in_order() -> None:
    assert list(LAYER_KINDS) == list(LAYER_TYPES)


def test_every_stage_table_covers_exactly_the_schema_kinds() -> None:
    kinds = set(LAYER_TYPES)
    assert set(shapes.HANDLERS) == kinds - {"residual"}  # residual recurses in shapes.py
    assert set(model_ctx.LAYER_CODE) == kinds | {"output"}
    assert set(rules.LAYER_RULES) <= kinds
    assert set(model_ctx.TORCH_MODULES) <= kinds


def test_activation_table_is_the_schema_vocabulary() -> None:
    assert list(ACTIVATIONS) == list(ACTIVATION_NAMES)
    names = set()
    for model in (
        schema_activations.Plain,
        schema_activations.LeakyRelu,
        schema_activations.PRelu,
        schema_activations.Elu,
        schema_activations.Gelu,
        schema_activations.Softplus,
    ):
        names |= set(typing.get_args(model.model_fields["name"].annotation))
    assert names == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_options_are_the_schema_options(name: str) -> None:
    """The IR class of an activation has exactly its schema options (prelu adds channels)."""
    model = next(
        m
        for m in vars(schema_activations).values()
        if isinstance(m, type)
        and hasattr(m, "model_fields")
        and "name" in m.model_fields
        and name in typing.get_args(m.model_fields["name"].annotation)
    )
    spec_fields = set(model.model_fields) - {"name"}
    ir_fields = {f.name for f in dataclasses.fields(ACTIVATIONS[name].options)}
    assert ir_fields == spec_fields | ({"channels"} if name == "prelu" else set())


def test_one_relu_family_for_init_and_lints() -> None:
    """He init for ReLU-like units (leaky_relu and prelu included), Xavier for tanh/sigmoid."""
    assert {"relu", "leaky_relu", "prelu", "elu", "relu6", "gelu", "silu", "softplus"} == RELU_LIKE
    assert {"sigmoid", "tanh"} == SATURATING
    for name in ACTIVATION_NAMES:
        assert auto_for(name) == ("he_normal" if name in RELU_LIKE else "xavier_uniform")
    assert family(None) == "linear"


def test_layer_facts_match_the_schema_params() -> None:
    """own_activation kinds have an `activation` parameter; recurrent kinds have gates."""
    for kind, row in LAYER_KINDS.items():
        params = LAYER_TYPES[kind].model_fields[kind].annotation
        fields = getattr(params, "model_fields", {})  # an `activation` layer's is a union
        # rnn's `activation` is its recurrence's non-linearity, not one applied to its output
        assert row.own_activation == ("activation" in fields and kind != "rnn"), kind
        assert (row.gates > 0) == (kind in ("lstm", "gru", "rnn")), kind
        assert row.own_activation <= row.units and row.own_activation <= row.weights, kind
        assert row.prefix.isidentifier(), kind


def _walk(layers: tuple[LayerIR, ...]) -> list[LayerIR]:
    return [x for layer in layers for x in (layer, *_walk(layer.children))]


def test_analysis_resolves_each_kind_into_its_options_class() -> None:
    """Over the example specs and the export zoo: every kind, each with its row's class."""
    seen: set[str] = set()
    activations: set[str] = set()
    for spec in SPECS:
        checked = check_text(spec.read_text(), str(spec), spec.parent)
        assert checked.program is not None, spec
        model = checked.program.model
        assert isinstance(model.output.options, OUTPUT_OPTIONS)
        for layer in _walk(model.layers):
            seen.add(layer.kind)
            assert type(layer.options) is LAYER_KINDS[layer.kind].options, layer.source
            if layer.activation is not None:
                activations.add(layer.activation.name)
                act = ACTIVATIONS[layer.activation.name]
                assert type(layer.activation.options) is act.options, layer.source
                if isinstance(layer.activation.options, PReluOptions):
                    assert layer.activation.options.channels > 0
    assert seen == set(LAYER_KINDS)
    assert activations >= RELU_LIKE | SATURATING
