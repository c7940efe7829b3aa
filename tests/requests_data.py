"""Requests used across the tests, in the API's JSON shape."""

from __future__ import annotations

import copy
from typing import Any


def single(**body: Any) -> dict[str, Any]:
    """A valid single-record create; keyword arguments replace body fields."""
    request_body: dict[str, Any] = {
        "groupRef": "group-1",
        "type": "create",
        "mode": "synchronous",
        "record": {"email": "ada@example.com", "score": 3},
    }
    request_body.update(body)
    return {
        "projectIdOrName": "proj",
        "integrationId": "int-1",
        "objectName": "contacts",
        "requestBody": request_body,
    }


def batch(count: int = 2, **body: Any) -> dict[str, Any]:
    items = [{"record": {"email": f"user{i}@example.com"}} for i in range(count)]
    body.setdefault("batch", items)
    request = single(**body)
    del request["requestBody"]["record"]
    return request


def with_changes(request: dict[str, Any], **top: Any) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed.update(top)
    return changed


def write_argv(server_url: str, api_key: str, *extra: str) -> list[str]:
    """`ampwrite write` arguments for a contact in project p, integration i, group g."""
    return [
        "write", "contacts", "--project", "p", "--integration", "i", "--group-ref", "g",
        "--api-key", api_key, "--server-url", server_url, *extra,
    ]  # fmt: skip
