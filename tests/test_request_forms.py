"""The forms a request may take: a `WriteRecordsRequest`, a mapping in the API's JSON shape,
or a mapping holding models where the API has objects (`{"requestBody": WriteRequest(...)}`).
Each sends the same bytes; a model in the wrong place, or a request body passed as the whole
request, is refused naming what to pass instead, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

from ampwrite import Core, Err, Ok, write_records
from ampwrite.errors import RequestValidationError, ValidationIssue
from ampwrite.models import (
    BatchItem,
    BatchPolicy,
    Header,
    WriteRecordsRequest,
    WriteRequest,
)
from ampwrite.sandbox import Sandbox
from tests.conftest import Driver
from tests.scripted_server import ScriptedServer

WHERE = {"projectIdOrName": "proj", "integrationId": "int-1", "objectName": "contacts"}
RECORD = {"email": "ada@example.com", "score": 3}
BATCH_BODY = {
    "groupRef": "group-1",
    "type": "create",
    "batch": [{"record": {"email": "a@example.com"}}, {"record": {"email": "b@example.com"}}],
    "batchPolicy": {"allOrNone": True},
    "headers": [{"key": "Sforce-Duplicate-Rule-Header", "value": "allowSave=true"}],
}
BATCH_MODEL = WriteRequest(
    group_ref="group-1",
    type="create",
    batch=[
        BatchItem(record={"email": "a@example.com"}),
        BatchItem(record={"email": "b@example.com"}),
    ],
    batch_policy=BatchPolicy(all_or_none=True),
    headers=[Header(key="Sforce-Duplicate-Rule-Header", value="allowSave=true")],
)

FORMS: dict[str, Any] = {
    "mapping": {**WHERE, "requestBody": BATCH_BODY},
    "WriteRecordsRequest": WriteRecordsRequest(
        project_id_or_name="proj",
        integration_id="int-1",
        object_name="contacts",
        request_body=BATCH_MODEL,
    ),
    "mapping holding a WriteRequest": {**WHERE, "requestBody": BATCH_MODEL},
    "mapping holding item, policy and header models": {
        **WHERE,
        "requestBody": {
            **BATCH_BODY,
            "batch": list(BATCH_MODEL.batch or ()),
            "batchPolicy": BatchPolicy(all_or_none=True),
            "headers": list(BATCH_MODEL.headers or ()),
        },
    },
}


def _issues(result: object) -> tuple[ValidationIssue, ...]:
    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError), result
    return result.error.issues


def test_every_form_sends_the_same_bytes(core: Core, server: ScriptedServer) -> None:
    for name, form in FORMS.items():
        assert isinstance(write_records(core, form), Ok), name
    bodies = [received.body for received in server.received]
    assert len(bodies) == len(FORMS) and len(set(bodies)) == 1
    assert server.received[0].json() == BATCH_BODY  # the body; the rest is in the path


def test_a_write_request_inside_a_mapping_is_written(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, driver: Driver
) -> None:
    body = WriteRequest(group_ref="customer-42", type="create", record=RECORD)
    result = driver(ampwrite_core, {**WHERE, "requestBody": body})
    assert isinstance(result, Ok), result
    record_id = result.value.as_single().record_id
    assert ampwrite_sandbox.records(object_name="contacts") == [{**RECORD, "id": record_id}]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            WriteRequest(group_ref="", type="create", record=RECORD),
            "requestBody.groupRef",
            "must not be empty",
        ),
        (
            WriteRequest(group_ref="g", type="create", record=RECORD, batch=[]),
            "requestBody.batch",
            "must hold 1 to 100 items",
        ),
        (
            WriteRequest(group_ref="g", type="create", record=RECORD, batch=BATCH_MODEL.batch),
            "requestBody",
            "give record or batch, not both",
        ),
        (
            WriteRequest(group_ref="g", type="delete", record={"name": "no id"}),
            "requestBody.record.id",
            "delete needs the id",
        ),
        (
            BatchItem(record=RECORD),
            "requestBody",
            "expected a WriteRequest or an object, got BatchItem",
        ),
        (
            {**BATCH_BODY, "batch": [BatchPolicy(all_or_none=True)]},
            "requestBody.batch[0]",
            "expected a BatchItem or an object, got BatchPolicy",
        ),
    ],
    ids=["invalid field", "empty batch", "record and batch", "delete", "other model", "item"],
)
def test_models_inside_a_mapping_are_checked_by_the_same_rules(
    core: Core, server: ScriptedServer, body: Any, path: str, message: str
) -> None:
    issues = _issues(write_records(core, {**WHERE, "requestBody": body}))
    assert any(issue.path == path and message in issue.message for issue in issues), issues
    assert server.received == []


def test_a_bare_write_request_says_what_to_pass_instead(
    core: Core, server: ScriptedServer, driver: Driver
) -> None:
    body = WriteRequest(group_ref="g", type="create", record=RECORD)
    (issue,) = _issues(driver(core, body))
    assert issue.path == "request"
    assert "a WriteRequest is only the request body" in issue.message
    assert "WriteRecordsRequest(project_id_or_name=..., integration_id=..." in issue.message
    assert "request_body=<the WriteRequest>" in issue.message
    assert server.received == []


@pytest.mark.parametrize("wrong", [["a", "list"], "projects/p", None, BatchItem(record=RECORD)])
def test_anything_else_is_named_with_the_forms_a_request_takes(
    core: Core, server: ScriptedServer, wrong: Any
) -> None:
    (issue,) = _issues(write_records(core, wrong))
    assert issue.path == "request"
    assert issue.message.startswith("expected a WriteRecordsRequest, or a mapping in the API's")
    assert issue.message.endswith(f"got {type(wrong).__name__}")
    assert str(issue) == f"request: {issue.message}"
    assert server.received == []
