"""What the sandbox holds, apart from its HTTP plumbing: records and object rules, faults,
operations and installations, and the request log, with the generation fence that makes a
reset and the applying of a write exclude each other.

A request is applied only in the generation (the count of resets) it began in: one still
being handled when ``reset()`` comes is not applied, and is left out of the request log.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ._faults import FaultDecision, FaultInjector, Faults
from ._http import HttpRequest
from ._operations import OperationBook, Scheduler
from ._responses import now, rfc3339
from ._store import ObjectRules, RecordStore, WriteTarget
from ._validation import MAX_BODY_DEPTH, RequestInvalid, nests_deeper_than, validate_record

__all__ = [
    "DEFAULT_REQUEST_LOG_BYTES",
    "LOG_BODY_PREFIX",
    "LOG_LIMIT",
    "RequestLog",
    "RequestLogEntry",
    "ResetMeanwhile",
    "SandboxState",
    "log_entry",
]

LOG_LIMIT: Final = 10_000
LOG_BODY_PREFIX: Final = 64 * 1024  # bytes of a larger body the request log keeps, as text
DEFAULT_REQUEST_LOG_BYTES: Final = 32 * 1024 * 1024
_REDACTED_HEADERS: Final = frozenset({"x-api-key", "authorization"})


@dataclass(frozen=True)
class RequestLogEntry:
    """One API request the sandbox answered (requests under ``/_sandbox/`` are not logged).

    ``status`` is ``None`` when the connection was reset on purpose without an answer.
    ``body`` is the parsed JSON body, or ``None`` when it was not parsed (unauthenticated
    requests) or could not be parsed, or when it nests deeper than any valid write (such a
    write was refused; kept, it could break serializing the log). A body larger than 64 KiB
    (``LOG_BODY_PREFIX``) is not kept whole: ``body`` is then its first 64 KiB as text and
    ``body_truncated`` is True. ``body_size`` is the size of the body as received, in
    bytes. ``headers`` has the API key value replaced by ``***``.
    """

    method: str
    path: str
    query: str
    status: int | None
    body: Any
    headers: dict[str, str]
    request_id: str
    time: str
    body_size: int = 0
    body_truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict, as ``GET /_sandbox/requests`` lists it."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "body": self.body,
            "bodySize": self.body_size,
            "bodyTruncated": self.body_truncated,
            "headers": self.headers,
            "requestId": self.request_id,
            "time": self.time,
        }


def log_entry(
    request: HttpRequest, status: int | None, body: object, request_id: str
) -> RequestLogEntry:
    """The log entry of an answered request; ``body`` is what the handler parsed, if it did."""
    headers: dict[str, str] = {}
    for name, value in request.header_list:
        if name.lower() in _REDACTED_HEADERS:
            value = "***"
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    truncated = body is not None and len(request.body) > LOG_BODY_PREFIX
    if truncated:  # the parsed body of a large request is not kept, only its start
        body = request.body[:LOG_BODY_PREFIX].decode("utf-8", "ignore")
    elif nests_deeper_than(body, MAX_BODY_DEPTH):
        body = None
    return RequestLogEntry(
        method=request.method,
        path=request.path,
        query=request.query,
        status=status,
        body=body,
        headers=headers,
        request_id=request_id,
        time=rfc3339(now()),
        body_size=len(request.body),
        body_truncated=truncated,
    )


def _held_bytes(entry: RequestLogEntry) -> int:
    """What an entry counts against the log's budget: the text it holds, with a kept body
    counted at its size as received (parsed, it takes more memory than that)."""
    kept_body = 0 if entry.body is None else min(entry.body_size, LOG_BODY_PREFIX)
    texts = (entry.method, entry.path, entry.query, entry.request_id, entry.time)
    header_bytes = sum(len(name) + len(value) for name, value in entry.headers.items())
    return kept_body + header_bytes + sum(len(text) for text in texts)


class RequestLog:
    """The newest entries, at most ``LOG_LIMIT`` of them holding at most ``budget`` bytes
    (``_held_bytes``) in all: the oldest are dropped first, and the newest is always kept.
    Not thread-safe: ``SandboxState`` holds its log lock around every call."""

    maxlen: Final = LOG_LIMIT

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._entries: deque[tuple[RequestLogEntry, int]] = deque()
        self._held = 0

    def append(self, entry: RequestLogEntry) -> None:
        size = _held_bytes(entry)
        self._entries.append((entry, size))
        self._held += size
        while len(self._entries) > 1 and (
            len(self._entries) > self.maxlen or self._held > self._budget
        ):
            self._held -= self._entries.popleft()[1]

    def entries(self) -> list[RequestLogEntry]:
        return [entry for entry, _ in self._entries]

    def clear(self) -> None:
        self._entries.clear()
        self._held = 0


class ResetMeanwhile(Exception):
    """The sandbox was reset while the request was handled: it is not applied."""


class SandboxState:
    """The sandbox's models. ``scheduler`` is set while the sandbox runs; asynchronous
    writes accepted without one are never applied."""

    def __init__(self, *, faults: Faults | None, request_log: RequestLog, async_delay: float):
        self.store = RecordStore()
        self.faults = FaultInjector(faults)
        self.operations = OperationBook()
        self.async_delay = async_delay
        self.scheduler: Scheduler | None = None
        self.generation = 0  # counts resets: a request is applied only in the one it began in
        self._fence = threading.Lock()  # a reset and the applying of a write exclude each other
        self._log = request_log
        self._log_lock = threading.Lock()

    # -- records and object rules -----------------------------------------------------

    def configure_object(
        self,
        object_name: str,
        *,
        required_fields: Iterable[str] = (),
        unique_fields: Iterable[str] = (),
        delete_enabled: bool = True,
    ) -> ObjectRules:
        """Set (and return) the rules the fake provider applies to ``object_name``."""
        if not isinstance(object_name, str) or not object_name:
            raise ValueError("object_name must be a non-empty string")
        rules = ObjectRules(
            required_fields=_field_names(required_fields, "required_fields"),
            unique_fields=_field_names(unique_fields, "unique_fields"),
            delete_enabled=bool(delete_enabled),
        )
        self.store.configure_object(object_name, rules)
        return rules

    def add_record(
        self,
        record: dict[str, Any],
        *,
        project: str,
        integration: str,
        object_name: str,
        group_ref: str,
    ) -> dict[str, Any]:
        """Seed a record as-is (see ``Sandbox.add_record``); a copy as stored."""
        if not isinstance(record, dict):
            raise TypeError("record must be a dict")
        try:
            validate_record(record)
        except RequestInvalid as invalid:
            raise ValueError(str(invalid)) from None
        _non_empty(
            project_id_or_name=project,
            integration_id=integration,
            object_name=object_name,
            group_ref=group_ref,
        )
        return self.store.insert(
            WriteTarget(project, integration, object_name, group_ref).key, record
        )

    def installation_id(self, *, project: str, integration: str, group_ref: str) -> str:
        """The ID of a group's installation (see ``Sandbox.installation_id``)."""
        _non_empty(project_id_or_name=project, integration_id=integration, group_ref=group_ref)
        return self.operations.installation(project, integration, group_ref).id

    # -- the request log --------------------------------------------------------------

    def log_request(self, entry: RequestLogEntry, generation: int) -> None:
        with self._log_lock:
            if generation == self.generation:  # else a reset came while it was handled
                self._log.append(entry)

    def requests(self) -> list[RequestLogEntry]:
        with self._log_lock:
            return self._log.entries()

    # -- writes -----------------------------------------------------------------------

    def draw_fault(self, generation: int) -> tuple[float, FaultDecision | None]:
        """The latency and fault for a valid write (a request from before a reset takes no
        fault scripted after it)."""
        with self._fence:
            self._check(generation)
            return self.faults.decide()

    def write(
        self, generation: int, operation_id: str, target: WriteTarget, write: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply a synchronous write, or accept an asynchronous one for the scheduler to
        apply after ``async_delay`` seconds; the status and body to answer."""
        with self._fence:
            self._check(generation)
            if write.get("mode") != "asynchronous":
                outcome = self.store.execute(target, write, operation_id)
                self.operations.record(operation_id, target, write, outcome)
                return outcome.status, outcome.body
            operation = self.operations.open(operation_id, target, write)
            scheduler = self.scheduler

        def apply() -> None:
            with self._fence:
                if generation != self.generation:
                    return
                self.operations.start(operation)
                outcome = self.store.execute(target, write, operation_id)
                self.operations.finish(operation, outcome)

        if scheduler is not None:
            scheduler.schedule(self.async_delay, apply)
        return 200, {"operationId": operation_id}

    def refuse(
        self,
        generation: int,
        operation_id: str,
        target: WriteTarget,
        write: dict[str, Any],
        reason: str,
    ) -> None:
        """Record a write an injected fault failed, unless a reset came meanwhile."""
        with self._fence:
            if generation == self.generation:
                self.operations.refuse(operation_id, target, write, reason)

    def _check(self, generation: int) -> None:
        if generation != self.generation:
            raise ResetMeanwhile

    # -- reset ------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear records, the request log, operations, pending asynchronous writes and
        scripted faults; restart ID counters and the fault sequence. Object rules, fault
        settings and installations are kept."""
        with self._fence:
            self.generation += 1
            self.operations.clear()
            if self.scheduler is not None:
                self.scheduler.clear()
            self.store.clear()
            with self._log_lock:
                self._log.clear()
            self.faults.reset()


def _non_empty(**values: object) -> None:
    for what, value in values.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{what} must be a non-empty string")


def _field_names(names: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be an iterable of field names, not a single string")
    result = tuple(names)
    for name in result:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must contain non-empty strings, got {name!r}")
    return result
