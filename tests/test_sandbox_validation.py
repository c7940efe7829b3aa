"""Sandbox request validation, over real HTTP: every invalid body, malformed JSON, wrong
content type or bad path segment is answered 400 text/plain naming the field, never 2xx or
5xx, even with faults switched on."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from ampwrite.sandbox import Faults, Sandbox
from tests.sandbox_client import Client

WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"


def base(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"groupRef": "group-1", "type": "create", "record": {"name": "Ada"}}
    for key, value in changes.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


DROP = object()
ITEM = {"record": {"name": "Ada"}}
ASYNC = {"mode": "asynchronous"}

# (case id, body, text the 400 message must contain)
INVALID_BODIES: list[tuple[str, object, str]] = [
    ("groupRef-missing", base(groupRef=DROP), "groupRef: required field is missing"),
    ("groupRef-empty", base(groupRef=""), "groupRef: must be a non-empty string"),
    ("groupRef-number", base(groupRef=5), "groupRef: expected a string, got integer"),
    ("groupRef-null", base(groupRef=None), "groupRef: expected a string, got null"),
    ("type-missing", base(type=DROP), "type: required field is missing"),
    ("type-typo", base(type="crate"), "type: must be one of create, update, delete"),
    ("type-wrong-case", base(type="Create"), "type: must be one of"),
    ("type-number", base(type=1), "type: expected a string"),
    ("mode-unknown", base(mode="sync"), "mode: must be one of synchronous, asynchronous"),
    ("mode-null", base(mode=None), "mode: expected a string, got null"),
    ("record-array", base(record=[1]), "record: expected an object, got array"),
    ("record-string", base(record="x"), "record: expected an object, got string"),
    ("record-null", base(record=None), "record: expected an object, got null"),
    ("record-and-batch-missing", base(record=DROP), "record: required field is missing"),
    ("record-and-batch-both", base(batch=[ITEM]), "exactly one of 'record' or 'batch'"),
    ("batch-empty", base(record=DROP, batch=[]), "batch: must contain at least 1"),
    ("batch-too-long", base(record=DROP, batch=[ITEM] * 101), "batch: must contain at most 100"),
    ("batch-object", base(record=DROP, batch=ITEM), "batch: expected an array, got object"),
    ("batch-item-string", base(record=DROP, batch=["x"]), "batch[0]: expected an object"),
    (
        "batch-item-record-missing",
        base(record=DROP, batch=[ITEM, {"associations": []}]),
        "batch[1].record: required field is missing",
    ),
    (
        "batch-item-record-string",
        base(record=DROP, batch=[ITEM, ITEM, ITEM, {"record": "x"}]),
        "batch[3].record: expected an object, got string",
    ),
    (
        "batch-item-unknown-key",
        base(record=DROP, batch=[{"record": {}, "records": {}}]),
        "batch[0].records: unknown field",
    ),
    (
        "batch-item-associations-object",
        base(record=DROP, batch=[{"record": {}, "associations": {}}]),
        "batch[0].associations: expected an array",
    ),
    (
        "batch-item-association-string",
        base(record=DROP, batch=[{"record": {}, "associations": ["x"]}]),
        "batch[0].associations[0]: expected an object",
    ),
    (
        "batch-for-delete",
        base(type="delete", record=DROP, batch=[{"record": {"id": "1"}}]),
        "batch: batch writes are supported only for create and update",
    ),
    (
        "allOrNone-string",
        base(record=DROP, batch=[ITEM], batchPolicy={"allOrNone": "true"}),
        "batchPolicy.allOrNone: expected a boolean, got string",
    ),
    (
        "allOrNone-integer",
        base(record=DROP, batch=[ITEM], batchPolicy={"allOrNone": 1}),
        "batchPolicy.allOrNone: expected a boolean, got integer",
    ),
    (
        "batchPolicy-typo",
        base(record=DROP, batch=[ITEM], batchPolicy={"allOrNon": True}),
        "batchPolicy.allOrNon: unknown field (did you mean 'allOrNone'?)",
    ),
    ("batchPolicy-array", base(batchPolicy=[]), "batchPolicy: expected an object"),
    (
        "deadlineHours-zero",
        base(retryPolicy={"deadlineHours": 0}),
        "retryPolicy.deadlineHours: must be at least 1, got 0",
    ),
    (
        "deadlineHours-too-big",
        base(retryPolicy={"deadlineHours": 49}),
        "retryPolicy.deadlineHours: must be at most 48, got 49",
    ),
    (
        "deadlineHours-boolean",
        base(retryPolicy={"deadlineHours": True}),
        "retryPolicy.deadlineHours: expected an integer, got boolean",
    ),
    (
        "deadlineHours-float",
        base(retryPolicy={"deadlineHours": 1.5}),
        "retryPolicy.deadlineHours: expected an integer, got number",
    ),
    (
        "deadlineHours-string",
        base(retryPolicy={"deadlineHours": "24"}),
        "retryPolicy.deadlineHours: expected an integer, got string",
    ),
    (
        "retryPolicy-typo",
        base(retryPolicy={"deadlineHour": 2}),
        "retryPolicy.deadlineHour: unknown field (did you mean 'deadlineHours'?)",
    ),
    (
        "autoBatch-maxDelay-missing",
        base(**ASYNC, autoBatchPolicy={"retryDeadlineHours": 2}),
        "autoBatchPolicy.maxDelayMinutes: required field is missing",
    ),
    (
        "autoBatch-maxDelay-zero",
        base(**ASYNC, autoBatchPolicy={"maxDelayMinutes": 0}),
        "autoBatchPolicy.maxDelayMinutes: must be at least 1",
    ),
    (
        "autoBatch-maxDelay-too-big",
        base(**ASYNC, autoBatchPolicy={"maxDelayMinutes": 1441}),
        "autoBatchPolicy.maxDelayMinutes: must be at most 1440",
    ),
    (
        "autoBatch-maxDelay-boolean",
        base(**ASYNC, autoBatchPolicy={"maxDelayMinutes": False}),
        "autoBatchPolicy.maxDelayMinutes: expected an integer, got boolean",
    ),
    (
        "autoBatch-retryDeadline-too-big",
        base(**ASYNC, autoBatchPolicy={"maxDelayMinutes": 5, "retryDeadlineHours": 49}),
        "autoBatchPolicy.retryDeadlineHours: must be at most 48",
    ),
    (
        "autoBatch-unknown-key",
        base(**ASYNC, autoBatchPolicy={"maxDelayMinutes": 5, "maxDelay": 5}),
        "autoBatchPolicy.maxDelay: unknown field",
    ),
    (
        "autoBatch-synchronous",
        base(mode="synchronous", autoBatchPolicy={"maxDelayMinutes": 5}),
        "autoBatchPolicy: only allowed when mode is asynchronous",
    ),
    (
        "autoBatch-default-mode",
        base(autoBatchPolicy={"maxDelayMinutes": 5}),
        "autoBatchPolicy: only allowed when mode is asynchronous",
    ),
    (
        "autoBatch-with-batch",
        base(**ASYNC, record=DROP, batch=[ITEM], autoBatchPolicy={"maxDelayMinutes": 5}),
        "autoBatchPolicy: only allowed for single-record writes",
    ),
    ("associations-object", base(associations={}), "associations: expected an array"),
    ("associations-item-string", base(associations=["x"]), "associations[0]: expected an object"),
    ("headers-object", base(headers={"key": "a"}), "headers: expected an array"),
    (
        "headers-value-missing",
        base(headers=[{"key": "a"}]),
        "headers[0].value: required field is missing",
    ),
    (
        "headers-value-number",
        base(headers=[{"key": "a", "value": "b"}, {"key": "c", "value": 1}]),
        "headers[1].value: expected a string, got integer",
    ),
    (
        "headers-value-crlf",
        base(headers=[{"key": "a", "value": "b\r\nX-Injected: 1"}]),
        "headers[0].value: must not contain CR, LF or NUL",
    ),
    (
        "headers-unknown-key",
        base(headers=[{"key": "a", "value": "b", "name": "c"}]),
        "headers[0].name: unknown field",
    ),
    ("top-level-typo", base(groupref="g"), "groupref: unknown field (did you mean 'groupRef'?)"),
    ("top-level-unknown", base(records={}), "records: unknown field (did you mean 'record'?)"),
    ("delete-without-id", base(type="delete", record={}), "record.id: a delete needs"),
    ("delete-empty-id", base(type="delete", record={"id": ""}), "record.id: a delete needs"),
    ("delete-number-id", base(type="delete", record={"id": 7}), "record.id: a delete needs"),
    (
        "delete-asynchronous",
        base(type="delete", mode="asynchronous", record={"id": "1"}),
        "mode: delete is synchronous only",
    ),
    ("body-array", [base()], "request body: expected an object, got array"),
    ("body-string", "hello", "request body: expected an object, got string"),
    ("body-number", 42, "request body: expected an object, got integer"),
    ("body-null", None, "request body: expected an object, got null"),
    ("body-true", True, "request body: expected an object, got boolean"),
]


def test_table_is_large_enough() -> None:
    assert len(INVALID_BODIES) >= 30
    assert len({case for case, _, _ in INVALID_BODIES}) == len(INVALID_BODIES)


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(body, expected, id=case) for case, body, expected in INVALID_BODIES],
)
def test_invalid_body_is_400_text(sb: Sandbox, client: Client, body: object, expected: str) -> None:
    reply = client.write(body)
    assert reply.status == 400, reply.text
    assert reply.content_type.startswith("text/plain")
    assert expected in reply.text
    assert reply.headers.get("X-Request-Id")
    assert sb.records() == []


MALFORMED: list[tuple[str, bytes, str]] = [
    ("truncated", b'{"groupRef": "g"', "malformed JSON"),
    ("empty", b"", "empty body"),
    ("whitespace", b"  \n ", "empty body"),
    ("single-quotes", b"{'groupRef': 'g'}", "malformed JSON"),
    ("trailing-comma", b'{"groupRef": "g",}', "malformed JSON"),
    ("trailing-garbage", b"{} x", "malformed JSON"),
    ("nan", b'{"groupRef": "g", "type": "create", "record": {"a": NaN}}', "NaN"),
    ("infinity", b'{"groupRef": "g", "type": "create", "record": {"a": Infinity}}', "Infinity"),
    ("huge-number", b'{"groupRef": "g", "type": "create", "record": {"a": 1e400}}', "out of range"),
    (
        "huge-integer",
        b'{"groupRef": "g", "type": "create", "record": {"a": 1' + b"0" * 5000 + b"}}",
        "malformed",
    ),
    ("not-utf8", b'{"groupRef": "\xff"}', "not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [pytest.param(raw, expected, id=case) for case, raw, expected in MALFORMED],
)
def test_malformed_json_is_400_text(client: Client, raw: bytes, expected: str) -> None:
    reply = client.send("POST", WRITE_PATH, raw)
    assert reply.status == 400
    assert reply.content_type.startswith("text/plain")
    assert expected in reply.text


def test_utf8_bom_and_charset_are_accepted(client: Client) -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(base()).encode()
    content_type = {"Content-Type": "application/json; charset=utf-8"}
    reply = client.send("POST", WRITE_PATH, raw, content_type)
    assert reply.status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_400(client: Client, content_type: str) -> None:
    raw = json.dumps(base()).encode()
    reply = client.send("POST", WRITE_PATH, raw, {"Content-Type": content_type})
    assert reply.status == 400
    assert reply.content_type.startswith("text/plain")
    assert "Content-Type" in reply.text


def test_missing_content_type_is_400(sb: Sandbox) -> None:
    host, port = sb.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", WRITE_PATH, skip_accept_encoding=True)
    raw = json.dumps(base()).encode()
    conn.putheader("X-Api-Key", sb.api_key)
    conn.putheader("Content-Length", str(len(raw)))
    conn.endheaders(raw)
    response = conn.getresponse()
    assert response.status == 400
    assert response.getheader("Content-Type", "").startswith("text/plain")
    assert "Content-Type" in response.read().decode()
    conn.close()
    assert sb.records() == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/projects//integrations/i/objects/o", "projectIdOrName: path segment must not be"),
        ("/v1/projects/p/integrations//objects/o", "integrationId: path segment must not be empty"),
        ("/v1/projects/p/integrations/i/objects/", "objectName: path segment must not be empty"),
        ("/v1/projects/p/integrations/i/objects/%FF", "objectName: path segment is not valid"),
    ],
)
def test_bad_path_segments_are_400(client: Client, path: str, expected: str) -> None:
    reply = client.write(base(), path=path)
    assert reply.status == 400
    assert reply.content_type.startswith("text/plain")
    assert expected in reply.text


def test_invalid_requests_never_meet_faults() -> None:
    faults = Faults(seed=3, error_500=0.3, error_503=0.3, reset=0.2, commit_then_fail=0.2)
    with Sandbox(faults=faults) as sb:
        sb.fail_next(500, count=2)
        client = Client(sb)
        for _, body, _ in INVALID_BODIES:
            assert client.write(body).status == 400
        assert client.send("POST", WRITE_PATH, b"{").status == 400
        # The scripted failures are still waiting for the first valid writes.
        assert client.write(base()).status == 500
        assert client.write(base()).status == 500
        client.close()
        statuses = [entry.status for entry in sb.requests]
        assert statuses.count(400) == len(INVALID_BODIES) + 1
        assert sb.records() == []


def test_valid_edge_values_are_accepted(client: Client) -> None:
    accepted = [
        base(retryPolicy={"deadlineHours": 1}),
        base(retryPolicy={"deadlineHours": 48}),
        base(retryPolicy={}),
        base(mode="asynchronous", autoBatchPolicy={"maxDelayMinutes": 1440}),
        base(mode="asynchronous", autoBatchPolicy={"maxDelayMinutes": 1, "retryDeadlineHours": 48}),
        base(record=DROP, batch=[ITEM] * 100),
        base(record=DROP, batch=[ITEM], batchPolicy={}),
        base(record=DROP, batch=[{"record": {}, "associations": [{"to": {"id": "1"}}]}]),
        base(record={}),
        base(headers=[], associations=[]),
        base(headers=[{"key": "Sforce-Duplicate-Rule-Header", "value": "allowSave=true"}]),
        base(groupRef=" "),
    ]
    for body in accepted:
        reply = client.write(body)
        assert reply.status == 200, (body, reply.text)
