"""`ampwrite operation get|wait|logs ID`: JSON out, exit statuses as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ampwrite import Core, write_records
from ampwrite.cli import EXIT_API_ERROR, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE, main
from ampwrite.sandbox import Sandbox
from tests.requests_data import batch


def _accepted(sandbox: Sandbox, request: dict[str, Any]) -> str:
    with Core(sandbox.api_key, server_url=sandbox.url, platform_url=sandbox.url) as core:
        result = write_records(core, request)
    assert result.ok, result
    return result.unwrap().operation_id


def _operation(sandbox: Sandbox, *args: str) -> list[str]:
    return [
        "operation", *args, "--project", "proj", "--api-key", sandbox.api_key,
        "--platform-url", sandbox.url,
    ]  # fmt: skip


def test_wait_prints_the_operation_once_it_ends(
    sb: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    operation_id = _accepted(sb, batch(3, mode="asynchronous"))
    assert main(_operation(sb, "wait", operation_id, "--poll-interval", "0.02")) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["id"] == operation_id and printed["status"] == "success"
    assert len(printed["metadata"]["successfulRecordIds"]) == 3


def test_a_failed_operation_exits_3(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    sb.configure_object("contacts", required_fields=["phone"])
    operation_id = _accepted(sb, batch(2, mode="asynchronous"))
    assert main(_operation(sb, "wait", operation_id)) == EXIT_API_ERROR
    assert json.loads(capsys.readouterr().out)["status"] == "failure"
    assert main(_operation(sb, "get", operation_id)) == EXIT_API_ERROR


def test_get_and_logs_print_json(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    operation_id = _accepted(sb, batch(2))
    assert main(_operation(sb, "get", operation_id)) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["id"] == operation_id
    assert main(_operation(sb, "logs", operation_id)) == EXIT_OK
    logs = json.loads(capsys.readouterr().out)
    assert logs and all(entry["message"]["operation_id"] == operation_id for entry in logs)


def test_an_unknown_operation_exits_3_with_the_problem(
    sb: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_operation(sb, "get", "no-such-operation")) == EXIT_API_ERROR
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == 404 and report["error"] == "APIError"


def test_a_wait_that_times_out_exits_4_with_the_last_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Sandbox(async_delay=30.0) as slow:
        operation_id = _accepted(slow, batch(1, mode="asynchronous"))
        status = main(_operation(slow, "wait", operation_id, "--wait-timeout", "0.3"))
    assert status == EXIT_TRANSPORT
    report = json.loads(capsys.readouterr().out)
    assert report["error"] == "OperationTimeoutError" and report["operationId"] == operation_id
    assert report["last"]["status"] == "in_progress"


def test_an_empty_id_is_a_usage_error(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_operation(sb, "get", "")) == EXIT_USAGE
    assert "operation_id" in capsys.readouterr().out
