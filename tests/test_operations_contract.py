"""The operation requests ampwrite sends and the answers it reads, checked against the
Platform API's contract itself.

`tests/contract/ampersand-operations-openapi.json` is the extract of the Platform API's
OpenAPI document beside it (`.yaml`, with its provenance and notes), converted to JSON once,
dates kept as the strings they are written as. The checks here read the contract directly
(paths, parameters, schemas, examples, security scheme), independently of ampwrite's code.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampwrite import (
    Core,
    Err,
    Ok,
    Result,
    get_operation,
    list_operation_logs,
    list_operations,
    wait_for_operation,
)
from ampwrite.errors import AmpWriteError, APIError, RequestValidationError
from ampwrite.models import Operation, OperationLog, OperationPage
from tests.conftest import API_KEY, Sleeps
from tests.operations_data import OPERATION, operation, platform_core
from tests.scripted_server import Received, ScriptedServer, json_reply

CONTRACT = pathlib.Path(__file__).parent / "contract" / "ampersand-operations-openapi.json"
TOLERATED_MISSING = {"projectId", "integrationId", "installationId", "configId", "actionType"}
"""Fields the contract requires in an Operation that ampwrite decodes without (as None): an
answer lacking one still says how the operation ended. The checks below judge answers by
the contract with only this one relaxation."""
SPEC: dict[str, Any] = json.loads(CONTRACT.read_text(encoding="utf-8"))
SCHEMAS = SPEC["components"]["schemas"]
SCHEMAS["Operation"]["required"] = [
    name for name in SCHEMAS["Operation"]["required"] if name not in TOLERATED_MISSING
]
GET_OPERATION = SPEC["paths"]["/projects/{projectIdOrName}/operations/{operationId}"]["get"]
BASE_PATH = "/v1"  # the scripted server's, as the contract's server URL has one


def schema_validator(name: str) -> Any:
    """A validator of the schema `name`, resolving the contract's own `#/...` references."""
    return jsonschema.Draft7Validator({"$ref": f"#/components/schemas/{name}", **SPEC})


OPERATION_SCHEMA = schema_validator("Operation")
LOG_LIST_SCHEMA = jsonschema.Draft7Validator(
    {"type": "array", "items": {"$ref": "#/components/schemas/Log"}, **SPEC}
)
PAGE_SCHEMA = jsonschema.Draft7Validator(
    {
        **SPEC["paths"][
            "/projects/{projectIdOrName}/integrations/{integrationId}"
            "/installations/{installationId}/operations"
        ]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        "components": SPEC["components"],
    }
)


# -- what is sent: matched against the contract's paths ------------------------------------------


def _template(path: str) -> re.Pattern[str]:
    """A path template of the contract as a pattern: each `{name}` is one segment."""
    parts = re.split(r"(\{\w+\})", path)
    return re.compile(
        "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
            for part in parts
        )
    )


TEMPLATES = {path: _template(path) for path in SPEC["paths"]}
API_KEY_SCHEME = SPEC["components"]["securitySchemes"]["APIKeyHeader"]


def conforming(received: Received) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The contract's operationId, path parameters (decoded) and query parameters (typed) of
    a request, after checking it against the contract; fails the test when it does not fit."""
    assert received.path.startswith(BASE_PATH + "/"), received.path
    path, _, raw_query = received.path[len(BASE_PATH) :].partition("?")
    matches = [(t, m) for t, pattern in TEMPLATES.items() if (m := pattern.fullmatch(path))]
    assert len(matches) == 1, f"{path} matches {len(matches)} paths of the contract"
    template, match = matches[0]
    operation_spec = SPEC["paths"][template].get(received.method.lower())
    assert operation_spec is not None, f"{received.method} is not allowed on {template}"
    parameters = {(p["in"], p["name"]): p for p in operation_spec["parameters"]}
    path_values = {}
    for name, raw in match.groupdict().items():
        assert raw not in (".", ".."), f"{name} is a dot-segment"
        decoded = unquote(raw, errors="strict")
        jsonschema.validate(decoded, parameters["path", name]["schema"])
        path_values[name] = decoded
    required = {n for (where, n), p in parameters.items() if where == "path" and p["required"]}
    assert set(path_values) == required
    query: dict[str, Any] = {}
    for name, raw in parse_qsl(raw_query, keep_blank_values=True, strict_parsing=bool(raw_query)):
        assert ("query", name) in parameters, f"{name} is not a query parameter of {template}"
        assert name not in query, f"{name} is sent twice"
        schema = parameters["query", name]["schema"]
        typed: Any = raw
        if schema["type"] == "integer":
            assert re.fullmatch(r"-?[0-9]+", raw), f"{name}={raw!r} is not an integer"
            typed = int(raw)
        jsonschema.validate(typed, schema)
        query[name] = typed
    assert API_KEY_SCHEME == {"type": "apiKey", "name": "X-Api-Key", "in": "header"}
    assert received.headers[API_KEY_SCHEME["name"].lower()] == API_KEY
    assert received.count(API_KEY_SCHEME["name"]) == 1
    assert "requestBody" not in operation_spec
    assert received.body == b"" and "content-type" not in received.headers
    return operation_spec["operationId"], path_values, query


@pytest.fixture
def core(server: ScriptedServer, sleeps: Sleeps) -> Iterator[Core]:
    with platform_core(server, sleeps) as configured:
        yield configured


ODD_IDS = [
    "my-project",
    "a/b",
    "..",
    ".",
    "with space",
    "100%",
    "q?x=1#f",
    "ünï©ødé",
    "Q9JT+2qfys28V4ODN+UayA==",
]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_get_and_logs_fill_the_contracts_paths(
    core: Core, server: ScriptedServer, odd: str
) -> None:
    server.script(json_reply(200, OPERATION), json_reply(200, []))

    assert isinstance(get_operation(core, odd, f"op-{odd}"), Ok)
    assert isinstance(list_operation_logs(core, f"p-{odd}", odd), Ok)

    assert conforming(server.received[0]) == (
        "getOperation",
        {"projectIdOrName": odd, "operationId": f"op-{odd}"},
        {},
    )
    assert conforming(server.received[1]) == (
        "listOperationLogs",
        {"projectIdOrName": f"p-{odd}", "operationId": odd},
        {},
    )


PAGE = {"results": [OPERATION], "pagination": {"done": True}}


@pytest.mark.parametrize(
    ("options", "query"),
    [
        ({}, {}),
        ({"page_size": 1}, {"pageSize": 1}),
        (
            {"page_size": 1000, "page_token": "Q9JT+2qfys28V4ODN+UayA=="},
            {"pageSize": 1000, "pageToken": "Q9JT+2qfys28V4ODN+UayA=="},
        ),
        ({"page_token": "a b&c=d/e?%"}, {"pageToken": "a b&c=d/e?%"}),
    ],
)
def test_list_fills_the_contracts_path_and_query(
    core: Core, server: ScriptedServer, options: dict[str, Any], query: dict[str, Any]
) -> None:
    server.script(json_reply(200, PAGE))

    result = list_operations(core, "proj", "int/1", "inst 1", **options)

    assert isinstance(result, Ok), result
    assert conforming(server.received[0]) == (
        "listOperations",
        {"projectIdOrName": "proj", "integrationId": "int/1", "installationId": "inst 1"},
        query,
    )


def test_waiting_polls_the_contracts_path(core: Core, server: ScriptedServer) -> None:
    server.script(json_reply(200, operation("in_progress")), json_reply(200, operation()))

    assert isinstance(wait_for_operation(core, "proj", "op/1"), Ok)

    assert [conforming(sent) for sent in server.received] == [
        ("getOperation", {"projectIdOrName": "proj", "operationId": "op/1"}, {})
    ] * 2


# any text, lone surrogates included, with the characters that matter in a path more often
id_texts = st.text(
    alphabet=st.characters(exclude_categories=()) | st.sampled_from("/.%?#+ ~"), max_size=8
)
Call = Callable[[Core, str, str], Result[Any, AmpWriteError]]
CALLS: dict[str, Call] = {
    "getOperation": lambda core, p, o: get_operation(core, p, o),
    "listOperationLogs": lambda core, p, o: list_operation_logs(core, p, o),
    "listOperations": lambda core, p, o: list_operations(core, p, o, o, page_token=p),
}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(sorted(CALLS)), first=id_texts, second=id_texts)
def test_any_id_is_sent_as_the_contract_says_or_refused_unsent(
    core: Core, server: ScriptedServer, name: str, first: str, second: str
) -> None:
    before = len(server.received)

    result = CALLS[name](core, first, second)

    def sendable(text: str) -> bool:
        return text != "" and not any("\ud800" <= c <= "\udfff" for c in text)

    if not (sendable(first) and sendable(second)):
        assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
        assert len(server.received) == before
        return
    assert len(server.received) == before + 1
    operation_id, path_values, query = conforming(server.received[-1])
    assert operation_id == name
    assert path_values["projectIdOrName"] == first
    if name == "listOperations":
        assert path_values["integrationId"] == path_values["installationId"] == second
        assert query == {"pageToken": first}
    else:
        assert path_values["operationId"] == second


# -- what is read: the contract's examples and schemas --------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(GET_OPERATION["responses"]["200"]["content"]["application/json"]["examples"])
)
def test_every_documented_operation_is_decoded(
    core: Core, server: ScriptedServer, name: str
) -> None:
    example = GET_OPERATION["responses"]["200"]["content"]["application/json"]["examples"][name]
    payload = example["value"]
    server.script(json_reply(200, payload))

    result = get_operation(core, "my-project", payload["id"])

    assert isinstance(result, Ok), result
    op = result.value
    assert (op.id, op.status, op.action_type) == (
        payload["id"],
        payload["status"],
        payload["actionType"],
    )
    assert (op.project_id, op.integration_id, op.installation_id, op.config_id) == (
        payload["projectId"],
        payload["integrationId"],
        payload["installationId"],
        payload["configId"],
    )
    assert op.result == payload.get("result")
    assert op.create_time == payload["createTime"]
    metadata = payload["metadata"]
    assert op.metadata.objects == tuple(metadata["objects"])
    assert op.metadata.successful_record_ids == tuple(metadata.get("successfulRecordIds", ()))
    progress = metadata.get("progress")
    if progress is None:
        assert op.metadata.progress is None
    else:
        assert op.metadata.progress is not None
        assert op.metadata.progress.records_processed == progress["recordsProcessed"]
        assert op.metadata.progress.records_estimated_total == progress["recordsEstimatedTotal"]
        assert op.metadata.progress.operation_id == progress["operationId"]
    assert op.metadata.extras == {} and op.extras == {}
    assert op.done is (payload["status"] != "in_progress")


def test_the_documented_not_found_problem_is_an_api_error(
    core: Core, server: ScriptedServer
) -> None:
    problem = GET_OPERATION["responses"]["default"]["content"]["application/problem+json"][
        "example"
    ]
    server.script(json_reply(404, problem, content_type="application/problem+json"))

    result = get_operation(core, "my-project", "3efc0f0f-4bb9-498f-996c-9893d98ca4b5")

    assert isinstance(result, Err) and type(result.error) is APIError
    error = result.error
    assert error.status == 404 and error.problem is not None
    assert error.problem.detail == problem["detail"]
    assert error.problem.remedy == problem["remedy"]
    assert error.problem.retryable is False
    assert error.request_id == problem["requestId"]
    assert problem["detail"] in str(error)
    assert len(server.received) == 1  # a 404 is not retried


def _field_examples(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        name: spec["example"] for name, spec in schema["properties"].items() if "example" in spec
    }


def test_a_log_made_of_the_documented_examples_is_decoded(
    core: Core, server: ScriptedServer
) -> None:
    log_schema = SCHEMAS["Log"]
    entry = _field_examples(log_schema)
    entry["message"] = {
        **_field_examples(log_schema["properties"]["message"]),
        "operation_id": "op-1",
        "error": "boom",
    }
    assert LOG_LIST_SCHEMA.is_valid([entry])
    server.script(json_reply(200, [entry]))

    result = list_operation_logs(core, "p", "op-1")

    assert isinstance(result, Ok), result
    (log,) = result.value
    assert (log.timestamp, log.severity) == (entry["timestamp"], entry["severity"])
    assert log.message.msg == entry["message"]["msg"]
    assert log.message.details == entry["message"]["details"]
    assert (log.message.operation_id, log.message.error) == ("op-1", "boom")


@pytest.mark.parametrize("done", [False, True])
def test_a_page_made_of_the_documented_examples_is_decoded(
    core: Core, server: ScriptedServer, done: bool
) -> None:
    pagination = {**_field_examples(SCHEMAS["PaginationInfo"]), "done": done}
    body = {"results": [OPERATION, operation("in_progress")], "pagination": pagination}
    assert PAGE_SCHEMA.is_valid(body)
    server.script(json_reply(200, body))

    result = list_operations(core, "p", "i", "inst")

    assert isinstance(result, Ok), result
    assert [op.status for op in result.value.results] == ["success", "in_progress"]
    expected = None if done else pagination["nextPageToken"]
    assert result.value.next_page_token == expected


def test_the_documented_metadata_example_is_decoded(core: Core, server: ScriptedServer) -> None:
    metadata = SCHEMAS["Operation"]["properties"]["metadata"]["example"]
    server.script(json_reply(200, {**OPERATION, "metadata": metadata}))

    result = get_operation(core, "p", "o")

    assert isinstance(result, Ok), result
    assert result.value.metadata.progress is not None
    assert (
        result.value.metadata.progress.records_processed == metadata["progress"]["recordsProcessed"]
    )


# -- the decoders accept exactly what the schemas accept ------------------------------------------
#
# jsonschema decides whether the contract accepts a body; ampwrite must agree. First every field
# of a body that has them all, one at a time: removed, then replaced by a value of each JSON type.
# Then bodies built field by field at random, each field a value of its declared type or any JSON
# value. Two deliberate differences are left out: a null for an optional scalar field is read as
# absent (the schema, OpenAPI 3.0 without `nullable`, refuses it), and 2.0 is not an integer for
# ampwrite (it is for JSON Schema).

FULL_OPERATION: dict[str, Any] = {
    **OPERATION,
    "metadata": {
        "objects": ["contact", "company"],
        "successfulRecordIds": ["001xx000003DGbYAAW"],
        "retry": {
            "attempts": 2,
            "lastAttempt": "2023-07-13T22:11:00Z",
            "lastNotified": "2023-07-13T22:12:00Z",
        },
        "progress": {
            "installationId": "66438162-5299-4669-a41d-85c5a3b1a83e",
            "objectName": "contact",
            "operationId": "3efc0f0f-4bb9-498f-996c-9893d98ca4b5",
            "recordsProcessed": 1250,
            "recordsEstimatedTotal": 5000,
        },
    },
}
FULL_LOGS: list[dict[str, Any]] = [
    {
        "timestamp": "2023-07-13T21:34:44.816354Z",
        "severity": "ERROR",
        "message": {
            "msg": "write failed",
            "error": "REQUIRED_FIELD_MISSING",
            "operation_id": "op-1",
            "details": {"request": "GET /api/v1/users"},
        },
    }
]
FULL_PAGE: dict[str, Any] = {
    "results": [FULL_OPERATION],
    "pagination": {"done": False, "nextPageToken": "Q9JT+2qfys28V4ODN+UayA=="},
}
WRONG_VALUES: list[Any] = [True, 7, 2.5, "text", [], ["x"], {}, {"k": "v"}]
Path = tuple[str | int, ...]


def _paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """The path of every value inside `value` (keys of objects, indexes of arrays)."""
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        yield (*prefix, key)
        if isinstance(child, (dict, list)):
            yield from _paths(child, (*prefix, key))


def _changed(body: Any, path: Path, value: Any = KeyError) -> Any:
    """A copy of `body` with the value at `path` replaced by `value` (or removed)."""
    copy = json.loads(json.dumps(body))
    *parents, last = path
    target = copy
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return copy


MUTATED = [
    ("get", FULL_OPERATION, OPERATION_SCHEMA),
    ("logs", FULL_LOGS, LOG_LIST_SCHEMA),
    ("list", FULL_PAGE, PAGE_SCHEMA),
]


@pytest.mark.parametrize(("call", "full", "validator"), MUTATED, ids=[m[0] for m in MUTATED])
def test_each_field_removed_or_mistyped_is_judged_as_the_contract_does(
    core: Core, server: ScriptedServer, call: str, full: Any, validator: Any
) -> None:
    read: dict[str, Callable[[], Result[Any, AmpWriteError]]] = {
        "get": lambda: get_operation(core, "p", "o"),
        "logs": lambda: list_operation_logs(core, "p", "o"),
        "list": lambda: list_operations(core, "p", "i", "n"),
    }
    assert validator.is_valid(full)
    variants = [
        _changed(full, path, value) for path in _paths(full) for value in [KeyError, *WRONG_VALUES]
    ]
    disagreements = []
    for body in variants:
        server.script(json_reply(200, body))
        result = read[call]()
        if result.ok is not validator.is_valid(body):
            disagreements.append((body, result))
    assert disagreements == []
    verdicts = [validator.is_valid(body) for body in variants]
    assert verdicts.count(True) > 10 and verdicts.count(False) > 10


scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.text(max_size=5),
)
any_json = st.recursive(
    scalars | st.none(),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=5,
)
not_null = st.one_of(
    scalars,
    st.lists(any_json, max_size=2),
    st.dictionaries(st.text(max_size=4), any_json, max_size=2),
)


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, so that a body with many fields is valid often enough."""
    return st.integers(0, 9).flatmap(lambda n: not_null if n == 0 else valid)


strings = st.text(max_size=6)
string_lists = st.lists(strings, max_size=3)


@st.composite
def bodies(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """An object of some of `fields` (each present or not) and maybe an unknown field."""
    body = {name: draw(field(valid)) for name, valid in fields.items() if draw(st.booleans())}
    if draw(st.booleans()):
        body["someFieldAddedLater"] = draw(any_json)
    return body


retry_bodies = bodies({"attempts": st.integers(), "lastAttempt": strings, "lastNotified": strings})
progress_bodies = bodies(
    {
        "installationId": strings,
        "objectName": strings,
        "operationId": strings,
        "recordsProcessed": st.integers(),
        "recordsEstimatedTotal": st.integers(),
    }
)
metadata_bodies = bodies(
    {
        "objects": string_lists,
        "successfulRecordIds": string_lists,
        "retry": retry_bodies,
        "progress": progress_bodies,
    }
)
OPERATION_FIELDS = {
    "projectId": strings,
    "integrationId": strings,
    "installationId": strings,
    "configId": strings,
    "actionType": st.sampled_from(["read", "write", "subscribe"]),
    "status": st.sampled_from(["success", "failure", "in_progress", "cancelled", ""]),
    "id": strings,
    "result": strings,
    "metadata": metadata_bodies,
    "createTime": strings,
}
REQUIRED = set(SCHEMAS["Operation"]["required"])


@st.composite
def operation_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(bodies(OPERATION_FIELDS))
    for name in REQUIRED:  # mostly present, so that the other fields get a say
        if name not in body and draw(st.integers(0, 9)):
            body[name] = draw(OPERATION_FIELDS[name])
    return body


log_bodies = st.lists(
    bodies(
        {
            "timestamp": strings,
            "severity": strings,
            "message": bodies(
                {
                    "msg": strings,
                    "error": strings,
                    "operation_id": strings,
                    "details": st.dictionaries(strings, strings, max_size=2),
                }
            ),
        }
    ),
    max_size=2,
)
page_bodies = bodies(
    {
        "results": st.lists(operation_bodies(), max_size=2),
        "pagination": bodies({"done": st.booleans(), "nextPageToken": strings}),
    }
)


def agree(validator: Any, body: Any, result: Result[Any, AmpWriteError]) -> None:
    valid = validator.is_valid(body)
    assert result.ok is valid, (body, result)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=operation_bodies())
def test_an_operation_decodes_exactly_when_the_contract_accepts_it(
    core: Core, server: ScriptedServer, body: dict[str, Any]
) -> None:
    server.script(json_reply(200, body))
    result = get_operation(core, "p", "o")
    agree(OPERATION_SCHEMA, body, result)
    if isinstance(result, Ok):
        assert isinstance(result.value, Operation)
        assert result.value.status == body["status"]
        assert result.value.extras == (
            {"someFieldAddedLater": body["someFieldAddedLater"]}
            if "someFieldAddedLater" in body
            else {}
        )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=log_bodies)
def test_logs_decode_exactly_when_the_contract_accepts_them(
    core: Core, server: ScriptedServer, body: list[dict[str, Any]]
) -> None:
    server.script(json_reply(200, body))
    result = list_operation_logs(core, "p", "o")
    agree(LOG_LIST_SCHEMA, body, result)
    if isinstance(result, Ok):
        assert all(isinstance(log, OperationLog) for log in result.value)
        assert [log.message.msg for log in result.value] == [e["message"]["msg"] for e in body]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=page_bodies)
def test_a_page_decodes_exactly_when_the_contract_accepts_it(
    core: Core, server: ScriptedServer, body: dict[str, Any]
) -> None:
    server.script(json_reply(200, body))
    result = list_operations(core, "p", "i", "n")
    agree(PAGE_SCHEMA, body, result)
    if isinstance(result, Ok):
        assert isinstance(result.value, OperationPage)
        assert len(result.value.results) == len(body["results"])


def test_the_generated_bodies_reach_both_verdicts() -> None:
    """The properties above are only worth something if both outcomes occur often."""
    verdicts: list[bool] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(body=operation_bodies())
    def collect(body: dict[str, Any]) -> None:
        verdicts.append(OPERATION_SCHEMA.is_valid(body))

    collect()
    assert verdicts.count(True) > 20 and verdicts.count(False) > 20
