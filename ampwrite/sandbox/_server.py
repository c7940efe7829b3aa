"""The ``Sandbox``: its lifecycle, its Python API, and the dispatcher that serves the route
table (``_routes``) over the HTTP server in ``_http``, on the state of ``_state``.

Order of checks for a request: route (404/405), API key (401), path parameters and body
(400), then fault injection, then the write itself. So an invalid request can never be
answered 2xx or 5xx, and faults only ever hit valid, authenticated writes.
"""

from __future__ import annotations

import hmac
import math
import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Final

from .._limits import MIN_API_KEY_LENGTH
from ._faults import Faults
from ._handlers import Call
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
from ._operations import OPERATION_LIMIT, Scheduler
from ._responses import problem_response, text_response
from ._routes import Route, Router
from ._state import (
    DEFAULT_REQUEST_LOG_BYTES,
    LOG_BODY_PREFIX,
    LOG_LIMIT,
    RequestLog,
    RequestLogEntry,
    SandboxState,
    log_entry,
)
from ._validation import ParameterInvalid, RequestInvalid, path_segment

__all__ = [
    "DEFAULT_API_KEY",
    "LOG_BODY_PREFIX",
    "LOG_LIMIT",
    "OPERATION_LIMIT",
    "RequestLogEntry",
    "Sandbox",
]

DEFAULT_API_KEY: Final = "sandbox-api-key"
_ROUTER: Final = Router()


class Sandbox:
    """A local, in-process emulator of Ampersand's Write API, and of the Platform API's
    operation endpoints.

    Use it as a context manager (or call ``start()`` / ``stop()``)::

        with Sandbox() as sb:
            # point a client at sb.url with the header X-Api-Key: sb.api_key
            ...

    It listens on ``host`` (loopback by default) at ``port`` (0, the default: any free
    port), and answers 401 to a request without ``api_key`` in ``X-Api-Key`` (a key of at
    least 8 characters, ``MIN_API_KEY_LENGTH``: the SDK sends no shorter one). ``faults``
    (a ``Faults``) sets the fault injection from the start; see also ``set_faults``,
    ``fail_next`` and ``reset_next``. Object rules: ``configure_object``. Every option is
    described in docs/sandbox.md.

    ``url`` includes ``/v1`` and serves both APIs at their real paths: it is the SDK's
    ``server_url`` and ``platform_url`` alike. The server runs in background daemon
    threads. Every write is an operation (``GET {url}/projects/{p}/operations/{id}``,
    its logs, and the list of its installation's operations): an asynchronous write is
    ``in_progress`` for ``async_delay`` seconds, then applied and ``success`` or
    ``failure``; a write an injected fault refuses failed at once, with nothing written.

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
        """A sandbox, not yet serving: see the class docstring for the options."""
        if not isinstance(api_key, str):
            raise ValueError(f"api_key must be a string, got {type(api_key).__name__}")
        if len(api_key) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"api_key must be at least {MIN_API_KEY_LENGTH} characters long, got "
                f"{len(api_key)}: the SDK refuses to send a shorter key"
            )
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
        self._key_bytes = api_key.encode("utf-8")
        self._log = RequestLog(request_log_bytes)
        self._state = SandboxState(
            faults=faults, request_log=self._log, async_delay=float(async_delay)
        )
        self._busy = threading.Condition()
        self._handling = 0  # API requests being handled
        self._lifecycle = threading.Lock()
        self._http: HttpServer | None = None
        self._url = ""  # while running
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
            self._state.scheduler = Scheduler()
            self._http = http
            self._url = self.url
            self._stopped.clear()
            http.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread. Idempotent."""
        with self._lifecycle:
            http, scheduler = self._http, self._state.scheduler
            self._http = None
            self._state.scheduler = None
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
        """Whether it is serving (between ``start()`` and ``stop()``)."""
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
        """The API base URL including ``/v1``, e.g. ``http://127.0.0.1:54321/v1``: the Write
        API and the Platform API's operations both live below it."""
        return f"{self.base_url}/v1"

    @property
    def api_key(self) -> str:
        """The key clients must send as ``X-Api-Key``."""
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
        """Set the rules the fake provider applies to ``object_name`` (in every project).

        A created record must have each of ``required_fields``, not ``None`` or ``""`` (an
        update may leave them out, not blank them); no two records of one installation may
        share a value of one of ``unique_fields``; ``delete_enabled=False`` refuses deletes.
        A refused record is answered as a provider's refusal (a 422, or ``success: false``
        in a batch). Rules replace the object's earlier ones and outlive ``reset()``.
        ``ampwrite sandbox --require/--unique/--rules`` and ``PUT
        /_sandbox/objects/{objectName}`` set the same."""
        self._state.configure_object(
            object_name,
            required_fields=required_fields,
            unique_fields=unique_fields,
            delete_enabled=delete_enabled,
        )

    @property
    def faults(self) -> Faults:
        """The current random fault settings."""
        return self._state.faults.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the random fault settings (re-seeds the random source)."""
        self._state.faults.set_faults(faults)

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` valid writes with ``status`` (problem+json), storing
        nothing. 429 and 503 carry Retry-After (``retry_after`` or ``faults.retry_after``)."""
        self._state.faults.fail_next(status, count, retry_after)

    def reset_next(self, count: int = 1) -> None:
        """Reset the connection of the next ``count`` valid writes without answering."""
        self._state.faults.reset_next(count)

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
        return self._state.store.records(
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
        return self._state.add_record(
            record,
            project=project_id_or_name,
            integration=integration_id,
            object_name=object_name,
            group_ref=group_ref,
        )

    @property
    def requests(self) -> list[RequestLogEntry]:
        """The most recent API requests, oldest first: at most 10,000, holding at most
        ``request_log_bytes`` bytes (32 MiB by default) of paths, headers and bodies, each
        body counted at its size as received and at most 64 KiB of it kept (see
        ``RequestLogEntry``). The oldest entries go first; the newest is always kept."""
        return self._state.requests()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no API request is being handled (received, and not yet answered: one
        waiting out an injected latency, say); False if that took longer than `timeout`
        seconds."""
        with self._busy:
            return self._busy.wait_for(lambda: self._handling == 0, timeout)

    def operation(self, operation_id: str) -> dict[str, Any] | None:
        """The operation as ``GET {url}/projects/{p}/operations/{id}`` answers it (the
        contract's ``Operation``, in any project), or ``None``. The newest 10,000
        (``OPERATION_LIMIT``) operations are kept."""
        return self._state.operations.get(operation_id)

    def installation_id(
        self, *, project_id_or_name: str, integration_id: str, group_ref: str
    ) -> str:
        """The ID of the installation that the writes of ``group_ref`` to that project's
        integration run for (their operations' ``installationId``), as listed by ``GET
        {url}/projects/{p}/integrations/{i}/installations/{id}/operations``. Derived from the
        three, it is the same before the first write, after a reset and in every run."""
        return self._state.installation_id(
            project=project_id_or_name, integration=integration_id, group_ref=group_ref
        )

    def reset(self) -> None:
        """Clear records, the request log, operations, pending async writes and scripted
        faults; restart ID counters and the fault sequence. Object rules, fault settings and
        installation IDs are kept. Requests being handled are not applied after it: they are
        answered 503 with nothing written, and left out of the request log."""
        self._state.reset()

    # -- request handling -------------------------------------------------------------

    def _protocol_error(self, status: int, message: str) -> HttpResponse:
        return problem_response(status, message, str(uuid.uuid4()))

    def _handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path == "/_sandbox" or path.startswith("/_sandbox/"):  # neither logged nor counted
            return self._dispatch(request, str(uuid.uuid4()), self._state.generation)[0]
        with self._busy:
            self._handling += 1
        try:
            request_id = str(uuid.uuid4())
            generation = self._state.generation
            response, body = self._dispatch(request, request_id, generation)
            status = None if response.reset else response.status
            self._state.log_request(log_entry(request, status, body, request_id), generation)
            return response
        finally:
            with self._busy:
                self._handling -= 1
                if not self._handling:
                    self._busy.notify_all()

    def _dispatch(
        self, request: HttpRequest, request_id: str, generation: int
    ) -> tuple[HttpResponse, object]:
        """The answer to a request, and what the request log keeps of its body."""
        route, values, allow = _ROUTER.match(request.method, request.path)
        if route is None:
            if allow:
                detail = f"method {request.method} is not allowed here; use {allow}"
                return problem_response(405, detail, request_id, allow=allow), None
            detail = f"no such endpoint: {request.method} {request.path}"
            return problem_response(404, detail, request_id), None
        if route.auth:
            refusal = self._check_key(request, request_id)
            if refusal is not None:
                return refusal, None
        http = self._http
        stopping = http.stopping if http is not None else threading.Event()
        call = Call(request, {}, request_id, generation, self._state, self._url, stopping)
        try:
            call.params = {
                name: path_segment(raw, name)
                for name, raw in zip(route.params, values, strict=True)
            }
            return route.handler(call), call.logged_body
        except RequestInvalid as invalid:
            return _bad_request(route, invalid, request_id), call.logged_body

    def _check_key(self, request: HttpRequest, request_id: str) -> HttpResponse | None:
        api_key = request.headers.get("x-api-key")
        if api_key is None:
            return problem_response(401, "missing X-Api-Key header", request_id)
        if not hmac.compare_digest(api_key.encode("utf-8"), self._key_bytes):
            return problem_response(401, "invalid API key", request_id)
        return None


def _bad_request(route: Route, invalid: RequestInvalid, request_id: str) -> HttpResponse:
    """400: text/plain naming the field, or for the Platform API an input validation
    problem listing the parameter."""
    if not route.problems:
        return text_response(400, str(invalid), request_id)
    issues = []
    if isinstance(invalid, ParameterInvalid):
        issues.append(
            {
                "in": invalid.location,
                "name": invalid.name,
                "value": invalid.value,
                "detail": str(invalid),
            }
        )
    return problem_response(400, str(invalid), request_id, issues=issues)
