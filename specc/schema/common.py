"""Shared building blocks of the spec language: the strict base model and small types."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable, and numbers
    are finite (`.nan` and `.inf` are refused)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
        allow_inf_nan=False,
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


ONE_KEY = "x-specc-one-key"
"""Marks, in the generated JSON Schema, a union that specc.schema.jsonschema merges."""


class OneKeyItem:
    """Marks a union of one-key mappings (`- dense: {...}`) for the JSON Schema, which shows
    it as one object whose properties are the members' keys, exactly one of them present:
    an editor then completes the keys (not the member classes) and names an unknown key as
    such. (Merged after generation: inside a recursive model the members are not resolvable.)"""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(core_schema), ONE_KEY: True}


def empty_params(value: Any) -> Any:
    """Let `- flatten:` (a null value) stand for `- flatten: {}`."""
    return {} if value is None else value


def _not_a_boolean(kind: str, expected: str) -> BeforeValidator:
    """Refuse true/false and text where a number is expected: Pydantic would read true as 1
    and "8" as 8, where the JSON Schema (and so an editor) says a number is wanted.

    Placed after a type's `Field` bounds in `Annotated`, so the JSON Schema keeps them."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | str):
            raise PydanticCustomError(kind, f"Input should be {expected}")
        return value

    return BeforeValidator(check)


NOT_BOOL_INT = _not_a_boolean("int_type", "a valid integer")
NOT_BOOL_FLOAT = _not_a_boolean("float_type", "a valid number")

MAX_SIZE = 2**31 - 1
"""Largest size or count: keeps every integer of the generated code within torch's int32/int64."""
MAX_SEED = 2**32 - 1
"""Largest seed numpy accepts (`np.random.seed`)."""

Bool = Annotated[bool, Field(strict=True)]
"""true or false only: not 1/0, nor text such as 'yes' (YAML 1.2 reads yes/no as text)."""
Int = Annotated[int, NOT_BOOL_INT]
"""An integer; YAML's true/false are not 1/0 here."""
Float = Annotated[float, NOT_BOOL_FLOAT]
"""A finite number; YAML's true/false are not 1/0 here."""
PositiveInt = Annotated[int, Field(ge=1, le=MAX_SIZE), NOT_BOOL_INT]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_SIZE), NOT_BOOL_INT]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), NOT_BOOL_INT]
"""A random seed: numpy and torch take 0 to 2^32 - 1."""
PositiveFloat = Annotated[float, Field(gt=0), NOT_BOOL_FLOAT]
NonNegFloat = Annotated[float, Field(ge=0), NOT_BOOL_FLOAT]
Probability = Annotated[float, Field(ge=0, lt=1), NOT_BOOL_FLOAT]
"""A probability in [0, 1): dropout rates, label smoothing, split fractions."""

IntOrPair = PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
"""A size given once for every spatial axis (3) or per axis ([3, 5]), each >= 1."""

Padding = NonNegInt | Literal["valid", "same"]
"""Zero padding in elements on each side, or `valid` (none) / `same` (keep the size at stride 1)."""


def shorthand(union: Any, names: tuple[str, ...]) -> BeforeValidator:
    """Let a bare name mean `{name: <name>}` for a `name`-tagged union (an enum in the schema):
    `Annotated[Union, shorthand(Union, NAMES)]`.

    A field whose default is such a name spells it `by_name("relu")`."""
    return BeforeValidator(name_shorthand, json_schema_input_type=Literal[names] | union)


def by_name(name: str) -> Any:
    """A default written as the user would write it (`schedule: none`): the model validates its
    defaults (`validate_default`), so the field holds a model by the time anyone reads it; to
    a type checker the name stands for that model."""
    return name
