"""`ampwrite mcp`, started as a real subprocess and driven with the `mcp` package's own client,
over stdio and over streamable HTTP, against a sandbox: the tools and their schemas, writes of
every kind checked in the sandbox's store, validation that sends nothing, asynchronous writes
followed to their end, API errors as tool errors, the allow-lists, and the key kept out of
every answer and log line."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed: pip install 'ampwrite[mcp]'")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema checks the tool schemas")

from mcp import ClientSession  # noqa: E402

from ampwrite.sandbox import Sandbox  # noqa: E402
from tests.mcp_harness import (  # noqa: E402
    SANDBOX_LINE,
    command,
    http_server,
    http_session,
    payload,
    result_text,
    sandbox_get,
    stdio_session,
    wait_for_line,
)

KEY = "mcp-test-key-7c1e94b2d8a3"
CONTRACT = pathlib.Path(__file__).parent / "contract" / "ampersand-write-openapi.json"
WRITE_PATH = "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"
TOOLS = {
    "write_records",
    "validate_write",
    "get_operation",
    "wait_for_operation",
    "list_operation_logs",
}
WHERE = {"projectIdOrName": "proj-1", "integrationId": "int-1", "objectName": "contacts"}


def call(body: dict[str, Any], **where: str) -> dict[str, Any]:
    return {**WHERE, **where, "requestBody": body}


def contract_examples() -> dict[str, dict[str, Any]]:
    document = json.loads(CONTRACT.read_text(encoding="utf-8"))
    content = document["paths"][WRITE_PATH]["post"]["requestBody"]["content"]
    return {
        name: example["value"] for name, example in content["application/json"]["examples"].items()
    }


@pytest.fixture
def errlog() -> Iterator[IO[str]]:
    """The server's stderr, kept to scan for the key."""
    with tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".log") as handle:
        yield handle


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_key=KEY) as running:
        yield running


def plain_args(sb: Sandbox, *extra: str) -> list[str]:
    """`ampwrite mcp` pointed at a sandbox of the test's own, as at any Write API."""
    return ["--server-url", sb.url, "--platform-url", sb.url, *extra]


def key_env() -> dict[str, str]:
    return {"AMPERSAND_API_KEY": KEY}


def assert_no_key(errlog: IO[str], *texts: str) -> None:
    errlog.flush()
    logged = pathlib.Path(errlog.name).read_text(encoding="utf-8")
    assert "ampwrite mcp" in logged  # the log was captured
    for text in (logged, *texts):
        assert KEY not in text


# -- the tools and their schemas -----------------------------------------------------------------


def test_tools_are_listed_with_schemas_that_admit_every_contract_example(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    async def scenario() -> list[Any]:
        async with stdio_session(plain_args(sandbox), key_env(), errlog) as session:
            return list((await session.list_tools()).tools)

    tools = {tool.name: tool for tool in asyncio.run(scenario())}
    assert set(tools) == TOOLS
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.description
    write = jsonschema.Draft202012Validator(tools["write_records"].input_schema)
    for name, example in contract_examples().items():
        errors = [e.message for e in write.iter_errors(call(example))]
        assert errors == [], name
    assert tools["validate_write"].input_schema == tools["write_records"].input_schema
    body = tools["write_records"].input_schema["properties"]["requestBody"]
    assert body["properties"]["type"]["enum"] == ["create", "update", "delete"]
    assert body["properties"]["mode"]["enum"] == ["synchronous", "asynchronous"]
    assert (body["properties"]["batch"]["minItems"], body["properties"]["batch"]["maxItems"]) == (
        1,
        100,
    )
    auto = body["properties"]["autoBatchPolicy"]["properties"]["maxDelayMinutes"]
    assert (auto["minimum"], auto["maximum"]) == (1, 1440)
    assert set(body["properties"]) >= {"headers", "associations", "retryPolicy", "batchPolicy"}
    assert write.is_valid(call({"groupRef": "g", "type": "upsert", "record": {}})) is False
    description = tools["write_records"].description or ""
    for needed in ("1 to 100", "delete", "operationId", "mayHaveBeenWritten", "retried"):
        assert needed in description
    assert tools["write_records"].annotations is not None
    assert tools["write_records"].annotations.read_only_hint is False
    assert tools["get_operation"].annotations is not None
    assert tools["get_operation"].annotations.read_only_hint is True


def test_the_shipped_contract_is_the_contract() -> None:
    from ampwrite.mcp._schema import CONTRACT_FILE, contract

    shipped = pathlib.Path(__file__).parent.parent / "ampwrite" / "mcp" / CONTRACT_FILE
    assert json.loads(CONTRACT.read_text(encoding="utf-8")) == contract()
    assert json.loads(shipped.read_text(encoding="utf-8")) == contract()


# -- writes, against a plain `ampwrite mcp` ------------------------------------------------------


def test_single_batch_delete_and_asynchronous_writes_reach_the_store(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    outputs: list[str] = []

    async def scenario(session: ClientSession) -> dict[str, Any]:
        async def tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            result = await session.call_tool(name, arguments)
            outputs.append(result_text(result))
            assert not result.is_error, result_text(result)
            return payload(result)

        single = await tool(
            "write_records", call({"groupRef": "g", "type": "create", "record": {"email": "a@x"}})
        )
        batch = await tool(
            "write_records",
            call(
                {
                    "groupRef": "g",
                    "type": "create",
                    "batch": [{"record": {"email": f"b{i}@x"}} for i in range(3)],
                }
            ),
        )
        deleted = await tool(
            "write_records",
            call({"groupRef": "g", "type": "delete", "record": {"id": single["recordIds"][0]}}),
        )
        accepted = await tool(
            "write_records",
            call({"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {"n": 1}}),
        )
        waited = await tool(
            "wait_for_operation",
            {"projectIdOrName": "proj-1", "operationId": accepted["operationId"]},
        )
        got = await tool(
            "get_operation", {"projectIdOrName": "proj-1", "operationId": accepted["operationId"]}
        )
        logs = await tool(
            "list_operation_logs",
            {"projectIdOrName": "proj-1", "operationId": accepted["operationId"]},
        )
        return {
            "single": single,
            "batch": batch,
            "deleted": deleted,
            "accepted": accepted,
            "waited": waited,
            "got": got,
            "logs": logs,
        }

    async def run() -> dict[str, Any]:
        async with stdio_session(plain_args(sandbox), key_env(), errlog) as session:
            return await scenario(session)

    seen = asyncio.run(run())
    single, batch = seen["single"], seen["batch"]
    assert single["successCount"] == 1 and single["asynchronous"] is False
    assert len(single["recordIds"]) == 1 and single["results"][0]["success"] is True
    assert batch["successCount"] == 3 and batch["failureCount"] == 0
    assert len(batch["recordIds"]) == 3 and batch["failedIndexes"] == []
    assert [r["index"] for r in batch["results"]] == [0, 1, 2]
    assert seen["deleted"]["failureCount"] == 0
    accepted = seen["accepted"]
    assert accepted["asynchronous"] is True and "wait_for_operation" in accepted["next"]
    assert seen["waited"]["status"] == "success"
    assert seen["waited"]["id"] == accepted["operationId"]
    assert seen["got"]["status"] == "success"
    assert seen["logs"]["logs"]
    stored = sandbox.records(object_name="contacts")
    emails = sorted(record.get("email", "") for record in stored)
    assert emails == ["", "b0@x", "b1@x", "b2@x"]  # a@x deleted; the async record has no email
    assert [r for r in stored if r.get("n") == 1]
    ids = {record["id"] for record in stored}
    assert set(batch["recordIds"]) <= ids and single["recordIds"][0] not in ids
    assert_no_key(errlog, *outputs)


def test_a_partly_failed_batch_is_a_success_with_per_record_results(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    sandbox.configure_object("contacts", required_fields=["email"])
    batch = {
        "groupRef": "g",
        "type": "create",
        "batch": [{"record": {"email": "ok@x"}}, {"record": {"name": "no email"}}],
    }

    async def run() -> Any:
        async with stdio_session(plain_args(sandbox), key_env(), errlog) as session:
            return await session.call_tool("write_records", call(batch))

    result = asyncio.run(run())
    assert not result.is_error
    body = payload(result)
    assert (body["successCount"], body["failureCount"], body["failedIndexes"]) == (1, 1, [1])
    assert len(body["recordIds"]) == 1
    assert [r["email"] for r in sandbox.records(object_name="contacts")] == ["ok@x"]


def test_an_invalid_write_is_a_tool_error_naming_the_field_and_sends_nothing(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    bad = call(
        {
            "groupRef": "g",
            "type": "create",
            "batch": [{"record": {"email": "a@x"}}, {"record": "not an object"}],
        }
    )

    async def run() -> list[Any]:
        async with stdio_session(plain_args(sandbox), key_env(), errlog) as session:
            return [
                await session.call_tool("validate_write", bad),
                await session.call_tool("write_records", bad),
                await session.call_tool(
                    "validate_write", call({"groupRef": "g", "type": "create", "record": {"a": 1}})
                ),
            ]

    checked, refused, valid = asyncio.run(run())
    for result in (checked, refused):
        assert result.is_error
        body = payload(result)
        assert body["error"] == "RequestValidationError" and body["nothingSent"] is True
        assert [issue["path"] for issue in body["issues"]] == ["requestBody.batch[1].record"]
        assert "requestBody.batch[1].record" in body["message"]
    assert payload(refused)["mayHaveBeenWritten"] is False
    assert not valid.is_error
    dry = payload(valid)
    assert dry["valid"] is True and dry["nothingSent"] is True and dry["records"] == 1
    assert dry["url"] == f"{sandbox.url}/projects/proj-1/integrations/int-1/objects/contacts"
    assert sandbox.requests == []  # not one request reached the server


def test_a_422_and_a_429_come_back_as_tool_errors_with_their_details(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    sandbox.configure_object("contacts", required_fields=["email"])

    async def run() -> list[Any]:
        args = plain_args(sandbox, "--retry-time", "0")
        async with stdio_session(args, key_env(), errlog) as session:
            refused = await session.call_tool(
                "write_records", call({"groupRef": "g", "type": "create", "record": {"name": "x"}})
            )
            sandbox.fail_next(429, count=1, retry_after=7)
            limited = await session.call_tool(
                "write_records",
                call({"groupRef": "g", "type": "create", "record": {"email": "a@x"}}),
            )
            return [refused, limited]

    refused, limited = asyncio.run(run())
    assert refused.is_error and limited.is_error
    failed = payload(refused)
    assert failed["error"] == "WriteFailedError" and failed["status"] == 422
    assert failed["operationId"] and failed["errors"]
    assert "email" in json.dumps(failed["errors"])
    assert failed["mayHaveBeenWritten"] is False and failed["safeToRetry"] is False
    rate = payload(limited)
    assert rate["error"] == "RateLimitError" and rate["status"] == 429
    assert rate["retryAfterSeconds"] == 7
    assert rate["mayHaveBeenWritten"] is False and rate["safeToRetry"] is True
    assert rate["problem"]["status"] == 429
    assert rate["attempts"] == 1
    assert sandbox.records(object_name="contacts") == []
    assert_no_key(errlog, result_text(refused), result_text(limited))


def test_read_only_and_tool_allow_lists_hide_what_they_should(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    write = call({"groupRef": "g", "type": "create", "record": {"a": 1}})

    async def run(*extra: str) -> tuple[set[str], Any]:
        async with stdio_session(plain_args(sandbox, *extra), key_env(), errlog) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            return names, await session.call_tool("write_records", write)

    names, refused = asyncio.run(run("--read-only"))
    assert names == TOOLS - {"write_records"}
    assert refused.is_error and payload(refused)["error"] == "UnknownTool"
    names, refused = asyncio.run(run("--tool", "validate_write", "--tool", "get_operation"))
    assert names == {"validate_write", "get_operation"}
    assert refused.is_error and payload(refused)["error"] == "UnknownTool"
    assert sandbox.requests == []


def test_the_key_is_in_no_answer_even_when_the_server_echoes_it(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    async def run() -> list[Any]:
        async with stdio_session(plain_args(sandbox), key_env(), errlog) as session:
            return [
                await session.call_tool(
                    "write_records",
                    call({"groupRef": "g", "type": "create", "record": {"note": KEY}}),
                ),
                await session.call_tool(
                    "get_operation", {"projectIdOrName": "p", "operationId": KEY}
                ),
                await session.call_tool("validate_write", {"oops": KEY}),
                await session.call_tool(  # the dry run shows the body: the key is taken out
                    "validate_write",
                    call({"groupRef": "g", "type": "create", "record": {"note": KEY}}),
                ),
            ]

    results = asyncio.run(run())
    assert [r.is_error for r in results] == [False, True, True, False]
    assert "***" in result_text(results[0])
    assert payload(results[3])["requestBody"]["record"] == {"note": "***"}
    assert_no_key(
        errlog,
        *(result_text(r) for r in results),
        *(json.dumps(r.structured_content) for r in results),
    )


def test_a_repeated_create_is_refused_unless_the_call_allows_it(
    sandbox: Sandbox, errlog: IO[str]
) -> None:
    create = call({"groupRef": "g", "type": "create", "record": {"email": "once@x"}})
    update = call({"groupRef": "g", "type": "update", "record": {"id": "x", "email": "u@x"}})

    async def run() -> list[Any]:
        async with stdio_session(plain_args(sandbox, "--retry-time", "0"), key_env(), errlog) as s:
            results = [await s.call_tool("write_records", create)]
            results.append(await s.call_tool("write_records", create))
            results.append(await s.call_tool("write_records", {**create, "allowRepeat": True}))
            results.append(await s.call_tool("write_records", {**create, "allowRepeat": "yes"}))
            sandbox.fail_next(429, count=1, retry_after=1)
            limited = call({"groupRef": "g", "type": "create", "record": {"email": "later@x"}})
            results.append(await s.call_tool("write_records", limited))
            results.append(await s.call_tool("write_records", limited))  # nothing was written
            results.append(await s.call_tool("write_records", update))
            results.append(await s.call_tool("write_records", update))  # updates are not guarded
            return results

    first, again, allowed, bad_flag, limited, resent, update1, update2 = asyncio.run(run())
    assert not first.is_error and not allowed.is_error
    refused = payload(again)
    assert again.is_error and refused["error"] == "RepeatedWrite"
    assert refused["nothingSent"] is True and "allowRepeat" in refused["next"]
    assert refused["earlier"]["recordIds"] == payload(first)["recordIds"]
    assert bad_flag.is_error and [i["path"] for i in payload(bad_flag)["issues"]] == ["allowRepeat"]
    assert payload(limited)["error"] == "RateLimitError" and not resent.is_error
    assert payload(update1)["error"] == payload(update2)["error"] == "WriteFailedError"
    emails = sorted(r["email"] for r in sandbox.records(object_name="contacts"))
    assert emails == ["later@x", "once@x", "once@x"]


# -- --sandbox, over stdio and streamable HTTP ---------------------------------------------------


def test_sandbox_mode_over_stdio_writes_into_its_own_sandbox(errlog: IO[str]) -> None:
    async def run() -> tuple[dict[str, Any], list[Any]]:
        async with stdio_session(["--sandbox"], key_env(), errlog) as session:
            written = payload(
                await session.call_tool(
                    "write_records",
                    call({"groupRef": "g", "type": "create", "record": {"email": "s@x"}}),
                )
            )
            errlog.flush()
            base = wait_for_line(errlog.name, SANDBOX_LINE, 10, None)
            return written, sandbox_get(base, "/_sandbox/records?object=contacts")

    written, stored = asyncio.run(run())
    assert stored == [{"email": "s@x", "id": written["recordIds"][0]}]
    assert_no_key(errlog)


def test_sandbox_mode_takes_the_sandbox_fault_flags(errlog: IO[str]) -> None:
    # Every write answered 429 asking for 120 s: longer than retries wait, so no retry is made
    args = ["--sandbox", "--rate-limit", "1", "--retry-after", "120"]

    async def run() -> Any:
        async with stdio_session(args, key_env(), errlog) as session:
            return await session.call_tool(
                "write_records", call({"groupRef": "g", "type": "create", "record": {"a": 1}})
            )

    result = asyncio.run(run())
    body = payload(result)
    assert result.is_error and body["error"] == "RateLimitError"
    assert (body["status"], body["retryAfterSeconds"], body["attempts"]) == (429, 120, 1)
    assert body["mayHaveBeenWritten"] is False and body["safeToRetry"] is True
    assert_no_key(errlog, result_text(result))


def test_streamable_http_serves_the_same_tools(errlog: IO[str]) -> None:
    with http_server(["--sandbox"], key_env(), errlog) as url:
        base = wait_for_line(errlog.name, SANDBOX_LINE, 10, None)

        async def run() -> tuple[set[str], dict[str, Any], dict[str, Any], Any]:
            async with http_session(url) as session:
                names = {tool.name for tool in (await session.list_tools()).tools}
                accepted = payload(
                    await session.call_tool(
                        "write_records",
                        call(
                            {
                                "groupRef": "g",
                                "type": "create",
                                "mode": "asynchronous",
                                "batch": [{"record": {"email": "h@x"}}],
                            }
                        ),
                    )
                )
                done = payload(
                    await session.call_tool(
                        "wait_for_operation",
                        {
                            "projectIdOrName": "proj-1",
                            "operationId": accepted["operationId"],
                            "timeoutSeconds": 20,
                        },
                    )
                )
                bad = await session.call_tool("write_records", {"requestBody": []})
                return names, accepted, done, bad

        names, accepted, done, bad = asyncio.run(run())
        stored = sandbox_get(base, "/_sandbox/records?object=contacts")
    assert names == TOOLS
    assert accepted["operationId"] and done["status"] == "success"
    assert [record["email"] for record in stored] == ["h@x"]
    assert bad.is_error and payload(bad)["error"] == "RequestValidationError"
    assert {"projectIdOrName", "requestBody"} <= {i["path"] for i in payload(bad)["issues"]}
    assert_no_key(errlog, result_text(bad))


def test_wait_for_operation_is_bounded_by_max_wait(sandbox: Sandbox, errlog: IO[str]) -> None:
    slow = Sandbox(api_key=KEY, async_delay=30.0)

    async def run() -> Any:
        async with stdio_session(
            ["--server-url", slow.url, "--platform-url", slow.url, "--max-wait", "0.5"],
            key_env(),
            errlog,
        ) as session:
            accepted = payload(
                await session.call_tool(
                    "write_records",
                    call({"groupRef": "g", "type": "create", "mode": "asynchronous", "record": {}}),
                )
            )
            return await session.call_tool(
                "wait_for_operation",
                {
                    "projectIdOrName": "proj-1",
                    "operationId": accepted["operationId"],
                    "timeoutSeconds": 600,
                },
            )

    with slow:
        result = asyncio.run(run())
    body = payload(result)
    assert result.is_error and body["error"] == "OperationTimeoutError"
    assert body["last"]["status"] == "in_progress" and body["operationId"]
    assert "0.5 s" in body["message"]


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--transport", "http", "--host", "0.0.0.0", "--sandbox"], "--allow-remote"),
        (["--server-url", "http://127.0.0.1:9/v1"], "no API key"),
        (["--sandbox", "--server-url", "http://127.0.0.1:9/v1"], "--sandbox takes no"),
        (["--server-url", "http://example.com/v1", "--api-key", KEY], "refusing plain http"),
        (["--read-only", "--tool", "write_records", "--api-key", KEY], "no tool left"),
        (["--sandbox", "--api-key", "short"], "shorter than 8 characters"),
    ],
    ids=[
        "remote-host",
        "no-key",
        "sandbox-and-url",
        "plain-http",
        "nothing-to-serve",
        "sandbox-short-key",
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(args: list[str], said: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AMPERSAND_")}
    done = subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env=environment,
    )
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert KEY not in done.stderr and done.stdout == ""
