"""Shared building blocks of the spec language: the strict base model and small types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True
    )


def name_shorthand(value: Any) -> Any:
    """Let `relu` stand for `{name: relu}` wherever a named mapping is accepted."""
    return {"name": value} if isinstance(value, str) else value


def first_key(value: Any) -> str | None:
    """The tag of a one-key mapping item (`- dense: {...}` -> 'dense'), validated or not."""
    if isinstance(value, dict) and value:
        return str(next(iter(value)))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


def empty_params(value: Any) -> Any:
    """Let `- flatten:` (a null value) stand for `- flatten: {}`."""
    return {} if value is None else value


PositiveInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, lt=1)]
"""A probability in [0, 1): dropout rates, label smoothing, split fractions."""

IntOrPair = int | Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
"""A size given once for every spatial axis (3) or per axis ([3, 5])."""

Padding = Annotated[int, Field(ge=0)] | Literal["valid", "same"]
"""Zero padding in elements on each side, or `valid` (none) / `same` (keep the size at stride 1)."""


def with_shorthand(union: Any, names: tuple[str, ...]) -> Any:
    """Wrap a `name`-tagged union so a bare name means `{name: <name>}` (an enum in the schema)."""
    return Annotated[
        union,
        BeforeValidator(name_shorthand, json_schema_input_type=Literal[names] | union),
    ]
