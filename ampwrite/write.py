"""`write_records`: one write, from request to `Result`, in four stages.

1. validate the request (nothing is sent when it is invalid);
2. build the URL (each path parameter one percent-encoded segment) and the headers;
3. send it, retrying only what the retry policy allows;
4. decode the answer (see `ampwrite._answers`).

It never raises for anything the network, the server or the caller's data does.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from ._answers import decode_answer
from ._transport import NOT_SENT, TIMEOUT_CONNECT, Answer, Route, Timeouts, send_once
from ._validate import Checked, check_request, show, unencodable
from ._wire import to_wire
from .core import API_KEY_HEADER, Core, Timeout, check_server_url, check_timeout, merge_headers
from .core import has_control_characters as _has_control_characters
from .errors import (
    AmpWriteError,
    APIError,
    ConfigurationError,
    RequestValidationError,
    TransportError,
    ValidationIssue,
)
from .models import WriteRecordsRequest, WriteResponse
from .result import Err, Ok, Result
from .retries import RetryConfig, parse_retry_after

__all__ = ["write_records"]

log = logging.getLogger("ampwrite")

RESERVED_HEADERS: Final = frozenset(
    {
        API_KEY_HEADER.lower(),
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_AMBIGUOUS_KINDS: Final = frozenset({"read-timeout", "interrupted"})
MIN_ATTEMPT_SECONDS: Final = 1.0
"""A retry is not started with less than this left of max_elapsed_time (or a tenth of it)."""


def write_records(
    core: Core,
    request: WriteRecordsRequest | Mapping[str, Any],
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    server_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[WriteResponse, AmpWriteError]:
    """Create, update or delete records; return `Ok(response)` or `Err(error)`.

    `request` is a `WriteRecordsRequest` or a mapping in the API's JSON shape
    (`projectIdOrName`, `integrationId`, `objectName`, `requestBody`). The keyword options
    override the `Core`'s settings for this call; `headers` adds request headers.
    """
    if not isinstance(core, Core):
        raise TypeError(f"write_records needs a Core, got {type(core).__name__}")
    checked = _validate(request, headers)
    if isinstance(checked, AmpWriteError):
        return Err(checked)
    settings = _call_settings(core, retries, timeout, server_url)
    if isinstance(settings, AmpWriteError):
        return Err(settings)
    config, call_timeout, base_url = settings
    key = core.api_key()
    if isinstance(key, AmpWriteError):
        return Err(key)
    try:
        body = json.dumps(
            checked.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (ValueError, UnicodeEncodeError, RecursionError):
        return Err(RequestValidationError(unencodable(checked.body, "requestBody")))
    path = _path(checked)
    request_headers = (
        merge_headers(core.base_headers, headers) if headers else dict(core.base_headers)
    )
    request_headers[API_KEY_HEADER] = key
    return _send(core, config, call_timeout, path, request_headers, body, key, core.route(base_url))


# -- stage 1 ------------------------------------------------------------------------------------


def _validate(request: object, headers: Mapping[str, str] | None) -> Checked | AmpWriteError:
    if not isinstance(request, (WriteRecordsRequest, Mapping)):
        issue = ValidationIssue(
            "", f"expected a WriteRecordsRequest or a mapping, got {type(request).__name__}"
        )
        return RequestValidationError((issue,))
    try:
        wire = to_wire(request) if isinstance(request, WriteRecordsRequest) else request
        checked = check_request(wire)
    except Exception as exc:  # the caller's own mapping or object failed while being read
        reason = f"could not be read: {show(exc, 200)}"
        return RequestValidationError((ValidationIssue("", reason),))
    header_issues = _header_issues(headers)
    if isinstance(checked, tuple) or header_issues:
        issues = (checked if isinstance(checked, tuple) else ()) + header_issues
        return RequestValidationError(issues)
    return checked


def _header_issues(headers: object) -> tuple[ValidationIssue, ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        return (ValidationIssue("headers", f"expected a mapping, got {type(headers).__name__}"),)
    issues = []
    for name, value in headers.items():
        path = f"headers[{show(name)}]"
        if not isinstance(name, str) or not isinstance(value, str):
            issues.append(ValidationIssue(path, "header names and values must be strings"))
        elif not _TOKEN.fullmatch(name):
            issues.append(ValidationIssue(path, "is not a valid header name (RFC 9110 token)"))
        elif _has_control_characters(value):
            issues.append(ValidationIssue(path, "value must not contain CR, LF or NUL characters"))
        elif not _is_latin1(value):
            issues.append(ValidationIssue(path, "value must be Latin-1 text"))
        elif name.lower() in RESERVED_HEADERS:
            issues.append(ValidationIssue(path, "is set by ampwrite and cannot be replaced"))
    return tuple(issues)


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _call_settings(
    core: Core, retries: object, timeout: object, server_url: object
) -> tuple[RetryConfig, Timeouts, str] | ConfigurationError:
    config = core.retries if retries is None else retries
    if not isinstance(config, RetryConfig):
        return ConfigurationError(f"retries must be a RetryConfig, got {type(retries).__name__}")
    call_timeout = core.timeout if timeout is None else check_timeout(timeout)
    if isinstance(call_timeout, ConfigurationError):
        return call_timeout
    base_url = (
        core.server_url
        if server_url is None
        else check_server_url(server_url, allow_insecure_http=core.allow_insecure_http)
    )
    if isinstance(base_url, ConfigurationError):
        return base_url
    return config, call_timeout, base_url


# -- stage 2 ------------------------------------------------------------------------------------


def _segment(value: str) -> str:
    """One path segment: everything but unreserved characters encoded, `.` and `..` too."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _path(checked: Checked) -> str:
    """The operation's path below the server URL."""
    return (
        f"/projects/{_segment(checked.project_id_or_name)}"
        f"/integrations/{_segment(checked.integration_id)}"
        f"/objects/{_segment(checked.object_name)}"
    )


# -- stage 3 ------------------------------------------------------------------------------------


def _send(
    core: Core,
    config: RetryConfig,
    timeout: Timeouts,
    path: str,
    headers: dict[str, str],
    body: bytes,
    key: str,
    route: Route,
) -> Result[WriteResponse, AmpWriteError]:
    started = core.clock()
    attempt = 0
    attempt_timeout = timeout
    while True:
        attempt += 1
        attempt_started = core.clock()
        outcome = send_once(
            route, path, headers, body, timeout=attempt_timeout, max_bytes=core.max_response_bytes
        )
        if isinstance(outcome, Answer):
            result = decode_answer(outcome, attempts=attempt, secret=key)
            status = str(outcome.status)
        else:
            outcome.attempts = attempt
            result = Err(outcome)
            status = f"no answer ({outcome.kind})"
        if log.isEnabledFor(logging.DEBUG):
            elapsed_ms = (core.clock() - attempt_started) * 1000
            url = route.base_url + path
            log.debug("POST %s -> %s in %.1f ms (attempt %d)", url, status, elapsed_ms, attempt)
        if isinstance(result, Ok):
            return result
        wait = _retry_wait(core, config, result.error, attempt, started, timeout)
        if wait is None:
            return result
        log.debug("retrying in %.2f s after %s", wait, status)
        core.sleep(wait)
        # a retry may only use what is left of max_elapsed_time
        left = config.max_elapsed_time - (core.clock() - started)
        attempt_timeout = Timeouts(*(min(part, left) for part in timeout))


def _retry_wait(
    core: Core,
    config: RetryConfig,
    error: AmpWriteError,
    attempt: int,
    started: float,
    timeout: Timeouts,
) -> float | None:
    """Seconds to wait before the next attempt, or None to stop and return `error`."""
    if attempt >= config.max_attempts:
        return None
    server_wait: float | None = None
    if isinstance(error, APIError):
        if not config.retries_status(error.status):
            return None
        problem_after = error.problem.retry_after if error.problem else None
        server_wait = parse_retry_after(error.headers, problem_after)
    elif isinstance(error, TransportError):
        never_sent = error.kind in (NOT_SENT, TIMEOUT_CONNECT)
        ambiguous = error.kind in _AMBIGUOUS_KINDS
        if not (
            (never_sent and config.retry_connection_errors)
            or (ambiguous and config.retry_ambiguous)
        ):
            return None
    else:
        return None
    if server_wait is not None:
        if server_wait > config.max_retry_after:  # not worth a retry before the server's time
            return None
        wait = server_wait
    else:
        wait = config.backoff(attempt, core.rand or random.random)
    left_after_wait = config.max_elapsed_time - (core.clock() - started + wait)
    enough = min(MIN_ATTEMPT_SECONDS, timeout.total, config.max_elapsed_time / 10)
    if left_after_wait < enough:
        return None
    return wait
