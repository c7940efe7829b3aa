"""Every request the contract forbids is refused locally, naming the field, and nothing is sent."""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import pytest

from ampwrite import Core, Err, Ok, write_records
from ampwrite._validate import MAX_DEPTH
from ampwrite.errors import RequestValidationError
from ampwrite.models import (
    AutoBatchPolicy,
    BatchItem,
    Header,
    WriteRecordsRequest,
    WriteRequest,
)
from tests.requests_data import batch, single, with_changes
from tests.scripted_server import ScriptedServer


def _without(request: dict[str, Any], key: str) -> dict[str, Any]:
    changed = with_changes(request)
    if key in changed:
        del changed[key]
    else:
        del changed["requestBody"][key]
    return changed


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


# (request, a field path that must be named, a word the message must contain)
INVALID: list[tuple[str, Any, str, str]] = [
    ("not a mapping", ["a", "list"], "request", "expected a WriteRecordsRequest"),
    (
        "missing projectIdOrName",
        _without(single(), "projectIdOrName"),
        "projectIdOrName",
        "required",
    ),
    ("missing requestBody", _without(single(), "requestBody"), "requestBody", "required"),
    (
        "empty projectIdOrName",
        with_changes(single(), projectIdOrName=""),
        "projectIdOrName",
        "empty",
    ),
    ("empty integrationId", with_changes(single(), integrationId=""), "integrationId", "empty"),
    ("empty objectName", with_changes(single(), objectName=""), "objectName", "empty"),
    ("objectName not a string", with_changes(single(), objectName=7), "objectName", "string"),
    ("typo at top level", with_changes(single(), objectname="x"), "objectname", "objectName"),
    (
        "requestBody not an object",
        with_changes(single(), requestBody="{}"),
        "requestBody",
        "object",
    ),
    ("missing groupRef", _without(single(), "groupRef"), "requestBody.groupRef", "required"),
    ("empty groupRef", single(groupRef=""), "requestBody.groupRef", "empty"),
    ("groupRef not a string", single(groupRef=12), "requestBody.groupRef", "string"),
    ("typo grouRef", single(grouRef="g"), "requestBody.grouRef", "groupRef"),
    ("snake_case key", single(group_ref="g"), "requestBody.group_ref", "groupRef"),
    ("missing type", _without(single(), "type"), "requestBody.type", "required"),
    ("unknown type", single(type="upsert"), "requestBody.type", "create, update, delete"),
    ("unknown mode", single(mode="sync"), "requestBody.mode", "synchronous, asynchronous"),
    ("null mode", single(mode=None), "requestBody.mode", "null"),
    ("record not an object", single(record=["a"]), "requestBody.record", "object"),
    ("neither record nor batch", _without(single(), "record"), "requestBody", "neither"),
    ("record and batch", single(batch=[{"record": {}}]), "requestBody", "not both"),
    ("empty batch", batch(0), "requestBody.batch", "1 to 100"),
    ("101 batch items", batch(101), "requestBody.batch", "got 101"),
    ("batch not an array", batch(1, batch={"record": {}}), "requestBody.batch", "array"),
    (
        "batch item without record",
        batch(1, batch=[{"associations": []}]),
        "requestBody.batch[0].record",
        "required",
    ),
    (
        "batch item record not an object",
        batch(1, batch=[{"record": 5}]),
        "requestBody.batch[0].record",
        "object",
    ),
    (
        "batch item unknown key",
        batch(1, batch=[{"record": {}, "recrod": {}}]),
        "requestBody.batch[0].recrod",
        "record",
    ),
    (
        "allOrNone not a boolean",
        batch(2, batchPolicy={"allOrNone": "yes"}),
        "requestBody.batchPolicy.allOrNone",
        "true or false",
    ),
    (
        "deadlineHours 0",
        single(mode="asynchronous", retryPolicy={"deadlineHours": 0}),
        "requestBody.retryPolicy.deadlineHours",
        "between 1 and 48",
    ),
    (
        "deadlineHours 49",
        single(mode="asynchronous", retryPolicy={"deadlineHours": 49}),
        "requestBody.retryPolicy.deadlineHours",
        "between 1 and 48",
    ),
    (
        "deadlineHours a boolean",
        single(retryPolicy={"deadlineHours": True}),
        "requestBody.retryPolicy.deadlineHours",
        "integer",
    ),
    (
        "deadlineHours a float",
        single(retryPolicy={"deadlineHours": 2.5}),
        "requestBody.retryPolicy.deadlineHours",
        "integer",
    ),
    (
        "maxDelayMinutes missing",
        single(mode="asynchronous", autoBatchPolicy={}),
        "requestBody.autoBatchPolicy.maxDelayMinutes",
        "required",
    ),
    (
        "maxDelayMinutes 1441",
        single(mode="asynchronous", autoBatchPolicy={"maxDelayMinutes": 1441}),
        "requestBody.autoBatchPolicy.maxDelayMinutes",
        "between 1 and 1440",
    ),
    (
        "retryDeadlineHours 0",
        single(
            mode="asynchronous", autoBatchPolicy={"maxDelayMinutes": 5, "retryDeadlineHours": 0}
        ),
        "requestBody.autoBatchPolicy.retryDeadlineHours",
        "between 1 and 48",
    ),
    (
        "autoBatchPolicy on a synchronous write",
        single(autoBatchPolicy={"maxDelayMinutes": 5}),
        "requestBody.autoBatchPolicy",
        "asynchronous",
    ),
    (
        "autoBatchPolicy on a batch",
        batch(2, mode="asynchronous", autoBatchPolicy={"maxDelayMinutes": 5}),
        "requestBody.autoBatchPolicy",
        "single-record",
    ),
    (
        "delete without id",
        single(type="delete", record={"email": "x"}),
        "requestBody.record.id",
        "id",
    ),
    (
        "delete with a numeric id",
        single(type="delete", record={"id": 5}),
        "requestBody.record.id",
        "id",
    ),
    (
        "delete asynchronous",
        single(type="delete", mode="asynchronous", record={"id": "1"}),
        "requestBody.mode",
        "synchronous only",
    ),
    ("delete batch", _without(batch(2, type="delete"), "mode"), "requestBody.batch", "not a batch"),
    (
        "NaN in a record",
        single(record={"score": math.nan}),
        "requestBody.record.score",
        "not a JSON number",
    ),
    (
        "infinity in a record",
        single(record={"score": math.inf}),
        "requestBody.record.score",
        "not a JSON number",
    ),
    (
        "bytes in a record",
        single(record={"photo": b"\x89PNG"}),
        "requestBody.record.photo",
        "bytes",
    ),
    ("a set in a record", single(record={"tags": {"a", "b"}}), "requestBody.record.tags", "list"),
    (
        "a Decimal in a record",
        single(record={"price": decimal.Decimal("1.5")}),
        "requestBody.record.price",
        "Decimal",
    ),
    (
        "a datetime in a record",
        single(record={"at": datetime.datetime(2026, 1, 1)}),
        "requestBody.record.at",
        "ISO 8601",
    ),
    ("an object in a record", single(record={"x": object()}), "requestBody.record.x", "object"),
    (
        "a nested NaN",
        single(record={"a": {"b": [1, {"c": math.nan}]}}),
        "requestBody.record.a.b[1].c",
        "JSON number",
    ),
    (
        "a non-string record key",
        single(record={1: "one"}),
        "requestBody.record[1]",
        "keys must be strings",
    ),
    (
        "a cycle in a record",
        single(record=_cycle()),
        "requestBody.record" + ".self" * MAX_DEPTH,
        "nested deeper",
    ),
    (
        "associations not an array",
        single(associations={"to": {}}),
        "requestBody.associations",
        "array",
    ),
    (
        "an association not an object",
        single(associations=["x"]),
        "requestBody.associations[0]",
        "object",
    ),
    (
        "headers not an array",
        single(headers={"key": "a", "value": "b"}),
        "requestBody.headers",
        "array",
    ),
    (
        "a header without value",
        single(headers=[{"key": "a"}]),
        "requestBody.headers[0].value",
        "required",
    ),
    (
        "a header value not a string",
        single(headers=[{"key": "a", "value": 1}]),
        "requestBody.headers[0].value",
        "string",
    ),
    (
        "a header value with CR/LF",
        single(headers=[{"key": "a", "value": "b\r\nX: y"}]),
        "requestBody.headers[0].value",
        "CR, LF",
    ),
]


@pytest.mark.parametrize(
    ("request_", "path", "word"),
    [pytest.param(r, p, w, id=name) for name, r, p, w in INVALID],
)
def test_invalid_request_is_refused_before_sending(
    core: Core, server: ScriptedServer, request_: Any, path: str, word: str
) -> None:
    result = write_records(core, request_)

    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, RequestValidationError)
    assert error.attempts == 0
    matching = [issue for issue in error.issues if issue.path == path]
    assert matching, f"no issue at {path!r}: {error.issues}"
    assert any(word in issue.message for issue in matching), matching
    assert path in str(error)
    assert server.received == []


def test_at_least_thirty_distinct_shapes_are_covered() -> None:
    assert len({name for name, *_ in INVALID}) >= 30


def test_every_issue_is_reported_at_once(core: Core, server: ScriptedServer) -> None:
    request = with_changes(single(groupRef="", type="crate", mode="later"), objectName="")

    result = write_records(core, request)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    paths = {issue.path for issue in result.error.issues}
    assert {"objectName", "requestBody.groupRef", "requestBody.type", "requestBody.mode"} <= paths
    assert server.received == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "other"},
        {"x-api-key": "other"},
        {"X-Trace": "a\r\nInjected: yes"},
        {"Bad Name": "v"},
        {"X-Null": "a\0b"},
        {"Content-Length": "1"},
    ],
)
def test_extra_headers_cannot_replace_the_key_or_inject(
    core: Core, server: ScriptedServer, headers: dict[str, str]
) -> None:
    result = write_records(core, single(), headers=headers)

    assert isinstance(result, Err)
    assert isinstance(result.error, RequestValidationError)
    assert result.error.issues[0].path.startswith("headers[")
    assert server.received == []


def test_models_with_wrong_types_are_refused_not_raised(core: Core, server: ScriptedServer) -> None:
    request = WriteRecordsRequest(
        project_id_or_name="proj",
        integration_id="int",
        object_name="contacts",
        request_body=WriteRequest(
            group_ref=5,  # type: ignore[arg-type]
            type="create",
            mode="asynchronous",
            batch=[BatchItem(record={"ok": True}), "not an item"],  # type: ignore[list-item]
            auto_batch_policy=AutoBatchPolicy(max_delay_minutes=0),
            headers=[Header(key="k", value="v\n")],
        ),
    )

    result = write_records(core, request)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    paths = {issue.path for issue in result.error.issues}
    assert paths >= {
        "requestBody.groupRef",
        "requestBody.batch[1]",
        "requestBody.autoBatchPolicy.maxDelayMinutes",
        "requestBody.autoBatchPolicy",
        "requestBody.headers[0].value",
    }
    assert server.received == []


def test_a_request_of_the_wrong_kind_is_an_error_value(core: Core, server: ScriptedServer) -> None:
    result = write_records(core, "projects/p")  # type: ignore[arg-type]

    assert isinstance(result, Err)
    assert isinstance(result.error, RequestValidationError)
    assert server.received == []


def test_lone_surrogates_are_refused(core: Core, server: ScriptedServer) -> None:
    result = write_records(core, single(record={"name": "bad \ud800 text"}))

    assert isinstance(result, Err)
    assert isinstance(result.error, RequestValidationError)
    assert server.received == []


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(single(retryPolicy={"deadlineHours": 24}), id="retryPolicy on a sync write"),
        pytest.param(single(batchPolicy={"allOrNone": True}), id="batchPolicy on a single record"),
        pytest.param(single(type="delete", record={"id": "003"}, mode="synchronous"), id="delete"),
        pytest.param(batch(100), id="100 items"),
        pytest.param(single(record={}), id="empty record"),
        pytest.param(single(record={"n": None, "l": (1, 2.5, "x"), "d": {"k": [True]}}), id="json"),
    ],
)
def test_harmless_combinations_are_sent_as_given(
    core: Core, server: ScriptedServer, request_: dict[str, Any]
) -> None:
    result = write_records(core, request_)

    assert isinstance(result, Ok), result
    assert len(server.received) == 1
