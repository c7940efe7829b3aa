"""The ``Sandbox``: routing, auth, validation, fault injection, asynchronous operations and
inspection, on top of the HTTP server in ``_http`` and the record store in ``_store``.

Order of checks for an API request: route (404/405), API key (401), path segments and body
(400), then fault injection, then the write itself. So an invalid request can never be
answered 2xx or 5xx, and faults only ever hit valid, authenticated writes.
"""

from __future__ import annotations

import contextlib
import heapq
import hmac
import itertools
import json
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote

from ._faults import FaultDecision, FaultInjector, Faults, faults_from_mapping
from ._http import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    HttpRequest,
    HttpResponse,
    HttpServer,
    Limits,
)
from ._store import ObjectRules, RecordStore, WriteTarget
from ._validation import (
    MAX_BODY_DEPTH,
    RequestInvalid,
    nests_deeper_than,
    parse_json_body,
    validate_record,
    validate_write_request,
)

__all__ = ["DEFAULT_API_KEY", "RequestLogEntry", "Sandbox"]

DEFAULT_API_KEY: Final = "sandbox-api-key"
LOG_LIMIT: Final = 10_000
LOG_BODY_PREFIX: Final = 64 * 1024  # bytes of a larger body the request log keeps, as text
DEFAULT_REQUEST_LOG_BYTES: Final = 32 * 1024 * 1024
OPERATION_LIMIT: Final = 10_000
_RETRYABLE: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_JSON: Final = "application/json"
_PROBLEM: Final = "application/problem+json"
_TEXT: Final = "text/plain; charset=utf-8"
_REDACTED_HEADERS: Final = frozenset({"x-api-key", "authorization"})

OperationStatus = Literal["in_progress", "success", "failure"]
_AdminHandler = Callable[[HttpRequest, str], HttpResponse]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


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


def _held_bytes(entry: RequestLogEntry) -> int:
    """What an entry counts against the log's budget: the text it holds, with a kept body
    counted at its size as received (parsed, it takes more memory than that)."""
    kept_body = 0 if entry.body is None else min(entry.body_size, LOG_BODY_PREFIX)
    texts = (entry.method, entry.path, entry.query, entry.request_id, entry.time)
    header_bytes = sum(len(name) + len(value) for name, value in entry.headers.items())
    return kept_body + header_bytes + sum(len(text) for text in texts)


class _RequestLog:
    """The newest entries, at most ``LOG_LIMIT`` of them holding at most ``budget`` bytes
    (``_held_bytes``) in all: the oldest are dropped first, and the newest is always kept.
    Not thread-safe: the sandbox holds its log lock around every call."""

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


@dataclass
class _Operation:
    id: str
    project: str
    integration: str
    object_name: str
    group_ref: str
    status: OperationStatus
    result: dict[str, Any] | None
    create_time: str
    update_time: str

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "projectId": self.project,
            "integrationId": self.integration,
            "objectName": self.object_name,
            "groupRef": self.group_ref,
            "status": self.status,
        }
        if self.result is not None:
            body["result"] = self.result
        body["createTime"] = self.create_time
        body["updateTime"] = self.update_time
        return body


class _Scheduler:
    """One worker thread that runs callables after a delay; ``clear()`` drops pending ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="ampwrite-sandbox-async", daemon=True
        )
        self._thread.start()

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
            with contextlib.suppress(Exception):
                job()


class Sandbox:
    """A local, in-process emulator of Ampersand's Write API.

    Use it as a context manager (or call ``start()`` / ``stop()``)::

        with Sandbox() as sb:
            # point a client at sb.url with the header X-Api-Key: sb.api_key
            ...

    ``url`` includes ``/v1``. The server listens on loopback in background daemon threads.
    Asynchronous writes are applied ``async_delay`` seconds after they are answered.

    A misbehaving client cannot hang or bloat it. The request line and headers must arrive
    within ``header_timeout`` seconds of the request's first byte, and the body within
    ``body_timeout`` seconds after them, or the request is answered 408 and the connection
    closed; a connection that sends nothing for ``idle_timeout`` seconds is closed without
    an answer. At most ``max_connections`` connections are open at once: one more is
    answered 503 and closed. The request log holds at most ``request_log_bytes`` bytes (see
    ``requests``), and records nested more than 256 levels deep are refused, as the SDK
    itself refuses them.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        faults: Faults | None = None,
        async_delay: float = 0.05,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_log_bytes: int = DEFAULT_REQUEST_LOG_BYTES,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if isinstance(async_delay, bool) or not math.isfinite(async_delay) or async_delay < 0:
            raise ValueError("async_delay must be a finite number of seconds >= 0")
        if (
            isinstance(request_log_bytes, bool)
            or not isinstance(request_log_bytes, int)
            or request_log_bytes < 1
        ):
            raise ValueError(
                f"request_log_bytes must be an integer >= 1, got {request_log_bytes!r}"
            )
        self._limits = Limits(
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
        self._host = host
        self._port = port
        self._api_key = api_key
        self._async_delay = float(async_delay)
        self._faults = FaultInjector(faults)
        self._store = RecordStore()
        self._log_lock = threading.Lock()
        self._log = _RequestLog(request_log_bytes)
        self._ops_lock = threading.Lock()
        self._operations: OrderedDict[str, _Operation] = OrderedDict()
        self._generation = 0  # counts resets: a request is applied only in the one it began in
        self._fence = threading.Lock()  # a reset and the applying of a write exclude each other
        self._busy = threading.Condition()
        self._handling = 0  # API requests being handled
        self._lifecycle = threading.Lock()
        self._http: HttpServer | None = None
        self._scheduler: _Scheduler | None = None
        self._stopped = threading.Event()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and start serving in the background; return ``self``. Idempotent."""
        with self._lifecycle:
            if self._http is not None:
                return self
            http = HttpServer(
                self._host, self._port, self._handle, self._protocol_error, self._limits
            )
            self._scheduler = _Scheduler()
            self._http = http
            self._stopped.clear()
            http.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread. Idempotent."""
        with self._lifecycle:
            http, scheduler = self._http, self._scheduler
            self._http = None
            self._scheduler = None
            if http is not None:
                http.stop()
            if scheduler is not None:
                scheduler.stop()
            self._stopped.set()

    def serve_forever(self) -> None:
        """Start if needed and block until ``stop()`` or KeyboardInterrupt (then stop)."""
        self.start()
        try:
            while not self._stopped.wait(0.25):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; only while running."""
        http = self._http
        if http is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return http.address

    @property
    def base_url(self) -> str:
        """The server root, without ``/v1`` (inspection lives under ``/_sandbox/``)."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The API base URL including ``/v1``, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"{self.base_url}/v1"

    @property
    def api_key(self) -> str:
        return self._api_key

    # -- configuration ----------------------------------------------------------------

    def configure_object(
        self,
        object_name: str,
        *,
        required_fields: Iterable[str] = (),
        unique_fields: Iterable[str] = (),
        delete_enabled: bool = True,
    ) -> None:
        """Set the rules the fake provider applies to ``object_name`` (in every project)."""
        if not isinstance(object_name, str) or not object_name:
            raise ValueError("object_name must be a non-empty string")
        rules = ObjectRules(
            required_fields=_field_names(required_fields, "required_fields"),
            unique_fields=_field_names(unique_fields, "unique_fields"),
            delete_enabled=bool(delete_enabled),
        )
        self._store.configure_object(object_name, rules)

    @property
    def faults(self) -> Faults:
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the random fault settings (re-seeds the random source)."""
        self._faults.set_faults(faults)

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` valid writes with ``status`` (problem+json), storing
        nothing. 429 and 503 carry Retry-After (``retry_after`` or ``faults.retry_after``)."""
        self._faults.fail_next(status, count, retry_after)

    def reset_next(self, count: int = 1) -> None:
        """Reset the connection of the next ``count`` valid writes without answering."""
        self._faults.reset_next(count)

    # -- inspection -------------------------------------------------------------------

    def records(
        self,
        *,
        project_id_or_name: str | None = None,
        integration_id: str | None = None,
        object_name: str | None = None,
        group_ref: str | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the stored records (each with its ``id``), optionally filtered."""
        return self._store.records(
            project=project_id_or_name,
            integration=integration_id,
            object_name=object_name,
            group_ref=group_ref,
        )

    def add_record(
        self,
        record: dict[str, Any],
        *,
        project_id_or_name: str,
        integration_id: str,
        object_name: str,
        group_ref: str,
    ) -> dict[str, Any]:
        """Seed a record directly (object rules are not applied); return a copy as stored.

        The record keeps its ``id`` if it has one (which must be a new non-empty string);
        otherwise it gets the next generated ID. A record nested more than 256 levels deep
        (or holding a cycle) is refused with ``ValueError``, as writes refuse it.
        """
        if not isinstance(record, dict):
            raise TypeError("record must be a dict")
        try:
            validate_record(record)
        except RequestInvalid as invalid:
            raise ValueError(str(invalid)) from None
        for what, value in (
            ("project_id_or_name", project_id_or_name),
            ("integration_id", integration_id),
            ("object_name", object_name),
            ("group_ref", group_ref),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{what} must be a non-empty string")
        target = WriteTarget(project_id_or_name, integration_id, object_name, group_ref)
        return self._store.insert(target.key, record)

    @property
    def requests(self) -> list[RequestLogEntry]:
        """The most recent API requests, oldest first: at most 10,000, holding at most
        ``request_log_bytes`` bytes (32 MiB by default) of paths, headers and bodies, each
        body counted at its size as received and at most 64 KiB of it kept (see
        ``RequestLogEntry``). The oldest entries go first; the newest is always kept."""
        with self._log_lock:
            return self._log.entries()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no API request is being handled (received, and not yet answered: one
        waiting out an injected latency, say); False if that took longer than `timeout`
        seconds."""
        with self._busy:
            return self._busy.wait_for(lambda: self._handling == 0, timeout)

    def operation(self, operation_id: str) -> dict[str, Any] | None:
        """The operation as ``GET .../operations/{id}`` would answer it, or ``None``."""
        with self._ops_lock:
            op = self._operations.get(operation_id)
            return json.loads(_dump(op.to_json())) if op is not None else None

    def reset(self) -> None:
        """Clear records, the request log, operations, pending async writes and scripted
        faults; restart ID counters and the fault sequence. Object rules and fault settings
        are kept. Requests being handled are not applied after it: they are answered 503
        with nothing written, and left out of the request log."""
        scheduler = self._scheduler
        with self._fence:
            with self._ops_lock:
                self._generation += 1
                self._operations.clear()
                if scheduler is not None:
                    scheduler.clear()
            self._store.clear()
            with self._log_lock:
                self._log.clear()
            self._faults.reset()

    # -- request handling -------------------------------------------------------------

    def _protocol_error(self, status: int, message: str) -> HttpResponse:
        return _problem(status, message, str(uuid.uuid4()))

    def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/_sandbox" or request.path.startswith("/_sandbox/"):
            return self._admin(request, str(uuid.uuid4()))
        with self._busy:
            self._handling += 1
        try:
            return self._handle_api(request)
        finally:
            with self._busy:
                self._handling -= 1
                if not self._handling:
                    self._busy.notify_all()

    def _handle_api(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        logged_body: list[object] = [None]
        generation = self._generation
        response = self._api(request, request_id, logged_body, generation)
        headers: dict[str, str] = {}
        for name, value in request.header_list:
            if name.lower() in _REDACTED_HEADERS:
                value = "***"
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = logged_body[0]
        truncated = body is not None and len(request.body) > LOG_BODY_PREFIX
        if truncated:  # the parsed body of a large request is not kept, only its start
            body = request.body[:LOG_BODY_PREFIX].decode("utf-8", "ignore")
        elif nests_deeper_than(body, MAX_BODY_DEPTH):
            body = None
        entry = RequestLogEntry(
            method=request.method,
            path=request.path,
            query=request.query,
            status=None if response.reset else response.status,
            body=body,
            headers=headers,
            request_id=request_id,
            time=_rfc3339(_now()),
            body_size=len(request.body),
            body_truncated=truncated,
        )
        with self._log_lock:
            if generation == self._generation:  # else a reset came while it was handled
                self._log.append(entry)
        return response

    def _api(
        self, request: HttpRequest, request_id: str, logged: list[object], generation: int
    ) -> HttpResponse:
        segments = request.path.split("/")
        is_api = len(segments) >= 3 and segments[0] == "" and segments[1] == "v1"
        is_write = (
            is_api
            and len(segments) == 8
            and segments[2] == "projects"
            and segments[4] == "integrations"
            and segments[6] == "objects"
        )
        is_operation = (
            is_api
            and len(segments) == 6
            and segments[2] == "projects"
            and segments[4] == "operations"
        )
        if not (is_write or is_operation):
            detail = f"no such endpoint: {request.method} {request.path}"
            return _problem(404, detail, request_id)
        allowed = "POST" if is_write else "GET"
        if request.method != allowed:
            detail = f"method {request.method} is not allowed here; use {allowed}"
            return _problem(405, detail, request_id, headers=[("Allow", allowed)])
        api_key = request.headers.get("x-api-key")
        if api_key is None:
            return _problem(401, "missing X-Api-Key header", request_id)
        if not hmac.compare_digest(api_key.encode("utf-8"), self._api_key.encode("utf-8")):
            return _problem(401, "invalid API key", request_id)
        try:
            if is_write:
                project = _path_segment(segments[3], "projectIdOrName")
                integration = _path_segment(segments[5], "integrationId")
                object_name = _path_segment(segments[7], "objectName")
                where = (project, integration, object_name)
                return self._write(request, request_id, logged, generation, *where)
            project = _path_segment(segments[3], "projectIdOrName")
            operation_id = _path_segment(segments[5], "operationId")
        except RequestInvalid as invalid:
            return _text(400, str(invalid), request_id)
        return self._get_operation(project, operation_id, request_id)

    def _write(
        self,
        request: HttpRequest,
        request_id: str,
        logged: list[object],
        generation: int,
        project: str,
        integration: str,
        object_name: str,
    ) -> HttpResponse:
        content_type = request.headers.get("content-type")
        if content_type is not None:
            mime = content_type.split(";", 1)[0].strip().lower()
            if mime != _JSON and not mime.endswith("+json"):
                message = f"Content-Type: expected application/json, got {content_type!r}"
                return _text(400, message, request_id)
        body = parse_json_body(request.body)
        logged[0] = body
        write = validate_write_request(body)
        target = WriteTarget(project, integration, object_name, write["groupRef"])
        with self._fence:  # a request from before a reset takes no fault scripted after it
            if generation != self._generation:
                return _reset_meanwhile(request_id)
            latency, decision = self._faults.decide()
        http = self._http
        if latency > 0 and http is not None:
            http.stopping.wait(latency)
        if decision is not None and decision.kind != "commit_then_fail":
            return self._fault_response(decision, request_id)
        operation_id = str(uuid.uuid4())
        with self._fence:
            if generation != self._generation:
                return _reset_meanwhile(request_id)
            if write.get("mode") == "asynchronous":
                answer = self._start_async(target, write, operation_id, request_id)
            else:
                status, result = self._run_write(target, write, operation_id)
                answer = _json(status, result, request_id)
        if decision is not None:
            detail = "injected fault: the write was applied, then the gateway failed"
            return _problem(502, detail, request_id)
        return answer

    def _fault_response(self, decision: FaultDecision, request_id: str) -> HttpResponse:
        if decision.kind == "reset":
            return HttpResponse(0, reset=True)
        detail = f"injected fault: status {decision.status}; nothing was written"
        return _problem(decision.status, detail, request_id, retry_after=decision.retry_after)

    def _run_write(
        self, target: WriteTarget, write: dict[str, Any], operation_id: str
    ) -> tuple[int, dict[str, Any]]:
        status, result = self._store.execute(target, write, operation_id)
        stamp = _rfc3339(_now())
        op = _Operation(
            id=operation_id,
            project=target.project,
            integration=target.integration,
            object_name=target.object_name,
            group_ref=target.group_ref,
            status="success" if status == 200 else "failure",
            result=result,
            create_time=stamp,
            update_time=stamp,
        )
        with self._ops_lock:
            self._remember(op)
        return status, result

    def _remember(self, op: _Operation) -> None:
        self._operations[op.id] = op
        while len(self._operations) > OPERATION_LIMIT:
            self._operations.popitem(last=False)

    def _start_async(
        self, target: WriteTarget, write: dict[str, Any], operation_id: str, request_id: str
    ) -> HttpResponse:
        stamp = _rfc3339(_now())
        op = _Operation(
            id=operation_id,
            project=target.project,
            integration=target.integration,
            object_name=target.object_name,
            group_ref=target.group_ref,
            status="in_progress",
            result=None,
            create_time=stamp,
            update_time=stamp,
        )
        with self._ops_lock:
            self._remember(op)
            generation = self._generation
            scheduler = self._scheduler

        def apply() -> None:
            with self._fence:
                if generation != self._generation:
                    return
                status, result = self._store.execute(target, write, operation_id)
            with self._ops_lock:
                if generation != self._generation:
                    return
                op.status = "success" if status == 200 else "failure"
                op.result = result
                op.update_time = _rfc3339(_now())

        if scheduler is not None:
            scheduler.schedule(self._async_delay, apply)
        return _json(200, {"operationId": operation_id}, request_id)

    def _get_operation(self, project: str, operation_id: str, request_id: str) -> HttpResponse:
        with self._ops_lock:
            op = self._operations.get(operation_id)
            body = op.to_json() if op is not None and op.project == project else None
            encoded = _dump(body) if body is not None else b""
        if body is None:
            detail = f"operation {operation_id} not found in project {project}"
            return _problem(404, detail, request_id)
        return HttpResponse(200, encoded, _JSON, [("X-Request-Id", request_id)])

    # -- /_sandbox/ -------------------------------------------------------------------

    def _admin(self, request: HttpRequest, request_id: str) -> HttpResponse:
        name = request.path[len("/_sandbox/") :] if request.path != "/_sandbox" else ""
        routes: dict[str, dict[str, _AdminHandler]] = {
            "health": {"GET": self._admin_health},
            "records": {"GET": self._admin_records, "POST": self._admin_add_record},
            "requests": {"GET": self._admin_requests},
            "reset": {"POST": self._admin_reset},
            "faults": {"GET": self._admin_get_faults, "PUT": self._admin_put_faults},
            "fail-next": {"POST": self._admin_fail_next},
            "reset-next": {"POST": self._admin_reset_next},
        }
        methods = routes.get(name)
        if name.startswith("objects/") and name.count("/") == 1:
            raw_name = name[len("objects/") :]

            def configure(request: HttpRequest, request_id: str) -> HttpResponse:
                return self._admin_configure(request, request_id, raw_name)

            methods = {"PUT": configure}
        if methods is None:
            return _problem(404, f"no such sandbox endpoint: {request.path}", request_id)
        handler = methods.get(request.method)
        if handler is None:
            return _not_allowed(request.method, ", ".join(methods), request_id)
        try:
            return handler(request, request_id)
        except (RequestInvalid, ValueError, TypeError) as exc:
            return _text(400, str(exc), request_id)

    def _admin_get_faults(self, request: HttpRequest, request_id: str) -> HttpResponse:
        return _json(200, self.faults.to_json(), request_id)

    def _admin_health(self, request: HttpRequest, request_id: str) -> HttpResponse:
        return _json(200, {"status": "ok", "url": self.url}, request_id)

    def _admin_records(self, request: HttpRequest, request_id: str) -> HttpResponse:
        query = parse_qs(request.query, keep_blank_values=True)
        known = {"project", "integration", "object", "groupRef"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ValueError(
                f"unknown query parameter(s) {', '.join(unknown)}; allowed: {sorted(known)}"
            )

        def one(key: str) -> str | None:
            values = query.get(key)
            return values[-1] if values else None

        records = self.records(
            project_id_or_name=one("project"),
            integration_id=one("integration"),
            object_name=one("object"),
            group_ref=one("groupRef"),
        )
        return _json(200, records, request_id)

    def _admin_add_record(self, request: HttpRequest, request_id: str) -> HttpResponse:
        try:
            data = _admin_object(
                request, {"project", "integration", "object", "groupRef", "record"}
            )
            for key in ("project", "integration", "object", "groupRef", "record"):
                if key not in data:
                    raise ValueError(f"{key}: required field is missing")
            if not isinstance(data["record"], dict):
                raise ValueError("record: expected an object")
            stored = self.add_record(
                data["record"],
                project_id_or_name=data["project"],
                integration_id=data["integration"],
                object_name=data["object"],
                group_ref=data["groupRef"],
            )
        except (RequestInvalid, ValueError, TypeError) as exc:
            return _text(400, str(exc), request_id)
        return _json(201, stored, request_id)

    def _admin_requests(self, request: HttpRequest, request_id: str) -> HttpResponse:
        return _json(200, [entry.to_json() for entry in self.requests], request_id)

    def _admin_reset(self, request: HttpRequest, request_id: str) -> HttpResponse:
        self.reset()
        return _json(200, {"reset": True}, request_id)

    def _admin_put_faults(self, request: HttpRequest, request_id: str) -> HttpResponse:
        try:
            faults = faults_from_mapping(parse_json_body(request.body))
        except (RequestInvalid, ValueError) as exc:
            return _text(400, str(exc), request_id)
        self.set_faults(faults)
        return _json(200, faults.to_json(), request_id)

    def _admin_fail_next(self, request: HttpRequest, request_id: str) -> HttpResponse:
        data = _admin_object(request, {"status", "count", "retryAfter"})
        if "status" not in data:
            raise ValueError("status: required field is missing")
        retry_after = data.get("retryAfter")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, (int, float))
        ):
            raise ValueError("retryAfter: expected a number of seconds")
        self.fail_next(data["status"], count=data.get("count", 1), retry_after=retry_after)
        return _json(200, {"scheduled": data.get("count", 1)}, request_id)

    def _admin_reset_next(self, request: HttpRequest, request_id: str) -> HttpResponse:
        data = _admin_object(request, {"count"}) if request.body.strip() else {}
        self.reset_next(data.get("count", 1))
        return _json(200, {"scheduled": data.get("count", 1)}, request_id)

    def _admin_configure(
        self, request: HttpRequest, request_id: str, raw_name: str
    ) -> HttpResponse:
        try:
            object_name = _path_segment(raw_name, "objectName")
            data = _admin_object(request, {"requiredFields", "uniqueFields", "deleteEnabled"})
            delete_enabled = data.get("deleteEnabled", True)
            if not isinstance(delete_enabled, bool):
                raise ValueError("deleteEnabled: expected a boolean")
            self.configure_object(
                object_name,
                required_fields=_string_list(data.get("requiredFields", []), "requiredFields"),
                unique_fields=_string_list(data.get("uniqueFields", []), "uniqueFields"),
                delete_enabled=delete_enabled,
            )
        except (RequestInvalid, ValueError, TypeError) as exc:
            return _text(400, str(exc), request_id)
        rules = self._store.rules_for(object_name)
        body = {
            "objectName": object_name,
            "requiredFields": list(rules.required_fields),
            "uniqueFields": list(rules.unique_fields),
            "deleteEnabled": rules.delete_enabled,
        }
        return _json(200, body, request_id)


# -- helpers ------------------------------------------------------------------------------


def _reset_meanwhile(request_id: str) -> HttpResponse:
    detail = "the sandbox was reset while this request was handled; nothing was written"
    return _problem(503, detail, request_id)


def _field_names(names: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be an iterable of field names, not a single string")
    result = tuple(names)
    for name in result:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must contain non-empty strings, got {name!r}")
    return result


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what}: expected an array of non-empty strings")
    return value


def _admin_object(request: HttpRequest, allowed: set[str]) -> dict[str, Any]:
    data = parse_json_body(request.body)
    if not isinstance(data, dict):
        raise ValueError("request body: expected a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; allowed: {sorted(allowed)}")
    return data


def _path_segment(raw: str, name: str) -> str:
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise RequestInvalid(f"{name}: path segment is not valid percent-encoded UTF-8") from None
    if not value:
        raise RequestInvalid(f"{name}: path segment must not be empty")
    return value


def _json(status: int, body: object, request_id: str) -> HttpResponse:
    return HttpResponse(status, _dump(body), _JSON, [("X-Request-Id", request_id)])


def _text(status: int, message: str, request_id: str) -> HttpResponse:
    return HttpResponse(status, message.encode("utf-8"), _TEXT, [("X-Request-Id", request_id)])


def _problem(
    status: int,
    detail: str,
    request_id: str,
    *,
    retry_after: float | None = None,
    allow: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> HttpResponse:
    now = _now()
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "requestId": request_id,
        "retryable": status in _RETRYABLE,
        "subsystem": "sandbox",
        "time": _rfc3339(now),
    }
    extra = [("X-Request-Id", request_id), *headers]
    if allow is not None:
        extra.append(("Allow", allow))
    if retry_after is not None:
        body["retryAfter"] = _rfc3339(now + timedelta(seconds=retry_after))
        extra.append(("Retry-After", str(max(0, math.ceil(retry_after)))))
    return HttpResponse(status, _dump(body), _PROBLEM, extra)


def _not_allowed(method: str, allowed: str, request_id: str) -> HttpResponse:
    return _problem(405, f"method {method} is not allowed here", request_id, allow=allowed)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
