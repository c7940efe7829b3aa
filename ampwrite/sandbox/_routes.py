"""Every endpoint the sandbox serves, in one table, and the router that matches a request
against it.

A route is a method, a path template whose ``{name}`` parts each match one path segment
(passed to the handler percent-decoded, under that name), the handler, whether the API key
is required, and whether the endpoint answers invalid input as problem+json (the Platform
API's style) rather than text/plain (the Write API's). Adding an endpoint is one line here
plus its handler in ``_handlers``. A path no template matches is answered 404; a path some
template matches, with another method, 405 with ``Allow`` listing the methods in table order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from . import _handlers as handlers
from ._handlers import Handler

__all__ = ["ROUTES", "Match", "Route", "Router"]


@dataclass(frozen=True)
class Route:
    """One endpoint: ``method``, ``template``, ``handler``; ``auth``: the API key is required
    (401 otherwise, before anything else is looked at); ``problems``: invalid input is
    answered 400 problem+json listing the parameter, not text/plain."""

    method: str
    template: str
    handler: Handler
    auth: bool = True
    problems: bool = False
    params: tuple[str, ...] = field(init=False, repr=False, compare=False)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.template)  # literal, name, literal, ...
        regex = "".join(
            "([^/]*)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
        )
        object.__setattr__(self, "params", tuple(parts[1::2]))
        object.__setattr__(self, "pattern", re.compile(regex))


_WRITE: Final = "/v1/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"
_OPERATION: Final = "/v1/projects/{projectIdOrName}/operations/{operationId}"
_INSTALLATION_OPERATIONS: Final = (
    "/v1/projects/{projectIdOrName}/integrations/{integrationId}"
    "/installations/{installationId}/operations"
)

ROUTES: Final = (
    # the Write API
    Route("POST", _WRITE, handlers.write_records),
    # the Platform API's operations, at the same paths below /v1 as the real one
    Route("GET", _OPERATION, handlers.get_operation, problems=True),
    Route("GET", f"{_OPERATION}/logs", handlers.list_operation_logs, problems=True),
    Route("GET", _INSTALLATION_OPERATIONS, handlers.list_operations, problems=True),
    # inspection and control, without an API key
    Route("GET", "/_sandbox/health", handlers.health, auth=False),
    Route("GET", "/_sandbox/records", handlers.get_records, auth=False),
    Route("POST", "/_sandbox/records", handlers.add_record, auth=False),
    Route("GET", "/_sandbox/requests", handlers.get_requests, auth=False),
    Route("POST", "/_sandbox/reset", handlers.reset, auth=False),
    Route("GET", "/_sandbox/faults", handlers.get_faults, auth=False),
    Route("PUT", "/_sandbox/faults", handlers.put_faults, auth=False),
    Route("POST", "/_sandbox/fail-next", handlers.fail_next, auth=False),
    Route("POST", "/_sandbox/reset-next", handlers.reset_next, auth=False),
    Route("PUT", "/_sandbox/objects/{objectName}", handlers.configure_object, auth=False),
    Route("GET", "/_sandbox/installations", handlers.get_installations, auth=False),
)


class Match(NamedTuple):
    """The route for a request with its raw (still encoded) path parameters, in the order of
    ``route.params``; or, without a route, ``allow``: the methods the path does take ("" when
    no template fits it)."""

    route: Route | None
    values: tuple[str, ...] = ()
    allow: str = ""


class Router:
    """Matches requests against routes, trying only templates with as many segments."""

    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        self._by_depth: dict[int, list[Route]] = {}
        for route in routes:
            self._by_depth.setdefault(route.template.count("/"), []).append(route)

    def match(self, method: str, path: str) -> Match:
        allowed: list[str] = []
        for route in self._by_depth.get(path.count("/"), ()):
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return Match(route, found.groups())
            if route.method not in allowed:
                allowed.append(route.method)
        return Match(None, allow=", ".join(allowed))
