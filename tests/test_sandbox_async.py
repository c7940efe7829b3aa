"""Sandbox asynchronous writes and the operation endpoint, over real HTTP (the contract's
checks of every operation endpoint are in test_sandbox_operations.py)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ampwrite.sandbox import Sandbox

WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"
DELAY = 0.3


def call(
    sb: Sandbox, method: str, path: str, body: object = None, *, api_key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"X-Api-Key": sb.api_key if api_key is None else api_key}
    data = None if body is None else json.dumps(body)
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        is_json = "json" in response.getheader("Content-Type", "")
        parsed = json.loads(raw) if raw and is_json else raw
        return response.status, dict(response.getheaders()), parsed
    finally:
        conn.close()


def operation(sb: Sandbox, operation_id: str, project: str = "proj-1") -> tuple[int, Any]:
    status, _, body = call(sb, "GET", f"/v1/projects/{project}/operations/{operation_id}")
    return status, body


def wait_until_done(sb: Sandbox, operation_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = operation(sb, operation_id)
        assert status == 200
        if body["status"] != "in_progress" or time.monotonic() > deadline:
            assert isinstance(body, dict)
            return body
        time.sleep(0.02)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(async_delay=DELAY) as sandbox:
        yield sandbox


def test_async_create_goes_from_in_progress_to_success(sb: Sandbox) -> None:
    body = {"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {"email": "a@x"}}
    status, _, answer = call(sb, "POST", WRITE_PATH, body)
    assert status == 200
    assert set(answer) == {"operationId"}
    operation_id = answer["operationId"]
    assert sb.records() == []

    status, pending = operation(sb, operation_id)
    assert status == 200
    assert pending["status"] == "in_progress"
    assert "result" not in pending
    assert pending["id"] == operation_id
    assert pending["projectId"] == "proj-1"
    assert pending["integrationId"] == "int-1"
    assert pending["actionType"] == "write"
    installation = sb.installation_id(
        project_id_or_name="proj-1", integration_id="int-1", group_ref="g"
    )
    assert pending["installationId"] == installation
    assert pending["metadata"] == {"objects": ["contacts"], "successfulRecordIds": []}
    assert pending["createTime"].endswith("Z")

    done = wait_until_done(sb, operation_id)
    assert done["status"] == "success"
    assert done["result"] == "Write completed (1 succeeded, 0 failed)"
    assert done["metadata"]["successfulRecordIds"] == ["003000000000001"]
    assert done["updateTime"] >= done["createTime"]
    assert sb.records() == [{"email": "a@x", "id": "003000000000001"}]
    assert sb.operation(operation_id) == done


def test_async_failure_is_reported_on_the_operation(sb: Sandbox) -> None:
    body = {"groupRef": "g", "type": "update", "mode": "asynchronous", "record": {"id": "nope"}}
    _, _, answer = call(sb, "POST", WRITE_PATH, body)
    done = wait_until_done(sb, answer["operationId"])
    assert done["status"] == "failure"
    assert done["result"] == (
        "Write failed (0 succeeded, 1 failed): The record with ID nope was not found"
    )
    assert done["metadata"]["successfulRecordIds"] == []


def test_async_batch(sb: Sandbox) -> None:
    items = [{"record": {"n": i}} for i in range(3)]
    body = {"groupRef": "g", "type": "create", "mode": "asynchronous", "batch": items}
    _, _, answer = call(sb, "POST", WRITE_PATH, body)
    done = wait_until_done(sb, answer["operationId"])
    assert done["status"] == "success"
    assert done["result"] == "Batch write completed (3 succeeded, 0 failed)"
    assert done["metadata"]["successfulRecordIds"] == [r["id"] for r in sb.records()]
    assert len(sb.records()) == 3


def test_synchronous_writes_are_operations_too(sb: Sandbox) -> None:
    body = {"groupRef": "g", "type": "create", "record": {}}
    _, _, answer = call(sb, "POST", WRITE_PATH, body)
    status, op = operation(sb, answer["operationId"])
    assert status == 200
    assert op["status"] == "success"
    assert op["result"] == "Write completed (1 succeeded, 0 failed)"
    assert op["metadata"]["successfulRecordIds"] == [answer["result"]["recordId"]]


def test_unknown_operation_is_404_problem(sb: Sandbox) -> None:
    status, headers, body = call(sb, "GET", "/v1/projects/proj-1/operations/does-not-exist")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert body["status"] == 404
    assert body["requestId"] == headers["X-Request-Id"]


def test_operation_of_another_project_is_404(sb: Sandbox) -> None:
    _, _, answer = call(sb, "POST", WRITE_PATH, {"groupRef": "g", "type": "create", "record": {}})
    status, _ = operation(sb, answer["operationId"], project="proj-2")
    assert status == 404


def test_operations_need_the_api_key(sb: Sandbox) -> None:
    _, _, answer = call(sb, "POST", WRITE_PATH, {"groupRef": "g", "type": "create", "record": {}})
    path = f"/v1/projects/proj-1/operations/{answer['operationId']}"
    status, headers, _ = call(sb, "GET", path, api_key="wrong")
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert call(sb, "POST", path)[0] == 405


def test_reset_cancels_pending_async_writes(sb: Sandbox) -> None:
    body = {"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {}}
    _, _, answer = call(sb, "POST", WRITE_PATH, body)
    sb.reset()
    time.sleep(DELAY + 0.2)
    assert sb.records() == []
    assert operation(sb, answer["operationId"])[0] == 404


def test_async_writes_apply_in_order(sb: Sandbox) -> None:
    create = {"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {"v": 1}}
    _, _, first = call(sb, "POST", WRITE_PATH, create)
    done = wait_until_done(sb, first["operationId"])
    record_id = done["metadata"]["successfulRecordIds"][0]
    ids: list[str] = []
    for value in range(2, 6):
        record = {"id": record_id, "v": value}
        body = {"groupRef": "g", "type": "update", "mode": "asynchronous", "record": record}
        ids.append(call(sb, "POST", WRITE_PATH, body)[2]["operationId"])
    for operation_id in ids:
        assert wait_until_done(sb, operation_id)["status"] == "success"
    assert sb.records() == [{"v": 5, "id": record_id}]


def test_stop_drops_pending_async_writes_without_hanging() -> None:
    sandbox = Sandbox(async_delay=30)
    sandbox.start()
    body = {"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {}}
    assert call(sandbox, "POST", WRITE_PATH, body)[0] == 200
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 2
    assert sandbox.records() == []
