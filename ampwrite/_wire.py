"""Between the models and JSON: names, request encoding and response decoding.

snake_case attribute names map to the API's camelCase (`in_` is `in`; the few names the API
itself spells in snake_case stay so). Requests are turned into plain data by walking values by
their runtime type, so a wrong type in a model becomes a validation issue instead of an
exception. Responses are read by one cattrs converter, built at import, that renames fields,
tolerates fields it does not know (servers add fields; a model with an `extras` field keeps them
there) and refuses wrong types instead of coercing them.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.preconf.json import make_converter

from .models import (
    BatchWriteResponse,
    Model,
    Problem,
    SingleWriteResponse,
    WriteFailure,
    WriteResponse,
)

if TYPE_CHECKING:
    from ._operation_models import Operation, OperationLog, OperationPage

__all__ = [
    "decode_operation",
    "decode_operation_logs",
    "decode_operation_page",
    "decode_problem",
    "decode_write_failure",
    "decode_write_response",
    "to_wire",
    "wire_name",
]

T = TypeVar("T")


@functools.cache
def wire_name(name: str) -> str:
    """`record_id` -> `recordId`; a trailing underscore (`in_`) is dropped."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_FIELDS: dict[type[Any], tuple[tuple[str, str], ...]] = {}
_SNAKE_CASE_ON_THE_WIRE: dict[str, frozenset[str]] = {
    "OperationLogMessage": frozenset({"operation_id"}),  # inside a log entry's message
}
"""Fields sent as they are named (by model class name: the operation models load lazily)."""
EXTRAS = "extras"
"""The field, on the models that have one, that keeps what a response carried beyond them."""


def _wire_fields(cls: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute name, wire name) of each field of an attrs class, computed once per class."""
    fields = _FIELDS.get(cls)
    if fields is None:
        as_is = _SNAKE_CASE_ON_THE_WIRE.get(cls.__name__, frozenset())
        fields = _FIELDS[cls] = tuple(
            (a.name, a.name if a.name in as_is else wire_name(a.name)) for a in attrs.fields(cls)
        )
    return fields


MAX_DEPTH = 64


def to_wire(value: object, depth: int = 0) -> object:
    """A model as the API's JSON data; unset (None) fields are left out, and what a response
    carried beyond the model (its `extras`) is put back as it came.

    Only ampwrite's models are converted (and the lists that hold them); anything else, records
    and associations included, is passed through untouched for the validator to check.
    """
    if depth > MAX_DEPTH:  # a list that holds itself: left for the validator to refuse
        return value
    if isinstance(value, Model):
        out: dict[str, object] = {}
        for name, wire in _wire_fields(type(value)):
            item = getattr(value, name)
            if name == EXTRAS:
                out.update(item)
            elif item is not None:
                out[wire] = to_wire(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_wire(item, depth + 1) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# Responses


def _strict(kind: type[T], label: str) -> Callable[[object, object], T]:
    def structure(value: object, _: object) -> T:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        raise TypeError(f"expected {label}, got {type(value).__name__}")

    return structure


def _number(value: object, _: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _renaming_structure_fn(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """Structure a JSON object (and only an object) into `cls`, renaming fields; the fields
    it does not know go to its `extras`, when it has that field."""
    renames: dict[str, Any] = {name: override(rename=wire) for name, wire in _wire_fields(cls)}
    keeps_extras = EXTRAS in renames
    if keeps_extras:
        renames[EXTRAS] = override(omit=True)
    known = frozenset(wire for name, wire in _wire_fields(cls) if name != EXTRAS)
    generated = make_dict_structure_fn(cls, _converter, _cattrs_forbid_extra_keys=False, **renames)

    def structure(value: object, kind: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
        made = generated(value, kind)
        if keeps_extras and not known.issuperset(value):
            # the instance's own fresh dict, filled before anyone else can see the instance
            getattr(made, EXTRAS).update(
                {key: item for key, item in value.items() if key not in known}
            )
        return made

    return structure


def _is_homogeneous_tuple(kind: Any) -> bool:
    args = typing.get_args(kind)
    return typing.get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis


def _array_structure_fn(kind: Any) -> Callable[[Any, Any], Any]:
    """Structure a JSON array (and only an array: not a string, not an object) into a tuple."""
    item = typing.get_args(kind)[0]

    def structure(value: object, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise TypeError(f"expected an array, got {type(value).__name__}")
        return tuple(_converter.structure(element, item) for element in value)

    return structure


_converter = make_converter(forbid_extra_keys=False, detailed_validation=False)
_converter.register_structure_hook(str, _strict(str, "a string"))
_converter.register_structure_hook(int, _strict(int, "an integer"))
_converter.register_structure_hook(bool, _strict(bool, "true or false"))
_converter.register_structure_hook(float, _number)
_converter.register_structure_hook_factory(attrs.has, _renaming_structure_fn)
_converter.register_structure_hook_factory(_is_homogeneous_tuple, _array_structure_fn)

_PROBLEM_FIELDS = frozenset(wire for _, wire in _wire_fields(Problem)) - {EXTRAS}


@attrs.frozen(kw_only=True, repr=False, eq=False)
class _Pagination(Model):
    """The `pagination` of a page of results: `done` on the last page."""

    done: bool
    next_page_token: str | None = None


def decode_write_response(payload: object) -> WriteResponse:
    """A 200 body: a batch answer when it carries counts, else a single-record answer.

    Raises (TypeError, KeyError, ...) when the body fits neither shape.
    """
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    if "successCount" in payload or "failureCount" in payload:
        return _converter.structure(payload, BatchWriteResponse)
    return _converter.structure(payload, SingleWriteResponse)


def decode_write_failure(payload: object) -> WriteFailure | BatchWriteResponse:
    """A 422 body: a batch answer when it carries counts, else a single-record failure."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    if "successCount" in payload or "failureCount" in payload:
        return _converter.structure(payload, BatchWriteResponse)
    return _converter.structure(payload, WriteFailure)


def decode_problem(payload: object) -> Problem | None:
    """Problem details from an error body, or None when it holds none."""
    if not isinstance(payload, dict):
        return None
    extras = {key: value for key, value in payload.items() if key not in _PROBLEM_FIELDS}
    known = {key: value for key, value in payload.items() if key in _PROBLEM_FIELDS}
    try:
        problem = _converter.structure(known, Problem)
    except Exception:  # keep the fields that fit; the others go to extras as they came
        fitting = {}
        for key, value in known.items():
            try:
                _converter.structure({key: value}, Problem)
            except Exception:
                extras[key] = value
            else:
                fitting[key] = value
        problem = _converter.structure(fitting, Problem)
    return attrs.evolve(problem, extras=extras) if extras else problem


def decode_operation(payload: object) -> Operation:
    """A 200 body of `GET .../operations/{id}`. Raises when it does not fit."""
    from ._operation_models import Operation

    operation: Operation = _converter.structure(payload, Operation)
    return operation


def decode_operation_logs(payload: object) -> tuple[OperationLog, ...]:
    """A 200 body of `GET .../operations/{id}/logs`: an array of log entries."""
    from ._operation_models import OperationLog

    logs: tuple[OperationLog, ...] = _converter.structure(payload, tuple[OperationLog, ...])
    return logs


def decode_operation_page(payload: object) -> OperationPage:
    """A 200 body of `GET .../installations/{id}/operations`: `results` and `pagination`.
    The next page's token is kept only when the page says it is not the last."""
    from ._operation_models import Operation, OperationPage

    if type(payload) is not dict:
        raise TypeError(f"expected an object, got {type(payload).__name__}")
    results: tuple[Operation, ...] = _converter.structure(payload["results"], tuple[Operation, ...])
    pagination = _converter.structure(payload["pagination"], _Pagination)
    token = None if pagination.done else pagination.next_page_token
    return OperationPage(results=results, next_page_token=token or None)
