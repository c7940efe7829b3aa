"""The errors ampwrite returns (functional API) or raises (facade).

    AmpWriteError
    ├── ConfigurationError        Core(...) was given settings it cannot work with
    ├── RequestValidationError    the request is invalid; nothing was sent
    ├── APIError                  the API answered with a non-2xx status
    │   ├── BadRequestError       400
    │   ├── AuthenticationError   401, 403
    │   ├── WriteFailedError      422: the write itself failed
    │   ├── RateLimitError        429
    │   └── ServerError           5xx
    ├── ResponseValidationError   a 2xx answer whose body does not fit the contract
    ├── ResponseShapeError        (raised by accessors) an answer lacks what was asked of it
    ├── TransportError            no usable answer (refused, reset, TLS, truncated, too large)
    │   └── RequestTimeoutError
    └── OperationTimeoutError     wait_for_operation gave up: still in progress at its timeout

Every error carries `attempts`, the number of HTTP attempts made (0 when nothing was sent).
No error message or repr contains the API key.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from requests.structures import CaseInsensitiveDict

if TYPE_CHECKING:
    from ._operation_models import Operation
    from .models import BatchWriteResponse, Message, Problem, WriteFailure, WriteResult

__all__ = [
    "APIError",
    "AmpWriteError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "FailureKind",
    "OperationTimeoutError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestValidationError",
    "ResponseShapeError",
    "ResponseValidationError",
    "ServerError",
    "TransportError",
    "ValidationIssue",
    "WriteFailedError",
]


class AmpWriteError(Exception):
    """Base of every ampwrite error: `message` is its text (`str(error)`), `attempts` the
    number of HTTP attempts made."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its attributes, so an error crosses process boundaries (an Err returned
        # by a worker of a process pool, say) whatever its constructor asks for.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[AmpWriteError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigurationError(AmpWriteError, ValueError):
    """A setting of `Core` (or of one call) that ampwrite cannot work with."""


class ValidationIssue(NamedTuple):
    """One problem with a request: where (`path`, in the API's JSON names) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RequestValidationError(AmpWriteError):
    """The request breaks the contract; it was refused before anything was sent. `issues`
    lists each problem as a `ValidationIssue` (field path and message)."""

    def __init__(self, issues: tuple[ValidationIssue, ...]) -> None:
        lines = "\n".join(f"  - {issue}" for issue in issues)
        count = len(issues)
        super().__init__(f"invalid request ({count} issue{'s' if count != 1 else ''}):\n{lines}")
        self.issues = issues


class APIError(AmpWriteError):
    """The API answered with a status outside 2xx.

    `status` is the HTTP status, `headers` the answer's headers (case-insensitive), `body`
    the answer's text (truncated for very large bodies) and `problem` its parsed problem
    details, when it had any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        headers: Mapping[str, str],
        body: str,
        problem: Problem | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.status = status
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers)
        self.body = body
        self.problem = problem

    @property
    def request_id(self) -> str | None:
        """The server's id for the request: from the problem details or `X-Request-Id`."""
        if self.problem is not None and self.problem.request_id:
            return self.problem.request_id
        for name in ("X-Request-Id", "X-Amzn-RequestId", "Request-Id"):
            if name in self.headers:
                return self.headers[name]
        return None


class BadRequestError(APIError):
    """400: the server refused the request as malformed."""


class AuthenticationError(APIError):
    """401 or 403: the API key is missing, wrong, or not allowed to do this."""


class WriteFailedError(APIError):
    """422: the provider refused the write.

    For a single record: `operation_id`, `errors`, `warnings`, `result`, `raw_response`.
    For a batch: `operation_id`, `success_count`, `failure_count`, `results`, `errors`.
    `response` is the parsed body (None when it fitted neither shape; see `body`).
    """

    def __init__(
        self,
        message: str,
        *,
        response: WriteFailure | BatchWriteResponse | None,
        status: int,
        headers: Mapping[str, str],
        body: str,
        problem: Problem | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            message, status=status, headers=headers, body=body, problem=problem, attempts=attempts
        )
        self.response = response

    @property
    def operation_id(self) -> str | None:
        """The API's operation for the write, when the body gave one."""
        return None if self.response is None else self.response.operation_id

    @property
    def errors(self) -> tuple[Message, ...]:
        """The answer's error messages."""
        return () if self.response is None else self.response.errors

    @property
    def warnings(self) -> tuple[Message, ...]:
        """The answer's warnings (single-record answers only)."""
        single = _single(self.response)
        return () if single is None else single.warnings

    @property
    def result(self) -> WriteResult | None:
        """The single record's result, when the answer is a single-record failure."""
        single = _single(self.response)
        return None if single is None else single.result

    @property
    def results(self) -> tuple[WriteResult, ...]:
        """Per-record results: the batch's, or the single record's result."""
        batch = _batch(self.response)
        if batch is not None:
            return batch.results
        result = self.result
        return () if result is None else (result,)

    @property
    def raw_response(self) -> str | None:
        """The provider's raw answer (single-record answers only), when there was one."""
        single = _single(self.response)
        return None if single is None else single.raw_response

    @property
    def success_count(self) -> int | None:
        """How many records of a batch succeeded (None for a single-record answer)."""
        batch = _batch(self.response)
        return None if batch is None else batch.success_count

    @property
    def failure_count(self) -> int | None:
        """How many records of a batch failed (None for a single-record answer)."""
        batch = _batch(self.response)
        return None if batch is None else batch.failure_count


def _single(response: object) -> WriteFailure | None:
    """`response` if it is a single-record failure. (The models load when first used: a
    response, if there is one, has loaded them.)"""
    if response is None:
        return None
    from .models import WriteFailure

    return response if isinstance(response, WriteFailure) else None


def _batch(response: object) -> BatchWriteResponse | None:
    """`response` if it is a batch's answer."""
    if response is None:
        return None
    from .models import BatchWriteResponse

    return response if isinstance(response, BatchWriteResponse) else None


class RateLimitError(APIError):
    """429: too many requests. `retry_after` is the wait the server asked for, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        status: int,
        headers: Mapping[str, str],
        body: str,
        problem: Problem | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            message, status=status, headers=headers, body=body, problem=problem, attempts=attempts
        )
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed. For 500, 502 and 504 the write may or may not have happened."""


class ResponseValidationError(AmpWriteError):
    """A 2xx answer whose body does not fit the contract: its `status`, `headers`, and in
    `body` what came."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        headers: Mapping[str, str],
        body: str,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.status = status
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers)
        self.body = body


class ResponseShapeError(AmpWriteError, ValueError):
    """A valid answer asked for what it does not hold: `as_batch()` of a single-record
    write's answer, `record_id` of an asynchronous write's. Raised by those accessors (a
    programming error: the code expected another kind of write), never returned."""


class FailureKind(str, enum.Enum):
    """Why there was no usable answer. Each value equals its string ("connect", ...)."""

    CONNECT = "connect"
    """The connection was refused or the host unreachable: nothing was sent."""
    CONNECT_TIMEOUT = "connect-timeout"
    """Connecting took longer than the connect timeout: nothing was sent."""
    READ_TIMEOUT = "read-timeout"
    """The request was sent and the answer took too long: it may have been processed."""
    TLS = "tls"
    """The TLS handshake failed (a certificate, a protocol): nothing was sent."""
    INTERRUPTED = "interrupted"
    """The connection was reset, closed or cut short after the request was sent."""
    TOO_LARGE = "too-large"
    """The answer was over the size limit and was not read."""
    INVALID = "invalid"
    """A URL or header that cannot be sent: nothing was sent."""

    @property
    def maybe_sent(self) -> bool:
        """Whether a failure of this kind may come after the server processed the request."""
        return self in (FailureKind.READ_TIMEOUT, FailureKind.INTERRUPTED, FailureKind.TOO_LARGE)

    @property
    def is_timeout(self) -> bool:
        """Whether a failure of this kind is a timeout (connect or read)."""
        return self in (FailureKind.CONNECT_TIMEOUT, FailureKind.READ_TIMEOUT)

    def __str__(self) -> str:
        return self.value


class TransportError(AmpWriteError):
    """No usable answer: connection refused or reset, TLS failure, truncated or oversized body.

    `maybe_sent` is False only when ampwrite knows the request never reached the server, so a
    retry cannot write twice. `kind` (a `FailureKind`, equal to its string) names the failure:
    "connect" (refused, unreachable), "connect-timeout", "read-timeout", "tls", "interrupted"
    (reset, closed or truncated answer), "too-large" (the answer was over the size limit),
    "invalid" (a URL or header that cannot be sent).
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_sent: bool,
        kind: FailureKind | str = FailureKind.INTERRUPTED,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.maybe_sent = maybe_sent
        self.kind = FailureKind(kind)


class RequestTimeoutError(TransportError):
    """The connection or the answer took longer than the timeout."""


class OperationTimeoutError(AmpWriteError):
    """`wait_for_operation` gave up: its timeout passed before the operation left
    `in_progress` (or before the server let it look again).

    `operation_id` is the operation waited for; `last` the last `Operation` read (None when no
    poll got one): its status is still `in_progress`. `attempts` counts the polls made. The
    operation itself goes on: wait again, or read it later with `get_operation`.
    """

    def __init__(
        self, message: str, *, operation_id: str, last: Operation | None, attempts: int = 0
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.operation_id = operation_id
        self.last = last
