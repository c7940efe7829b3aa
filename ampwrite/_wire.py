"""Between the models and JSON: names, request encoding and response decoding.

snake_case attribute names map to the API's camelCase (`in_` is `in`; the few names the API
itself spells in snake_case stay so). Requests are turned into plain data by walking values by
their runtime type, so a wrong type in a model becomes a validation issue instead of an
exception. Responses are read by one cattrs converter, built when the first answer is decoded
(as the models are loaded), that renames fields, tolerates fields it does not know (servers add
fields; a model with an `extras` field keeps them there) and refuses wrong types instead of
coercing them.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._model_base import Model

if TYPE_CHECKING:
    from cattrs import Converter

    from ._operation_models import Operation, OperationLog, OperationPage
    from .models import (
        BatchWriteResponse,
        Problem,
        SingleWriteResponse,
        WriteFailure,
        WriteResponse,
    )

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


def _renaming_structure_fn(cls: type[Any], converter: Converter) -> Callable[[Any, Any], Any]:
    """Structure a JSON object (and only an object) into `cls`, renaming fields; the fields
    it does not know go to its `extras`, when it has that field."""
    from cattrs.gen import make_dict_structure_fn, override

    renames: dict[str, Any] = {name: override(rename=wire) for name, wire in _wire_fields(cls)}
    keeps_extras = EXTRAS in renames
    if keeps_extras:
        renames[EXTRAS] = override(omit=True)
    known = frozenset(wire for name, wire in _wire_fields(cls) if name != EXTRAS)
    generated = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=False, **renames)

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


def _array_structure_fn(kind: Any, converter: Converter) -> Callable[[Any, Any], Any]:
    """Structure a JSON array (and only an array: not a string, not an object) into a tuple."""
    item = typing.get_args(kind)[0]

    def structure(value: object, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise TypeError(f"expected an array, got {type(value).__name__}")
        return tuple(converter.structure(element, item) for element in value)

    return structure


@functools.cache
def _converter() -> Converter:
    """The one converter of responses, made at its first use (cattrs' JSON converter costs
    its import, and each class its structuring code, which is generated when first needed)."""
    from cattrs.preconf.json import make_converter

    converter = make_converter(forbid_extra_keys=False, detailed_validation=False)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: _renaming_structure_fn(cls, converter)
    )
    converter.register_structure_hook_factory(
        _is_homogeneous_tuple, lambda kind: _array_structure_fn(kind, converter)
    )
    return converter


@functools.cache
def _problem_fields() -> frozenset[str]:
    """The wire names of `Problem`'s own fields (not its `extras`)."""
    from .models import Problem

    return frozenset(wire for _, wire in _wire_fields(Problem)) - {EXTRAS}


@functools.cache
def _answer_models() -> tuple[
    type[SingleWriteResponse], type[BatchWriteResponse], type[WriteFailure]
]:
    """The models of a write's answers, looked up once (they load when first used)."""
    from .models import BatchWriteResponse, SingleWriteResponse, WriteFailure

    return SingleWriteResponse, BatchWriteResponse, WriteFailure


def decode_write_response(payload: object) -> WriteResponse:
    """A 200 body: a batch answer when it carries counts, else a single-record answer.

    Raises (TypeError, KeyError, ...) when the body fits neither shape.
    """
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    single, batch, _ = _answer_models()
    if "successCount" in payload or "failureCount" in payload:
        return _converter().structure(payload, batch)
    return _converter().structure(payload, single)


def decode_write_failure(payload: object) -> WriteFailure | BatchWriteResponse:
    """A 422 body: a batch answer when it carries counts, else a single-record failure."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object")
    _, batch, failure = _answer_models()
    if "successCount" in payload or "failureCount" in payload:
        return _converter().structure(payload, batch)
    return _converter().structure(payload, failure)


def decode_problem(payload: object) -> Problem | None:
    """Problem details from an error body, or None when it holds none."""
    if not isinstance(payload, dict):
        return None
    from .models import Problem

    converter, fields = _converter(), _problem_fields()
    extras = {key: value for key, value in payload.items() if key not in fields}
    known = {key: value for key, value in payload.items() if key in fields}
    try:
        problem = converter.structure(known, Problem)
    except Exception:  # keep the fields that fit; the others go to extras as they came
        fitting = {}
        for key, value in known.items():
            try:
                converter.structure({key: value}, Problem)
            except Exception:
                extras[key] = value
            else:
                fitting[key] = value
        problem = converter.structure(fitting, Problem)
    return attrs.evolve(problem, extras=extras) if extras else problem


def decode_operation(payload: object) -> Operation:
    """A 200 body of `GET .../operations/{id}`. Raises when it does not fit."""
    from ._operation_models import Operation

    operation: Operation = _converter().structure(payload, Operation)
    return operation


def decode_operation_logs(payload: object) -> tuple[OperationLog, ...]:
    """A 200 body of `GET .../operations/{id}/logs`: an array of log entries."""
    from ._operation_models import OperationLog

    logs: tuple[OperationLog, ...] = _converter().structure(payload, tuple[OperationLog, ...])
    return logs


def decode_operation_page(payload: object) -> OperationPage:
    """A 200 body of `GET .../installations/{id}/operations`: `results` and `pagination`.
    The next page's token is kept only when the page says it is not the last."""
    from ._operation_models import Operation, OperationPage, _Pagination

    if type(payload) is not dict:
        raise TypeError(f"expected an object, got {type(payload).__name__}")
    converter = _converter()
    results: tuple[Operation, ...] = converter.structure(payload["results"], tuple[Operation, ...])
    pagination = converter.structure(payload["pagination"], _Pagination)
    token = None if pagination.done else pagination.next_page_token
    return OperationPage(results=results, next_page_token=token or None)
