"""docs/spec-reference.md, generated from the same field docstrings as the JSON Schema.

Regenerate: `python -m specc.schema.reference > docs/spec-reference.md`; a test keeps it current.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from specc.schema.activations import ACTIVATION_NAMES, Elu, Gelu, LeakyRelu, Plain, PRelu, Softplus
from specc.schema.common import ONE_KEY
from specc.schema.layers import LAYER_TYPES, Share
from specc.schema.search import Choice, IntUniform, LogIntUniform, LogUniform, Search, Uniform
from specc.schema.spec import (
    Adagrad,
    Adam,
    AdamW,
    Adversarial,
    BinaryCrossEntropy,
    CosineSchedule,
    CrossEntropy,
    Data,
    EarlyStopping,
    Ensemble,
    ExponentialSchedule,
    Export,
    FlipAugment,
    Head,
    Huber,
    Init,
    Input,
    InverseTime,
    LinearSchedule,
    LpPenalty,
    Mae,
    Mse,
    NoiseAugment,
    Onnx,
    Output,
    PlateauSchedule,
    Regularizers,
    RmsProp,
    Sgd,
    ShiftAugment,
    Spec,
    Split,
    StepSchedule,
    Stopping,
    Tie,
    Tracking,
    Training,
)

# each entry: a model, or a layer field's annotation (the activation layer's is a union)
SECTIONS: list[tuple[str, list[tuple[str, object]]]] = [
    ("Top level", [("(spec)", Spec)]),
    ("data", [("data", Data), ("data.split", Split)]),
    (
        "data.augment items",
        [("noise", NoiseAugment), ("flip", FlipAugment), ("shift", ShiftAugment)],
    ),
    ("input, init, output", [("input", Input), ("init", Init), ("output", Output)]),
    (
        "layers",
        [
            *((key, model.model_fields[key].annotation) for key, model in LAYER_TYPES.items()),
            ("share (dense, conv1d, conv2d)", Share),
        ],
    ),
    (
        "activations",
        [
            ("plain names", Plain),
            ("leaky_relu", LeakyRelu),
            ("prelu", PRelu),
            ("elu", Elu),
            ("gelu", Gelu),
            ("softplus", Softplus),
        ],
    ),
    (
        "loss",
        [
            ("cross_entropy", CrossEntropy),
            ("binary_cross_entropy", BinaryCrossEntropy),
            ("mse", Mse),
            ("mae", Mae),
            ("huber", Huber),
        ],
    ),
    (
        "regularizers",
        [
            ("regularizers", Regularizers),
            ("regularizers.lp", LpPenalty),
            ("regularizers.tie items", Tie),
            ("regularizers.adversarial", Adversarial),
        ],
    ),
    (
        "optimizer",
        [
            ("sgd", Sgd),
            ("adagrad", Adagrad),
            ("rmsprop", RmsProp),
            ("adam", Adam),
            ("adamw", AdamW),
        ],
    ),
    (
        "optimizer.schedule",
        [
            ("inverse_time", InverseTime),
            ("linear", LinearSchedule),
            ("step", StepSchedule),
            ("exponential", ExponentialSchedule),
            ("cosine", CosineSchedule),
            ("plateau", PlateauSchedule),
        ],
    ),
    (
        "training, stopping, export, tracking",
        [
            ("training", Training),
            ("stopping", Stopping),
            ("stopping.early", EarlyStopping),
            ("export", Export),
            ("export.onnx", Onnx),
            ("tracking", Tracking),
        ],
    ),
    (
        "heads (multitask; see [training.md](training.md#multitask-heads))",
        [("heads.<name>", Head)],
    ),
    (
        "ensemble (bagging; see [training.md](training.md#ensembles-bagging))",
        [("ensemble", Ensemble)],
    ),
    (
        "search (read by `specc tune`; see [search.md](search.md))",
        [
            ("search", Search),
            ("uniform", Uniform),
            ("log_uniform", LogUniform),
            ("int_uniform", IntUniform),
            ("log_int_uniform", LogIntUniform),
            ("choice", Choice),
        ],
    ),
]


def _unwrap(annotation: Any) -> type[BaseModel] | None:
    """The model inside an `Annotated[Model, BeforeValidator]` layer annotation, if it is one."""
    inner = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _type_text(prop: dict[str, Any]) -> str:
    """A short human rendering of a JSON Schema property's type."""
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if prop.get(ONE_KEY):
        return "one-key mapping (`- kind: {...}`)"
    if "oneOf" in prop:
        return "mapping (see below)"
    if "anyOf" in prop:
        return " \\| ".join(dict.fromkeys(_type_text(p) for p in prop["anyOf"]))
    if prop.get("type") == "array":
        return f"list of {_type_text(prop.get('items', {}))}"
    bounds = [
        f"{sym} {_LIMITS.get(prop[key], prop[key])}"
        for key, sym in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if key in prop
    ]
    base = prop.get("type", "any")
    return f"{base} ({', '.join(bounds)})" if bounds else base


_LIMITS = {2**31 - 1: "2³¹−1", 2**32 - 1: "2³²−1"}
"""Integer limits (sizes, seeds) as the powers of two they are."""


def _default_text(model: type[BaseModel], name: str) -> str:
    """The default of a field as YAML-ish text, or 'required'."""
    field = model.model_fields[name]
    if field.is_required():
        return "**required**"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return "(defaults below)"
    return f"`{json.dumps(default)}`"


def _table(title: str, model: type[BaseModel]) -> list[str]:
    """One model as a markdown table of key, type, default and description."""
    schema = model.model_json_schema()
    if "$ref" in schema:  # a recursive model (residual) is one of its own definitions
        schema = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    props = schema.get("properties", {})
    lines = [f"### `{title}`", "", " ".join((model.__doc__ or "").split()), ""]
    if not props:
        return [*lines, "No parameters: write `{}` or leave the value empty.", ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, prop in props.items():
        desc = " ".join((prop.get("description") or "").split())
        lines.append(f"| `{name}` | {_type_text(prop)} | {_default_text(model, name)} | {desc} |")
    return [*lines, ""]


def _activation_entry(title: str) -> list[str]:
    """The `activation` layer: its own description, and the activation names it takes."""
    field = LAYER_TYPES[title].model_fields[title]
    names = ", ".join(f"`{n}`" for n in ACTIVATION_NAMES)
    return [
        f"### `{title}`",
        "",
        " ".join((field.description or "").split()),
        "",
        f"Takes {names}, or a mapping `{{name: ..., options}}` (see activations).",
        "",
    ]


def render_reference() -> str:
    """The whole spec reference as markdown."""
    out = [
        "# Spec reference",
        "",
        "Generated from the Pydantic models in `specc/schema/` (the same text as the JSON Schema",
        "that `specc schema` prints). Regenerate: `python -m specc.schema.reference >",
        "docs/spec-reference.md`. Semantics: [training.md](training.md); diagnostics:",
        "[diagnostics.md](diagnostics.md).",
        "",
    ]
    for heading, entries in SECTIONS:
        out += [f"## {heading}", ""]
        for title, model in entries:
            inner = _unwrap(model)
            out += _table(title, inner) if inner else _activation_entry(title)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
