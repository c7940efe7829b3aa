"""Following asynchronous writes to their end: what an operation means for its records (pure),
and `write_many(..., wait=True)` / `ampwrite load --wait` against the sandbox."""

from __future__ import annotations

import pathlib
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

from ampwrite import Core, Err, Ok
from ampwrite.bulk import write_many
from ampwrite.bulk._follow import not_followed, settle_accepted
from ampwrite.bulk._judge import MAYBE_TWICE
from ampwrite.bulk._outcome import Outcome
from ampwrite.cli import EXIT_API_ERROR, EXIT_TRANSPORT, EXIT_USAGE, main
from ampwrite.errors import APIError, OperationTimeoutError
from ampwrite.models import Operation, OperationMetadata
from ampwrite.sandbox import Sandbox
from tests.scripted_server import ScriptedServer, Stall, json_reply
from tests.test_bulk import QUICK, WHERE, by_index
from tests.test_bulk_cli import jsonl, last_status, load_args, results


def _accepted(count: int, *, note: str | None = None) -> tuple[Outcome, ...]:
    return tuple(Outcome(i, "accepted", None, note, "op-1") for i in range(count))


def _operation(status: str, result: str | None = None, ids: tuple[str, ...] = ()) -> Operation:
    return Operation(
        id="op-1",
        status=status,
        result=result,
        metadata=OperationMetadata(successful_record_ids=ids),
    )


def _statuses(outcomes: tuple[Outcome, ...]) -> list[str]:
    return [outcome.status for outcome in outcomes]


@pytest.mark.parametrize(
    ("status", "summary", "expected"),
    [
        ("success", "Batch write completed (3 succeeded, 0 failed)", "written"),
        ("success", None, "written"),
        ("failure", "Batch write completed (0 succeeded, 3 failed)", "failed"),
        ("failure", None, "failed"),
        ("success", "Batch write completed (2 succeeded, 1 failed)", "unknown"),
        ("failure", "Batch write completed (1 succeeded, 2 failed)", "unknown"),
        ("cancelled", None, "unknown"),
    ],
)
def test_an_operations_end_settles_its_records(
    status: str, summary: str | None, expected: str
) -> None:
    settled = settle_accepted(Ok(_operation(status, summary)), _accepted(3))
    assert _statuses(settled) == [expected] * 3
    assert [o.index for o in settled] == [0, 1, 2]
    assert all(o.operation_id == "op-1" for o in settled)
    if expected != "written":
        assert all(o.error for o in settled)


def test_fewer_successful_ids_than_records_is_a_partial_failure() -> None:
    partial = settle_accepted(Ok(_operation("success", "Done", ids=("a", "b"))), _accepted(3))
    assert _statuses(partial) == ["unknown"] * 3
    assert "2 of 3 records" in (partial[0].error or "")
    listed = settle_accepted(Ok(_operation("success", "Done", ids=("a", "b", "c"))), _accepted(3))
    assert _statuses(listed) == ["written"] * 3


def test_a_single_record_gets_the_providers_id() -> None:
    settled = settle_accepted(Ok(_operation("success", ids=("001xx",))), _accepted(1))
    assert settled == (Outcome(0, "written", "001xx", None, "op-1"),)
    batch = settle_accepted(Ok(_operation("success", ids=("a", "b"))), _accepted(2))
    assert [o.record_id for o in batch] == [None, None]  # which id is whose is not said


def test_a_record_accepted_after_an_ambiguous_attempt_is_never_failed() -> None:
    accepted = _accepted(2, note=MAYBE_TWICE)
    assert _statuses(settle_accepted(Ok(_operation("failure")), accepted)) == ["unknown"] * 2
    written = settle_accepted(Ok(_operation("success")), accepted)
    assert [o.error for o in written] == [MAYBE_TWICE] * 2


@pytest.mark.parametrize(
    "error",
    [
        OperationTimeoutError("still in progress", operation_id="op-1", last=None),
        APIError("404 Not Found", status=404, headers={}, body=""),
    ],
)
def test_an_operation_not_followed_to_its_end_leaves_its_records_accepted(
    error: Any,
) -> None:
    settled = settle_accepted(Err(error), _accepted(2, note=MAYBE_TWICE))
    assert _statuses(settled) == ["accepted"] * 2
    assert all(o.error and MAYBE_TWICE in o.error for o in settled)
    assert _statuses(not_followed(_accepted(1), "stopped")) == ["accepted"]


# -- end to end, against the sandbox ---------------------------------------------------------


def _records(count: int, *, without_email: set[int]) -> list[dict[str, Any]]:
    return [
        {"n": i} if i in without_email else {"n": i, "email": f"u{i}@example.com"}
        for i in range(count)
    ]


def test_write_many_with_wait_gives_each_record_its_final_outcome(sb: Sandbox) -> None:
    sb.configure_object("contacts", required_fields=["email"])
    # batches of 50: [0, 50) and [100, 150) partly fail, [200, 250) fails whole
    missing = {7, 130, *range(200, 250)}
    core = Core(sb.api_key, server_url=sb.url, platform_url=sb.url, retries=QUICK)
    with core, write_many(
        core, _records(250, without_email=missing), mode="asynchronous", wait=True,
        batch_size=50, retries=QUICK, **WHERE,
    ) as outcomes:  # fmt: skip
        found = by_index(outcomes)
        progress = outcomes.progress

    assert sorted(found) == list(range(250))
    assert (progress.written, progress.failed, progress.unknown, progress.accepted) == (
        100,
        50,
        100,
        0,
    )
    expected = {
        **dict.fromkeys(range(0, 50), "unknown"),
        **dict.fromkeys(range(50, 100), "written"),
        **dict.fromkeys(range(100, 150), "unknown"),
        **dict.fromkeys(range(150, 200), "written"),
        **dict.fromkeys(range(200, 250), "failed"),
    }
    assert {i: o.status for i, o in found.items()} == expected
    assert "does not say which" in (found[0].error or "")
    assert found[200].error and "0 succeeded" in found[200].error
    stored = {record["n"] for record in sb.records(object_name="contacts")}
    assert stored == set(range(200)) - missing  # written ones are stored, failed ones are not


def test_a_stop_while_following_leaves_the_rest_accepted() -> None:
    with Sandbox(async_delay=30.0) as slow:  # operations stay in progress
        core = Core(slow.api_key, server_url=slow.url, platform_url=slow.url)
        outcomes = write_many(
            core, _records(20, without_email=set()), mode="asynchronous", wait=True,
            batch_size=5, **WHERE,
        )  # fmt: skip
        timer = threading.Timer(0.5, outcomes.stop)
        timer.start()
        started = time.monotonic()
        with core, outcomes:
            found = by_index(outcomes)
        timer.join()
    assert time.monotonic() - started < 10  # not the 30 s the operations take
    assert {o.status for o in found.values()} == {"accepted"} and len(found) == 20
    assert all(o.error and "not followed" in o.error for o in found.values())


def test_load_with_wait_records_final_outcomes(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Sandbox() as sandbox:
        sandbox.configure_object("contacts", required_fields=["email"])
        source = jsonl(tmp_path / "in.jsonl", _records(300, without_email=set(range(100, 200))))
        out = tmp_path / "out.jsonl"
        args = load_args(sandbox, source, "--mode", "asynchronous", "--wait", "--out", str(out))
        status = main([*args, "--platform-url", sandbox.url, "--batch-size", "100"])
        stored = len(sandbox.records(object_name="contacts"))

    final = last_status(out)
    assert sorted(final) == list(range(300))
    assert [final[i] for i in (0, 150, 299)] == ["written", "failed", "written"]
    assert Counter(final.values()) == {"written": 200, "failed": 100}
    assert stored == 200
    assert status == EXIT_API_ERROR  # some record failed
    assert "following 3 operation(s)" in capsys.readouterr().err


def test_load_with_wait_that_times_out_exits_4(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Sandbox(async_delay=30.0) as sandbox:
        source = jsonl(tmp_path / "in.jsonl", _records(10, without_email=set()))
        out = tmp_path / "out.jsonl"
        args = load_args(sandbox, source, "--mode", "asynchronous", "--wait", "--out", str(out))
        status = main([*args, "--platform-url", sandbox.url, "--wait-timeout", "0.3"])
    assert status == EXIT_TRANSPORT
    lines = results(out)
    assert len(lines) == 20  # the accepted line, then the same status saying why
    assert all(line["status"] == "accepted" for line in lines)
    assert all("not followed to its end" in (line["error"] or "") for line in lines[10:])


def test_wait_needs_asynchronous_mode(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = jsonl(tmp_path / "in.jsonl", _records(1, without_email=set()))
    assert main(load_args(ampwrite_sandbox, source, "--wait")) == EXIT_USAGE
    assert "--mode asynchronous" in capsys.readouterr().err


def _follow_against(
    platform_url: str, sandbox: Sandbox, **options: Any
) -> tuple[dict[int, Outcome], float]:
    core = Core(sandbox.api_key, server_url=sandbox.url, platform_url=platform_url, timeout=(1, 1))
    outcomes = write_many(
        core, _records(10, without_email=set()), mode="asynchronous", wait=True,
        batch_size=2, **options, **WHERE,
    )  # fmt: skip
    started = time.monotonic()
    with core, outcomes:
        stopper = threading.Timer(0.5, outcomes.stop)
        stopper.start()
        found = by_index(outcomes)
        stopper.cancel()
    return found, time.monotonic() - started


def test_a_stop_ends_the_following_even_while_the_platform_asks_to_wait(sb: Sandbox) -> None:
    busy = json_reply(503, {"title": "busy"}, headers=[("Retry-After", "8")])
    with ScriptedServer(default=busy) as platform:
        found, elapsed = _follow_against(platform.url, sb)
    assert sorted(found) == list(range(10))
    assert {o.status for o in found.values()} == {"accepted"}
    assert elapsed < 5  # not 8 s per operation


def test_wait_timeout_bounds_the_following_of_every_operation(sb: Sandbox) -> None:
    with ScriptedServer(default=Stall(30)) as platform:  # the Platform API never answers
        core = Core(sb.api_key, server_url=sb.url, platform_url=platform.url, timeout=(1, 1))
        started = time.monotonic()
        with core, write_many(
            core, _records(10, without_email=set()), mode="asynchronous", wait=True,
            batch_size=2, wait_timeout=1.0, **WHERE,
        ) as outcomes:  # fmt: skip
            found = by_index(outcomes)
        elapsed = time.monotonic() - started
    assert sorted(found) == list(range(10)) and {o.status for o in found.values()} == {"accepted"}
    assert elapsed < 8  # the budget and one cut-short poll, not a poll per operation
    assert sum("wait_timeout" in (o.error or "") for o in found.values()) >= 8


def test_an_exit_while_following_loses_no_outcome(sb: Sandbox) -> None:
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(3)  # as a SIGTERM handler calling sys.exit would

    with Sandbox(async_delay=30.0) as slow:
        core = Core(slow.api_key, server_url=slow.url, platform_url=slow.url)
        outcomes = write_many(
            core, _records(8, without_email=set()), mode="asynchronous", wait=True,
            batch_size=2, **WHERE,
        )  # fmt: skip
        found: list[Outcome] = []
        previous = signal.signal(signal.SIGALRM, leave)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            with core, outcomes, pytest.raises(SystemExit):
                for outcome in outcomes:
                    found.append(outcome)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    assert sorted(o.index for o in found) == list(range(8))
    assert {o.status for o in found} == {"accepted"}


def test_wait_is_checked(sb: Sandbox) -> None:
    with Core(sb.api_key, server_url=sb.url) as core:
        with pytest.raises(ValueError, match="mode='asynchronous'"):
            write_many(core, [], wait=True, **WHERE)
        with pytest.raises(TypeError, match="wait"):
            write_many(core, [], mode="asynchronous", wait="no", **WHERE)  # type: ignore[arg-type]
