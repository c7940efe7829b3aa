"""The sandbox's Platform API operation endpoints, over raw HTTP, against the contract.

Every answer of ``GET .../operations/{id}``, ``GET .../operations/{id}/logs`` and
``GET .../installations/{id}/operations`` is validated with ``jsonschema`` against the
repository's copies of the contract (tests/contract/: the operations extract and the
problem types it refers to as ``ampersand-problem.yaml``, both as JSON). Besides the shapes:
the life of an operation (``in_progress``, then ``success`` or ``failure``), its summary,
record IDs and logs matching what the store holds, installations, paging, errors, and reset.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ampwrite.sandbox import Faults, Sandbox
from tests.sandbox_client import WRITE_PATH, Client, Reply

CONTRACT = Path(__file__).resolve().parent / "contract"
SPEC: dict[str, Any] = json.loads(
    (CONTRACT / "ampersand-operations-openapi.json").read_text(encoding="utf-8")
)
PROBLEM_TYPES: dict[str, Any] = json.loads(
    (CONTRACT / "ampersand-problem.json").read_text(encoding="utf-8")
)
# The extract refers to the problem types as "ampersand-problem.yaml#/components/...".
REGISTRY: Registry[Any] = Registry().with_resource(
    "ampersand-problem.yaml", Resource.from_contents(PROBLEM_TYPES, default_specification=DRAFT4)
)
ENDPOINTS = {
    "operation": SPEC["paths"]["/projects/{projectIdOrName}/operations/{operationId}"]["get"],
    "logs": SPEC["paths"]["/projects/{projectIdOrName}/operations/{operationId}/logs"]["get"],
    "list": SPEC["paths"][
        "/projects/{projectIdOrName}/integrations/{integrationId}"
        "/installations/{installationId}/operations"
    ]["get"],
}
STATUSES = {"in_progress", "success", "failure"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
PROJECT, INTEGRATION, GROUP = "proj-1", "int-1", "g"


def validator(schema: dict[str, Any]) -> Draft4Validator:
    # Draft 4: OpenAPI 3.0's exclusiveMaximum is a boolean, as in draft 4.
    return Draft4Validator({**schema, "components": SPEC["components"]}, registry=REGISTRY)


def check(reply: Reply, endpoint: str) -> Any:
    """Validate an answer against the contract's response for its status; return its body."""
    responses = ENDPOINTS[endpoint]["responses"]
    declared = responses.get(str(reply.status), responses["default"])
    media = "application/json" if reply.status == 200 else "application/problem+json"
    assert reply.content_type == media, (reply.status, reply.content_type, reply.text)
    body = reply.json()
    validator(declared["content"][media]["schema"]).validate(body)
    if reply.status == 200 and endpoint == "operation":
        check_operation(body)
    elif reply.status == 200 and endpoint == "logs":
        for entry in body:
            assert TIMESTAMP.match(entry["timestamp"])
    elif reply.status == 200:
        for operation in body["results"]:
            check_operation(operation)
        pagination = body["pagination"]
        assert ("nextPageToken" in pagination) is not pagination["done"]
    else:
        assert body["status"] == reply.status
        assert body["requestId"] == reply.headers["X-Request-Id"]
    return body


def check_operation(body: dict[str, Any]) -> None:
    """What the contract's prose and examples add to the schema for a write operation."""
    assert body["actionType"] == "write"
    assert body["status"] in STATUSES
    assert ("result" in body) is (body["status"] != "in_progress")
    assert TIMESTAMP.match(body["createTime"]) and TIMESTAMP.match(body["updateTime"])
    assert body["updateTime"] >= body["createTime"]
    assert len(body["metadata"]["objects"]) == 1


def operation_path(operation_id: str, project: str = PROJECT) -> str:
    return f"/v1/projects/{project}/operations/{operation_id}"


def list_path(
    installation_id: str, *, project: str = PROJECT, integration: str = INTEGRATION, query: str = ""
) -> str:
    path = f"/v1/projects/{project}/integrations/{integration}/installations/{installation_id}"
    return f"{path}/operations{query}"


def get_operation(client: Client, operation_id: str) -> dict[str, Any]:
    reply = client.send("GET", operation_path(operation_id))
    assert reply.status == 200, reply.text
    body: dict[str, Any] = check(reply, "operation")
    return body


def get_logs(client: Client, operation_id: str) -> list[dict[str, Any]]:
    reply = client.send("GET", operation_path(operation_id) + "/logs")
    assert reply.status == 200, reply.text
    logs: list[dict[str, Any]] = check(reply, "logs")
    assert all(entry["message"]["operation_id"] == operation_id for entry in logs)
    assert [e["timestamp"] for e in logs] == sorted(e["timestamp"] for e in logs)
    return logs


def write(client: Client, body: dict[str, Any], path: str = WRITE_PATH) -> str:
    reply = client.write({"groupRef": GROUP, **body}, path=path)
    assert reply.status in (200, 422), reply.text
    operation_id: str = reply.json()["operationId"]
    return operation_id


def wait_done(client: Client, operation_id: str, seen: list[str] | None = None) -> dict[str, Any]:
    """Poll until the operation leaves in_progress (bounded); `seen` gets every status."""
    deadline = time.monotonic() + 10
    while True:
        body = get_operation(client, operation_id)
        if seen is not None:
            seen.append(body["status"])
        if body["status"] != "in_progress":
            return body
        assert time.monotonic() < deadline, "the operation stayed in progress"
        time.sleep(0.01)


def walk(client: Client, installation_id: str, size: int) -> list[str]:
    """The ids of every page of an installation's operations, following the tokens."""
    ids: list[str] = []
    token: str | None = None
    for _ in range(10_000):
        query = f"?pageSize={size}" + ("" if token is None else f"&pageToken={quote(token)}")
        reply = client.send("GET", list_path(installation_id, query=query))
        assert reply.status == 200, reply.text
        page = check(reply, "list")
        assert len(page["results"]) <= size
        ids += [operation["id"] for operation in page["results"]]
        if page["pagination"]["done"]:
            return ids
        token = page["pagination"]["nextPageToken"]
    raise AssertionError("the walk did not end")


def installation_of(sb: Sandbox, group: str = GROUP, integration: str = INTEGRATION) -> str:
    return sb.installation_id(
        project_id_or_name=PROJECT, integration_id=integration, group_ref=group
    )


@pytest.fixture
def quick() -> Iterator[Sandbox]:
    """Asynchronous writes are applied almost at once."""
    with Sandbox(async_delay=0.02) as sandbox:
        yield sandbox


@pytest.fixture
def quick_client(quick: Sandbox) -> Iterator[Client]:
    connection = Client(quick)
    yield connection
    connection.close()


@pytest.fixture
def held() -> Iterator[Sandbox]:
    """Asynchronous writes stay in progress for the whole test (stop() drops them)."""
    with Sandbox(async_delay=600) as sandbox:
        yield sandbox


@pytest.fixture
def held_client(held: Sandbox) -> Iterator[Client]:
    connection = Client(held)
    yield connection
    connection.close()


ASYNC_CREATE = {"type": "create", "mode": "asynchronous", "record": {"email": "a@x"}}


# -- the life of an operation ---------------------------------------------------------------


def test_an_accepted_asynchronous_write_is_in_progress(held: Sandbox, held_client: Client) -> None:
    operation_id = write(held_client, ASYNC_CREATE)
    pending = get_operation(held_client, operation_id)
    assert pending["status"] == "in_progress"
    assert "result" not in pending
    assert pending["id"] == operation_id
    assert (pending["projectId"], pending["integrationId"]) == (PROJECT, INTEGRATION)
    assert pending["installationId"] == installation_of(held)
    assert pending["metadata"] == {"objects": ["contacts"], "successfulRecordIds": []}
    assert held.operation(operation_id) == pending
    assert held.records() == []
    logs = get_logs(held_client, operation_id)
    assert [entry["message"]["msg"] for entry in logs] == [
        "Write accepted: create 1 record of contacts (asynchronous)"
    ]
    assert logs[0]["severity"] == "INFO"
    assert logs[0]["message"]["details"]["mode"] == "asynchronous"


def test_an_asynchronous_create_goes_on_to_success(quick: Sandbox, quick_client: Client) -> None:
    operation_id = write(quick_client, ASYNC_CREATE)
    seen: list[str] = []
    done = wait_done(quick_client, operation_id, seen)
    assert re.fullmatch(r"(in_progress,)*success", ",".join(seen)), seen
    [stored] = quick.records()
    assert done["result"] == "Write completed (1 succeeded, 0 failed)"
    assert done["metadata"]["successfulRecordIds"] == [stored["id"]]
    assert quick.operation(operation_id) == done
    logs = get_logs(quick_client, operation_id)
    assert [(e["severity"], e["message"]["msg"]) for e in logs] == [
        ("INFO", "Write accepted: create 1 record of contacts (asynchronous)"),
        ("INFO", "Write started"),
        ("INFO", "Write completed (1 succeeded, 0 failed)"),
    ]


def test_an_asynchronous_write_the_provider_refuses_ends_in_failure(
    quick: Sandbox, quick_client: Client
) -> None:
    quick.configure_object("contacts", required_fields=["email"])
    operation_id = write(quick_client, {**ASYNC_CREATE, "record": {"name": "no email"}})
    seen: list[str] = []
    done = wait_done(quick_client, operation_id, seen)
    assert re.fullmatch(r"(in_progress,)*failure", ",".join(seen)), seen
    message = "Required fields are missing: [email]"
    assert done["result"] == f"Write failed (0 succeeded, 1 failed): {message}"
    assert done["metadata"]["successfulRecordIds"] == []
    assert quick.records() == []
    logs = get_logs(quick_client, operation_id)
    assert [e["message"]["msg"] for e in logs] == [
        "Write accepted: create 1 record of contacts (asynchronous)",
        "Write started",
        "Record failed",
        done["result"],
    ]
    assert logs[2]["severity"] == "ERROR"
    assert logs[2]["message"]["error"] == message
    assert logs[3]["severity"] == "ERROR"


def test_an_asynchronous_batch_with_failed_records_is_a_partial_success(
    quick: Sandbox, quick_client: Client
) -> None:
    quick.configure_object("contacts", required_fields=["email"], unique_fields=["email"])
    batch = [
        {"record": {"email": "a@x"}},
        {"record": {"name": "no email"}},
        {"record": {"email": "b@x"}},
        {"record": {"email": "a@x"}},
    ]
    body = {"type": "create", "mode": "asynchronous", "batch": batch}
    done = wait_done(quick_client, write(quick_client, body))
    assert done["status"] == "success"
    assert done["result"] == "Batch write completed (2 succeeded, 2 failed)"
    stored = quick.records()
    assert [r["email"] for r in stored] == ["a@x", "b@x"]
    assert done["metadata"]["successfulRecordIds"] == [r["id"] for r in stored]
    logs = get_logs(quick_client, done["id"])
    failures = [e for e in logs if e["severity"] == "ERROR"]
    assert [e["message"]["msg"] for e in failures] == ["Record 1 failed", "Record 3 failed"]
    assert [e["message"]["details"]["batchIndex"] for e in failures] == ["1", "3"]
    assert failures[0]["message"]["error"] == "Required fields are missing: [email]"
    assert failures[1]["message"]["error"].startswith("duplicate value found: email")
    assert logs[-1]["message"]["msg"] == done["result"]


def test_a_batch_refused_whole_under_all_or_none_is_a_failure(
    quick: Sandbox, quick_client: Client
) -> None:
    quick.configure_object("contacts", required_fields=["email"])
    batch = [{"record": {"email": "a@x"}}, {"record": {}}, {"record": {"email": "b@x"}}]
    body = {"type": "create", "batch": batch, "batchPolicy": {"allOrNone": True}}
    done = get_operation(quick_client, write(quick_client, body))
    assert done["status"] == "failure"
    assert done["result"] == (
        "Batch write failed (0 succeeded, 3 failed): "
        "batchPolicy.allOrNone is set, so no record was written"
    )
    assert done["metadata"]["successfulRecordIds"] == []
    assert quick.records() == []
    msgs = [e["message"]["msg"] for e in get_logs(quick_client, done["id"])]
    assert msgs[-3:] == ["Record 1 failed", "Batch rolled back", done["result"]]


def test_synchronous_writes_are_finished_operations(quick: Sandbox, quick_client: Client) -> None:
    created = write(quick_client, {"type": "create", "record": {"email": "a@x"}})
    [record] = quick.records()
    update = {"type": "update", "record": {"id": record["id"], "name": "Ada"}}
    updated = write(quick_client, update)
    missing = write(quick_client, {"type": "update", "record": {"id": "nope"}})
    deleted = write(quick_client, {"type": "delete", "record": {"id": record["id"]}})
    expected = {
        created: ("success", "Write completed (1 succeeded, 0 failed)", [record["id"]]),
        updated: ("success", "Write completed (1 succeeded, 0 failed)", [record["id"]]),
        missing: (
            "failure",
            "Write failed (0 succeeded, 1 failed): The record with ID nope was not found",
            [],
        ),
        deleted: ("success", "Write completed (1 succeeded, 0 failed)", []),
    }
    for operation_id, (status, summary, ids) in expected.items():
        body = get_operation(quick_client, operation_id)
        assert (body["status"], body["result"], body["metadata"]["successfulRecordIds"]) == (
            status,
            summary,
            ids,
        )
        assert body["createTime"] == body["updateTime"]
        msgs = [e["message"]["msg"] for e in get_logs(quick_client, operation_id)]
        assert msgs[0].endswith("(synchronous)")
        assert msgs[1] == "Write started"
        assert msgs[-1] == summary
    assert quick.records() == []


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["synchronous", "asynchronous"])
def test_a_write_an_injected_fault_refuses_is_a_failed_operation(
    quick: Sandbox, quick_client: Client, mode: str
) -> None:
    quick.fail_next(500)
    reply = quick_client.write({"groupRef": GROUP, **ASYNC_CREATE, "mode": mode})
    assert reply.status == 500
    page = check(quick_client.send("GET", list_path(installation_of(quick))), "list")
    [failed] = page["results"]
    detail = "injected fault: status 500; nothing was written"
    assert failed["status"] == "failure"
    assert failed["result"] == f"Write failed (0 succeeded, 1 failed): {detail}"
    assert failed["metadata"]["successfulRecordIds"] == []
    logs = get_logs(quick_client, failed["id"])
    assert (logs[-1]["severity"], logs[-1]["message"]["error"]) == ("ERROR", detail)
    assert quick.records() == []


def test_a_reset_connection_is_a_failed_operation(quick: Sandbox, quick_client: Client) -> None:
    quick.reset_next()
    with pytest.raises((ConnectionError, OSError)):
        quick_client.write({"groupRef": GROUP, **ASYNC_CREATE})
    quick_client.close()
    client = Client(quick)
    try:
        [failed] = check(client.send("GET", list_path(installation_of(quick))), "list")["results"]
        assert failed["status"] == "failure"
        assert "connection was reset" in failed["result"]
    finally:
        client.close()


def test_commit_then_fail_leaves_a_successful_operation_with_a_warning(
    quick: Sandbox, quick_client: Client
) -> None:
    quick.set_faults(Faults(commit_then_fail=1.0))
    reply = quick_client.write({"groupRef": GROUP, **ASYNC_CREATE})
    assert reply.status == 502
    [listed] = check(quick_client.send("GET", list_path(installation_of(quick))), "list")["results"]
    done = wait_done(quick_client, listed["id"])
    assert done["status"] == "success"
    assert done["metadata"]["successfulRecordIds"] == [r["id"] for r in quick.records()]
    warnings = [e for e in get_logs(quick_client, done["id"]) if e["severity"] == "WARNING"]
    assert len(warnings) == 1
    assert "answered 502" in warnings[0]["message"]["msg"]


# -- installations --------------------------------------------------------------------------


def test_installations_are_one_per_group_and_stable(quick: Sandbox, quick_client: Client) -> None:
    leads = "/v1/projects/proj-1/integrations/int-1/objects/leads"
    other_integration = "/v1/projects/proj-1/integrations/int-2/objects/contacts"
    ids = [
        write(quick_client, {"type": "create", "record": {}}),
        write(quick_client, {"type": "create", "record": {}}, path=leads),
        write(quick_client, {"groupRef": "h", "type": "create", "record": {}}),
        write(quick_client, {"type": "create", "record": {}}, path=other_integration),
    ]
    bodies = [get_operation(quick_client, operation_id) for operation_id in ids]
    installations = [body["installationId"] for body in bodies]
    configs = [body["configId"] for body in bodies]
    assert installations[0] == installations[1] == installation_of(quick)
    assert configs[0] == configs[1]
    assert len(set(installations)) == 3
    assert len(set(configs)) == 3
    assert installations[2] == installation_of(quick, group="h")
    assert installations[3] == installation_of(quick, integration="int-2")
    assert all(re.fullmatch(r"[0-9a-f-]{36}", value) for value in installations + configs)

    reply = quick_client.send("GET", "/_sandbox/installations?project=proj-1&groupRef=g")
    assert reply.status == 200
    assert reply.json() == [
        {
            "installationId": installations[0],
            "configId": configs[0],
            "projectId": PROJECT,
            "integrationId": INTEGRATION,
            "groupRef": GROUP,
        },
        {
            "installationId": installations[3],
            "configId": configs[3],
            "projectId": PROJECT,
            "integrationId": "int-2",
            "groupRef": GROUP,
        },
    ]
    assert quick_client.send("GET", "/_sandbox/installations?group=g").status == 400
    quick.reset()
    assert installation_of(quick) == installations[0]
    with Sandbox() as another:
        assert installation_of(another) == installations[0]
    with pytest.raises(ValueError, match="group_ref"):
        quick.installation_id(project_id_or_name=PROJECT, integration_id=INTEGRATION, group_ref="")


# -- listing and paging ---------------------------------------------------------------------


def test_paging_walks_every_operation_once_newest_first(
    quick: Sandbox, quick_client: Client
) -> None:
    ids = [write(quick_client, {"type": "create", "record": {"n": n}}) for n in range(5)]
    ids.append(write(quick_client, {"type": "update", "record": {"id": "nope"}}))
    ids.append(write(quick_client, {**ASYNC_CREATE}))
    write(quick_client, {"groupRef": "other", "type": "create", "record": {}})
    newest_first = ids[::-1]
    installation = installation_of(quick)
    deadline = time.monotonic() + 10  # the asynchronous write ends first: no page may race it
    while get_operation(quick_client, ids[-1])["status"] == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for size in (1, 2, 1000):
        assert walk(quick_client, installation, size) == newest_first
    page = check(quick_client.send("GET", list_path(installation)), "list")  # 200 by default
    assert [operation["id"] for operation in page["results"]] == newest_first
    assert page["pagination"] == {"done": True}
    assert page["results"][0] == get_operation(quick_client, ids[-1])


def test_a_walk_is_not_disturbed_by_new_operations(quick: Sandbox, quick_client: Client) -> None:
    ids = [write(quick_client, {"type": "create", "record": {}}) for _ in range(4)]
    installation = installation_of(quick)
    first = check(quick_client.send("GET", list_path(installation, query="?pageSize=2")), "list")
    write(quick_client, {"type": "create", "record": {}})
    token = quote(first["pagination"]["nextPageToken"])
    query = f"?pageSize=2&pageToken={token}"
    rest = check(quick_client.send("GET", list_path(installation, query=query)), "list")
    seen = [operation["id"] for operation in first["results"] + rest["results"]]
    assert seen == ids[::-1]
    assert rest["pagination"] == {"done": True}


def test_an_installation_without_operations_lists_none(
    quick: Sandbox, quick_client: Client
) -> None:
    reply = quick_client.send("GET", list_path(installation_of(quick, group="quiet")))
    assert check(reply, "list") == {"results": [], "pagination": {"done": True}}


@pytest.mark.parametrize("value", ["0", "1001", "-1", "abc", "", "1.5", " 5", "٣"])
def test_a_bad_page_size_is_400(quick: Sandbox, quick_client: Client, value: str) -> None:
    path = list_path(installation_of(quick), query=f"?pageSize={quote(value)}")
    reply = quick_client.send("GET", path)
    assert reply.status == 400
    problem = check(reply, "list")
    assert problem["title"] == "Bad Request"
    assert [(i["in"], i["name"], i["value"]) for i in problem["issues"]] == [
        ("query", "pageSize", value)
    ]


def test_a_page_token_not_handed_out_is_400(quick: Sandbox, quick_client: Client) -> None:
    for _ in range(3):
        write(quick_client, {"type": "create", "record": {}})
        write(quick_client, {"groupRef": "other", "type": "create", "record": {}})
    other = installation_of(quick, group="other")
    reply = quick_client.send("GET", list_path(other, query="?pageSize=1"))
    foreign = check(reply, "list")["pagination"]["nextPageToken"]
    for token in ("garbage", "Zm9vOjE=", foreign, foreign + "x"):
        path = list_path(installation_of(quick), query=f"?pageToken={quote(token)}")
        reply = quick_client.send("GET", path)
        assert reply.status == 400, token
        problem = check(reply, "list")
        assert problem["issues"][0]["name"] == "pageToken"


def test_listing_an_unknown_installation_is_404(quick: Sandbox, quick_client: Client) -> None:
    installation = installation_of(quick)
    paths = [
        list_path("00000000-0000-0000-0000-000000000000"),
        list_path(installation, project="proj-2"),
        list_path(installation, integration="int-2"),
    ]
    for path in paths:
        reply = quick_client.send("GET", path)
        assert reply.status == 404
        assert (
            check(reply, "list")["detail"]
            == "Installation not found for the given installation ID."
        )


# -- errors ---------------------------------------------------------------------------------


def test_unknown_operation_and_wrong_project_are_404(quick: Sandbox, quick_client: Client) -> None:
    operation_id = write(quick_client, {"type": "create", "record": {}})
    for path in (
        operation_path("does-not-exist"),
        operation_path(operation_id, project="proj-2"),
    ):
        for endpoint, suffix in (("operation", ""), ("logs", "/logs")):
            reply = quick_client.send("GET", path + suffix)
            assert reply.status == 404
            problem = check(reply, endpoint)
            assert problem["title"] == "Not Found"
            assert problem["detail"] == "Operation not found for the given operation ID."
            assert problem["retryable"] is False
            assert problem["remedy"]


def test_bad_path_segments_are_400_problems(quick_client: Client) -> None:
    cases = [
        ("operation", operation_path("%FF"), "operationId"),
        ("logs", operation_path("") + "/logs", "operationId"),
        ("list", list_path("", project="p"), "installationId"),
    ]
    for endpoint, path, name in cases:
        reply = quick_client.send("GET", path)
        assert reply.status == 400, path
        problem = check(reply, endpoint)
        assert [(i["in"], i["name"]) for i in problem["issues"]] == [("path", name)]


def test_every_operation_endpoint_needs_the_api_key(quick: Sandbox, quick_client: Client) -> None:
    operation_id = write(quick_client, {"type": "create", "record": {}})
    paths = {
        "operation": operation_path(operation_id),
        "logs": operation_path(operation_id) + "/logs",
        "list": list_path(installation_of(quick)),
    }
    for endpoint, path in paths.items():
        for reply in (
            quick_client.send("GET", path, omit=("X-Api-Key",)),
            quick_client.send("GET", path, headers={"X-Api-Key": "wrong"}),
        ):
            assert reply.status == 401
            assert check(reply, endpoint)["title"] == "Unauthorized"
        reply = quick_client.send("POST", path, b"{}")
        assert (reply.status, reply.headers["Allow"]) == (405, "GET")


def test_a_write_without_a_json_content_type_is_refused(
    quick: Sandbox, quick_client: Client
) -> None:
    raw = json.dumps({"groupRef": GROUP, **ASYNC_CREATE}).encode()
    for headers, omit in (({}, ("Content-Type",)), ({"Content-Type": "text/plain"}, ())):
        reply = quick_client.send("POST", WRITE_PATH, raw, headers, omit=omit)
        assert reply.status == 400
        assert reply.content_type.startswith("text/plain")
        assert "Content-Type" in reply.text
    assert quick.records() == []
    page = check(quick_client.send("GET", list_path(installation_of(quick))), "list")
    assert page["results"] == []


# -- reset ----------------------------------------------------------------------------------


def test_reset_clears_operations(held: Sandbox, held_client: Client) -> None:
    done = write(held_client, {"type": "create", "record": {}})
    pending = write(held_client, ASYNC_CREATE)
    installation = installation_of(held)
    assert len(walk(held_client, installation, 1000)) == 2
    held.reset()
    for operation_id in (done, pending):
        assert held.operation(operation_id) is None
        assert held_client.send("GET", operation_path(operation_id)).status == 404
        assert held_client.send("GET", operation_path(operation_id) + "/logs").status == 404
    assert walk(held_client, installation, 1000) == []
    again = write(held_client, {"type": "create", "record": {}})
    assert walk(held_client, installation, 1000) == [again]
