"""What ampwrite sends and reads, checked against the published contract itself.

`tests/contract/ampersand-write-openapi.json` is the API's OpenAPI document; its request
schema is applied here by `jsonschema`, independently of ampwrite's own rules.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, TypeVar

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampwrite import Core, Err, Ok, write_records
from ampwrite._wire import to_wire
from ampwrite.errors import RequestValidationError, WriteFailedError
from ampwrite.models import (
    AutoBatchPolicy,
    BatchItem,
    BatchPolicy,
    BatchWriteResponse,
    Header,
    RetryPolicy,
    SingleWriteResponse,
    WriteRecordsRequest,
    WriteRequest,
)
from tests.scripted_server import ScriptedServer, json_reply

SPEC = json.loads(
    (pathlib.Path(__file__).parent / "contract" / "ampersand-write-openapi.json").read_text()
)
OPERATION = SPEC["paths"][
    "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"
]["post"]
REQUEST_SCHEMA = SPEC["components"]["schemas"]["WriteRequest"]
REQUEST_EXAMPLES = OPERATION["requestBody"]["content"]["application/json"]["examples"]
VALIDATOR = jsonschema.Draft7Validator(REQUEST_SCHEMA)


def _response_examples(status: str) -> dict[str, Any]:
    return dict(OPERATION["responses"][status]["content"]["application/json"]["examples"])


@pytest.mark.parametrize("name", sorted(REQUEST_EXAMPLES))
def test_every_documented_example_is_sent_as_the_contract_says(
    core: Core, server: ScriptedServer, name: str
) -> None:
    body = REQUEST_EXAMPLES[name]["value"]
    request = {
        "projectIdOrName": "my-project",
        "integrationId": "int-1",
        "objectName": "contacts",
        "requestBody": body,
    }

    result = write_records(core, request)

    assert isinstance(result, Ok), result
    sent = server.received[0].json()
    VALIDATOR.validate(sent)
    assert sent == body


@pytest.mark.parametrize(
    ("status", "name"),
    [("200", name) for name in _response_examples("200")]
    + [("422", name) for name in _response_examples("422")],
)
def test_every_documented_answer_is_decoded(
    core: Core, server: ScriptedServer, status: str, name: str
) -> None:
    payload = _response_examples(status)[name]["value"]
    server.script(json_reply(int(status), payload))

    result = write_records(
        core,
        {
            "projectIdOrName": "p",
            "integrationId": "i",
            "objectName": "o",
            "requestBody": {"groupRef": "g", "type": "create", "record": {}},
        },
    )

    if status == "200":
        assert isinstance(result, Ok)
        expected = BatchWriteResponse if "successCount" in payload else SingleWriteResponse
        assert type(result.value) is expected
        assert result.value.operation_id == payload["operationId"]
    else:
        assert isinstance(result, Err) and isinstance(result.error, WriteFailedError)
        assert result.error.operation_id == payload["operationId"]
        assert [m.message for m in result.error.errors] == [e["message"] for e in payload["errors"]]


# -- property: every request ampwrite accepts fits the contract's schema -----------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
records = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
T = TypeVar("T")


def maybe(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


@st.composite
def write_requests(draw: st.DrawFn) -> WriteRecordsRequest:
    write_type = draw(st.sampled_from(["create", "update", "delete"]))
    mode = draw(maybe(st.sampled_from(["synchronous", "asynchronous"])))
    use_batch = draw(st.booleans())
    record = draw(records)
    if write_type == "delete":
        record = {**record, "id": draw(st.text(min_size=1, max_size=5))}
    body = WriteRequest(
        group_ref=draw(st.text(min_size=1, max_size=8)),
        type=write_type,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        record=None if use_batch else record,
        batch=[BatchItem(record=r) for r in draw(st.lists(records, min_size=1, max_size=3))]
        if use_batch
        else None,
        batch_policy=draw(maybe(st.builds(BatchPolicy, all_or_none=maybe(st.booleans())))),
        retry_policy=draw(maybe(st.builds(RetryPolicy, deadline_hours=maybe(st.integers(0, 50))))),
        auto_batch_policy=draw(
            maybe(st.builds(AutoBatchPolicy, max_delay_minutes=st.integers(0, 1500)))
        ),
        associations=draw(maybe(st.lists(records, max_size=2))),
        headers=draw(
            maybe(
                st.lists(
                    st.builds(Header, key=st.text(max_size=4), value=st.text(max_size=4)),
                    max_size=2,
                )
            )
        ),
    )
    return WriteRecordsRequest(
        project_id_or_name=draw(st.text(max_size=6)),
        integration_id=draw(st.text(min_size=1, max_size=6)),
        object_name=draw(st.text(min_size=1, max_size=6)),
        request_body=body,
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=write_requests())
def test_accepted_requests_fit_the_schema_and_refused_ones_send_nothing(
    core: Core, server: ScriptedServer, request: WriteRecordsRequest
) -> None:
    before = len(server.received)
    result = write_records(core, request)

    if isinstance(result, Err) and isinstance(result.error, RequestValidationError):
        assert len(server.received) == before
        return
    assert isinstance(result, Ok), result
    sent = server.received[-1].json()
    VALIDATOR.validate(sent)
    assert sent == json.loads(json.dumps(to_wire(request.request_body)))


@settings(max_examples=150, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from([*sorted(REQUEST_SCHEMA["properties"]), "extra"]), json_values, max_size=6
    )
)
def test_schema_invalid_bodies_are_refused(body: dict[str, Any]) -> None:
    from ampwrite._validate import check_request

    request = {"projectIdOrName": "p", "integrationId": "i", "objectName": "o", "requestBody": body}
    if not VALIDATOR.is_valid(body):
        assert isinstance(check_request(request), tuple)
