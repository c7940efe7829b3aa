"""The sandbox against the published contract, checked with an independent validator
(``jsonschema`` on the repository's copy of the OpenAPI document, in tests/contract/):

* generated request bodies, valid and not: whatever the contract's WriteRequest schema
  refuses, the sandbox answers 400 text/plain; nothing is ever answered 5xx;
* every 200 and 422 body the sandbox sends matches the contract's response schemas;
* problem+json answers match the contract's ApiProblem schema.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from ampwrite.sandbox import Faults, Sandbox

CONTRACT = Path(__file__).resolve().parent / "contract" / "ampersand-write-openapi.json"
WRITE_PATH = "/v1/projects/proj-1/integrations/int-1/objects/contacts"

if not CONTRACT.exists():  # pragma: no cover - the copy is part of the repository
    pytest.skip(f"contract copy not found at {CONTRACT}", allow_module_level=True)

SPEC: dict[str, Any] = json.loads(CONTRACT.read_text(encoding="utf-8"))
OPERATION: dict[str, Any] = next(iter(SPEC["paths"].values()))["post"]


def validator(schema: dict[str, Any]) -> Any:
    # Local "#/components/..." references resolve against this root document.
    return Draft4Validator({**schema, "components": SPEC["components"]})


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


REQUEST = validator(ref("WriteRequest"))
OK_BODY = validator({"oneOf": [ref("WriteResponseSingleSuccess"), ref("WriteResponseBatch")]})
FAIL_BODY = validator({"oneOf": [ref("WriteResponseSingleFail"), ref("WriteResponseBatch")]})
PROBLEM = validator(
    OPERATION["responses"]["default"]["content"]["application/problem+json"]["schema"]
)


def post(conn: http.client.HTTPConnection, api_key: str, body: object) -> tuple[int, str, Any]:
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
    conn.request("POST", WRITE_PATH, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    raw = response.read()
    content_type = response.getheader("Content-Type", "")
    parsed = json.loads(raw) if "json" in content_type else raw.decode("utf-8")
    return response.status, content_type, parsed


def check_answer(request: object, status: int, content_type: str, body: Any) -> None:
    assert status in (200, 400, 422), (request, status, body)
    if status == 400:
        assert content_type.startswith("text/plain")
        assert body
    elif status == 200:
        assert content_type == "application/json"
        OK_BODY.validate(body)
    else:
        assert content_type == "application/json"
        FAIL_BODY.validate(body)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox(async_delay=0.0) as sb:
        yield sb


# -- generated requests -------------------------------------------------------------------

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=200),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=4),
)
junk = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=5,
)
record = st.dictionaries(
    st.sampled_from(["id", "email", "name", "score"]),
    st.one_of(st.sampled_from(["003000000000001", "a@x", ""]), st.integers(0, 3)),
    max_size=3,
)


valid_association = st.fixed_dictionaries(
    {}, optional={"to": st.fixed_dictionaries({"id": st.just("1")}), "types": st.just([])}
)
valid_item = st.fixed_dictionaries(
    {"record": record}, optional={"associations": st.lists(valid_association, max_size=2)}
)
valid_header = st.fixed_dictionaries({"key": st.text(max_size=3), "value": st.text(max_size=3)})


@st.composite
def write_requests(draw: st.DrawFn) -> Any:
    """A valid request, then zero to two mutations that may or may not break it."""
    write_type = draw(st.sampled_from(["create", "update", "delete"]))
    body: dict[str, Any] = {"groupRef": draw(st.sampled_from(["g", "other"])), "type": write_type}
    modes = (
        [None, "synchronous"] if write_type == "delete" else [None, "synchronous", "asynchronous"]
    )
    mode = draw(st.sampled_from(modes))
    if mode is not None:
        body["mode"] = mode
    if write_type != "delete" and draw(st.booleans()):
        body["batch"] = draw(st.lists(valid_item, min_size=1, max_size=4))
        if draw(st.booleans()):
            body["batchPolicy"] = {"allOrNone": draw(st.booleans())}
    else:
        body["record"] = draw(record)
        if write_type == "delete":
            body["record"]["id"] = draw(st.sampled_from(["003000000000001", "003nope"]))
        if mode == "asynchronous" and draw(st.booleans()):
            body["autoBatchPolicy"] = {"maxDelayMinutes": draw(st.integers(1, 1440))}
    if draw(st.booleans()):
        body["retryPolicy"] = {"deadlineHours": draw(st.integers(1, 48))}
    if draw(st.booleans()):
        body["associations"] = draw(st.lists(valid_association, max_size=2))
    if draw(st.booleans()):
        body["headers"] = draw(st.lists(valid_header, max_size=2))
    for _ in range(draw(st.integers(0, 2))):
        mutate(draw, body)
    return body


def mutate(draw: st.DrawFn, body: dict[str, Any]) -> None:
    keys = sorted(body)
    kind = draw(st.sampled_from(["drop", "replace", "unknown", "nested"]))
    if kind == "drop":
        body.pop(draw(st.sampled_from(keys)))
    elif kind == "replace":
        body[draw(st.sampled_from(keys))] = draw(junk)
    elif kind == "unknown":
        name = draw(st.sampled_from(["records", "grouRef", "allOrNone", "x", "types"]))
        body[name] = draw(junk)
    else:
        targets = [v for v in body.values() if isinstance(v, dict)]
        targets += [
            i for v in body.values() if isinstance(v, list) for i in v if isinstance(i, dict)
        ]
        if targets:
            target = draw(st.sampled_from(targets))
            field = draw(st.sampled_from([*sorted(target), "unexpected"]))
            target[field] = draw(junk)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(write_requests(), write_requests(), write_requests(), junk))
def test_generated_requests(shared_sandbox: Sandbox, body: object) -> None:
    host, port = shared_sandbox.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        status, content_type, answer = post(conn, shared_sandbox.api_key, body)
    finally:
        conn.close()
    event(f"status {status}")
    check_answer(body, status, content_type, answer)
    if not REQUEST.is_valid(body):
        assert status == 400, (body, answer)


# -- answers of every kind match the contract ----------------------------------------------


def test_every_answer_shape_matches_the_contract() -> None:
    with Sandbox(async_delay=0.0) as sb:
        sb.configure_object("contacts", required_fields=["email"], delete_enabled=True)
        host, port = sb.address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        key = sb.api_key
        g = {"groupRef": "g"}
        created = post(conn, key, {**g, "type": "create", "record": {"email": "a@x"}})
        record_id = created[2]["result"]["recordId"]
        requests: list[dict[str, Any]] = [
            {**g, "type": "create", "record": {"email": "b@x"}},
            {**g, "type": "create", "record": {"name": "no email"}},
            {**g, "type": "update", "record": {"id": record_id, "name": "x"}},
            {**g, "type": "update", "record": {"id": "missing"}},
            {**g, "type": "create", "mode": "asynchronous", "record": {"email": "c@x"}},
            {**g, "type": "create", "batch": [{"record": {"email": "d@x"}}, {"record": {}}]},
            {**g, "type": "create", "batch": [{"record": {}}, {"record": {}}]},
            {
                **g,
                "type": "create",
                "batchPolicy": {"allOrNone": True},
                "batch": [{"record": {"email": "e@x"}}, {"record": {}}],
            },
            {**g, "type": "delete", "record": {"id": record_id}},
            {**g, "type": "delete", "record": {"id": record_id}},
        ]
        statuses = []
        for request in requests:
            status, content_type, answer = post(conn, key, request)
            check_answer(request, status, content_type, answer)
            statuses.append(status)
        assert statuses == [200, 422, 200, 422, 200, 200, 422, 422, 200, 422]

        sb.set_faults(Faults(rate_limit=1.0))
        status, content_type, problem = post(conn, key, requests[0])
        assert (status, content_type) == (429, "application/problem+json")
        PROBLEM.validate(problem)
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)
        status, content_type, problem = post(conn, "wrong-key", requests[0])
        assert status == 401
        PROBLEM.validate(problem)
        conn.close()
