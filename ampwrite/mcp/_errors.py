"""Every `AmpWriteError` as the structured body of a tool error, for an agent to act on.

The body says what kind of error it is, what the API answered (status, request id, problem
details, the 422's per-record results), which fields were invalid, whether the write may have
happened, whether calling again is safe, and a sentence saying what to do next. What a failure
means for a resend comes from `ampwrite.retries.disposition`, the one classification of
failures. Error values never hold the API key (see `ampwrite.errors`); the server removes it
once more from everything it answers.
"""

from __future__ import annotations

from typing import Any, Final

from .._wire import to_wire
from ..errors import (
    AmpWriteError,
    APIError,
    ConfigurationError,
    OperationTimeoutError,
    RequestValidationError,
    ResponseValidationError,
    TransportError,
    WriteFailedError,
)
from ..retries import Disposition, disposition, server_wait

__all__ = ["MAX_BODY_CHARS", "error_body"]

MAX_BODY_CHARS: Final = 2000
"""The most of an answer's raw text put in a tool error (the problem details come parsed)."""

_NEXT_WRITE: Final = {
    Disposition.REFUSED: "The server refused the request before processing it: nothing was "
    "written. Wait retryAfterSeconds (if given) and call again.",
    Disposition.NOT_SENT: "The request never reached the server: nothing was written. It is "
    "safe to call again once the server is reachable.",
    Disposition.AMBIGUOUS: "The write may or may not have happened (the answer was lost or the "
    "server failed while handling it). Do not repeat a create blindly: check the records first.",
    Disposition.UNCERTAIN: "The write may have happened but its answer could not be read. Do not "
    "repeat a create blindly: check the records first.",
    Disposition.REJECTED: "The API refused the request: nothing was written. Change the request "
    "as the problem details say before calling again.",
}
_NEXT_READ: Final = {
    Disposition.REFUSED: "The server asked to slow down. Wait retryAfterSeconds (if given) and "
    "call again.",
    Disposition.NOT_SENT: "The server could not be reached. Call again later.",
    Disposition.AMBIGUOUS: "The read failed; reading again is safe.",
    Disposition.UNCERTAIN: "The answer could not be read; reading again is safe.",
    Disposition.REJECTED: "The API refused the request (a 404 means no such operation in that "
    "project). Check the ids before calling again.",
}


def _truncated(text: str) -> str:
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "...(truncated)"


def _next_step(error: AmpWriteError, kind: Disposition, *, write: bool) -> str:
    if isinstance(error, RequestValidationError):
        hint = " (validate_write checks a call without sending it)" if write else ""
        return f"Nothing was sent. Fix each field named in issues and call again{hint}."
    if isinstance(error, ConfigurationError):
        return "Nothing was sent: the server's own settings cannot be used. Tell the user."
    if isinstance(error, OperationTimeoutError):
        return (
            "The operation was still in progress when the wait ended; it goes on. Call "
            "wait_for_operation again, or get_operation later."
        )
    if isinstance(error, WriteFailedError):
        written = error.success_count
        if written:
            return (
                f"The provider refused part of the write: {written} record(s) were written "
                "(see results). Fix the failed records and send only those again."
            )
        return (
            "The provider refused the write (see errors and results): nothing was written. "
            "Fix the data before calling again."
        )
    return (_NEXT_WRITE if write else _NEXT_READ)[kind]


def error_body(error: AmpWriteError, *, write: bool) -> dict[str, Any]:
    """The structured body of the tool error for `error`; `write` says whether the tool writes
    (then `mayHaveBeenWritten` says whether the write may have happened)."""
    kind = disposition(error)
    body: dict[str, Any] = {
        "error": type(error).__name__,
        "message": str(error),
        "attempts": error.attempts,
    }
    if write:
        partly = isinstance(error, WriteFailedError) and bool(error.success_count)
        body["mayHaveBeenWritten"] = partly or kind in (
            Disposition.AMBIGUOUS,
            Disposition.UNCERTAIN,
        )
    body["safeToRetry"] = kind in (Disposition.REFUSED, Disposition.NOT_SENT) or (
        not write and kind in (Disposition.AMBIGUOUS, Disposition.UNCERTAIN)
    )
    if isinstance(error, RequestValidationError):
        body["nothingSent"] = True
        body["issues"] = [{"path": issue.path, "message": issue.message} for issue in error.issues]
    if isinstance(error, APIError):
        body["status"] = error.status
        body["requestId"] = error.request_id
        if error.problem is not None:
            body["problem"] = to_wire(error.problem)
        elif error.body and not isinstance(error, WriteFailedError):
            body["body"] = _truncated(error.body)
        wait = server_wait(error)
        if wait is not None:
            body["retryAfterSeconds"] = wait
    if isinstance(error, WriteFailedError):
        if error.response is None:
            body["body"] = _truncated(error.body)
        else:
            body["operationId"] = error.operation_id
            body["errors"] = [to_wire(message) for message in error.errors]
            body["warnings"] = [to_wire(message) for message in error.warnings]
            body["results"] = [
                {"index": index, **_as_object(to_wire(result))}
                for index, result in enumerate(error.results)
            ]
            if error.success_count is not None:
                body["successCount"] = error.success_count
                body["failureCount"] = error.failure_count
            if error.raw_response is not None:
                body["rawResponse"] = _truncated(error.raw_response)
    if isinstance(error, ResponseValidationError):
        body["status"] = error.status
        body["body"] = _truncated(error.body)
    if isinstance(error, TransportError):
        body["failure"] = str(error.kind)
        body["maybeSent"] = error.maybe_sent
    if isinstance(error, OperationTimeoutError):
        body["operationId"] = error.operation_id
        body["last"] = None if error.last is None else to_wire(error.last)
    body["next"] = _next_step(error, kind, write=write)
    return body


def _as_object(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}
