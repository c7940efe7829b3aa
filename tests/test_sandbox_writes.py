"""Sandbox write semantics over real HTTP: the contract's request examples, create / update /
delete, object rules and their 422s, batches (partial, all failed, allOrNone) and
percent-encoded path segments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ampwrite.sandbox import Sandbox
from tests.sandbox_client import Client, Reply

PROJECT = "proj-1"
INTEGRATION = "int-1"
GROUP = "group-1"
OBJECT = "contacts"
WRITE_PATH = f"/v1/projects/{PROJECT}/integrations/{INTEGRATION}/objects/{OBJECT}"


def create(client: Client, record: dict[str, Any], **extra: Any) -> Reply:
    return client.write({"groupRef": GROUP, "type": "create", "record": record, **extra})


def update(client: Client, record: dict[str, Any]) -> Reply:
    return client.write({"groupRef": GROUP, "type": "update", "record": record})


def delete(client: Client, record_id: str) -> Reply:
    return client.write({"groupRef": GROUP, "type": "delete", "record": {"id": record_id}})


def batch(client: Client, write_type: str, records: list[dict[str, Any]], **extra: Any) -> Reply:
    items = [{"record": record} for record in records]
    return client.write({"groupRef": GROUP, "type": write_type, "batch": items, **extra})


# -- the contract's request examples ----------------------------------------------------

CONTRACT_EXAMPLES: dict[str, dict[str, Any]] = {
    "single-create": {
        "groupRef": "<groupRef>",
        "type": "create",
        "mode": "synchronous",
        "record": {"email": "david@withampersand.com", "warmthScore": "ready-for-close"},
    },
    "single-create-associations": {
        "groupRef": "<groupRef>",
        "type": "create",
        "mode": "synchronous",
        "record": {"email": "david@withampersand.com", "warmthScore": "ready-for-close"},
        "associations": [
            {
                "to": {"id": "18417469260"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
            }
        ],
    },
    "single-update": {
        "groupRef": "<groupRef>",
        "type": "update",
        "mode": "synchronous",
        "record": {
            "id": "003xx000001",
            "email": "david@withampersand.com",
            "warmthScore": "ready-for-close",
        },
    },
    "single-delete": {
        "groupRef": "<groupRef>",
        "type": "delete",
        "record": {"id": "003xx000001"},
    },
    "batch-create": {
        "groupRef": "<groupRef>",
        "type": "create",
        "mode": "synchronous",
        "batchPolicy": {"allOrNone": True},
        "batch": [
            {"record": {"email": "david@withampersand.com", "warmthScore": "ready-for-close"}},
            {"record": {"email": "hermione@withampersand.com", "warmthScore": "ready-for-close"}},
        ],
    },
    "auto-batch-create": {
        "groupRef": "<groupRef>",
        "type": "create",
        "mode": "asynchronous",
        "autoBatchPolicy": {"maxDelayMinutes": 5, "retryDeadlineHours": 2},
        "record": {"email": "david@withampersand.com", "warmthScore": "ready-for-close"},
    },
}


@pytest.mark.parametrize("name", sorted(CONTRACT_EXAMPLES))
def test_contract_request_example_is_accepted(sb: Sandbox, client: Client, name: str) -> None:
    # The update and delete examples refer to an existing record.
    sb.add_record(
        {"id": "003xx000001", "email": "old@example.com"},
        project_id_or_name=PROJECT,
        integration_id=INTEGRATION,
        object_name=OBJECT,
        group_ref="<groupRef>",
    )
    reply = client.write(CONTRACT_EXAMPLES[name])
    assert reply.status == 200, reply.data
    assert reply.content_type == "application/json"
    body = reply.json()
    assert isinstance(body["operationId"], str)
    if name == "auto-batch-create":
        assert body == {"operationId": body["operationId"]}
    elif name == "batch-create":
        assert body["successCount"] == 2
        assert body["failureCount"] == 0
    else:
        assert body["result"]["success"] is True


def test_contract_update_example_merges(sb: Sandbox, client: Client) -> None:
    sb.add_record(
        {"id": "003xx000001", "email": "old@example.com", "phone": "555"},
        project_id_or_name=PROJECT,
        integration_id=INTEGRATION,
        object_name=OBJECT,
        group_ref="<groupRef>",
    )
    reply = client.write(CONTRACT_EXAMPLES["single-update"])
    assert reply.json()["result"] == {
        "success": True,
        "recordId": "003xx000001",
        "data": {
            "id": "003xx000001",
            "email": "david@withampersand.com",
            "warmthScore": "ready-for-close",
            "phone": "555",
        },
    }


# -- create, update, delete -------------------------------------------------------------


def test_create_assigns_deterministic_ids_and_echoes_data(sb: Sandbox, client: Client) -> None:
    first = create(client, {"email": "a@example.com"}).json()
    second = create(client, {"email": "b@example.com"}).json()
    assert first["result"] == {
        "success": True,
        "recordId": "003000000000001",
        "data": {"email": "a@example.com", "id": "003000000000001"},
    }
    assert second["result"]["recordId"] == "003000000000002"
    assert first["operationId"] != second["operationId"]
    assert sb.records() == [
        {"email": "a@example.com", "id": "003000000000001"},
        {"email": "b@example.com", "id": "003000000000002"},
    ]


def test_response_headers(client: Client) -> None:
    reply = create(client, {"email": "a@example.com"})
    assert reply.headers["X-Request-Id"]
    assert reply.headers["Content-Length"] == str(len(reply.data))


def test_update_merges_fields(sb: Sandbox, client: Client) -> None:
    created = create(client, {"email": "a@example.com", "name": "Ada"})
    record_id = created.json()["result"]["recordId"]
    reply = update(client, {"id": record_id, "name": "Ada L.", "title": "Countess"})
    assert reply.status == 200
    data = {"email": "a@example.com", "name": "Ada L.", "title": "Countess", "id": record_id}
    assert reply.json()["result"] == {"success": True, "recordId": record_id, "data": data}
    assert sb.records() == [data]


def test_update_unknown_id_is_422(sb: Sandbox, client: Client) -> None:
    reply = update(client, {"id": "003nope", "name": "x"})
    assert reply.status == 422
    body = reply.json()
    assert body["errors"] == [{"message": "The record with ID 003nope was not found"}]
    assert body["result"] == {"success": False}
    assert isinstance(body["operationId"], str)
    assert json.loads(body["rawResponse"])[0]["errorCode"] == "NOT_FOUND"
    assert set(body) <= {"operationId", "errors", "result", "warnings", "rawResponse"}


def test_update_without_id_is_422(client: Client) -> None:
    reply = update(client, {"name": "x"})
    assert reply.status == 422
    assert "record.id" in reply.json()["errors"][0]["message"]


def test_delete_removes_the_record(sb: Sandbox, client: Client) -> None:
    record_id = create(client, {"email": "a@example.com"}).json()["result"]["recordId"]
    reply = delete(client, record_id)
    assert reply.status == 200
    assert reply.json()["result"] == {"success": True}
    assert sb.records() == []
    again = delete(client, record_id)
    assert again.status == 422
    assert again.json()["errors"][0]["message"] == f"The record with ID {record_id} was not found"


def test_delete_can_be_disabled_per_object(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, delete_enabled=False)
    record_id = create(client, {"email": "a@example.com"}).json()["result"]["recordId"]
    reply = delete(client, record_id)
    assert reply.status == 422
    assert "Deletion is not enabled" in reply.json()["errors"][0]["message"]
    assert len(sb.records()) == 1
    # Other objects are unaffected.
    other = f"/v1/projects/{PROJECT}/integrations/{INTEGRATION}/objects/leads"
    created = client.write({"groupRef": GROUP, "type": "create", "record": {}}, path=other)
    other_id = created.json()["result"]["recordId"]
    body = {"groupRef": GROUP, "type": "delete", "record": {"id": other_id}}
    assert client.write(body, path=other).status == 200


def test_records_are_scoped_by_group_project_integration_and_object(
    sb: Sandbox, client: Client
) -> None:
    record_id = create(client, {"email": "a@example.com"}).json()["result"]["recordId"]
    elsewhere = [
        f"/v1/projects/other/integrations/{INTEGRATION}/objects/{OBJECT}",
        f"/v1/projects/{PROJECT}/integrations/other/objects/{OBJECT}",
        f"/v1/projects/{PROJECT}/integrations/{INTEGRATION}/objects/other",
    ]
    for path in elsewhere:
        body = {"groupRef": GROUP, "type": "update", "record": {"id": record_id}}
        assert client.write(body, path=path).status == 422
    other_group = {"groupRef": "group-2", "type": "update", "record": {"id": record_id}}
    assert client.write(other_group).status == 422
    assert len(sb.records(group_ref=GROUP)) == 1
    assert sb.records(group_ref="group-2") == []


def test_required_fields(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, required_fields=("email", "lastName"))
    reply = create(client, {"email": "a@example.com"})
    assert reply.status == 422
    assert reply.json()["errors"] == [{"message": "Required fields are missing: [lastName]"}]
    assert create(client, {"email": "a@example.com", "lastName": None}).status == 422
    ok = create(client, {"email": "a@example.com", "lastName": "Lovelace"})
    assert ok.status == 200
    record_id = ok.json()["result"]["recordId"]
    # An update may leave required fields out, but may not blank them.
    assert update(client, {"id": record_id, "title": "x"}).status == 200
    assert update(client, {"id": record_id, "lastName": ""}).status == 422
    assert len(sb.records()) == 1


def test_unique_fields(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, unique_fields=["email"])
    first = create(client, {"email": "a@example.com"}).json()["result"]["recordId"]
    duplicate = create(client, {"email": "a@example.com"})
    assert duplicate.status == 422
    message = duplicate.json()["errors"][0]["message"]
    assert message == f"duplicate value found: email duplicates value on record with id: {first}"
    second = create(client, {"email": "b@example.com"}).json()["result"]["recordId"]
    assert update(client, {"id": second, "email": "a@example.com"}).status == 422
    # Re-saving a record's own value is not a duplicate.
    assert update(client, {"id": first, "email": "a@example.com"}).status == 200
    assert create(client, {"name": "no email"}).status == 200
    assert create(client, {"name": "no email either"}).status == 200


def test_configure_object_refuses_a_bare_string(sb: Sandbox) -> None:
    with pytest.raises(TypeError):
        sb.configure_object(OBJECT, required_fields="email")


def test_add_record_refuses_existing_ids(sb: Sandbox) -> None:
    where = {
        "project_id_or_name": PROJECT,
        "integration_id": INTEGRATION,
        "object_name": OBJECT,
        "group_ref": GROUP,
    }
    stored = sb.add_record({"name": "x"}, **where)
    assert stored["id"].startswith("003")
    with pytest.raises(ValueError, match="already exists"):
        sb.add_record({"id": stored["id"]}, **where)


# -- batches ---------------------------------------------------------------------------


def test_batch_create_all_succeed(sb: Sandbox, client: Client) -> None:
    reply = batch(client, "create", [{"n": 1}, {"n": 2}, {"n": 3}])
    assert reply.status == 200
    body = reply.json()
    assert body["successCount"] == 3
    assert body["failureCount"] == 0
    assert [r["recordId"] for r in body["results"]] == [
        "003000000000001",
        "003000000000002",
        "003000000000003",
    ]
    assert "errors" not in body
    assert [r["n"] for r in sb.records()] == [1, 2, 3]


def test_batch_partial_failure(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, required_fields=["email"], unique_fields=["email"])
    records = [{"email": "a@x"}, {"name": "no email"}, {"email": "b@x"}, {"email": "a@x"}]
    reply = batch(client, "create", records)
    assert reply.status == 200
    body = reply.json()
    assert body["successCount"] == 2
    assert body["failureCount"] == 2
    assert [r["success"] for r in body["results"]] == [True, False, True, False]
    assert "recordId" not in body["results"][1]
    messages = [e["message"] for e in body["errors"]]
    assert messages[0].startswith("batch[1]: Required fields are missing")
    assert messages[1].startswith("batch[3]: duplicate value found")
    assert sorted(r["email"] for r in sb.records()) == ["a@x", "b@x"]


def test_batch_all_failed_is_422(sb: Sandbox, client: Client) -> None:
    reply = batch(client, "update", [{"id": "nope-1"}, {"id": "nope-2"}])
    assert reply.status == 422
    body = reply.json()
    assert body["successCount"] == 0
    assert body["failureCount"] == 2
    assert len(body["errors"]) == 2
    assert set(body) <= {"operationId", "successCount", "failureCount", "results", "errors"}


def test_batch_all_or_none_stores_nothing(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, required_fields=["email"])
    records = [{"email": "a@x"}, {"email": "b@x"}, {"name": "missing email"}]
    reply = batch(client, "create", records, batchPolicy={"allOrNone": True})
    assert reply.status == 422
    body = reply.json()
    assert body["successCount"] == 0
    assert body["failureCount"] == 3
    assert any("batch[2]" in e["message"] for e in body["errors"])
    assert any("allOrNone" in e["message"] for e in body["errors"])
    assert sb.records() == []
    ok = batch(client, "create", records[:2], batchPolicy={"allOrNone": True})
    assert ok.status == 200
    assert len(sb.records()) == 2


def test_batch_all_or_none_update_rolls_back(sb: Sandbox, client: Client) -> None:
    ids = [r["recordId"] for r in batch(client, "create", [{"n": 1}, {"n": 2}]).json()["results"]]
    updates = [{"id": ids[0], "n": 10}, {"id": "missing", "n": 20}, {"id": ids[1], "n": 30}]
    assert batch(client, "update", updates, batchPolicy={"allOrNone": True}).status == 422
    assert [r["n"] for r in sb.records()] == [1, 2]
    partial = batch(client, "update", updates, batchPolicy={"allOrNone": False})
    assert partial.status == 200
    assert [r["n"] for r in sb.records()] == [10, 30]


def test_batch_sees_its_own_earlier_records(sb: Sandbox, client: Client) -> None:
    sb.configure_object(OBJECT, unique_fields=["email"])
    reply = batch(client, "create", [{"email": "a@x"}, {"email": "a@x"}])
    assert [r["success"] for r in reply.json()["results"]] == [True, False]


# -- path segments -----------------------------------------------------------------------


def test_percent_encoded_path_segments_are_decoded(sb: Sandbox, client: Client) -> None:
    path = "/v1/projects/my%20project/integrations/int%2F1/objects/a%2Fb"
    reply = client.write({"groupRef": GROUP, "type": "create", "record": {"k": "v"}}, path=path)
    assert reply.status == 200
    assert sb.records(object_name="a/b") == [{"k": "v", "id": "003000000000001"}]
    assert sb.records(project_id_or_name="my project", integration_id="int/1") != []
    assert sb.records(object_name="a%2Fb") == []
    assert sb.records(object_name="b") == []
    unicode_path = "/v1/projects/p/integrations/i/objects/%C3%A9l%C3%A8ve"
    body = {"groupRef": GROUP, "type": "create", "record": {}}
    assert client.write(body, path=unicode_path).status == 200
    assert len(sb.records(object_name="élève")) == 1
