"""The paths of the endpoints ampwrite calls, below a server URL, in one place.

Every parameter fills exactly one path segment: all but RFC 3986's unreserved characters are
percent-encoded (`/` included), and a value that is `.` or `..` as a whole is encoded too, so
no value can climb out of its place in the path. Query strings are encoded the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import quote

__all__ = [
    "operation_logs_path",
    "operation_path",
    "operations_path",
    "query",
    "segment",
    "write_path",
]


@functools.lru_cache(maxsize=1024)
def segment(value: str) -> str:
    """One path segment: everything but unreserved characters encoded, `.` and `..` too.
    (Remembered: a program writes to the same few projects, integrations and objects.)"""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def query(parameters: Mapping[str, str | int | None]) -> str:
    """`?name=value&...` for the parameters that are not None ("" when none is), each name and
    value percent-encoded whole (`+`, `=` and `/` of a page token included)."""
    pairs = [
        f"{quote(name, safe='')}={quote(str(value), safe='')}"
        for name, value in parameters.items()
        if value is not None
    ]
    return "?" + "&".join(pairs) if pairs else ""


# -- the Write API ------------------------------------------------------------------------------


def write_path(project_id_or_name: str, integration_id: str, object_name: str) -> str:
    """`POST`: write records."""
    return (
        f"/projects/{segment(project_id_or_name)}"
        f"/integrations/{segment(integration_id)}"
        f"/objects/{segment(object_name)}"
    )


# -- the Platform API's operations --------------------------------------------------------------


def operation_path(project_id_or_name: str, operation_id: str) -> str:
    """`GET`: one operation."""
    return f"/projects/{segment(project_id_or_name)}/operations/{segment(operation_id)}"


def operation_logs_path(project_id_or_name: str, operation_id: str) -> str:
    """`GET`: the logs of one operation."""
    return operation_path(project_id_or_name, operation_id) + "/logs"


def operations_path(project_id_or_name: str, integration_id: str, installation_id: str) -> str:
    """`GET`: the operations of one installation, a page at a time."""
    return (
        f"/projects/{segment(project_id_or_name)}"
        f"/integrations/{segment(integration_id)}"
        f"/installations/{segment(installation_id)}/operations"
    )
