"""The tools: each one a few lines over the functional core (`ampwrite.aio`), with its input
schema, its description (what a model must know to use it well) and its answer.

- `write_records`: `ampwrite.aio.write_records` with the call's arguments as the request
  mapping (the API's own JSON shape, which is also the tool's input schema);
- `validate_write`: `ampwrite.write.prepare_write`, the stages of a write that make no I/O
  (every local check, the path, the encoding), and nothing is sent;
- `get_operation`, `wait_for_operation` (its timeout capped), `list_operation_logs`.

A tool answers `Outcome(payload, is_error)`: a success as structured data, an `Err` as the
structured body of `ampwrite.mcp._errors.error_body`. Nothing here checks a request on its
own: the arguments of the operation tools are read with the checkers of `ampwrite._validate`,
and everything else is the core's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from .. import aio
from .._validate import INVALID, Checker, _boolean, _object, _path_parameter
from .._wire import to_wire
from ..core import Core, seconds_issue
from ..errors import AmpWriteError, RequestValidationError, ValidationIssue
from ..models import BatchWriteResponse, WriteResponse
from ..result import Err, Ok, Result
from ..write import prepare_write
from ._errors import error_body
from ._repeats import DEFAULT_REPEAT_WINDOW, Earlier, RecentCreates, fingerprint
from ._schema import DIALECT, write_input_schema

__all__ = [
    "DEFAULT_MAX_WAIT",
    "DEFAULT_WAIT",
    "TOOLS",
    "Outcome",
    "Tool",
    "ToolContext",
    "ToolSettings",
    "select_tools",
]

DEFAULT_WAIT: Final = 30.0
"""Seconds `wait_for_operation` waits when the call does not say."""
DEFAULT_MAX_WAIT: Final = 120.0
"""The most seconds one `wait_for_operation` call may wait (`--max-wait`)."""


class ToolSettings(NamedTuple):
    """What the tools need to know of the server's settings."""

    max_wait: float = DEFAULT_MAX_WAIT
    repeat_window: float = DEFAULT_REPEAT_WINDOW
    """Seconds during which an identical create is refused, 0 for never (see `_repeats`)."""


class ToolContext:
    """What the tools run with: the Core, the server's settings, and the creates it sent
    lately (one per server, shared by its sessions)."""

    __slots__ = ("core", "recent", "settings")

    def __init__(self, core: Core, settings: ToolSettings | None = None) -> None:
        self.core = core
        self.settings = settings or ToolSettings()
        self.recent = RecentCreates(self.settings.repeat_window, core.clock)


class Outcome(NamedTuple):
    """A tool's answer: its structured content, and whether it is a tool error."""

    payload: dict[str, Any]
    is_error: bool


Run = Callable[[ToolContext, object], Awaitable[Outcome]]


class Tool(NamedTuple):
    name: str
    title: str
    writes: bool
    describe: Callable[[ToolContext], str]
    input_schema: Callable[[ToolContext], dict[str, Any]]
    run: Run
    annotations: Mapping[str, bool]


def _error(error: AmpWriteError, *, write: bool) -> Outcome:
    return Outcome(error_body(error, write=write), True)


def _invalid(issues: Sequence[ValidationIssue], *, write: bool) -> Outcome:
    return _error(RequestValidationError(tuple(issues)), write=write)


# -- write_records ---------------------------------------------------------------------------


def _describe_write(ctx: ToolContext) -> str:
    settings, retries = ctx.settings, ctx.core.retries
    if retries.max_attempts > 1 and (retries.retry_statuses or retries.retry_connection_errors):
        retried = (
            "429 and 503 answers (refused before processing) and connections never made are "
            "retried automatically, honouring Retry-After, for up to "
            f"{retries.max_elapsed_time:g} seconds; "
        )
    else:
        retried = "Nothing is retried automatically (this server runs without retries); "
    if settings.repeat_window > 0:
        repeats = (
            " A create identical to one sent in the last "
            f"{settings.repeat_window:g} seconds is refused (RepeatedWrite, nothing sent) "
            "unless the call adds allowRepeat: true."
        )
    else:
        repeats = ""
    return (
        "Create, update or delete records in a customer's SaaS (Salesforce, HubSpot, ...) "
        "through Ampersand's Write API. The arguments are the API's own request: the path "
        "parameters projectIdOrName, integrationId, objectName, and requestBody. In "
        "requestBody give `record` (one record) or `batch` (1 to 100 items, each "
        '{"record": {...}}), never both. `type` is create, update or delete; an update needs '
        "record.id; delete takes one record with its `id`, is synchronous only (leave `mode` "
        "out) and cannot be a batch. `mode: asynchronous` (not for delete) answers only an "
        "operationId: follow it with wait_for_operation or get_operation. `autoBatchPolicy` "
        "is only for asynchronous single-record writes. The request is checked before "
        "anything is sent: an invalid one comes back as an error listing each field path, and "
        "nothing is written (validate_write runs the same checks without writing). A batch in "
        "which some records failed is a success: read results[i].success and failedIndexes. "
        f"{retried}500, 502, 504 and timeouts are never retried because the write may have "
        "happened: such an error says mayHaveBeenWritten: true; check before calling again "
        f"and never repeat a create blindly.{repeats}"
    )


ALLOW_REPEAT: Final = "allowRepeat"


def _write_schema(ctx: ToolContext) -> dict[str, Any]:
    settings = ctx.settings
    schema = write_input_schema()
    schema["properties"][ALLOW_REPEAT] = {
        "type": "boolean",
        "default": False,
        "description": "Not part of the API's request: true sends a create even when an "
        f"identical one was sent in the last {settings.repeat_window:g} seconds (it creates "
        "the records once more).",
    }
    return schema


def _split_allow_repeat(
    ctx: ToolContext, arguments: object
) -> tuple[Any, bool] | RequestValidationError:
    """The request (the arguments less `allowRepeat`) and whether repeats are allowed."""
    if not isinstance(arguments, Mapping) or ALLOW_REPEAT not in arguments:
        return arguments, False
    request = {key: value for key, value in arguments.items() if key != ALLOW_REPEAT}
    issues: list[ValidationIssue] = []
    allowed = _boolean(arguments[ALLOW_REPEAT], ALLOW_REPEAT, issues)
    if issues:  # reported with whatever else the checks find
        prepared = prepare_write(ctx.core, request)
        more = prepared.issues if isinstance(prepared, RequestValidationError) else ()
        return RequestValidationError((*issues, *more))
    return request, allowed is True


def _create_key(ctx: ToolContext, request: object) -> str | None:
    """The fingerprint of a create to guard against repeats (None: not guarded)."""
    if ctx.settings.repeat_window <= 0 or not isinstance(request, Mapping):
        return None
    body = request.get("requestBody")
    if not isinstance(body, Mapping) or body.get("type") != "create":
        return None
    return fingerprint(request)


def _repeated(ctx: ToolContext, earlier: Earlier) -> Outcome:
    age = ctx.recent.age(earlier)
    outcome = earlier.summary.get("outcome", "sent")
    body = {
        "error": "RepeatedWrite",
        "message": f"an identical create was sent {age:.0f} s ago ({outcome}); sending it "
        "again would create the records once more",
        "earlier": dict(earlier.summary),
        "mayHaveBeenWritten": False,
        "safeToRetry": False,
        "nothingSent": True,
        "next": "Nothing was sent. Use the earlier result (get_operation with its "
        "operationId tells more); if these records are really to be created once more, call "
        "again with allowRepeat: true.",
    }
    return Outcome(body, True)


def _summary(payload: Mapping[str, Any], *, error: bool) -> dict[str, Any] | None:
    """What to remember of a create's answer; None when it wrote nothing for sure."""
    if error:
        if not payload.get("mayHaveBeenWritten"):
            return None
        return {
            "outcome": "may have been written",
            "error": payload.get("error"),
            "status": payload.get("status"),
            "operationId": payload.get("operationId"),
        }
    outcome = "accepted (asynchronous)" if payload.get("asynchronous") else "written"
    keys = ("operationId", "recordIds", "successCount", "failureCount")
    return {"outcome": outcome, **{key: payload[key] for key in keys if key in payload}}


def _results(response: WriteResponse) -> list[dict[str, Any]]:
    if isinstance(response, BatchWriteResponse):
        results = response.results
    else:
        results = () if response.result is None else (response.result,)
    out = []
    for index, result in enumerate(results):
        wire = to_wire(result)
        out.append({"index": index, **(wire if isinstance(wire, dict) else {})})
    return out


def write_payload(response: WriteResponse) -> dict[str, Any]:
    """A successful write as structured content: ids, counts, per-record results."""
    results = _results(response)
    payload: dict[str, Any] = {"operationId": response.operation_id}
    if isinstance(response, BatchWriteResponse):
        payload["asynchronous"] = False
        payload["successCount"] = response.success_count
        payload["failureCount"] = response.failure_count
        payload["errors"] = [to_wire(message) for message in response.errors]
    elif response.result is None:
        payload["asynchronous"] = True
        payload["next"] = (
            "Accepted, not yet written. Call wait_for_operation with this operationId (and "
            "the same projectIdOrName) to learn the outcome."
        )
        return payload
    else:
        payload["asynchronous"] = False
        payload["successCount"] = 1 if response.result.success else 0
        payload["failureCount"] = 0 if response.result.success else 1
    payload["recordIds"] = [r["recordId"] for r in results if r.get("success") and "recordId" in r]
    payload["failedIndexes"] = [r["index"] for r in results if not r.get("success")]
    payload["results"] = results
    return payload


async def _write_records(ctx: ToolContext, arguments: object) -> Outcome:
    split = _split_allow_repeat(ctx, arguments)
    if isinstance(split, AmpWriteError):
        return _error(split, write=True)
    request, allow_repeat = split  # anything but a mapping is refused (and named) by the checks
    key = _create_key(ctx, request)
    if key is not None:
        earlier = None if allow_repeat else ctx.recent.earlier(key)
        if earlier is not None:
            return _repeated(ctx, earlier)
        ctx.recent.sending(key)
    result = await aio.write_records(ctx.core, request)
    if isinstance(result, Ok):
        outcome = Outcome(write_payload(result.value), False)
    else:
        outcome = _error(result.error, write=True)
    if key is not None:
        ctx.recent.settled(key, _summary(outcome.payload, error=outcome.is_error))
    return outcome


# -- validate_write --------------------------------------------------------------------------


def _describe_validate(_: ToolContext) -> str:
    return (
        "Check a write_records call without sending anything: the same arguments, and every "
        "check write_records makes before sending (required fields, enums, JSON types, record "
        "xor batch, 1 to 100 batch items, delete needs record.id and is synchronous, policy "
        "bounds, unknown keys). Answers valid: true with the request it would send (method, "
        "path, number of records), or an error listing each issue with its field path. It "
        "cannot tell whether the customer's SaaS will accept the data (its required or unique "
        "fields, permissions): only write_records can."
    )


async def _validate_write(ctx: ToolContext, arguments: object) -> Outcome:
    split = _split_allow_repeat(ctx, arguments)
    if isinstance(split, AmpWriteError):
        return _error(split, write=False)
    request, _ = split
    prepared = prepare_write(ctx.core, request)
    if isinstance(prepared, AmpWriteError):
        return _error(prepared, write=False)
    body = json.loads(prepared.request.body or b"{}")
    batch = body.get("batch")
    payload = {
        "valid": True,
        "nothingSent": True,
        "method": prepared.request.method,
        "url": prepared.request.base_url + prepared.request.path,
        "type": body.get("type"),
        "mode": body.get("mode", "synchronous"),
        "records": len(batch) if isinstance(batch, list) else 1,
        "requestBody": body,
    }
    return Outcome(payload, False)


# -- the operations --------------------------------------------------------------------------

_IDS_SCHEMA: Final = {
    "projectIdOrName": {
        "type": "string",
        "minLength": 1,
        "description": "The project of the write: the same projectIdOrName given to write_records.",
    },
    "operationId": {
        "type": "string",
        "minLength": 1,
        "description": "The operationId that write_records answered.",
    },
}


def _operation_schema(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "$schema": DIALECT,
        "type": "object",
        "properties": {**_IDS_SCHEMA, **properties},
        "required": list(_IDS_SCHEMA),
        "additionalProperties": False,
    }


def _seconds(value: object, path: str, issues: list[ValidationIssue]) -> object:
    issue = seconds_issue("it", value)
    if issue is not None:
        issues.append(ValidationIssue(path, issue.removeprefix("it ")))
        return INVALID
    return value


def _arguments(
    arguments: object, extra: Mapping[str, Checker] | None = None
) -> dict[str, Any] | Sequence[ValidationIssue]:
    """The operation tools' arguments, read with `ampwrite._validate`'s object checker."""
    fields = {"projectIdOrName": _path_parameter, "operationId": _path_parameter, **(extra or {})}
    issues: list[ValidationIssue] = []
    checked = _object(fields, required=("projectIdOrName", "operationId"))(arguments, "", issues)
    if issues or not isinstance(checked, dict):
        return issues or [ValidationIssue("", "invalid arguments")]
    return checked


def _read(result: Result[Any, AmpWriteError], key: str | None = None) -> Outcome:
    if isinstance(result, Err):
        return _error(result.error, write=False)
    wire = to_wire(result.value)
    payload = {key: wire} if key is not None else wire
    return Outcome(payload if isinstance(payload, dict) else {"value": payload}, False)


def _describe_get(_: ToolContext) -> str:
    return (
        "Read an operation once. An asynchronous write_records answers only an operationId; "
        "its outcome lives here: status in_progress, success or failure, a result summary, "
        "metadata.successfulRecordIds. Needs the same projectIdOrName as the write."
    )


async def _get_operation(ctx: ToolContext, arguments: object) -> Outcome:
    checked = _arguments(arguments)
    if not isinstance(checked, dict):
        return _invalid(checked, write=False)
    return _read(
        await aio.get_operation(ctx.core, checked["projectIdOrName"], checked["operationId"])
    )


def _describe_wait(ctx: ToolContext) -> str:
    settings = ctx.settings
    return (
        "Wait for an operation (an asynchronous write) to end: poll it until its status is no "
        f"longer in_progress, for at most timeoutSeconds (default {DEFAULT_WAIT:g}, at most "
        f"{settings.max_wait:g}). Answers the operation: a status of failure is a successful "
        "call (the write failed; list_operation_logs says why). Still in progress at the "
        "deadline, it answers an OperationTimeoutError error carrying the last state read: "
        "the operation goes on; call again to keep waiting."
    )


def _wait_schema(ctx: ToolContext) -> dict[str, Any]:
    settings = ctx.settings
    return _operation_schema(
        {
            "timeoutSeconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": settings.max_wait,
                "default": DEFAULT_WAIT,
                "description": "How long to wait, in seconds; longer asks are cut to "
                f"{settings.max_wait:g}.",
            },
            "pollIntervalSeconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Seconds between polls (default: from 0.5 s, growing to 10 s).",
            },
        }
    )


async def _wait_for_operation(ctx: ToolContext, arguments: object) -> Outcome:
    checked = _arguments(arguments, {"timeoutSeconds": _seconds, "pollIntervalSeconds": _seconds})
    if not isinstance(checked, dict):
        return _invalid(checked, write=False)
    timeout = min(float(checked.get("timeoutSeconds", DEFAULT_WAIT)), ctx.settings.max_wait)
    result = await aio.wait_for_operation(
        ctx.core,
        checked["projectIdOrName"],
        checked["operationId"],
        timeout=timeout,
        poll_interval=checked.get("pollIntervalSeconds"),
    )
    return _read(result)


def _describe_logs(_: ToolContext) -> str:
    return (
        "List the log entries of an operation, oldest first: what happened to an asynchronous "
        "write step by step, and why one failed."
    )


async def _list_operation_logs(ctx: ToolContext, arguments: object) -> Outcome:
    checked = _arguments(arguments)
    if not isinstance(checked, dict):
        return _invalid(checked, write=False)
    result = await aio.list_operation_logs(
        ctx.core, checked["projectIdOrName"], checked["operationId"]
    )
    return _read(result, "logs")


def _ids_schema(_: ToolContext) -> dict[str, Any]:
    return _operation_schema({})


_READS: Final = {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": True}

TOOLS: Final = (
    Tool(
        "write_records",
        "Write records",
        True,
        _describe_write,
        _write_schema,
        _write_records,
        {
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": True,
        },
    ),
    Tool(
        "validate_write",
        "Check a write without sending it",
        False,
        _describe_validate,
        _write_schema,
        _validate_write,
        {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    ),
    Tool(
        "get_operation",
        "Read an operation",
        False,
        _describe_get,
        _ids_schema,
        _get_operation,
        _READS,
    ),
    Tool(
        "wait_for_operation",
        "Wait for an operation to end",
        False,
        _describe_wait,
        _wait_schema,
        _wait_for_operation,
        _READS,
    ),
    Tool(
        "list_operation_logs",
        "List an operation's log",
        False,
        _describe_logs,
        _ids_schema,
        _list_operation_logs,
        _READS,
    ),
)

TOOL_NAMES: Final = tuple(tool.name for tool in TOOLS)


def select_tools(
    names: Sequence[str] | None = None, *, read_only: bool = False
) -> tuple[Tool, ...]:
    """The tools to expose: those named (all when None), less those that write if
    `read_only`. Raises ValueError for a name that is no tool."""
    unknown = sorted(set(names or ()) - set(TOOL_NAMES))
    if unknown:
        raise ValueError(f"no tool named {', '.join(unknown)}; tools: {', '.join(TOOL_NAMES)}")
    return tuple(
        tool
        for tool in TOOLS
        if (names is None or tool.name in names) and not (read_only and tool.writes)
    )
