"""Request validation for the sandbox: an embedded copy of the WriteRequest schema plus the
prose rules of the Write API, checked by a small table-driven validator.

The validator answers with the first problem it finds, as a message that names the JSON
field path (for example ``batch[3].record: expected an object, got string``). It is strict
on purpose: unknown keys inside the known objects are refused, booleans are never accepted
where an integer is expected, and JSON ``null`` is not a valid value for any field. Records
and associations nested more than ``MAX_DEPTH`` (256) levels deep are refused, as the SDK
refuses them: the sandbox could not copy or inspect them.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import unquote

from .._limits import MAX_DEPTH

__all__ = [
    "MAX_BODY_DEPTH",
    "WRITE_REQUEST_SCHEMA",
    "ParameterInvalid",
    "RequestInvalid",
    "nests_deeper_than",
    "parse_json_body",
    "path_segment",
    "validate_record",
    "validate_write_request",
]

Schema = dict[str, Any]

# records and associations: free-form objects, nested at most MAX_DEPTH levels (the object
# itself counted), which is what the SDK sends
_FREE_FORM: Final[Schema] = {"type": "object", "maxDepth": MAX_DEPTH}
#: The deepest a valid write body nests: a batch item's association (MAX_DEPTH levels)
#: inside the body, the batch array, the item and its associations array.
MAX_BODY_DEPTH: Final = MAX_DEPTH + 4

_BATCH_ITEM: Final[Schema] = {
    "type": "object",
    "required": ["record"],
    "additionalProperties": False,
    "properties": {
        "record": _FREE_FORM,
        "associations": {"type": "array", "items": _FREE_FORM},
    },
}

#: The WriteRequest schema as the sandbox enforces it. ``record`` and association objects
#: are free-form (but for their depth); every other object refuses keys it does not declare.
WRITE_REQUEST_SCHEMA: Final[Schema] = {
    "type": "object",
    "required": ["groupRef", "type"],
    "additionalProperties": False,
    "properties": {
        "groupRef": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": ["create", "update", "delete"]},
        "mode": {"type": "string", "enum": ["synchronous", "asynchronous"]},
        "retryPolicy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "deadlineHours": {"type": "integer", "minimum": 1, "maximum": 48},
            },
        },
        "autoBatchPolicy": {
            "type": "object",
            "required": ["maxDelayMinutes"],
            "additionalProperties": False,
            "properties": {
                "maxDelayMinutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                "retryDeadlineHours": {"type": "integer", "minimum": 1, "maximum": 48},
            },
        },
        "record": _FREE_FORM,
        "batchPolicy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"allOrNone": {"type": "boolean"}},
        },
        "batch": {"type": "array", "minItems": 1, "maxItems": 100, "items": _BATCH_ITEM},
        "associations": {"type": "array", "items": _FREE_FORM},
        "headers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "value"],
                "additionalProperties": False,
                # not in the schema: a provider header cannot hold CR, LF or NUL
                "properties": {
                    "key": {"type": "string", "headerSafe": True},
                    "value": {"type": "string", "headerSafe": True},
                },
            },
        },
    },
}


class RequestInvalid(Exception):
    """A request the API answers with 400; ``str(exc)`` is the text/plain answer."""


class ParameterInvalid(RequestInvalid):
    """A path or query parameter refused: ``location`` is ``"path"`` or ``"query"``,
    ``name`` the parameter and ``value`` what was sent (as received, still encoded)."""

    def __init__(self, location: str, name: str, value: str, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.name = name
        self.value = value


def path_segment(raw: str, name: str) -> str:
    """A path parameter, percent-decoded; it must be non-empty UTF-8."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        message = f"{name}: path segment is not valid percent-encoded UTF-8"
        raise ParameterInvalid("path", name, raw, message) from None
    if not value:
        raise ParameterInvalid("path", name, raw, f"{name}: path segment must not be empty")
    return value


def json_type_name(value: object) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_ARTICLES: Final[dict[str, str]] = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
}


def _matches_type(value: object, expected: str) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        # JSON booleans decode to bool, a subclass of int: they are not integers here.
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    raise AssertionError(f"unsupported schema type {expected!r}")  # pragma: no cover


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(path: str, message: str) -> RequestInvalid:
    return RequestInvalid(f"{path or 'request body'}: {message}")


def _check(value: object, schema: Schema, path: str) -> None:
    expected: str = schema["type"]
    if not _matches_type(value, expected):
        raise _fail(path, f"expected {_ARTICLES[expected]}, got {json_type_name(value)}")
    if isinstance(value, str):
        _check_string(value, schema, path)
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        _check_integer(value, schema, path)
    elif isinstance(value, list):
        _check_array(value, schema, path)
    elif isinstance(value, dict):
        _check_object(value, schema, path)


def _check_string(value: str, schema: Schema, path: str) -> None:
    enum: list[str] | None = schema.get("enum")
    if enum is not None and value not in enum:
        choices = ", ".join(enum)
        raise _fail(path, f"must be one of {choices}; got {json.dumps(value)}")
    if schema.get("headerSafe") and any(c in value for c in "\r\n\0"):
        raise _fail(path, "must not contain CR, LF or NUL characters")
    min_length: int = schema.get("minLength", 0)
    if len(value) < min_length:
        raise _fail(path, "must be a non-empty string")


def _check_integer(value: int, schema: Schema, path: str) -> None:
    minimum: int | None = schema.get("minimum")
    maximum: int | None = schema.get("maximum")
    if minimum is not None and value < minimum:
        raise _fail(path, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise _fail(path, f"must be at most {maximum}, got {value}")


def _check_array(value: list[Any], schema: Schema, path: str) -> None:
    min_items: int | None = schema.get("minItems")
    max_items: int | None = schema.get("maxItems")
    if min_items is not None and len(value) < min_items:
        raise _fail(path, f"must contain at least {min_items} item(s), got {len(value)}")
    if max_items is not None and len(value) > max_items:
        raise _fail(path, f"must contain at most {max_items} items, got {len(value)}")
    items: Schema | None = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]")


def nests_deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels deep in ``value`` (itself
    counted). Walked without recursion, holding one iterator a level; a cycle counts as too
    deep."""
    levels: list[Iterator[object]] = [iter((value,))]
    while levels:
        for item in levels[-1]:
            if isinstance(item, (dict, list, tuple)):  # tuples: records seeded from Python
                if len(levels) > limit:
                    return True
                levels.append(iter(item.values() if isinstance(item, dict) else item))
                break
        else:
            levels.pop()
    return False


def _check_object(value: dict[str, Any], schema: Schema, path: str) -> None:
    max_depth: int | None = schema.get("maxDepth")
    if max_depth is not None and nests_deeper_than(value, max_depth):
        raise _fail(path, f"nested deeper than {max_depth} levels")
    properties: dict[str, Schema] = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        for key in value:
            if key not in properties:
                hint = difflib.get_close_matches(key, list(properties), n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                allowed = ", ".join(properties)
                raise _fail(_join(path, key), f"unknown field{suffix}; allowed: {allowed}")
    for key in schema.get("required", ()):
        if key not in value:
            raise _fail(_join(path, key), "required field is missing")
    for key, subschema in properties.items():
        if key in value:
            _check(value[key], subschema, _join(path, key))


def _check_prose_rules(body: dict[str, Any]) -> None:
    has_record = "record" in body
    has_batch = "batch" in body
    write_type: str = body["type"]
    mode: str = body.get("mode", "synchronous")
    if has_record and has_batch:
        raise RequestInvalid("record, batch: give exactly one of 'record' or 'batch', not both")
    if not has_record and not has_batch:
        raise RequestInvalid("record: required field is missing (give 'record' or 'batch')")
    if has_batch and write_type == "delete":
        raise RequestInvalid("batch: batch writes are supported only for create and update")
    if write_type == "delete":
        if mode == "asynchronous":
            raise RequestInvalid("mode: delete is synchronous only")
        record_id = body["record"].get("id")
        if not isinstance(record_id, str) or not record_id:
            raise RequestInvalid("record.id: a delete needs the record's ID as a non-empty string")
    if "autoBatchPolicy" in body:
        if mode != "asynchronous":
            raise RequestInvalid(
                "autoBatchPolicy: only allowed when mode is asynchronous",
            )
        if has_batch:
            raise RequestInvalid(
                "autoBatchPolicy: only allowed for single-record writes (use 'record')",
            )


def validate_record(record: object) -> None:
    """Check a record given on its own (to be seeded); raise ``RequestInvalid`` if it is not
    an object or nests too deep."""
    _check(record, _FREE_FORM, "record")


def validate_write_request(body: object) -> dict[str, Any]:
    """Check a decoded request body; return it typed as a dict or raise ``RequestInvalid``."""
    _check(body, WRITE_REQUEST_SCHEMA, "")
    assert isinstance(body, dict)
    _check_prose_rules(body)
    return body


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def parse_json_body(raw: bytes) -> object:
    """Decode a request body as strict JSON (UTF-8, no NaN or Infinity)."""
    if not raw.strip():
        raise RequestInvalid("request body: a JSON object is required, got an empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestInvalid(f"request body: not valid UTF-8 ({exc.reason})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        message = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise RequestInvalid(f"request body: malformed JSON ({message})") from None
    except (ValueError, RecursionError) as exc:
        raise RequestInvalid(f"request body: malformed JSON ({exc})") from None
