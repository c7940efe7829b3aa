"""How the sandbox writes its answers: JSON, text/plain and problem+json (RFC 9457)
responses, each carrying the request's ``X-Request-Id``, and RFC 3339 timestamps."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, Final

from ._http import HttpResponse

__all__ = [
    "JSON",
    "Issue",
    "dump",
    "json_response",
    "now",
    "problem_response",
    "rfc3339",
    "text_response",
]

JSON: Final = "application/json"
PROBLEM: Final = "application/problem+json"
TEXT: Final = "text/plain; charset=utf-8"
RETRYABLE: Final = frozenset({408, 425, 429, 500, 502, 503, 504})

#: One entry of an input validation problem's ``issues``: where (``in``: path, query, ...),
#: ``name``, ``value`` and ``detail``.
Issue = dict[str, Any]


def now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime, timespec: str = "milliseconds") -> str:
    """``2024-04-22T18:55:28.456Z`` (UTC, ``Z``)."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def json_response(status: int, body: object, request_id: str) -> HttpResponse:
    return HttpResponse(status, dump(body), JSON, [("X-Request-Id", request_id)])


def text_response(status: int, message: str, request_id: str) -> HttpResponse:
    return HttpResponse(status, message.encode("utf-8"), TEXT, [("X-Request-Id", request_id)])


def problem_response(
    status: int,
    detail: str,
    request_id: str,
    *,
    retry_after: float | None = None,
    allow: str | None = None,
    remedy: str | None = None,
    issues: Iterable[Issue] = (),
) -> HttpResponse:
    """A problem+json answer in the shape of the contract's ``ApiProblem`` (with ``issues``,
    its ``InputValidationProblem``). 429 and 503 faults pass ``retry_after`` seconds: the
    body then has ``retryAfter`` and the answer a ``Retry-After`` header."""
    moment = now()
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "requestId": request_id,
        "retryable": status in RETRYABLE,
        "subsystem": "sandbox",
        "time": rfc3339(moment),
    }
    if remedy is not None:
        body["remedy"] = remedy
    listed = list(issues)
    if listed:
        body["issues"] = listed
    headers = [("X-Request-Id", request_id)]
    if allow is not None:
        headers.append(("Allow", allow))
    if retry_after is not None:
        body["retryAfter"] = rfc3339(moment + timedelta(seconds=retry_after))
        headers.append(("Retry-After", str(max(0, math.ceil(retry_after)))))
    return HttpResponse(status, dump(body), PROBLEM, headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
