"""The JSON Schema of the spec language, for editors (yaml-language-server) and docs."""

from __future__ import annotations

from typing import Any

from specc import __version__
from specc.schema.common import ONE_KEY
from specc.schema.spec import Spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file, from the Pydantic models' docstrings."""
    schema = Spec.model_json_schema(mode="validation")
    defs = schema.get("$defs", {})
    schema = _merge_one_key(schema, defs)
    schema["$defs"] = _reachable(schema, schema.get("$defs", {}))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://specc.dev/schema/{__version__}/spec.json",
        **schema,
        "title": "specc model spec",
    }


def _merge_one_key(node: Any, defs: dict[str, Any]) -> Any:
    """Every union marked by `OneKeyItem` as one object with the members' keys as properties."""
    if isinstance(node, list):
        return [_merge_one_key(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get(ONE_KEY):
        properties: dict[str, Any] = {}
        for member in node.get("oneOf") or node.get("anyOf") or []:
            properties.update(_resolve(member, defs)["properties"])
        extra = {k: v for k, v in node.items() if k not in ("oneOf", "anyOf", ONE_KEY)}
        node = {
            **extra,
            "type": "object",
            "properties": properties,
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
        }
    return {k: _merge_one_key(v, defs) for k, v in node.items()}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The definition a `{"$ref": "#/$defs/X"}` names (or the node itself)."""
    ref = node.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else node


def _reachable(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions still referred to from the root (the merged members are not)."""
    seen: set[str] = set()
    todo = [{k: v for k, v in schema.items() if k != "$defs"}]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] not in seen:
                name = ref.rsplit("/", 1)[-1]
                seen.add(name)
                todo.append(defs[name])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return {name: d for name, d in defs.items() if name in seen}
