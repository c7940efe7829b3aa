"""The tools' input schemas, generated from the contract that ships with the package.

`write_input_schema()` is the JSON Schema (2020-12) of a `write_records` call: the three path
parameters and the request body, taken from the `writeRecords` operation of
`ampersand-write-openapi.json` (a copy of the published contract), so a client sees every
field, enum, bound, default and description the contract has. It is the shape
`ampwrite.write_records` takes as a mapping, so the arguments of a call go to it as they are.

OpenAPI 3.0 schemas are close to JSON Schema but not the same: `example` becomes `examples`,
`nullable` a type union, `$ref`s are inlined and `x-` extensions dropped. The schema only
describes; the local checks (`ampwrite._validate`) decide.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

__all__ = ["CONTRACT_FILE", "contract", "to_json_schema", "write_input_schema"]

CONTRACT_FILE: Final = "ampersand-write-openapi.json"
WRITE_PATH: Final = "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"
DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_PATH_DESCRIPTIONS: Final = {
    "projectIdOrName": "The Ampersand project: its ID or its name.",
    "integrationId": "The ID of the integration (for example your HubSpot or Salesforce one).",
    "objectName": "The object to write in the customer's SaaS, e.g. contacts, accounts, leads.",
}
_MAX_DEPTH: Final = 64


@functools.cache
def contract() -> dict[str, Any]:
    """The Write API's OpenAPI document shipped with the package (read once)."""
    text = resources.files(__package__).joinpath(CONTRACT_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _write_operation() -> dict[str, Any]:
    operation: dict[str, Any] = contract()["paths"][WRITE_PATH]["post"]
    return operation


def _resolve(reference: str) -> Any:
    if not reference.startswith("#/"):
        raise ValueError(f"only local references are supported, got {reference!r}")
    node: Any = contract()
    for part in reference[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(schema: object, depth: int = 0) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12 (a new object; `schema` is kept)."""
    if depth > _MAX_DEPTH:
        raise ValueError("schema nested too deep (or a reference cycle)")
    if isinstance(schema, list):
        return [to_json_schema(item, depth + 1) for item in schema]
    if not isinstance(schema, Mapping):
        return copy.deepcopy(schema)
    if "$ref" in schema:
        return to_json_schema(_resolve(schema["$ref"]), depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-") or key in ("nullable", "discriminator", "xml", "externalDocs"):
            continue
        if key == "example":
            out.setdefault("examples", []).append(copy.deepcopy(value))
        elif key == "examples" and isinstance(value, list):
            out.setdefault("examples", []).extend(copy.deepcopy(value))
        elif key in ("properties", "patternProperties"):
            out[key] = {name: to_json_schema(item, depth + 1) for name, item in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value, depth + 1)  # a schema, or a list of schemas
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def _write_input_schema() -> dict[str, Any]:
    operation = _write_operation()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in operation["parameters"]:
        if parameter.get("in") != "path":
            continue
        name = parameter["name"]
        item = to_json_schema(parameter.get("schema", {}))
        description = parameter.get("description") or _PATH_DESCRIPTIONS.get(name)
        if description:
            item = {"description": f"Path parameter. {description}", **item}
        properties[name] = item
        if parameter.get("required"):
            required.append(name)
    body = operation["requestBody"]
    body_schema = to_json_schema(body["content"]["application/json"]["schema"])
    description = body.get("description")
    if description and "description" not in body_schema:
        body_schema["description"] = description
    properties["requestBody"] = body_schema
    if body.get("required"):
        required.append("requestBody")
    return {
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def write_input_schema() -> dict[str, Any]:
    """The JSON Schema of `write_records` and `validate_write` arguments (a fresh copy)."""
    return copy.deepcopy(_write_input_schema())
