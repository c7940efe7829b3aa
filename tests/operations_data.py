"""Operation answers used across the tests, in the Platform API's JSON shape, and the Core
that reads them from a scripted server."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ampwrite import Core, RetryConfig
from tests.conftest import API_KEY
from tests.scripted_server import Reply, ScriptedServer, json_reply

OPERATION_ID = "7a8b9c0d-1e2f-4a5b-8c9d-0e1f2a3b4c5d"
OPERATION: dict[str, Any] = {
    "projectId": "123e4567-e89b-12d3-a456-426614174000",
    "integrationId": "113e9685-9a51-42cc-8662-9d9725b17f14",
    "installationId": "66438162-5299-4669-a41d-85c5a3b1a83e",
    "configId": "a1b2c3d4-e5f6-4789-a012-3456789abcde",
    "actionType": "write",
    "status": "success",
    "id": OPERATION_ID,
    "result": "Batch write completed (2 succeeded, 0 failed)",
    "metadata": {
        "objects": ["contact"],
        "successfulRecordIds": ["001xx000003DGbYAAW", "001xx000003DGbZAAW"],
    },
    "createTime": "2023-07-13T22:10:00.000000Z",
}


def operation(status: str = "success", **changes: Any) -> dict[str, Any]:
    """An operation body with `status`; keyword arguments replace (or add) top-level fields,
    and a value of None removes the field."""
    body = copy.deepcopy(OPERATION)
    body["status"] = status
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    if status == "in_progress":
        body.pop("result", None)
    return body


def operation_reply(status: str = "success", **changes: Any) -> Reply:
    return json_reply(200, operation(status, **changes))


def problem_reply(
    status: int, detail: str, *, headers: tuple[tuple[str, str], ...] = (), **fields: Any
) -> Reply:
    body = {"type": f"https://httpstatuses.com/{status}", "status": status, "detail": detail}
    body.update(fields)
    return json_reply(status, body, content_type="application/problem+json", headers=headers)


def platform_core(server: ScriptedServer, sleep: Callable[[float], None], **options: Any) -> Core:
    """A Core whose Write API and Platform API are both `server`, waiting with `sleep` (the
    `sleeps` fixture records waits instead of sleeping), retrying without jitter."""
    settings: dict[str, Any] = {
        "server_url": server.url,
        "platform_url": server.url,
        "timeout": (2.0, 2.0),
        "retries": RetryConfig(jitter=0.0),
        "sleep": sleep,
    }
    settings.update(options)
    return Core(API_KEY, **settings)
