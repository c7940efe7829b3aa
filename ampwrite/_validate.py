"""Local validation: every rule of the contract a caller can break, checked before sending.

`check_request` takes the request as a `WriteRecordsRequest` or in the API's own JSON shape
(`projectIdOrName`, `integrationId`, `objectName`, `requestBody`; a model may stand for any
object of it, such as a `WriteRequest` as the `requestBody`) and returns either the issues
found, each naming its field path, or a `Checked` request whose body is made of plain dicts,
lists and scalars, ready for `json.dumps`. Only what the contract forbids is refused;
combinations its prose calls pointless but harmless are sent as given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ._limits import MAX_DEPTH
from ._model_base import Model
from ._wire import to_wire
from .errors import ValidationIssue

__all__ = ["MAX_DEPTH", "Checked", "check_request", "show", "unencodable"]

PATH_PARAMETERS: Final = ("projectIdOrName", "integrationId", "objectName")
WRITE_TYPES: Final = ("create", "update", "delete")
WRITE_MODES: Final = ("synchronous", "asynchronous")
MAX_BATCH: Final = 100


class Checked:
    """A request that passed every rule (not a tuple, so it never passes for the issues)."""

    __slots__ = ("body", "integration_id", "object_name", "project_id_or_name")

    def __init__(
        self, project_id_or_name: str, integration_id: str, object_name: str, body: dict[str, Any]
    ) -> None:
        self.project_id_or_name = project_id_or_name
        self.integration_id = integration_id
        self.object_name = object_name
        self.body = body

    def __repr__(self) -> str:
        return (
            f"Checked({self.project_id_or_name!r}, {self.integration_id!r}, "
            f"{self.object_name!r}, {self.body!r})"
        )


class _Invalid:
    """Marks a value that produced an issue."""


INVALID: Final = _Invalid()

Checker = Callable[[object, str, list[ValidationIssue]], Any]


def show(value: object, limit: int = 60) -> str:
    """A short repr for a message; never fails (a huge int's repr can)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def _unknown_key_message(key: object, allowed: Sequence[str]) -> str:
    if not isinstance(key, str):
        return f"keys must be strings, got {_type_name(key)}"
    folded = key.replace("_", "").replace("-", "").lower()
    for name in allowed:
        if name.lower() == folded:
            return f"unknown field; did you mean {name!r}?"
    import difflib  # only when there is a typo to explain

    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; allowed: {', '.join(allowed)}"


@functools.cache
def _model_class(name: str) -> type[Model]:
    from . import models  # loaded by then: a model was given

    cls: type[Model] = getattr(models, name)
    return cls


def _is_model(value: object, name: str) -> bool:
    """Whether `value` is an instance of the model class `name` of `ampwrite.models`. The
    classes load when first used, so only a model (of some class) makes this look one up."""
    return isinstance(value, Model) and isinstance(value, _model_class(name))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(
    fields: Mapping[str, Checker],
    required: Sequence[str] = (),
    *,
    model: str | None = None,
) -> Callable[[object, str, list[ValidationIssue]], dict[str, Any] | _Invalid]:
    """A checker for a JSON object with known fields; unknown keys are refused as typos.
    An instance of `model`, the name of the class that stands for this object (if any), is
    checked as its JSON."""
    allowed = tuple(fields)
    expected = "an object" if model is None else f"a {model} or an object"

    def check(value: object, path: str, issues: list[ValidationIssue]) -> dict[str, Any] | _Invalid:
        if isinstance(value, Model):
            if model is None or not _is_model(value, model):
                issues.append(
                    ValidationIssue(path, f"expected {expected}, got {type(value).__name__}")
                )
                return INVALID
            value = to_wire(value)
        if not isinstance(value, Mapping):
            issues.append(ValidationIssue(path, f"expected an object, got {_type_name(value)}"))
            return INVALID
        before = len(issues)
        out: dict[str, Any] = {}
        for key, item in value.items():
            checker = fields.get(key) if isinstance(key, str) else None
            if checker is None:
                issues.append(
                    ValidationIssue(
                        _join(path, key if isinstance(key, str) else f"[{show(key)}]"),
                        _unknown_key_message(key, allowed),
                    )
                )
                continue
            item_path = _join(path, key)
            if item is None:
                issues.append(
                    ValidationIssue(item_path, "must not be null; leave the field out instead")
                )
                continue
            out[key] = checker(item, item_path, issues)
        for key in required:
            if key not in value:
                issues.append(ValidationIssue(_join(path, key), "is required"))
        return out if len(issues) == before else INVALID

    return check


def _string(*, non_empty: bool) -> Checker:
    def check(value: object, path: str, issues: list[ValidationIssue]) -> object:
        if not isinstance(value, str):
            issues.append(ValidationIssue(path, f"expected a string, got {_type_name(value)}"))
            return INVALID
        if non_empty and not value:
            issues.append(ValidationIssue(path, "must not be empty"))
            return INVALID
        return value

    return check


def _path_parameter(value: object, path: str, issues: list[ValidationIssue]) -> object:
    checked = _string(non_empty=True)(value, path, issues)
    if isinstance(checked, str) and not _is_unicode(checked):
        issues.append(ValidationIssue(path, "is not valid Unicode (it holds a lone surrogate)"))
        return INVALID
    return checked


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _header_string(value: object, path: str, issues: list[ValidationIssue]) -> object:
    checked = _string(non_empty=False)(value, path, issues)
    if isinstance(checked, str) and any(c in checked for c in "\r\n\0"):
        issues.append(ValidationIssue(path, "must not contain CR, LF or NUL characters"))
        return INVALID
    return checked


def _enum(*choices: str) -> Checker:
    allowed = ", ".join(choices)

    def check(value: object, path: str, issues: list[ValidationIssue]) -> object:
        if value not in choices or not isinstance(value, str):
            issues.append(ValidationIssue(path, f"must be one of {allowed}; got {show(value)}"))
            return INVALID
        return value

    return check


def _integer(low: int, high: int) -> Checker:
    def check(value: object, path: str, issues: list[ValidationIssue]) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            issues.append(ValidationIssue(path, f"expected an integer, got {_type_name(value)}"))
            return INVALID
        if not low <= value <= high:
            issues.append(
                ValidationIssue(path, f"must be between {low} and {high}; got {show(value)}")
            )
            return INVALID
        return int(value)

    return check


def _boolean(value: object, path: str, issues: list[ValidationIssue]) -> object:
    if not isinstance(value, bool):
        issues.append(ValidationIssue(path, f"expected true or false, got {_type_name(value)}"))
        return INVALID
    return value


def _array(item: Checker, *, low: int = 0, high: int | None = None) -> Checker:
    def check(value: object, path: str, issues: list[ValidationIssue]) -> object:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            issues.append(ValidationIssue(path, f"expected an array, got {_type_name(value)}"))
            return INVALID
        count = len(value)
        if count < low or (high is not None and count > high):
            limit = f"{low} to {high}" if high is not None else f"at least {low}"
            issues.append(ValidationIssue(path, f"must hold {limit} items; got {count}"))
            return INVALID
        before = len(issues)
        out = [item(element, f"{path}[{index}]", issues) for index, element in enumerate(value)]
        return out if len(issues) == before else INVALID

    return check


_NOT_JSON_HINTS: Final = {
    "bytes": "decode it to a string first",
    "bytearray": "decode it to a string first",
    "set": "use a list",
    "frozenset": "use a list",
    "Decimal": "convert it to a string or a float",
    "datetime": "format it as an ISO 8601 string",
    "date": "format it as an ISO 8601 string",
}


def _json_value(value: object, path: str, issues: list[ValidationIssue], depth: int = 0) -> object:
    """Return `value` as plain JSON data, or INVALID after noting why it is not JSON."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        issues.append(ValidationIssue(path, f"{value!r} is not a JSON number"))
        return INVALID
    if isinstance(value, (str, int)):
        return value
    if depth >= MAX_DEPTH:
        issues.append(
            ValidationIssue(path, f"nested deeper than {MAX_DEPTH} levels (or contains a cycle)")
        )
        return INVALID
    if isinstance(value, Mapping):
        return _json_members(value, path, issues, depth)
    if isinstance(value, (list, tuple)):
        before = len(issues)
        items = [
            _json_value(item, f"{path}[{index}]", issues, depth + 1)
            for index, item in enumerate(value)
        ]
        return items if len(issues) == before else INVALID
    name = type(value).__name__
    hint = _NOT_JSON_HINTS.get(name, "use strings, numbers, booleans, null, lists and objects")
    issues.append(ValidationIssue(path, f"{name} is not a JSON type; {hint}"))
    return INVALID


def _json_members(
    value: Mapping[Any, Any], path: str, issues: list[ValidationIssue], depth: int = 0
) -> dict[str, Any] | _Invalid:
    before = len(issues)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            issues.append(
                ValidationIssue(
                    f"{path}[{show(key)}]", f"keys must be strings, got {_type_name(key)}"
                )
            )
            continue
        out[key] = _json_value(item, _join(path, key), issues, depth + 1)
    return out if len(issues) == before else INVALID


def _plain(value: object, depth: int = 0) -> bool:
    """True when `value` is already plain JSON data (dict, list, str, int, bool, None, finite
    float): the common case, checked without building any field path or copy."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if depth >= MAX_DEPTH:
        return False
    # Scalars are checked inline below: most values are, and a call costs more than the check.
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return False
            kind = type(item)
            scalar = kind is str or kind is int or kind is bool or item is None
            if not scalar and not _plain(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            kind = type(item)
            scalar = kind is str or kind is int or kind is bool or item is None
            if not scalar and not _plain(item, depth + 1):
                return False
        return True
    return False


def _json_object(value: object, path: str, issues: list[ValidationIssue]) -> object:
    if type(value) is dict and _plain(value):
        return value
    if not isinstance(value, Mapping):
        issues.append(ValidationIssue(path, f"expected an object, got {_type_name(value)}"))
        return INVALID
    return _json_members(value, path, issues)


_HEADER = _object(
    {"key": _header_string, "value": _header_string}, required=("key", "value"), model="Header"
)
_BATCH_ITEM = _object(
    {"record": _json_object, "associations": _array(_json_object)},
    required=("record",),
    model="BatchItem",
)
_BODY = _object(
    {
        "groupRef": _string(non_empty=True),
        "type": _enum(*WRITE_TYPES),
        "mode": _enum(*WRITE_MODES),
        "retryPolicy": _object({"deadlineHours": _integer(1, 48)}, model="RetryPolicy"),
        "autoBatchPolicy": _object(
            {"maxDelayMinutes": _integer(1, 1440), "retryDeadlineHours": _integer(1, 48)},
            required=("maxDelayMinutes",),
            model="AutoBatchPolicy",
        ),
        "record": _json_object,
        "batchPolicy": _object({"allOrNone": _boolean}, model="BatchPolicy"),
        "batch": _array(_BATCH_ITEM, low=1, high=MAX_BATCH),
        "associations": _array(_json_object),
        "headers": _array(_HEADER),
    },
    required=("groupRef", "type"),
    model="WriteRequest",
)
_REQUEST = _object(
    {
        "projectIdOrName": _path_parameter,
        "integrationId": _path_parameter,
        "objectName": _path_parameter,
        "requestBody": _BODY,
    },
    required=(*PATH_PARAMETERS, "requestBody"),
    model="WriteRecordsRequest",
)


def _check_combinations(body: Mapping[str, Any], issues: list[ValidationIssue]) -> None:
    """The rules that tie fields together (the contract states them in prose)."""
    path = "requestBody"
    has_record, has_batch = "record" in body, "batch" in body
    if has_record and has_batch:
        issues.append(ValidationIssue(path, "give record or batch, not both"))
    elif not has_record and not has_batch:
        issues.append(
            ValidationIssue(
                path, "give record (one record) or batch (1 to 100 records); neither given"
            )
        )
    write_type, mode = body.get("type"), body.get("mode", "synchronous")
    if write_type == "delete":
        if has_batch:
            issues.append(ValidationIssue(f"{path}.batch", "delete takes one record, not a batch"))
        record = body.get("record")
        if isinstance(record, Mapping):
            record_id = record.get("id")
            if not isinstance(record_id, str) or not record_id:
                issues.append(
                    ValidationIssue(
                        f"{path}.record.id", "delete needs the id of the record (a string)"
                    )
                )
        if mode == "asynchronous":
            issues.append(
                ValidationIssue(f"{path}.mode", "delete is synchronous only; leave mode out")
            )
    if "autoBatchPolicy" in body:
        if mode != "asynchronous":
            issues.append(
                ValidationIssue(
                    f"{path}.autoBatchPolicy", "only for asynchronous writes (mode: asynchronous)"
                )
            )
        if has_batch:
            issues.append(
                ValidationIssue(
                    f"{path}.autoBatchPolicy", "only for single-record writes, not batch"
                )
            )


def unencodable(value: object, path: str, depth: int = 0) -> tuple[ValidationIssue, ...]:
    """Where checked data cannot become UTF-8 JSON (a lone surrogate, an integer with more
    digits than Python will print); looked for only after encoding failed."""
    if isinstance(value, str):
        return () if _is_unicode(value) else (ValidationIssue(path, "holds a lone surrogate"),)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            int.__repr__(value)
        except ValueError:
            return (ValidationIssue(path, "is an integer too large to write as JSON"),)
        return ()
    if depth > MAX_DEPTH:
        return (ValidationIssue(path, f"nested deeper than {MAX_DEPTH} levels"),)
    issues: tuple[ValidationIssue, ...] = ()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _is_unicode(key):
                issues += (ValidationIssue(f"{path}[{show(key)}]", "key holds a lone surrogate"),)
            else:
                issues += unencodable(item, _join(path, str(key)), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            issues += unencodable(item, f"{path}[{index}]", depth + 1)
    return issues or (ValidationIssue(path, "cannot be encoded as JSON"),) if depth == 0 else issues


REQUEST_PATH: Final = "request"
"""The path of an issue with the request as a whole (the argument of `write_records`)."""
_REQUEST_SHAPE: Final = (
    "a WriteRecordsRequest, or a mapping in the API's JSON shape (projectIdOrName, "
    "integrationId, objectName, requestBody)"
)


def _not_a_request(request: object) -> ValidationIssue:
    if _is_model(request, "WriteRequest"):
        return ValidationIssue(
            REQUEST_PATH,
            "a WriteRequest is only the request body; pass WriteRecordsRequest("
            "project_id_or_name=..., integration_id=..., object_name=..., "
            "request_body=<the WriteRequest>), or a mapping with it as its requestBody",
        )
    return ValidationIssue(REQUEST_PATH, f"expected {_REQUEST_SHAPE}; got {type(request).__name__}")


def check_request(request: object) -> Checked | tuple[ValidationIssue, ...]:
    """Check a request (a `WriteRecordsRequest`, or a mapping in the API's JSON shape whose
    objects may be models too); return it checked, or every issue found. Never raises: a
    mapping or a model that fails while being read is an issue too."""
    if not (isinstance(request, Mapping) or _is_model(request, "WriteRecordsRequest")):
        return (_not_a_request(request),)
    try:
        return _check(request)
    except Exception as exc:  # the caller's own mapping or object failed while being read
        # where inside the request is not known: the issue names no path
        return (ValidationIssue("", f"could not be read: {show(exc, 200)}"),)


def _check(request: object) -> Checked | tuple[ValidationIssue, ...]:
    if _is_model(request, "WriteRecordsRequest"):
        request = to_wire(request)
    issues: list[ValidationIssue] = []
    checked = _REQUEST(request, "", issues)
    body = request.get("requestBody") if isinstance(request, Mapping) else None
    if _is_model(body, "WriteRequest"):
        body = to_wire(body)
    if isinstance(body, Mapping):
        _check_combinations(body, issues)
    if issues or not isinstance(checked, dict):
        if not issues:  # pragma: no cover - every INVALID comes with an issue
            issues.append(ValidationIssue("", "invalid request"))
        return tuple(issues)
    return Checked(
        project_id_or_name=checked["projectIdOrName"],
        integration_id=checked["integrationId"],
        object_name=checked["objectName"],
        body=checked["requestBody"],
    )
