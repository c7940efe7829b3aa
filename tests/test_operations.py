"""Following asynchronous writes: `get_operation`, `wait_for_operation`, `list_operation_logs`,
`list_operations`, `iter_operations`, their facade and `Core.platform_url`, over a real
loopback server. Waits are recorded (the `sleeps` fixture, or a clock that moves only when
slept), so every wait is asserted exactly and nothing here takes real time."""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

import ampwrite
from ampwrite import (
    AmpWrite,
    Core,
    Err,
    Ok,
    Result,
    RetryConfig,
    aio,
    get_operation,
    iter_operations,
    list_operation_logs,
    list_operations,
    wait_for_operation,
    write_records,
)
from ampwrite.core import DEFAULT_PLATFORM_URL
from ampwrite.errors import (
    AmpWriteError,
    APIError,
    ConfigurationError,
    OperationTimeoutError,
    RequestValidationError,
    ResponseValidationError,
    ServerError,
)
from ampwrite.models import Operation, OperationPage, OperationStatus
from tests.conftest import API_KEY, Sleeps
from tests.operations_data import (
    OPERATION,
    OPERATION_ID,
    operation,
    operation_reply,
    platform_core,
    problem_reply,
)
from tests.requests_data import single
from tests.scripted_server import CLOSE, RESET, Reply, ScriptedServer, Stall, json_reply

IN_PROGRESS = operation_reply("in_progress")


@pytest.fixture
def core(server: ScriptedServer, sleeps: Sleeps) -> Iterator[Core]:
    """A Core whose Platform API is the scripted server (so nothing here leaves loopback)."""
    with platform_core(server, sleeps) as configured:
        yield configured


class FakeTime:
    """A clock that moves only when slept: waits against a deadline, exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def timed_core(server: ScriptedServer, fake_time: FakeTime) -> Iterator[Core]:
    with platform_core(server, fake_time.sleep, clock=fake_time.clock) as configured:
        yield configured


# -- Core.platform_url ----------------------------------------------------------------------------


def test_platform_url_comes_from_the_argument_then_the_environment_then_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AMPERSAND_PLATFORM_URL", raising=False)
    assert Core(API_KEY).platform_url == DEFAULT_PLATFORM_URL == "https://api.withampersand.com/v1"
    monkeypatch.setenv("AMPERSAND_PLATFORM_URL", "https://platform.example.com/v1/")
    assert Core(API_KEY).platform_url == "https://platform.example.com/v1"
    assert Core(API_KEY, platform_url="https://other.example/v2").platform_url == (
        "https://other.example/v2"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com/v1",
        "http://api.example.com/v1",
        "https://user:secret@api.example.com/v1",
        "https://api.example.com/v1?x=1",
        "https://api.example.com/v1\n",
        "",
    ],
)
def test_platform_url_is_checked_like_server_url(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="platform_url"):
        Core(API_KEY, platform_url=url)
    if url:
        monkeypatch.setenv("AMPERSAND_PLATFORM_URL", url)
        with pytest.raises(ConfigurationError, match="AMPERSAND_PLATFORM_URL"):
            Core(API_KEY)


def test_plain_http_platform_url_needs_allow_insecure_http() -> None:
    core = Core(API_KEY, platform_url="http://api.example.com/v1", allow_insecure_http=True)
    assert core.platform_url == "http://api.example.com/v1"


def test_repr_shows_the_platform_url_and_never_the_key(core: Core, server: ScriptedServer) -> None:
    assert f"platform_url={server.url!r}" in repr(core)
    assert API_KEY not in repr(core) and API_KEY not in repr(AmpWrite(API_KEY))


def test_a_pickled_core_keeps_its_platform_url_and_reads_operations(
    core: Core, server: ScriptedServer
) -> None:
    copy = pickle.loads(pickle.dumps(core))
    server.script(operation_reply())

    assert copy.platform_url == server.url
    assert isinstance(get_operation(copy, "proj", OPERATION_ID), Ok)


def test_operations_go_to_the_platform_url_and_writes_to_the_server_url(
    server: ScriptedServer, sleeps: Sleeps
) -> None:
    with ScriptedServer() as writes, platform_core(server, sleeps, server_url=writes.url) as core:
        server.script(operation_reply())
        assert isinstance(write_records(core, single(mode="asynchronous")), Ok)
        assert isinstance(get_operation(core, "proj", OPERATION_ID), Ok)

    assert [r.method for r in writes.received] == ["POST"]
    assert [r.method for r in server.received] == ["GET"]


def test_a_per_call_platform_url_replaces_the_cores(core: Core, server: ScriptedServer) -> None:
    with ScriptedServer(default=operation_reply()) as other:
        result = get_operation(core, "proj", OPERATION_ID, platform_url=other.url + "/")

    assert isinstance(result, Ok)
    assert len(other.received) == 1 and server.received == []


# -- get_operation --------------------------------------------------------------------------------


def test_get_operation_reads_one_operation(core: Core, server: ScriptedServer) -> None:
    server.script(operation_reply())

    result = get_operation(core, "my-project", OPERATION_ID, headers={"X-Correlation-Id": "c-1"})

    assert isinstance(result, Ok)
    op = result.value
    assert (op.id, op.status, op.action_type) == (OPERATION_ID, "success", "write")
    assert op.result == "Batch write completed (2 succeeded, 0 failed)"
    assert op.metadata.successful_record_ids == ("001xx000003DGbYAAW", "001xx000003DGbZAAW")
    assert op.metadata.objects == ("contact",)
    assert op.create_time == "2023-07-13T22:10:00.000000Z" and op.update_time is None
    assert (op.done, op.succeeded, op.failed) == (True, True, False)
    (sent,) = server.received
    assert (sent.method, sent.path) == ("GET", f"/v1/projects/my-project/operations/{OPERATION_ID}")
    assert sent.headers["x-api-key"] == API_KEY and sent.count("X-Api-Key") == 1
    assert sent.headers["user-agent"].startswith("ampwrite/")
    assert "application/problem+json" in sent.headers["accept"]
    assert sent.headers["x-correlation-id"] == "c-1"
    assert "content-type" not in sent.headers and "content-length" not in sent.headers
    assert sent.body == b""


def test_writes_still_send_their_content_type(core: Core, server: ScriptedServer) -> None:
    write_records(core, single())
    assert server.received[0].headers["content-type"] == "application/json"


def test_unknown_fields_and_statuses_are_kept_and_missing_optional_fields_are_fine(
    core: Core, server: ScriptedServer
) -> None:
    body = operation(
        "cancelled_by_admin",
        updateTime="2023-07-13T22:11:00Z",
        resource="contacts",
        result=None,
        createTime=None,
        metadata={"objects": ["contact"], "batchSize": 3},
    )
    server.script(json_reply(200, body), json_reply(200, operation(metadata=None)))

    first = get_operation(core, "p", OPERATION_ID)
    second = get_operation(core, "p", OPERATION_ID)

    assert isinstance(first, Ok) and isinstance(second, Ok)
    op = first.value
    assert op.status == "cancelled_by_admin" and op.status not in OperationStatus.KNOWN
    assert (op.done, op.succeeded, op.failed) == (True, False, False)
    assert op.update_time == "2023-07-13T22:11:00Z"
    assert op.extras == {"resource": "contacts"}
    assert op.metadata.extras == {"batchSize": 3}
    assert op.result is None and op.create_time is None
    assert second.value.metadata.successful_record_ids == () and second.value.metadata.extras == {}


def test_an_operation_without_the_contracts_other_required_fields_still_decodes(
    core: Core, server: ScriptedServer
) -> None:
    missing = ("projectId", "integrationId", "installationId", "configId", "actionType")
    body = operation()
    for name in missing:
        del body[name]
    server.script(json_reply(200, body))

    result = get_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Ok) and result.value.status == "success"
    assert result.value.config_id is None and result.value.installation_id is None


@pytest.mark.parametrize(
    "body",
    [
        operation(status=5),  # type: ignore[arg-type]
        operation(id=None),
        operation(status=None),  # type: ignore[arg-type]
        operation(metadata=["contact"]),
        operation(metadata={"successfulRecordIds": "001xx"}),
        operation(metadata={"objects": [1]}),
        operation(result={"success": True}),
        [OPERATION],
        "success",
    ],
    ids=[
        "status not a string",
        "no id",
        "status null",
        "metadata an array",
        "record ids a string",
        "objects of numbers",
        "result an object",
        "an array",
        "a string",
    ],
)
def test_an_operation_that_does_not_fit_is_a_response_validation_error(
    core: Core, server: ScriptedServer, body: Any
) -> None:
    server.script(json_reply(200, body))

    result = get_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Err) and type(result.error) is ResponseValidationError
    assert result.error.status == 200 and result.error.body
    assert len(server.received) == 1  # a read that did not fit is not worth repeating


def test_a_body_that_is_not_json_is_a_response_validation_error(
    core: Core, server: ScriptedServer
) -> None:
    server.script(Reply(200, body=b"<html>maintenance</html>", content_type="text/html"))

    result = get_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Err) and isinstance(result.error, ResponseValidationError)
    assert "maintenance" in result.error.body


def test_not_found_is_an_api_error_with_the_problem(core: Core, server: ScriptedServer) -> None:
    server.script(problem_reply(404, "Operation not found", title="Not Found", requestId="r-9"))

    result = get_operation(core, "p", "missing")

    assert isinstance(result, Err) and type(result.error) is APIError
    assert result.error.status == 404 and result.error.request_id == "r-9"
    assert result.error.problem is not None
    assert result.error.problem.detail == "Operation not found"
    assert str(result.error) == "404 Scripted: Not Found: Operation not found"
    assert len(server.received) == 1


@pytest.mark.parametrize(
    "failures",
    [
        [json_reply(500, {})],
        [json_reply(502, {}), json_reply(504, {})],
        [RESET],
        [CLOSE, json_reply(503, {})],
        [Stall(1.0)],
    ],
    ids=["500", "502 then 504", "reset", "closed then 503", "read timeout"],
)
def test_a_read_is_retried_after_ambiguous_failures_by_default(
    server: ScriptedServer, sleeps: Sleeps, failures: list[Any]
) -> None:
    server.script(*failures, operation_reply())
    with platform_core(server, sleeps, timeout=(2.0, 0.3)) as core:
        result = get_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Ok), result
    assert len(server.received) == len(failures) + 1
    assert sleeps == [0.5, 1.0][: len(failures)]


def test_a_write_is_not_retried_after_the_same_500(core: Core, server: ScriptedServer) -> None:
    server.script(json_reply(500, {}), operation_reply())
    assert isinstance(write_records(core, single()), Err)
    assert len(server.received) == 1


def test_retries_none_returns_the_first_failure(core: Core, server: ScriptedServer) -> None:
    server.script(problem_reply(502, "bad gateway"), operation_reply())

    result = get_operation(core, "p", OPERATION_ID, retries=RetryConfig.none())

    assert isinstance(result, Err) and isinstance(result.error, ServerError)
    assert result.error.status == 502 and len(server.received) == 1


def test_a_redirect_is_not_followed(core: Core, server: ScriptedServer) -> None:
    with ScriptedServer(default=operation_reply()) as elsewhere:
        server.script(Reply(302, (("Location", elsewhere.url + "/x"),), content_type=None))
        result = get_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Err) and type(result.error) is APIError
    assert result.error.status == 302 and elsewhere.received == []


# -- the inputs, checked before anything is sent --------------------------------------------------

ID_CALLS = {
    "get_operation": (get_operation, ("project_id_or_name", "operation_id")),
    "list_operation_logs": (list_operation_logs, ("project_id_or_name", "operation_id")),
    "wait_for_operation": (wait_for_operation, ("project_id_or_name", "operation_id")),
    "list_operations": (
        list_operations,
        ("project_id_or_name", "integration_id", "installation_id"),
    ),
}
BAD_IDS = ["", 5, None, b"proj", "bad \ud800"]


@pytest.mark.parametrize(
    ("function", "parameter"),
    [(name, parameter) for name, (_, parameters) in ID_CALLS.items() for parameter in parameters],
)
@pytest.mark.parametrize("bad", BAD_IDS, ids=["empty", "int", "None", "bytes", "surrogate"])
def test_an_unusable_id_is_refused_and_nothing_is_sent(
    core: Core, server: ScriptedServer, function: str, parameter: str, bad: object
) -> None:
    call, parameters = ID_CALLS[function]
    arguments: list[object] = ["ok" if name != parameter else bad for name in parameters]

    result = call(core, *arguments)  # type: ignore[operator]

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert [issue.path for issue in result.error.issues] == [parameter]
    assert result.error.attempts == 0
    assert server.received == [] and server.connections == 0


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"page_size": "10"}, "page_size"),
        ({"page_size": 2.0}, "page_size"),
        ({"page_token": 5}, "page_token"),
        ({"page_token": ""}, "page_token"),
        ({"page_token": "\udc00"}, "page_token"),
        ({"headers": {"X-Api-Key": "another"}}, "headers['X-Api-Key']"),
        ({"headers": {"X-Evil": "a\r\nb"}}, "headers['X-Evil']"),
    ],
)
def test_unusable_paging_and_headers_are_refused_and_nothing_is_sent(
    core: Core, server: ScriptedServer, options: dict[str, Any], parameter: str
) -> None:
    result = list_operations(core, "p", "i", "n", **options)

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    assert [issue.path for issue in result.error.issues] == [parameter]
    assert server.received == []


def test_every_issue_is_named_at_once(core: Core, server: ScriptedServer) -> None:
    result = list_operations(core, "", "i", 7, page_size=0, page_token="")  # type: ignore[arg-type]

    assert isinstance(result, Err) and isinstance(result.error, RequestValidationError)
    paths = [issue.path for issue in result.error.issues]
    assert sorted(paths) == ["installation_id", "page_size", "page_token", "project_id_or_name"]
    assert server.received == []


@pytest.mark.parametrize("page_size", [1, 1000])
def test_the_page_size_bounds_are_sent(core: Core, server: ScriptedServer, page_size: int) -> None:
    server.script(json_reply(200, {"results": [], "pagination": {"done": True}}))
    assert isinstance(list_operations(core, "p", "i", "n", page_size=page_size), Ok)
    assert server.received[0].path.endswith(f"/operations?pageSize={page_size}")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"retries": "twice"}, "retries"),
        ({"timeout": -1}, "timeout"),
        ({"platform_url": "ftp://x.example/v1"}, "platform_url"),
        ({"platform_url": "http://x.example/v1"}, "http://"),
    ],
)
@pytest.mark.parametrize("function", sorted(ID_CALLS))
def test_unusable_call_options_are_configuration_errors(
    core: Core, server: ScriptedServer, function: str, options: dict[str, Any], named: str
) -> None:
    call, parameters = ID_CALLS[function]
    if function == "wait_for_operation" and "timeout" in options:
        options = {"request_timeout": options["timeout"]}

    result = call(core, *["ok"] * len(parameters), **options)  # type: ignore[operator]

    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert named in str(result.error)
    assert server.received == []


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"timeout": -5},
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"timeout": True},
        {"timeout": "60"},
        {"poll_interval": 0},
        {"poll_interval": -1.0},
        {"max_poll_interval": 0},
        {"max_poll_interval": None},
    ],
)
def test_unusable_wait_settings_are_configuration_errors(
    core: Core, server: ScriptedServer, options: dict[str, Any]
) -> None:
    result = wait_for_operation(core, "p", OPERATION_ID, **options)

    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert next(iter(options)) in str(result.error)
    assert server.received == []


def test_a_core_is_required() -> None:
    with pytest.raises(TypeError, match="get_operation needs a Core"):
        get_operation("core", "p", "o")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iter_operations needs a Core"):
        iter_operations(None, "p", "i", "n")  # type: ignore[arg-type]


# -- wait_for_operation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "waits"),
    [
        (["success"], []),
        (["in_progress", "success"], [0.5]),
        (["in_progress", "in_progress", "in_progress", "failure"], [0.5, 1.0, 2.0]),
        (["in_progress", "partially_applied"], [0.5]),
    ],
    ids=["already done", "then success", "then failure", "then an unknown status"],
)
def test_waiting_polls_until_the_status_is_no_longer_in_progress(
    core: Core, server: ScriptedServer, sleeps: Sleeps, statuses: list[str], waits: list[float]
) -> None:
    server.script(*(operation_reply(status) for status in statuses))

    result = wait_for_operation(core, "proj", OPERATION_ID)

    assert isinstance(result, Ok)
    assert result.value.status == statuses[-1] and result.value.done
    assert result.value.failed is (statuses[-1] == "failure")
    assert sleeps == waits
    assert len(server.received) == len(statuses)


def test_the_backoff_between_polls_is_capped(
    core: Core, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.script(*[IN_PROGRESS] * 5, operation_reply())

    assert isinstance(wait_for_operation(core, "p", OPERATION_ID, max_poll_interval=1.5), Ok)

    assert sleeps == [0.5, 1.0, 1.5, 1.5, 1.5]


def test_a_fixed_poll_interval(core: Core, server: ScriptedServer, sleeps: Sleeps) -> None:
    server.script(IN_PROGRESS, IN_PROGRESS, operation_reply())

    assert isinstance(wait_for_operation(core, "p", OPERATION_ID, poll_interval=3), Ok)

    assert sleeps == [3, 3]


def test_a_long_wait_keeps_its_capped_interval(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core
) -> None:
    server.default = IN_PROGRESS

    result = wait_for_operation(timed_core, "p", OPERATION_ID, timeout=20_000, max_poll_interval=10)

    assert isinstance(result, Err) and isinstance(result.error, OperationTimeoutError)
    assert fake_time.sleeps[:7] == [0.5, 1, 2, 4, 8, 10, 10]
    assert set(fake_time.sleeps[7:-1]) == {10} and fake_time.now == 20_000


def test_a_429_while_polling_waits_as_the_server_asks(
    core: Core, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.script(
        IN_PROGRESS,
        problem_reply(429, "slow down", headers=(("Retry-After", "7"),)),
        operation_reply(),
    )

    result = wait_for_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Ok) and result.value.succeeded
    assert sleeps == [0.5, 7.0]


def test_a_429_asking_longer_than_a_retry_would_wait_is_still_waited_out(
    core: Core, server: ScriptedServer, sleeps: Sleeps
) -> None:
    """120 s is over `max_retry_after` (and `retries=none` retries nothing): the poll returns
    the 429, and the wait, with time left, polls again when asked."""
    server.script(
        IN_PROGRESS,
        problem_reply(429, "slow down", headers=(("Retry-After", "120"),)),
        problem_reply(503, "busy"),
        operation_reply("failure"),
    )

    result = wait_for_operation(core, "p", OPERATION_ID, retries=RetryConfig.none())

    assert isinstance(result, Ok) and result.value.failed
    assert sleeps == [0.5, 120.0, 2.0]  # a 503 without a wait asked: the next poll's delay


def test_the_problems_retry_after_is_honoured_too(
    core: Core, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.script(
        IN_PROGRESS,
        problem_reply(429, "slow down", retryAfter="2001-01-01T00:00:00Z"),  # already past
        operation_reply(),
    )

    result = wait_for_operation(core, "p", OPERATION_ID, retries=RetryConfig.none())

    assert isinstance(result, Ok)
    assert sleeps == [0.5, 0.0]


def test_waiting_gives_up_at_its_timeout_with_the_last_operation(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core
) -> None:
    server.default = operation_reply("in_progress", updateTime="2023-07-13T22:10:05Z")

    result = wait_for_operation(timed_core, "proj", OPERATION_ID, timeout=2.0)

    assert isinstance(result, Err) and type(result.error) is OperationTimeoutError
    error = result.error
    assert error.operation_id == OPERATION_ID
    assert isinstance(error.last, Operation) and error.last.status == "in_progress"
    assert error.last.update_time == "2023-07-13T22:10:05Z"
    assert fake_time.sleeps == [0.5, 1.0, 0.5]  # the last wait ends at the deadline
    assert len(server.received) == error.attempts == 4
    assert str(error) == f"operation {OPERATION_ID!r} was still in progress after 2 s (4 polls)"


def test_a_wait_asked_for_past_the_deadline_ends_the_wait_at_once(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core
) -> None:
    server.script(IN_PROGRESS, problem_reply(429, "slow down", headers=(("Retry-After", "30"),)))

    result = wait_for_operation(timed_core, "p", OPERATION_ID, timeout=10)

    assert isinstance(result, Err) and isinstance(result.error, OperationTimeoutError)
    assert result.error.last is not None and result.error.last.status == "in_progress"
    assert "429" in str(result.error) and "slow down" in str(result.error)
    assert fake_time.sleeps == [0.5] and len(server.received) == 2


def test_a_wait_that_never_read_the_operation_says_so(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core
) -> None:
    server.default = problem_reply(429, "slow down", headers=(("Retry-After", "10"),))

    result = wait_for_operation(timed_core, "p", OPERATION_ID, timeout=5)

    assert isinstance(result, Err) and isinstance(result.error, OperationTimeoutError)
    assert result.error.last is None
    assert "could not be read" in str(result.error)
    assert fake_time.sleeps == [] and len(server.received) == 1


def test_a_polls_retries_end_with_the_wait(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core
) -> None:
    """A 500 is retried within a poll, but not past the wait's deadline."""
    server.default = json_reply(500, {})

    result = wait_for_operation(timed_core, "p", OPERATION_ID, timeout=1.0)

    assert isinstance(result, Err) and isinstance(result.error, ServerError)
    assert fake_time.sleeps == [0.5] and len(server.received) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (problem_reply(404, "Operation not found"), APIError),
        (json_reply(401, {"detail": "bad key"}), APIError),
        (json_reply(200, {"status": 5}), ResponseValidationError),
    ],
    ids=["404", "401", "unfit 200"],
)
def test_other_failures_end_the_wait(
    core: Core, server: ScriptedServer, sleeps: Sleeps, answer: Reply, error: type[AmpWriteError]
) -> None:
    server.script(IN_PROGRESS, answer, operation_reply())

    result = wait_for_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Err) and isinstance(result.error, error)
    assert not isinstance(result.error, OperationTimeoutError)
    assert sleeps == [0.5] and len(server.received) == 2


def test_a_500_while_polling_is_retried_within_the_poll(
    core: Core, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.script(IN_PROGRESS, json_reply(500, {}), RESET, operation_reply())

    result = wait_for_operation(core, "p", OPERATION_ID)

    assert isinstance(result, Ok)
    assert sleeps == [0.5, 0.5, 1.0]  # the poll delay, then the poll's own retries


def test_the_timeout_error_pickles_with_its_operation() -> None:
    last = Operation(
        id="op",
        status="in_progress",
        project_id="p",
        integration_id="i",
        installation_id="n",
        config_id="c",
        action_type="write",
        extras={"resource": "contacts"},
    )
    error = OperationTimeoutError("gave up", operation_id="op", last=last, attempts=3)

    copy = pickle.loads(pickle.dumps(Err(error))).error

    assert type(copy) is OperationTimeoutError and str(copy) == "gave up"
    assert (copy.operation_id, copy.last, copy.attempts) == ("op", last, 3)
    assert vars(copy).keys() == vars(error).keys()


# -- logs and lists -------------------------------------------------------------------------------


def test_logs_are_read_with_their_snake_case_operation_id(
    core: Core, server: ScriptedServer
) -> None:
    entries = [
        {
            "timestamp": "2023-07-13T21:34:44.816354Z",
            "severity": "ERROR",
            "message": {
                "msg": "write failed",
                "error": "REQUIRED_FIELD_MISSING",
                "operation_id": OPERATION_ID,
                "details": {"object": "contact"},
                "provider": "salesforce",
            },
        },
        {"timestamp": "2023-07-13T21:34:45Z", "severity": "DEBUG", "message": {"msg": "done"}},
    ]
    server.script(json_reply(200, entries), json_reply(200, []))

    result = list_operation_logs(core, "proj", OPERATION_ID)
    empty = list_operation_logs(core, "proj", OPERATION_ID)

    assert isinstance(result, Ok) and empty == Ok(())
    first, second = result.value
    assert (first.severity, first.message.msg, first.message.error) == (
        "ERROR",
        "write failed",
        "REQUIRED_FIELD_MISSING",
    )
    assert first.message.operation_id == OPERATION_ID
    assert first.message.details == {"object": "contact"}
    assert first.message.extras == {"provider": "salesforce"}
    assert second.message.operation_id is None and second.message.extras == {}
    assert server.received[0].path == f"/v1/projects/proj/operations/{OPERATION_ID}/logs"


@pytest.mark.parametrize(
    "body",
    [{"logs": []}, [{"timestamp": "t", "severity": "INFO", "message": {}}], [{"message": "x"}]],
    ids=["an object", "no msg", "message a string"],
)
def test_logs_that_do_not_fit_are_a_response_validation_error(
    core: Core, server: ScriptedServer, body: Any
) -> None:
    server.script(json_reply(200, body))
    result = list_operation_logs(core, "p", "o")
    assert isinstance(result, Err) and isinstance(result.error, ResponseValidationError)


def test_a_page_and_its_next_token(core: Core, server: ScriptedServer) -> None:
    token = "Q9JT+2qfys28V4ODN+UayA=="
    server.script(
        json_reply(
            200, {"results": [OPERATION], "pagination": {"done": False, "nextPageToken": token}}
        )
    )

    result = list_operations(core, "proj", "int-1", "inst-1", page_size=50, page_token="abc/=")

    assert isinstance(result, Ok)
    assert [op.id for op in result.value.results] == [OPERATION_ID]
    assert result.value.next_page_token == token
    assert server.received[0].path == (
        "/v1/projects/proj/integrations/int-1/installations/inst-1/operations"
        "?pageSize=50&pageToken=abc%2F%3D"
    )


@pytest.mark.parametrize(
    "pagination",
    [
        {"done": True},
        {"done": True, "nextPageToken": "stale"},
        {"done": False},
        {"done": False, "nextPageToken": ""},
    ],
)
def test_the_last_page_has_no_next_token(
    core: Core, server: ScriptedServer, pagination: dict[str, Any]
) -> None:
    server.script(json_reply(200, {"results": [], "pagination": pagination}))

    result = list_operations(core, "p", "i", "n")

    assert isinstance(result, Ok) and result.value.results == ()
    assert result.value.next_page_token is None


@pytest.mark.parametrize(
    "body",
    [
        {"results": {}, "pagination": {"done": True}},
        {"results": []},
        {"results": [], "pagination": {"done": "yes"}},
        {"results": [{"id": "x"}], "pagination": {"done": True}},
        [],
    ],
    ids=["results an object", "no pagination", "done a string", "an unfit operation", "an array"],
)
def test_a_page_that_does_not_fit_is_a_response_validation_error(
    core: Core, server: ScriptedServer, body: Any
) -> None:
    server.script(json_reply(200, body))
    result = list_operations(core, "p", "i", "n")
    assert isinstance(result, Err) and isinstance(result.error, ResponseValidationError)


def _page(ids: list[str], token: str | None) -> Reply:
    pagination: dict[str, Any] = {"done": token is None}
    if token is not None:
        pagination["nextPageToken"] = token
    return json_reply(200, {"results": [operation(id=i) for i in ids], "pagination": pagination})


Pages = list[Result[OperationPage, AmpWriteError]]


class Listing:
    """Every page of `iter_operations`, or of `aio.iter_operations` on a loop of its own."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, core: Core, *where: str, **options: Any) -> Pages:
        if self.name == "sync":
            return list(iter_operations(core, *where, **options))

        async def pages() -> Pages:
            return [page async for page in aio.iter_operations(core, *where, **options)]

        return asyncio.run(pages())

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=[Listing("sync"), Listing("aio")], ids=repr)
def listing(request: pytest.FixtureRequest) -> Listing:
    listing: Listing = request.param
    return listing


def test_iter_operations_follows_the_tokens_to_the_last_page(
    core: Core, server: ScriptedServer, listing: Listing
) -> None:
    server.script(
        _page(["a", "b"], "t+1"), _page(["c"], "t+2"), _page([], None), _page(["z"], None)
    )

    pages = listing(core, "p", "i", "n", page_size=2)

    assert all(isinstance(page, Ok) for page in pages)
    assert [[op.id for op in page.unwrap().results] for page in pages] == [["a", "b"], ["c"], []]
    assert [sent.path.split("?")[1] for sent in server.received] == [
        "pageSize=2",
        "pageSize=2&pageToken=t%2B1",
        "pageSize=2&pageToken=t%2B2",
    ]


def test_iter_operations_ends_after_the_first_error(
    core: Core, server: ScriptedServer, listing: Listing
) -> None:
    server.script(_page(["a"], "t1"), problem_reply(404, "gone"), _page(["b"], None))

    first, failed, *rest = listing(core, "p", "i", "n")

    assert isinstance(first, Ok)
    assert isinstance(failed, Err) and isinstance(failed.error, APIError)
    assert rest == []
    assert len(server.received) == 2


def test_iter_operations_yields_a_refusal_and_sends_nothing(
    core: Core, server: ScriptedServer, listing: Listing
) -> None:
    pages = listing(core, "p", "", "n")

    assert len(pages) == 1 and isinstance(pages[0], Err)
    assert isinstance(pages[0].error, RequestValidationError)
    assert server.received == []


# -- the key stays secret -------------------------------------------------------------------------


def test_the_key_appears_in_no_log_line_value_or_error(
    server: ScriptedServer, fake_time: FakeTime, timed_core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ampwrite")
    echo = (("X-Echo", API_KEY),)
    server.script(
        Reply(500, echo, f"echo {API_KEY}".encode(), "text/plain"),
        json_reply(200, operation("in_progress", resource=API_KEY)),
        problem_reply(404, f"no {API_KEY}", headers=echo),
        json_reply(200, [{"timestamp": API_KEY, "severity": "x", "message": {"msg": API_KEY}}]),
        json_reply(200, {"results": "x" + API_KEY, "pagination": {"done": True}}),
        problem_reply(429, API_KEY, headers=(("Retry-After", "100"), *echo)),
    )
    results: list[Any] = [
        wait_for_operation(timed_core, "p", OPERATION_ID),
        list_operation_logs(timed_core, "p", OPERATION_ID),
        list_operations(timed_core, "p", "i", "n"),
        wait_for_operation(timed_core, "p", OPERATION_ID, timeout=50),
        get_operation(timed_core, "p", OPERATION_ID, headers={"X-Api-Key": API_KEY}),
    ]

    assert [type(r.error) for r in results] == [
        APIError,
        type(None),
        ResponseValidationError,
        OperationTimeoutError,
        RequestValidationError,
    ]
    assert "GET" in caplog.text and "/operations/" in caplog.text  # the calls were logged
    shown = [caplog.text]
    for result in results:
        shown += [repr(result), str(result)]
        if isinstance(result, Err):
            shown += [str(result.error), repr(result.error), repr(vars(result.error))]
    assert all(API_KEY not in text for text in shown)


# -- the facade -----------------------------------------------------------------------------------


@pytest.fixture
def client(server: ScriptedServer, sleeps: Sleeps) -> Iterator[AmpWrite]:
    with AmpWrite(
        API_KEY,
        server_url=server.url,
        platform_url=server.url,
        retries=RetryConfig(jitter=0.0),
        sleep=sleeps,
    ) as facade:
        yield facade


def test_the_facade_returns_the_values(
    client: AmpWrite, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.script(
        operation_reply(),
        IN_PROGRESS,
        operation_reply("failure"),
        json_reply(200, [{"timestamp": "t", "severity": "INFO", "message": {"msg": "m"}}]),
        _page(["a"], "next"),
        _page(["b"], "after-b"),
        _page(["c"], None),
    )

    assert client.operations.get("p", OPERATION_ID).succeeded
    assert client.operations.wait("p", OPERATION_ID, poll_interval=2).failed
    assert client.operations.logs("p", OPERATION_ID)[0].message.msg == "m"
    assert client.operations.list("p", "i", "n", page_size=1).next_page_token == "next"
    assert [op.id for op in client.operations.iterate("p", "i", "n", page_token="next")] == [
        "b",
        "c",
    ]
    assert sleeps == [2]


def test_the_facade_raises_the_errors_the_functions_return(
    client: AmpWrite, server: ScriptedServer
) -> None:
    server.default = problem_reply(404, "Operation not found")
    expected = get_operation(client.core, "p", "missing")
    assert isinstance(expected, Err)

    with pytest.raises(APIError) as raised:
        client.operations.get("p", "missing")
    assert type(raised.value) is type(expected.error) and str(raised.value) == str(expected.error)
    with pytest.raises(APIError, match="Operation not found"):
        client.operations.logs("p", "missing")
    with pytest.raises(APIError, match="Operation not found"):
        list(client.operations.iterate("p", "i", "n"))
    with pytest.raises(RequestValidationError, match="operation_id"):
        client.operations.wait("p", "")
    with pytest.raises(RequestValidationError, match="page_size"):
        client.operations.list("p", "i", "n", page_size=0)


def test_the_facade_raises_the_timeout(server: ScriptedServer, fake_time: FakeTime) -> None:
    server.default = IN_PROGRESS
    with (
        AmpWrite(
            API_KEY, platform_url=server.url, sleep=fake_time.sleep, clock=fake_time.clock
        ) as client,
        pytest.raises(OperationTimeoutError) as raised,
    ):
        client.operations.wait("p", OPERATION_ID, timeout=1.0)

    assert raised.value.operation_id == OPERATION_ID and raised.value.last is not None


def test_the_operation_functions_are_exported() -> None:
    assert ampwrite.get_operation is get_operation
    assert ampwrite.wait_for_operation is wait_for_operation
    assert ampwrite.list_operation_logs is list_operation_logs
    assert ampwrite.list_operations is list_operations
    assert ampwrite.iter_operations is iter_operations


def test_a_poll_cut_short_by_the_waits_end_is_a_wait_timeout(server: ScriptedServer) -> None:
    server.script(operation_reply("in_progress"))
    server.default = Stall(30)  # every later poll hangs
    with Core(API_KEY, server_url=server.url, platform_url=server.url, timeout=(5, 5)) as core:
        result = wait_for_operation(core, "p", OPERATION_ID, timeout=1.5, poll_interval=0.2)
    assert isinstance(result, Err) and type(result.error) is OperationTimeoutError
    assert result.error.operation_id == OPERATION_ID
    assert result.error.last is not None and result.error.last.status == "in_progress"
    assert "timed out" in str(result.error)  # the poll's own error is named


def test_a_page_token_handed_out_again_ends_the_listing(
    server: ScriptedServer, listing: Listing
) -> None:
    page = {"results": [OPERATION], "pagination": {"done": False, "nextPageToken": "t1"}}
    server.default = json_reply(200, page)  # every page points at the same next page
    with Core(API_KEY, server_url=server.url, platform_url=server.url) as core:
        pages = listing(core, "p", "i", "inst")
    assert [page.ok for page in pages] == [True, False]  # the second page pointed at itself
    last = pages[-1]
    assert isinstance(last, Err) and type(last.error) is ResponseValidationError
    assert "t1" in str(last.error)
