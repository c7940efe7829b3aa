"""The sandbox's request handlers, one per route of ``_routes.ROUTES``: each takes the
``Call`` (the parsed request, its decoded path parameters, the state) and returns the
``HttpResponse``. Input a handler refuses raises ``RequestInvalid``: the dispatcher answers it
400, as text/plain or (for the Platform API) problem+json. Routing, the API key and the
request log are the dispatcher's, not the handlers'.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ._faults import FaultDecision, faults_from_mapping
from ._http import HttpRequest, HttpResponse
from ._operations import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageTokenInvalid
from ._responses import JSON, json_response, problem_response, text_response
from ._state import ResetMeanwhile, SandboxState
from ._store import WriteTarget
from ._validation import ParameterInvalid, RequestInvalid, parse_json_body, validate_write_request

__all__ = ["Call", "Handler", "object_rules"]


@dataclass(slots=True)
class Call:
    """One request as a handler sees it. ``params`` are the path parameters, percent-decoded
    and non-empty; ``generation`` is the one the request began in; ``stopping`` is set when
    the server stops (long waits watch it); ``url`` is the sandbox's API URL. A handler that
    parses the body sets ``logged_body`` to what the request log should keep of it."""

    request: HttpRequest
    params: dict[str, str]
    request_id: str
    generation: int
    state: SandboxState
    url: str
    stopping: threading.Event
    logged_body: object = None


Handler = Callable[[Call], HttpResponse]

_OPERATION_NOT_FOUND = "Operation not found for the given operation ID."
_OPERATION_REMEDY = (
    "Verify the operation ID and project are correct, or list operations to find a valid ID."
)
_INSTALLATION_NOT_FOUND = "Installation not found for the given installation ID."
_INSTALLATION_REMEDY = (
    "Verify the project, integration and installation IDs; the sandbox knows an installation "
    "once a write for its groupRef arrived (see GET /_sandbox/installations)."
)

# -- the Write API --------------------------------------------------------------------------


def write_records(call: Call) -> HttpResponse:
    """``POST .../objects/{objectName}``: validate, meet the faults, then write."""
    request = call.request
    refusal = _content_type_refusal(request.headers.get("content-type"))
    if refusal is not None:
        return text_response(400, refusal, call.request_id)
    body = parse_json_body(request.body)
    call.logged_body = body
    write = validate_write_request(body)
    params = call.params
    target = WriteTarget(
        params["projectIdOrName"], params["integrationId"], params["objectName"], write["groupRef"]
    )
    state = call.state
    try:
        latency, decision = state.draw_fault(call.generation)
        if latency > 0:
            call.stopping.wait(latency)
        operation_id = str(uuid.uuid4())
        if decision is not None and decision.kind != "commit_then_fail":
            return _fault(call, decision, operation_id, target, write)
        status, answer = state.write(call.generation, operation_id, target, write)
    except ResetMeanwhile:
        detail = "the sandbox was reset while this request was handled; nothing was written"
        return problem_response(503, detail, call.request_id)
    if decision is not None:
        detail = "injected fault: the write was applied, then the gateway failed"
        state.operations.note(operation_id, "WARNING", f"{detail} (answered 502)")
        return problem_response(502, detail, call.request_id)
    return json_response(status, answer, call.request_id)


def _content_type_refusal(content_type: str | None) -> str | None:
    if content_type is None:
        return "Content-Type: expected application/json; the header is missing"
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime != JSON and not mime.endswith("+json"):
        return f"Content-Type: expected application/json, got {content_type!r}"
    return None


def _fault(
    call: Call,
    decision: FaultDecision,
    operation_id: str,
    target: WriteTarget,
    write: dict[str, Any],
) -> HttpResponse:
    """Answer a write the fault refuses; its operation failed, with nothing written."""
    if decision.kind == "reset":
        reason = "injected fault: the connection was reset; nothing was written"
    else:
        reason = f"injected fault: status {decision.status}; nothing was written"
    call.state.refuse(call.generation, operation_id, target, write, reason)
    if decision.kind == "reset":
        return HttpResponse(0, reset=True)
    return problem_response(
        decision.status, reason, call.request_id, retry_after=decision.retry_after
    )


# -- the Platform API's operations ----------------------------------------------------------


def get_operation(call: Call) -> HttpResponse:
    """``GET /projects/{p}/operations/{id}``: the ``Operation``."""
    params = call.params
    body = call.state.operations.get(params["operationId"], params["projectIdOrName"])
    if body is None:
        return problem_response(
            404, _OPERATION_NOT_FOUND, call.request_id, remedy=_OPERATION_REMEDY
        )
    return json_response(200, body, call.request_id)


def list_operation_logs(call: Call) -> HttpResponse:
    """``GET /projects/{p}/operations/{id}/logs``: its ``Log`` entries, oldest first."""
    params = call.params
    logs = call.state.operations.logs(params["operationId"], params["projectIdOrName"])
    if logs is None:
        return problem_response(
            404, _OPERATION_NOT_FOUND, call.request_id, remedy=_OPERATION_REMEDY
        )
    return json_response(200, logs, call.request_id)


def list_operations(call: Call) -> HttpResponse:
    """``GET /projects/{p}/integrations/{i}/installations/{id}/operations``: a page of the
    installation's operations, newest first (``pageSize`` 1 to 1000, 200 by default; an
    empty ``pageToken`` asks for the first page; of a repeated parameter the last counts)."""
    query = parse_qs(call.request.query, keep_blank_values=True)
    size = _page_size(query.get("pageSize"))
    tokens = query.get("pageToken")
    token = tokens[-1] if tokens and tokens[-1] else None
    params = call.params
    book = call.state.operations
    installation = book.find_installation(
        params["projectIdOrName"], params["integrationId"], params["installationId"]
    )
    if installation is None:
        return problem_response(
            404, _INSTALLATION_NOT_FOUND, call.request_id, remedy=_INSTALLATION_REMEDY
        )
    try:
        results, next_token = book.page(installation, size, token)
    except PageTokenInvalid as invalid:
        raise ParameterInvalid("query", "pageToken", token or "", str(invalid)) from None
    pagination: dict[str, Any] = {"done": next_token is None}
    if next_token is not None:
        pagination["nextPageToken"] = next_token
    return json_response(200, {"results": results, "pagination": pagination}, call.request_id)


def _page_size(values: list[str] | None) -> int:
    if not values:
        return DEFAULT_PAGE_SIZE
    text = values[-1]
    size = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        message = f"pageSize: expected an integer from 1 to {MAX_PAGE_SIZE}, got {text!r}"
        raise ParameterInvalid("query", "pageSize", text, message)
    return size


# -- /_sandbox/: inspection and control -----------------------------------------------------


def health(call: Call) -> HttpResponse:
    return json_response(200, {"status": "ok", "url": call.url}, call.request_id)


def get_records(call: Call) -> HttpResponse:
    one = _query(call, {"project", "integration", "object", "groupRef"})
    records = call.state.store.records(
        project=one("project"),
        integration=one("integration"),
        object_name=one("object"),
        group_ref=one("groupRef"),
    )
    return json_response(200, records, call.request_id)


def add_record(call: Call) -> HttpResponse:
    fields = ("project", "integration", "object", "groupRef", "record")
    data = _admin_object(call.request, set(fields))
    for key in fields:
        if key not in data:
            raise RequestInvalid(f"{key}: required field is missing")
    if not isinstance(data["record"], dict):
        raise RequestInvalid("record: expected an object")
    with _python_refusals():
        stored = call.state.add_record(
            data["record"],
            project=data["project"],
            integration=data["integration"],
            object_name=data["object"],
            group_ref=data["groupRef"],
        )
    return json_response(201, stored, call.request_id)


def get_requests(call: Call) -> HttpResponse:
    entries = [entry.to_json() for entry in call.state.requests()]
    return json_response(200, entries, call.request_id)


def reset(call: Call) -> HttpResponse:
    call.state.reset()
    return json_response(200, {"reset": True}, call.request_id)


def get_faults(call: Call) -> HttpResponse:
    return json_response(200, call.state.faults.faults.to_json(), call.request_id)


def put_faults(call: Call) -> HttpResponse:
    with _python_refusals():
        faults = faults_from_mapping(parse_json_body(call.request.body))
    call.state.faults.set_faults(faults)
    return json_response(200, faults.to_json(), call.request_id)


def fail_next(call: Call) -> HttpResponse:
    data = _admin_object(call.request, {"status", "count", "retryAfter"})
    if "status" not in data:
        raise RequestInvalid("status: required field is missing")
    retry_after = data.get("retryAfter")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, (int, float))
    ):
        raise RequestInvalid("retryAfter: expected a number of seconds")
    count = data.get("count", 1)
    with _python_refusals():
        call.state.faults.fail_next(data["status"], count, retry_after)
    return json_response(200, {"scheduled": count}, call.request_id)


def reset_next(call: Call) -> HttpResponse:
    data = _admin_object(call.request, {"count"}) if call.request.body.strip() else {}
    count = data.get("count", 1)
    with _python_refusals():
        call.state.faults.reset_next(count)
    return json_response(200, {"scheduled": count}, call.request_id)


def object_rules(data: object, where: str = "") -> dict[str, Any]:
    """The keyword arguments of ``configure_object`` from object rules in their JSON shape,
    ``{"requiredFields"?, "uniqueFields"?, "deleteEnabled"?}`` (the body of ``PUT
    /_sandbox/objects/{objectName}``, and each object's entry in ``ampwrite sandbox
    --rules FILE``); otherwise ``RequestInvalid`` naming the field, below ``where``."""

    def path(name: str) -> str:
        return f"{where}.{name}" if where else name

    if not isinstance(data, dict):
        raise RequestInvalid(f"{where or 'request body'}: expected a JSON object")
    allowed = {"requiredFields", "uniqueFields", "deleteEnabled"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        listed = ", ".join(path(name) for name in unknown)
        raise RequestInvalid(f"unknown field(s) {listed}; allowed: {sorted(allowed)}")
    delete_enabled = data.get("deleteEnabled", True)
    if not isinstance(delete_enabled, bool):
        raise RequestInvalid(f"{path('deleteEnabled')}: expected a boolean")
    return {
        "required_fields": _string_list(data.get("requiredFields", []), path("requiredFields")),
        "unique_fields": _string_list(data.get("uniqueFields", []), path("uniqueFields")),
        "delete_enabled": delete_enabled,
    }


def configure_object(call: Call) -> HttpResponse:
    object_name = call.params["objectName"]
    arguments = object_rules(parse_json_body(call.request.body))
    with _python_refusals():
        rules = call.state.configure_object(object_name, **arguments)
    body = {
        "objectName": object_name,
        "requiredFields": list(rules.required_fields),
        "uniqueFields": list(rules.unique_fields),
        "deleteEnabled": rules.delete_enabled,
    }
    return json_response(200, body, call.request_id)


def get_installations(call: Call) -> HttpResponse:
    one = _query(call, {"project", "integration", "groupRef"})
    installations = call.state.operations.installations(
        project=one("project"), integration=one("integration"), group_ref=one("groupRef")
    )
    body = [installation.to_json() for installation in installations]
    return json_response(200, body, call.request_id)


def _query(call: Call, known: set[str]) -> Callable[[str], str | None]:
    """The last value of each query parameter, refusing parameters not ``known``."""
    query = parse_qs(call.request.query, keep_blank_values=True)
    unknown = sorted(set(query) - known)
    if unknown:
        raise RequestInvalid(
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: {sorted(known)}"
        )

    def one(key: str) -> str | None:
        values = query.get(key)
        return values[-1] if values else None

    return one


@contextlib.contextmanager
def _python_refusals() -> Iterator[None]:
    """What the Python API refuses with ValueError or TypeError, the HTTP one answers 400."""
    try:
        yield
    except (ValueError, TypeError) as refused:
        raise RequestInvalid(str(refused)) from None


def _admin_object(request: HttpRequest, allowed: set[str]) -> dict[str, Any]:
    data = parse_json_body(request.body)
    if not isinstance(data, dict):
        raise RequestInvalid("request body: expected a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RequestInvalid(f"unknown field(s) {', '.join(unknown)}; allowed: {sorted(allowed)}")
    return data


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RequestInvalid(f"{what}: expected an array of non-empty strings")
    return value
