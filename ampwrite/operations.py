"""Following asynchronous writes: the operation endpoints of the Platform API.

An asynchronous write answers only an `operationId`; what became of it is read from the
Platform API (`Core.platform_url`, with the same API key):

- `get_operation`: one operation, read once;
- `wait_for_operation`: read it again and again until its status is no longer `in_progress`;
- `list_operation_logs`: its log entries;
- `list_operations`: one page of an installation's operations; `iter_operations` every page.

Each read is one `GET` through the same stages as a write: its inputs are checked first
(nothing is sent for an empty id), each path parameter is one percent-encoded segment, and
the answer goes through the same redaction, decoding table and retry loop (`ampwrite._send`).
A read is idempotent, so 500, 502, 504, resets and read timeouts are retried by default too,
still within the `RetryConfig` and honouring `Retry-After`. None of these functions raises for
anything the network, the server or the caller's data does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from ._call import CallSettings, call_headers, call_settings
from ._headers import header_issues
from ._paths import operation_logs_path, operation_path, operations_path, query
from ._send import Prepared, send_prepared
from ._transport import Request, Timeouts
from ._validate import _integer, _path_parameter
from ._wire import decode_operation, decode_operation_logs, decode_operation_page
from .core import Core, Timeout, seconds_issue
from .errors import (
    AmpWriteError,
    ConfigurationError,
    OperationTimeoutError,
    RequestValidationError,
    ResponseValidationError,
    ValidationIssue,
)
from .models import Operation, OperationLog, OperationPage
from .result import Err, Ok, Result
from .retries import Disposition, RetryConfig, disposition, server_wait

__all__ = [
    "DEFAULT_MAX_POLL_INTERVAL",
    "DEFAULT_WAIT_TIMEOUT",
    "FIRST_POLL_DELAY",
    "Polling",
    "get_operation",
    "iter_operations",
    "list_operation_logs",
    "list_operations",
    "prepare_get_operation",
    "prepare_list_operation_logs",
    "prepare_list_operations",
    "prepare_wait",
    "wait_for_operation",
]

log = logging.getLogger("ampwrite")

T = TypeVar("T")

MAX_PAGE_SIZE: Final = 1000
DEFAULT_WAIT_TIMEOUT: Final = 300.0
"""Seconds `wait_for_operation` waits by default before it gives up."""
FIRST_POLL_DELAY: Final = 0.5
"""Seconds between the first poll and the second; each later wait doubles, up to the cap."""
POLL_BACKOFF: Final = 2.0
DEFAULT_MAX_POLL_INTERVAL: Final = 10.0
MIN_POLL_SECONDS: Final = 1.0
"""A poll started just before the wait's deadline may still take this long (its own timeout,
if shorter)."""


# -- one read -------------------------------------------------------------------------------------


def get_operation(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[Operation, AmpWriteError]:
    """Read one operation: `Ok(Operation)` or `Err(error)` (a 404 `APIError` when the project
    has no such operation).

    The keyword options override the `Core`'s settings for this call, as for `write_records`;
    `platform_url` replaces `Core.platform_url`.
    """
    prepared = prepare_get_operation(
        core,
        project_id_or_name,
        operation_id,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return send_prepared(core, prepared)


def prepare_get_operation(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Prepared[Operation] | AmpWriteError:
    """`get_operation` checked and built, without I/O: its GET, or why it cannot be sent."""
    _require_core(core, "get_operation")
    ids = {"project_id_or_name": project_id_or_name, "operation_id": operation_id}
    settings = _checked(core, ids, (), headers, retries, timeout, platform_url)
    if isinstance(settings, AmpWriteError):
        return settings
    path = operation_path(project_id_or_name, operation_id)
    return _prepare_get(core, settings, path, headers, decode_operation)


def list_operation_logs(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[tuple[OperationLog, ...], AmpWriteError]:
    """Read the log entries of one operation, in the order the server lists them."""
    prepared = prepare_list_operation_logs(
        core,
        project_id_or_name,
        operation_id,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return send_prepared(core, prepared)


def prepare_list_operation_logs(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Prepared[tuple[OperationLog, ...]] | AmpWriteError:
    """`list_operation_logs` checked and built, without I/O."""
    _require_core(core, "list_operation_logs")
    ids = {"project_id_or_name": project_id_or_name, "operation_id": operation_id}
    settings = _checked(core, ids, (), headers, retries, timeout, platform_url)
    if isinstance(settings, AmpWriteError):
        return settings
    path = operation_logs_path(project_id_or_name, operation_id)
    return _prepare_get(core, settings, path, headers, decode_operation_logs)


def list_operations(
    core: Core,
    project_id_or_name: str,
    integration_id: str,
    installation_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[OperationPage, AmpWriteError]:
    """Read one page of an installation's operations.

    `page_size` is 1 to 1000 (the server's default is 200); `page_token` is the
    `next_page_token` of the page before. `OperationPage.next_page_token` is None on the last
    page.
    """
    prepared = prepare_list_operations(
        core,
        project_id_or_name,
        integration_id,
        installation_id,
        page_size=page_size,
        page_token=page_token,
        retries=retries,
        timeout=timeout,
        platform_url=platform_url,
        headers=headers,
    )
    return send_prepared(core, prepared)


def prepare_list_operations(
    core: Core,
    project_id_or_name: str,
    integration_id: str,
    installation_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Prepared[OperationPage] | AmpWriteError:
    """`list_operations` checked and built, without I/O."""
    _require_core(core, "list_operations")
    ids = {
        "project_id_or_name": project_id_or_name,
        "integration_id": integration_id,
        "installation_id": installation_id,
    }
    paging: list[ValidationIssue] = []
    if page_size is not None:
        _integer(1, MAX_PAGE_SIZE)(page_size, "page_size", paging)
    if page_token is not None:
        _path_parameter(page_token, "page_token", paging)
    settings = _checked(core, ids, paging, headers, retries, timeout, platform_url)
    if isinstance(settings, AmpWriteError):
        return settings
    path = operations_path(project_id_or_name, integration_id, installation_id) + query(
        {"pageSize": page_size, "pageToken": page_token}
    )
    return _prepare_get(core, settings, path, headers, decode_operation_page)


def iter_operations(
    core: Core,
    project_id_or_name: str,
    integration_id: str,
    installation_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    retries: RetryConfig | None = None,
    timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[Result[OperationPage, AmpWriteError]]:
    """Every page of an installation's operations, from `page_token` (or the first page) on:
    one `Result` per page, as `list_operations` returns it. Pages are read as you iterate;
    after the last page, or after the first `Err` (which is yielded), the iterator ends. To
    go on after an error, start again from the `next_page_token` of the last page you got.
    A server that hands out a token it gave before ends the iteration with
    `Err(ResponseValidationError)` instead of looping for ever."""
    _require_core(core, "iter_operations")

    def pages() -> Iterator[Result[OperationPage, AmpWriteError]]:
        paging = Paging(page_token)
        while not paging.done:
            yield paging.take(
                list_operations(
                    core,
                    project_id_or_name,
                    integration_id,
                    installation_id,
                    page_size=page_size,
                    page_token=paging.token,
                    retries=retries,
                    timeout=timeout,
                    platform_url=platform_url,
                    headers=headers,
                )
            )

    return pages()


class Paging:
    """Where a listing of operations stands: the token to ask for next, whether it is `done`
    (after the last page or an error) and the tokens handed out so far, so that a server that
    hands one out again ends it instead of looping for ever."""

    __slots__ = ("done", "seen", "token")

    def __init__(self, page_token: str | None) -> None:
        self.token = page_token
        self.seen = {page_token}
        self.done = False

    def take(
        self, page: Result[OperationPage, AmpWriteError]
    ) -> Result[OperationPage, AmpWriteError]:
        """The page to hand to the caller (an error instead of a repeated token); moves on."""
        following = page.value.next_page_token if isinstance(page, Ok) else None
        if following is not None and following in self.seen:
            self.done = True
            return Err(
                ResponseValidationError(
                    f"the server handed out page token {following!r} again: the listing"
                    " would never end",
                    status=200,
                    headers={},
                    body="",
                )
            )
        self.done = following is None
        self.token = following
        self.seen.add(following)
        return page


# -- waiting ---------------------------------------------------------------------------------------


def wait_for_operation(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
    poll_interval: float | None = None,
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    retries: RetryConfig | None = None,
    request_timeout: Timeout | None = None,
    platform_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result[Operation, AmpWriteError]:
    """Poll an operation until its status is no longer `in_progress`.

    - `Ok(Operation)` for any other status: `success`, `failure` (the call worked; the write
      did not) or a status the server added since.
    - `Err(OperationTimeoutError)` once `timeout` seconds have passed (`.operation_id`, and
      `.last`, the last `Operation` read, or None).
    - `Err(error)` for any other failure that retrying did not cure (a 404, say).

    The first poll is made at once. Between polls it waits `poll_interval` seconds if given,
    else 0.5 s, then twice as long each time, up to `max_poll_interval`. When the server
    answers 429 or 503 (after the poll's own retries), the next poll comes when it asked
    (`Retry-After`, or the problem's `retryAfter`); if that is past the deadline, the wait ends
    there. `retries` and `request_timeout` apply to each poll; a poll's retries end with the
    wait. Waiting and timing use `core.sleep` and `core.clock`.
    """
    _require_core(core, "wait_for_operation")

    def pause(seconds: float) -> bool:
        core.sleep(seconds)
        return True

    return poll_until_done(
        core,
        project_id_or_name,
        operation_id,
        timeout=timeout,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        retries=retries,
        request_timeout=request_timeout,
        platform_url=platform_url,
        headers=headers,
        pause=pause,
    )


def poll_until_done(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    timeout: float,
    poll_interval: float | None,
    max_poll_interval: float,
    retries: RetryConfig | None,
    request_timeout: Timeout | None,
    platform_url: str | None,
    headers: Mapping[str, str] | None,
    pause: Callable[[float], bool],
) -> Result[Operation, AmpWriteError]:
    """`wait_for_operation`, waiting between polls with `pause(seconds)`, which returns False
    to give up at once (the bulk loader's stop): then `Err(OperationTimeoutError)`."""
    polling = prepare_wait(
        core,
        project_id_or_name,
        operation_id,
        timeout=timeout,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        retries=retries,
        request_timeout=request_timeout,
        platform_url=platform_url,
        headers=headers,
    )
    if isinstance(polling, AmpWriteError):
        return Err(polling)
    while True:
        step = polling.decide(send_prepared(core, polling.next_poll()))
        if isinstance(step, (Ok, Err)):
            return step
        if not pause(step):
            return polling.given_up()


def prepare_wait(
    core: Core,
    project_id_or_name: str,
    operation_id: str,
    *,
    timeout: float,
    poll_interval: float | None,
    max_poll_interval: float,
    retries: RetryConfig | None,
    request_timeout: Timeout | None,
    platform_url: str | None,
    headers: Mapping[str, str] | None,
) -> Polling | AmpWriteError:
    """The decisions of one wait, or why it cannot start; the clock starts now."""
    _require_core(core, "wait_for_operation")
    ids = {"project_id_or_name": project_id_or_name, "operation_id": operation_id}
    settings = _checked(core, ids, (), headers, retries, request_timeout, platform_url)
    if isinstance(settings, AmpWriteError):
        return settings
    unusable = _wait_issue(timeout, poll_interval, max_poll_interval)
    if unusable is not None:
        return unusable
    path = operation_path(project_id_or_name, operation_id)
    return Polling(
        core, operation_id, settings, path, headers, timeout, poll_interval, max_poll_interval
    )


class Polling:
    """The decisions of `wait_for_operation`, without its I/O: `next_poll()` gives the GET to
    make now (its retries and timeout within what is left of the wait), and `decide(result)`
    says, after that poll: done (a `Result`), or wait this many seconds. A driver that gives up
    early (a stop) returns `given_up()`. The synchronous and the asyncio waits share it.

    Built by those waits: the `core`, the `operation_id` waited for, the call's `settings`,
    the operation's `path` and request `headers`, the whole wait's `timeout`, and the
    `poll_interval` (None: a growing interval, up to `max_poll_interval`) in seconds."""

    def __init__(
        self,
        core: Core,
        operation_id: str,
        settings: CallSettings,
        path: str,
        headers: Mapping[str, str] | None,
        timeout: float,
        poll_interval: float | None,
        max_poll_interval: float,
    ) -> None:
        self._core = core
        self._operation_id = operation_id
        self._settings = settings
        self._path = path
        self._headers = headers
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._started = core.clock()
        self._deadline = self._started + timeout
        self._last: Operation | None = None
        self._result: Result[Operation, AmpWriteError] | None = None
        self.polls = 0

    def next_poll(self) -> Prepared[Operation] | AmpWriteError:
        """The poll to make now."""
        poll = _within(self._settings, self._deadline - self._core.clock())
        return _prepare_get(self._core, poll, self._path, self._headers, decode_operation)

    def decide(
        self, result: Result[Operation, AmpWriteError]
    ) -> Result[Operation, AmpWriteError] | float:
        """After a poll that got `result`: the wait's `Result`, or seconds until the next poll."""
        self.polls += 1
        self._result = result
        asked: float | None = None
        if isinstance(result, Ok):
            if result.value.done:
                return result
            self._last = result.value
        elif disposition(result.error) is Disposition.REFUSED:  # 429, 503: poll later
            asked = server_wait(result.error)
        elif self._core.clock() >= self._deadline:  # the wait's end cut this poll short
            return Err(
                _timed_out(self._operation_id, self._timeout, self._last, self.polls, result)
            )
        else:
            return result
        delay = (
            asked
            if asked is not None
            else _poll_delay(self.polls, self._poll_interval, self._max_poll_interval)
        )
        left = self._deadline - self._core.clock()
        if left <= 0 or (asked is not None and asked > left):
            return Err(
                _timed_out(self._operation_id, self._timeout, self._last, self.polls, result)
            )
        log.debug(
            "operation %s not done; next poll in %.2f s", self._operation_id, min(delay, left)
        )
        return min(delay, left)

    def given_up(self) -> Err[AmpWriteError]:
        """The wait's `Err(OperationTimeoutError)` when its driver stops it between polls."""
        assert self._result is not None, "given_up() comes after a poll"
        elapsed = self._core.clock() - self._started
        return Err(_timed_out(self._operation_id, elapsed, self._last, self.polls, self._result))


def _poll_delay(polls: int, poll_interval: float | None, max_poll_interval: float) -> float:
    """Seconds to wait after poll number `polls` (1 for the first)."""
    if poll_interval is not None:
        return poll_interval
    return min(max_poll_interval, FIRST_POLL_DELAY * POLL_BACKOFF ** min(polls - 1, 64))


def _within(settings: CallSettings, left: float) -> CallSettings:
    """The settings of a poll made with `left` seconds of the wait to go: its retries stop
    with the wait, and each attempt takes at most what is left (or `MIN_POLL_SECONDS`)."""
    config = settings.retries
    budget = max(left, 0.0)
    if config.max_elapsed_time > budget:
        config = attrs.evolve(config, max_elapsed_time=budget)
    cap = max(left, MIN_POLL_SECONDS)
    if max(settings.timeout) <= cap and config is settings.retries:
        return settings
    return settings._replace(
        retries=config, timeout=Timeouts(*(min(part, cap) for part in settings.timeout))
    )


def _wait_issue(
    timeout: object, poll_interval: object, max_poll_interval: object
) -> ConfigurationError | None:
    """Why the wait's own settings cannot be used, if they cannot: each is seconds."""
    for name, value in (
        ("timeout", timeout),
        ("poll_interval", poll_interval),
        ("max_poll_interval", max_poll_interval),
    ):
        if value is None and name == "poll_interval":
            continue
        issue = seconds_issue(name, value)
        if issue is not None:
            return ConfigurationError(issue)
    return None


def _timed_out(
    operation_id: str,
    timeout: float,
    last: Operation | None,
    polls: int,
    result: Result[Operation, AmpWriteError],
) -> OperationTimeoutError:
    state = "was still in progress" if last is not None else "could not be read"
    message = (
        f"operation {operation_id!r} {state} after {timeout:g} s "
        f"({polls} poll{'s' if polls != 1 else ''})"
    )
    if isinstance(result, Err):
        message += f"; the last poll got: {result.error}"
    return OperationTimeoutError(message, operation_id=operation_id, last=last, attempts=polls)


# -- the stages every read shares ----------------------------------------------------------------


def _require_core(core: object, function: str) -> None:
    if not isinstance(core, Core):
        raise TypeError(f"{function} needs a Core, got {type(core).__name__}")


def _checked(
    core: Core,
    ids: Mapping[str, object],
    issues: Sequence[ValidationIssue],
    headers: object,
    retries: object,
    timeout: object,
    platform_url: object,
) -> CallSettings | AmpWriteError:
    """The call's settings, or why it cannot be sent: each id must be a non-empty string,
    and `issues` (found in the other inputs) must be empty."""
    found = list(issues)
    for name, value in ids.items():
        _path_parameter(value, name, found)
    found.extend(header_issues(headers))
    if found:
        return RequestValidationError(tuple(found))
    return call_settings(
        core, retries, timeout, platform_url, default_url=core.platform_url, url_name="platform_url"
    )


def _prepare_get(
    core: Core,
    settings: CallSettings,
    path: str,
    headers: Mapping[str, str] | None,
    decode: Callable[[Any], T],
) -> Prepared[T] | AmpWriteError:
    """One GET of `path` below the settings' base URL, to be retried as an idempotent request."""
    key = core.api_key()
    if isinstance(key, AmpWriteError):
        return key
    request = Request(
        "GET",
        settings.base_url,
        path,
        call_headers(core, headers, key, has_body=False),
        None,
        settings.timeout,
        core.max_response_bytes,
    )
    return Prepared(request, settings.retries, key, decode, idempotent=True)
