"""Edge cases found in review: each of these failed before its fix."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs
import pytest
import requests

from ampwrite import Core, Err, Ok, RetryConfig, write_records
from ampwrite.cli import EXIT_USAGE, error_report, main
from ampwrite.errors import (
    AmpWriteError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RequestTimeoutError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
    TransportError,
    ValidationIssue,
    WriteFailedError,
)
from ampwrite.models import BatchItem, WriteFailure, WriteRecordsRequest, WriteRequest
from ampwrite.sandbox import Sandbox
from tests.conftest import API_KEY
from tests.requests_data import single, with_changes, write_argv
from tests.scripted_server import ScriptedServer, Trickle, json_reply

HUGE = 10**5000


# -- errors cross process boundaries ---------------------------------------------------------

ERRORS: list[AmpWriteError] = [
    RequestValidationError((ValidationIssue("requestBody.type", "bad"),)),
    ConfigurationError("no key"),
    APIError("404", status=404, headers={"X-Request-Id": "r"}, body="gone"),
    BadRequestError("400", status=400, headers={}, body="bad"),
    AuthenticationError("401", status=401, headers={}, body=""),
    ServerError("500", status=500, headers={}, body=""),
    RateLimitError("429", retry_after=3.0, status=429, headers={"Retry-After": "3"}, body=""),
    WriteFailedError(
        "422",
        response=WriteFailure(operation_id="op", errors=()),
        status=422,
        headers={},
        body="{}",
        attempts=2,
    ),
    ResponseValidationError("bad 200", status=200, headers={}, body="<html>"),
    TransportError("reset", maybe_sent=True, kind="interrupted", attempts=3),
    RequestTimeoutError("slow", maybe_sent=False, kind="connect-timeout"),
]


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_every_error_pickles_with_its_attributes(error: AmpWriteError) -> None:
    copy = pickle.loads(pickle.dumps(Err(error))).error

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy).keys() == vars(error).keys()
    assert copy.attempts == error.attempts
    if isinstance(error, APIError):
        assert isinstance(copy, APIError) and copy.request_id == error.request_id


def _update_missing(url: str, key: str) -> Any:
    core = Core(key, server_url=url)
    return write_records(core, single(type="update", record={"id": "missing"}))


def test_an_err_comes_back_from_a_worker_process() -> None:
    with Sandbox() as sandbox, ProcessPoolExecutor(max_workers=1) as pool:
        result = pool.submit(_update_missing, sandbox.url, sandbox.api_key).result(timeout=30)

    assert isinstance(result, Err) and isinstance(result.error, WriteFailedError)
    assert "missing" in (result.error.errors[0].message or "")


# -- data that once made write_records raise -------------------------------------------------


def _self_referencing() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        (single(retryPolicy={"deadlineHours": HUGE}), "requestBody.retryPolicy.deadlineHours"),
        (single(type=HUGE), "requestBody.type"),
        (single(record={"n": HUGE}), "requestBody.record.n"),
        (single(record={HUGE: 1}), "requestBody.record[<int>]"),
        (with_changes(single(), objectName="bad \ud800"), "objectName"),
        (single(record={"bad \udc00 key": 1}), "requestBody.record['bad \\udc00 key']"),
    ],
    ids=[
        "huge int in a policy",
        "huge int as type",
        "huge int value",
        "huge int key",
        "surrogate in a path parameter",
        "surrogate in a record key",
    ],
)
def test_unencodable_data_is_an_error_value(
    core: Core, server: ScriptedServer, request_: Any, path: str
) -> None:
    result = write_records(core, request_)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert path in [issue.path for issue in result.error.issues], result.error.issues
    assert server.received == []


def test_a_model_holding_itself_is_refused(core: Core, server: ScriptedServer) -> None:
    body = WriteRequest(group_ref="g", type="create", record={}, associations=_self_referencing())
    request = WriteRecordsRequest(
        project_id_or_name="p", integration_id="i", object_name="o", request_body=body
    )

    result = write_records(core, request)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert server.received == []


def test_an_attrs_object_as_a_record_is_refused_not_converted(
    core: Core, server: ScriptedServer
) -> None:
    @attrs.frozen
    class Contact:
        first_name: str

    request = WriteRecordsRequest(
        project_id_or_name="p",
        integration_id="i",
        object_name="o",
        request_body=WriteRequest(
            group_ref="g",
            type="create",
            batch=[BatchItem(record=Contact("Ada"))],  # type: ignore[arg-type]
        ),
    )

    result = write_records(core, request)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert result.error.issues[0].path == "requestBody.batch[0].record"
    assert server.received == []


def test_a_deep_but_finite_record_is_sent(core: Core, server: ScriptedServer) -> None:
    record: dict[str, Any] = {}
    inner = record
    for _ in range(200):
        inner["child"] = {}
        inner = inner["child"]

    assert isinstance(write_records(core, single(record=record)), Ok)


# -- headers, keys and timeouts that cannot be sent ------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Note": "café ☕"},
        {"X-Noté": "v"},
        {"X-Api-Key\t": "other"},
        {"Transfer-Encoding": "chunked"},
        {"Connection": "close"},
    ],
)
def test_unsendable_headers_are_refused(
    core: Core, server: ScriptedServer, headers: dict[str, str]
) -> None:
    result = write_records(core, single(), headers=headers)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert server.received == []


def test_a_callers_header_replaces_ours_whatever_its_case(
    core: Core, server: ScriptedServer
) -> None:
    write_records(core, single(), headers={"content-type": "application/json; charset=utf-8"})

    assert server.received[0].count("Content-Type") == 1
    assert server.received[0].headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("key", ["caf\u00e9-key", "key with \u20ac", "tab\tkey"])
def test_keys_that_are_not_printable_ascii_are_refused(key: str, server: ScriptedServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Core(key, server_url=server.url)
    assert key not in str(caught.value)
    with Core(lambda: key, server_url=server.url) as core:
        result = write_records(core, single())
    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert server.received == []


@pytest.mark.parametrize("timeout", [1e10, (1, 1e7)])
def test_absurd_timeouts_are_refused(timeout: Any) -> None:
    with pytest.raises(ConfigurationError):
        Core(API_KEY, timeout=timeout)


def test_a_single_number_bounds_the_attempt_as_a_whole(server: ScriptedServer) -> None:
    server.script(Trickle(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 500, 0.01))
    with Core(API_KEY, server_url=server.url, timeout=1.0, retries=RetryConfig.none()) as core:
        started = time.monotonic()
        result = write_records(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert elapsed < 1.8  # 1 s, not connect + read = 2 s


@pytest.mark.parametrize("used_before", [False, True], ids=["fresh", "used before"])
def test_a_callers_session_also_gets_the_deadline(
    server: ScriptedServer, used_before: bool
) -> None:
    session = requests.Session()
    if used_before:  # its pool already exists, with a connection kept alive to the server
        assert session.get(server.url + "/warm-up", timeout=5).status_code == 200
    server.script(Trickle(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 500, 0.01))
    with Core(
        API_KEY,
        server_url=server.url,
        session=session,
        timeout=(0.5, 0.5),
        retries=RetryConfig.none(),
    ) as core:
        started = time.monotonic()
        result = write_records(core, single())
        elapsed = time.monotonic() - started

    assert isinstance(result, Err) and isinstance(result.error, RequestTimeoutError)
    assert elapsed < 2.0


# -- answers that were decoded too kindly ----------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"operationId": "x", "successCount": 1, "failureCount": 0, "results": {}},
        {"operationId": "x", "successCount": 1, "failureCount": 0, "errors": "provider exploded"},
        {"operationId": "x", "result": "written"},
        {"operationId": "x", "result": {"success": True, "data": ["not", "an", "object"]}},
    ],
)
def test_a_2xx_of_the_wrong_shape_is_not_ok(
    core: Core, server: ScriptedServer, payload: Any
) -> None:
    server.script(json_reply(200, payload))

    result = write_records(core, single())

    assert isinstance(result, Err) and isinstance(result.error, ResponseValidationError)


def test_a_malformed_problem_field_is_kept_aside(core: Core, server: ScriptedServer) -> None:
    problem = {"title": "Down", "causes": "database connection failed", "status": "503"}
    server.script(json_reply(400, problem, content_type="application/problem+json"))

    result = write_records(core, single())

    assert isinstance(result, Err) and isinstance(result.error, BadRequestError)
    assert result.error.problem is not None
    assert result.error.problem.title == "Down" and result.error.problem.causes == ()
    assert result.error.problem.extras == {"causes": "database connection failed", "status": "503"}


def test_interim_answers_are_passed_over(core: Core, server: ScriptedServer) -> None:
    final = b'{"operationId": "op", "result": {"success": true, "recordId": "42"}}'
    server.script(
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        + b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(final)}\r\n\r\n".encode()
        + final
    )

    result = write_records(core, single())

    assert isinstance(result, Ok) and result.value.result.record_id == "42"  # type: ignore[union-attr]


def test_an_echoed_key_is_redacted_everywhere(server: ScriptedServer) -> None:
    problem = {"title": "Unauthorized", "detail": f"key {API_KEY} is not valid"}
    server.script(
        json_reply(
            401, problem, content_type="application/problem+json", headers=[("X-Echo", API_KEY)]
        ),
        json_reply(422, {"operationId": "op", "errors": [{"message": API_KEY}]}),
    )
    with Core(API_KEY, server_url=server.url) as core:
        errors = [write_records(core, single()).error for _ in range(2)]

    for error in errors:
        assert isinstance(error, APIError)
        shown = [
            repr(error.problem),
            repr(dict(error.headers)),
            error.body,
            str(error),
            json.dumps(error_report(error)),
        ]
        if isinstance(error, WriteFailedError):
            shown.append(repr(error.response))
        assert all(API_KEY not in text for text in shown)


# -- processes -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_a_callers_session_connection(
    server: ScriptedServer,
) -> None:
    core = Core(API_KEY, server_url=server.url, session=requests.Session())
    assert write_records(core, single()).ok
    pid = os.fork()
    if pid == 0:
        os._exit(0 if write_records(core, single()).ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert server.connections == 2


# -- the command line ------------------------------------------------------------------------


def test_a_deeply_nested_record_file_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    record = tmp_path / "deep.json"
    record.write_text("[" * 100_000 + "]" * 100_000)
    argv = write_argv("http://127.0.0.1:9/v1", "k", "--record", f"@{record}")

    assert main(argv) == EXIT_USAGE


class _BrokenRow(dict[str, Any]):
    """A lazily loaded row whose loading fails, as a database cursor's row might."""

    def items(self) -> Any:
        raise LookupError("row no longer available")

    def __iter__(self) -> Any:
        raise LookupError("row no longer available")


def test_headers_that_fail_when_read_are_an_error_value(core: Core, server: ScriptedServer) -> None:
    class Broken(dict[str, str]):
        def items(self) -> Any:
            raise RuntimeError("cannot iterate")

    result = write_records(core, single(), headers=Broken(a="b"))

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert result.error.issues[0].path == "headers"
    assert "could not be read" in result.error.issues[0].message
    assert server.received == []


def test_a_mapping_that_fails_when_read_is_an_error_value(
    core: Core, server: ScriptedServer
) -> None:
    result = write_records(core, single(record=_BrokenRow(email="a@b.c")))

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert "LookupError" in str(result.error)
    assert server.received == []
