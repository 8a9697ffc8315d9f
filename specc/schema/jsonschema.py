"""The JSON Schema of the spec language, for editors (yaml-language-server) and docs."""

from __future__ import annotations

from typing import Any

from specc import __version__
from specc.schema.spec import Spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file, from the Pydantic models' docstrings."""
    schema = Spec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://specc.dev/schema/{__version__}/spec.json",
        **schema,
        "title": "specc model spec",
    }
