"""`ampwrite.bulk.write_many`: batching, laziness, per-record accounting, stopping."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ampwrite import Core, RetryConfig
from ampwrite.bulk import Outcome, Progress, write_many, write_partition
from ampwrite.sandbox import Faults, Sandbox
from tests.conftest import API_KEY
from tests.scripted_server import RESET, Reply, ScriptedServer, Stall, json_reply

# Object rules outlive the sandbox fixture's reset: tests that set rules use objects of
# their own, never "contacts".
WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}
QUICK = RetryConfig(initial_interval=0.01, max_interval=0.05, max_attempts=5, jitter=0.0)


def by_index(outcomes: Iterator[Outcome] | list[Outcome]) -> dict[int, Outcome]:
    found: dict[int, Outcome] = {}
    for outcome in outcomes:
        assert outcome.index not in found, f"index {outcome.index} reported twice"
        found[outcome.index] = outcome
    return found


def write_bodies(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [entry.body for entry in sandbox.requests if entry.method == "POST"]


def test_every_record_is_written_once_in_batches(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records = [{"email": f"u{i}@example.com", "n": i} for i in range(1_234)]

    outcomes = by_index(write_many(ampwrite_core, records, **WHERE, batch_size=100))

    assert sorted(outcomes) == list(range(1_234))
    assert {o.status for o in outcomes.values()} == {"written"}
    stored = {r["id"]: r for r in ampwrite_sandbox.records(object_name="contacts")}
    assert len(stored) == 1_234
    for index, outcome in outcomes.items():
        assert outcome.record_id is not None
        assert stored[outcome.record_id]["n"] == index
        assert outcome.operation_id
    sizes = sorted(len(body["batch"]) for body in write_bodies(ampwrite_sandbox))
    assert sizes == [34] + [100] * 12


def test_outcomes_pickle_and_serialise() -> None:
    import pickle

    outcome = Outcome(3, "failed", None, "invalid record: record.x: nan is not a JSON number")
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert json.loads(json.dumps(outcome.to_json())) == {
        "index": 3,
        "status": "failed",
        "record_id": None,
        "error": outcome.error,
        "operation_id": None,
    }


def test_the_input_is_read_lazily(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.002))
    batch_size, concurrency = 10, 3
    read = 0
    furthest_ahead = 0

    def records() -> Iterator[dict[str, int]]:
        nonlocal read
        for i in range(1_000):
            read += 1
            yield {"n": i}

    yielded = 0
    for _ in write_many(
        ampwrite_core, records(), **WHERE, batch_size=batch_size, concurrency=concurrency
    ):
        furthest_ahead = max(furthest_ahead, read - yielded)
        yielded += 1

    assert yielded == read == 1_000
    assert furthest_ahead <= batch_size * (concurrency + 1)


def test_records_invalid_locally_fail_alone_and_the_rest_is_sent(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records: list[Any] = [{"n": i} for i in range(10)]
    records[1] = {"score": math.nan}
    records[2] = {"raw": b"bytes"}
    records[3] = "not a dict"
    records[4] = None
    records[5] = {"tags": {"a", "b"}}
    records[6] = {"text": "\ud800 lone surrogate"}
    records[7] = {1: "key is not a string"}

    outcomes = by_index(write_many(ampwrite_core, records, **WHERE))

    assert sorted(outcomes) == list(range(10))
    assert [outcomes[i].status for i in range(10)] == ["written"] + ["failed"] * 7 + ["written"] * 2
    assert outcomes[1].error == "invalid record: record.score: nan is not a JSON number"
    assert "record.raw" in str(outcomes[2].error) and "bytes" in str(outcomes[2].error)
    assert "expected an object" in str(outcomes[3].error)
    assert "record" in str(outcomes[4].error)
    assert "record.tags" in str(outcomes[5].error)
    assert "surrogate" in str(outcomes[6].error) or "UTF-8" in str(outcomes[6].error)
    assert "keys must be strings" in str(outcomes[7].error)
    stored = ampwrite_sandbox.records(object_name="contacts")
    assert sorted(r["n"] for r in stored) == [0, 8, 9]


def test_provider_failures_are_split_per_record(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.configure_object("leads", required_fields=["email"])
    records = [{"email": f"u{i}@example.com"} if i % 3 else {"name": "no email"} for i in range(9)]

    outcomes = by_index(
        write_many(ampwrite_core, records, **{**WHERE, "object_name": "leads"}, batch_size=5)
    )

    for index, outcome in outcomes.items():
        if index % 3:
            assert outcome.status == "written" and outcome.record_id
        else:
            assert outcome.status == "failed"
            assert outcome.error == "Required fields are missing: [email]"
    assert len(ampwrite_sandbox.records(object_name="leads")) == 6


def test_all_or_none_fails_the_whole_batch(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.configure_object("leads", required_fields=["email"])
    records = [{"email": f"u{i}@example.com"} for i in range(10)]
    records[2] = {"name": "no email"}
    where = {**WHERE, "object_name": "leads"}

    outcomes = by_index(write_many(ampwrite_core, records, **where, batch_size=5, all_or_none=True))

    assert [outcomes[i].status for i in range(10)] == ["failed"] * 5 + ["written"] * 5
    assert "Required fields are missing" in str(outcomes[2].error)
    assert "allOrNone" in str(outcomes[0].error)
    assert len(ampwrite_sandbox.records(object_name="leads")) == 5


def test_all_or_none_with_a_record_invalid_locally_sends_nothing_of_its_batch(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records: list[Any] = [{"n": i} for i in range(6)]
    records[4] = {"n": math.inf}

    outcomes = by_index(write_many(ampwrite_core, records, **WHERE, batch_size=3, all_or_none=True))

    assert [outcomes[i].status for i in range(6)] == ["written"] * 3 + ["failed"] * 3
    assert "record.n" in str(outcomes[4].error)
    assert "not sent" in str(outcomes[3].error)
    assert len(write_bodies(ampwrite_sandbox)) == 1


def test_updates_and_deletes_are_accounted_the_same_way(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    created = by_index(write_partition(ampwrite_core, [{"n": i} for i in range(4)], **WHERE))
    ids = [created[i].record_id for i in range(4)]

    changes = [{"id": record_id, "n": 10} for record_id in ids] + [{"id": "missing"}]
    updated = by_index(write_many(ampwrite_core, changes, **WHERE, type="update"))
    assert [updated[i].status for i in range(5)] == ["written"] * 4 + ["failed"]
    assert "not found" in str(updated[4].error)
    assert {r["n"] for r in ampwrite_sandbox.records(object_name="contacts")} == {10}

    before = len(write_bodies(ampwrite_sandbox))
    deletes = [{"id": ids[0]}, {"id": ids[1]}, {"id": "missing"}, {"no": "id"}]
    deleted = by_index(write_many(ampwrite_core, deletes, **WHERE, type="delete"))
    assert [deleted[i].status for i in range(4)] == ["written", "written", "failed", "failed"]
    assert "id" in str(deleted[3].error)
    bodies = write_bodies(ampwrite_sandbox)[before:]
    assert len(bodies) == 3  # one record per request; the record without an id is not sent
    assert all("record" in body and "batch" not in body for body in bodies)
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 2


def test_asynchronous_writes_are_accepted_with_their_operation(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    outcomes = by_index(
        write_many(
            ampwrite_core, [{"n": i} for i in range(7)], **WHERE, mode="asynchronous", batch_size=3
        )
    )

    assert {o.status for o in outcomes.values()} == {"accepted"}
    operations = {o.operation_id for o in outcomes.values()}
    assert len(operations) == 3
    for operation_id in operations:
        assert operation_id is not None
        assert ampwrite_sandbox.operation(operation_id) is not None


def test_associations_constant_or_per_record(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    link = {"to": {"id": "c-1"}, "types": [{"associationCategory": "HUBSPOT_DEFINED"}]}
    write_partition(ampwrite_core, [{"n": 0}, {"n": 1}], **WHERE, associations=[link])
    assert [item["associations"] for item in write_bodies(ampwrite_sandbox)[0]["batch"]] == [
        [link],
        [link],
    ]

    def per_record(record: dict[str, int]) -> list[dict[str, Any]] | None:
        if record["n"] == 2:
            raise LookupError("no company for this one")
        return [link] if record["n"] else None

    outcomes = by_index(
        write_many(ampwrite_core, [{"n": 0}, {"n": 1}, {"n": 2}], **WHERE, associations=per_record)
    )
    assert outcomes[2].status == "failed"
    assert outcomes[2].error == "associations failed: LookupError: no company for this one"
    items = write_bodies(ampwrite_sandbox)[1]["batch"]
    assert items == [{"record": {"n": 0}}, {"record": {"n": 1}, "associations": [link]}]


def test_an_invalid_request_fails_every_record_without_sending(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    outcomes = list(
        write_many(ampwrite_core, iter([{"n": 1}, {"n": 2}]), **{**WHERE, "group_ref": ""})
    )

    assert [(o.index, o.status) for o in outcomes] == [(0, "failed"), (1, "failed")]
    assert "requestBody.groupRef" in str(outcomes[0].error)
    assert ampwrite_sandbox.requests == []


def test_arguments_that_cannot_work_raise_at_once(ampwrite_core: Core) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        write_many(ampwrite_core, [], **WHERE, batch_size=101)
    with pytest.raises(ValueError, match="concurrency"):
        write_many(ampwrite_core, [], **WHERE, concurrency=0)
    with pytest.raises(TypeError, match="Core"):
        write_many("not a core", [], **WHERE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="associations"):
        write_many(ampwrite_core, [], **WHERE, associations={"to": 1})  # type: ignore[arg-type]


def test_progress_is_reported(ampwrite_core: Core) -> None:
    seen: list[Progress] = []
    records = [{"n": i} for i in range(250)]

    writes = write_many(ampwrite_core, records, **WHERE, on_progress=seen.append)
    outcomes = list(writes)

    assert len(outcomes) == 250
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    last = seen[-1]
    assert (last.done, last.total, last.written, last.requests) == (250, 250, 250, 3)
    assert writes.progress.done == 250 and writes.progress.rate > 0


def test_stop_finishes_what_is_in_flight_and_sends_nothing_more(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.01))
    records = [{"n": i} for i in range(2_000)]
    writes = write_many(ampwrite_core, records, **WHERE, batch_size=10, concurrency=2)

    reported = []
    for outcome in writes:
        reported.append(outcome)
        if len(reported) == 1:
            writes.stop()
    sent = len(ampwrite_sandbox.requests)

    assert 10 <= len(reported) <= 30  # the batch that stopped it and those in flight
    assert len(by_index(reported)) == len(reported)
    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert stored == sorted(o.index for o in reported)
    assert all(o.status == "written" for o in reported)
    assert sent == len(reported) // 10
    assert len(ampwrite_sandbox.requests) == sent


def test_close_ends_at_once_and_nothing_is_sent_after(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.01))
    with write_many(
        ampwrite_core, ({"n": i} for i in range(5_000)), **WHERE, batch_size=10
    ) as writes:
        first = next(writes)
    sent = len(ampwrite_sandbox.requests)

    assert first.status == "written"
    assert sent < 20
    assert len(ampwrite_sandbox.requests) == sent
    assert list(writes) == []


def test_an_input_that_raises_reports_what_was_sent_then_raises(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    def records() -> Iterator[dict[str, int]]:
        yield from ({"n": i} for i in range(25))
        raise OSError("the disk went away")

    reported: list[Outcome] = []
    with pytest.raises(OSError, match="disk"):
        for outcome in write_many(ampwrite_core, records(), **WHERE, batch_size=10):
            reported.append(outcome)

    assert sorted(o.index for o in reported) == list(range(25))
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 25


def test_an_interrupt_reports_what_was_sent_then_raises(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.01))

    def records() -> Iterator[dict[str, int]]:
        yield from ({"n": i} for i in range(35))
        raise KeyboardInterrupt  # as if Ctrl-C came while the input was being read

    reported: list[Outcome] = []
    with pytest.raises(KeyboardInterrupt):
        for outcome in write_many(ampwrite_core, records(), **WHERE, batch_size=10):
            reported.append(outcome)

    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert sorted(o.index for o in reported) == stored
    # the batches read before the interrupt, but those no writer had started yet
    assert set(stored) <= set(range(30)) and len(stored) % 10 == 0


def test_a_second_interrupt_stops_waiting(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.02))
    calls = 0

    def impatient(progress: Progress) -> None:
        nonlocal calls
        calls += 1
        raise KeyboardInterrupt

    reported: list[Outcome] = []
    records = [{"n": i} for i in range(100)]
    with pytest.raises(KeyboardInterrupt):
        for outcome in write_many(
            ampwrite_core, records, **WHERE, batch_size=10, on_progress=impatient
        ):
            reported.append(outcome)

    for thread in threading.enumerate():  # the requests left in flight, before the next test
        if thread.name.startswith("ampwrite-bulk"):
            thread.join(10)
    assert calls in (1, 2)  # 1 when every request in flight had finished at the first
    assert {o.status for o in reported} == {"written"}
    stored = {r["n"] for r in ampwrite_sandbox.records(object_name="contacts")}
    assert {o.index for o in reported} <= stored
    assert len(reported) < 100


def test_rate_limits_and_503_are_waited_out(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.fail_next(429, count=3, retry_after=0)
    ampwrite_sandbox.fail_next(503, count=2, retry_after=0)

    writes = write_many(ampwrite_core, [{"n": i} for i in range(50)], **WHERE, batch_size=10)
    outcomes = by_index(writes)

    assert {o.status for o in outcomes.values()} == {"written"}
    assert writes.progress.throttled == 5
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 50


def test_a_rate_limit_that_never_ends_fails_the_records(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(rate_limit=1.0, retry_after=0))

    outcomes = list(write_many(ampwrite_core, [{"n": 1}, {"n": 2}], **WHERE, retries=QUICK))

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "RateLimitError" in str(outcomes[0].error) and "5 attempts" in str(outcomes[0].error)
    assert len(ampwrite_sandbox.requests) == 5


@pytest.mark.parametrize("status", [429, 503])
def test_a_wait_longer_than_max_retry_after_is_not_cut_short(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, status: int
) -> None:
    ampwrite_sandbox.fail_next(status, count=1, retry_after=120)
    patience = RetryConfig(max_retry_after=5.0)

    outcomes = by_index(
        write_many(
            ampwrite_core,
            [{"n": i} for i in range(30)],
            **WHERE,
            batch_size=10,
            concurrency=1,
            retries=patience,
        )
    )

    assert len(ampwrite_sandbox.requests) == 1  # no retry before the server's time
    assert {o.status for o in outcomes.values()} == {"failed"}
    assert "asked to wait 120 s, more than max_retry_after 5 s" in str(outcomes[0].error)
    assert str(outcomes[29].error).startswith("not sent: the run gave up on the server")
    assert ampwrite_sandbox.records(object_name="contacts") == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_statuses_are_unknown_and_never_resent(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, status: int
) -> None:
    ampwrite_sandbox.fail_next(status)

    outcomes = by_index(
        write_many(
            ampwrite_core, [{"n": i} for i in range(20)], **WHERE, batch_size=10, concurrency=1
        )
    )

    statuses = Counter(o.status for o in outcomes.values())
    assert statuses == {"unknown": 10, "written": 10}
    assert len(ampwrite_sandbox.requests) == 2
    unknown = [o for o in outcomes.values() if o.status == "unknown"]
    assert all(f"{status}" in str(o.error) for o in unknown)


def test_a_write_committed_before_a_502_is_unknown_not_failed(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(commit_then_fail=1.0))

    outcomes = list(write_many(ampwrite_core, [{"n": 1}, {"n": 2}], **WHERE))

    assert [o.status for o in outcomes] == ["unknown", "unknown"]
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 2


def test_a_reset_is_unknown_unless_ambiguous_retries_are_asked_for(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.reset_next()
    first = list(write_many(ampwrite_core, [{"n": 1}], **WHERE))
    assert first[0].status == "unknown" and "TransportError" in str(first[0].error)

    ampwrite_sandbox.reset_next()
    again = list(write_many(ampwrite_core, [{"n": 2}], **WHERE, retry_ambiguous=True))
    assert again[0].status == "written"
    assert "check for a duplicate" in str(again[0].error)  # the reset came before storing
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 1


def test_after_an_ambiguous_attempt_a_refusal_is_unknown(server: ScriptedServer) -> None:
    refused = {
        "operationId": "op-2",
        "successCount": 1,
        "failureCount": 1,
        "results": [{"success": True, "recordId": "r-1"}, {"success": False}],
        "errors": [{"message": "batch[1]: duplicate value found: email"}],
    }
    server.script(
        Reply(502, body=b"bad gateway", content_type="text/plain"), json_reply(200, refused)
    )

    with Core(API_KEY, server_url=server.url) as core:
        outcomes = by_index(
            write_many(core, [{"n": 1}, {"n": 2}], **WHERE, retry_ambiguous=True, retries=QUICK)
        )

    assert (outcomes[0].status, outcomes[0].record_id) == ("written", "r-1")
    assert outcomes[0].error == "an earlier attempt may have written it too: check for a duplicate"
    assert outcomes[1].status == "unknown"  # the 502'd attempt may have stored it
    assert "may have written it" in str(outcomes[1].error)
    assert "duplicate value" in str(outcomes[1].error)
    assert len(server.received) == 2


def _batch_answer(*results: dict[str, Any], status: int = 200, **extra: Any) -> Reply:
    successes = sum(1 for r in results if r["success"])
    body = {
        "operationId": "op-1",
        "successCount": successes,
        "failureCount": len(results) - successes,
        "results": list(results),
        **extra,
    }
    return json_reply(status, body)


ANSWERS: dict[str, tuple[Reply, list[str]]] = {
    "results of every record": (
        _batch_answer(
            {"success": True, "recordId": "r-1"},
            {"success": False},
            errors=[{"message": "batch[1]: NOT_FOUND"}],
        ),
        ["written", "failed"],
    ),
    "fewer results than records": (
        _batch_answer({"success": True, "recordId": "r-1"}),
        ["unknown", "unknown"],
    ),
    "a single-record answer to a batch": (
        json_reply(200, {"operationId": "op", "result": {"success": True, "recordId": "r"}}),
        ["unknown", "unknown"],
    ),
    "a 2xx that is not JSON": (
        Reply(200, body=b"<html>", content_type="text/html"),
        ["unknown"] * 2,
    ),
    "a 422 with results": (
        _batch_answer({"success": False}, {"success": False}, status=422),
        ["failed", "failed"],
    ),
    "a 422 without a body": (Reply(422, body=b""), ["failed", "failed"]),
    "a 422 with fewer results than records": (
        _batch_answer({"success": True, "recordId": "r-1"}, status=422),
        ["unknown", "unknown"],
    ),
    "a 422 saying a record was written, without results": (
        json_reply(422, {"operationId": "op", "successCount": 1, "failureCount": 1}),
        ["unknown", "unknown"],
    ),
    "a 422 saying nothing was written, without results": (
        json_reply(422, {"operationId": "op", "successCount": 0, "failureCount": 2}),
        ["failed", "failed"],
    ),
    "400": (Reply(400, body=b"batch: bad", content_type="text/plain"), ["failed", "failed"]),
    "404": (Reply(404, body=b"{}"), ["failed", "failed"]),
    "a redirect": (Reply(307, (("Location", "http://elsewhere/"),), b""), ["failed", "failed"]),
    "501": (Reply(501, body=b"{}"), ["unknown", "unknown"]),
    "reset after sending": (RESET, ["unknown", "unknown"]),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("answer", ANSWERS, ids=list(ANSWERS))
def test_each_kind_of_answer(server: ScriptedServer, answer: str) -> None:
    reply, expected = ANSWERS[answer]
    server.script(reply)

    with Core(API_KEY, server_url=server.url) as core:
        outcomes = by_index(write_many(core, [{"n": 1}, {"n": 2}], **WHERE))

    assert [outcomes[0].status, outcomes[1].status] == expected
    assert len(server.received) == 1
    for outcome in outcomes.values():
        assert (outcome.error is None) == (outcome.status == "written")


def test_a_read_timeout_is_unknown(server: ScriptedServer) -> None:
    server.script(Stall(2.0))

    with Core(API_KEY, server_url=server.url, timeout=(1.0, 0.2)) as core:
        outcomes = list(write_many(core, [{"n": 1}], **WHERE))

    assert outcomes[0].status == "unknown"
    assert "RequestTimeoutError" in str(outcomes[0].error)


def test_a_problem_retry_after_without_the_header_is_honoured(server: ScriptedServer) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(milliseconds=50)).isoformat()
    problem = {"title": "Too Many Requests", "status": 429, "retryAfter": soon}
    server.script(json_reply(429, problem, content_type="application/problem+json"))
    server.script(_batch_answer({"success": True, "recordId": "r-1"}))

    with Core(API_KEY, server_url=server.url) as core:
        writes = write_many(core, [{"n": 1}], **WHERE)
        outcomes = list(writes)

    assert outcomes[0].status == "written"
    assert writes.progress.throttled == 1


def test_wrong_key_fails_every_record(ampwrite_sandbox: Sandbox) -> None:
    with Core("wrong-key", server_url=ampwrite_sandbox.url) as wrong:
        outcomes = list(write_many(wrong, [{"n": 1}, {"n": 2}], **WHERE))

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "AuthenticationError: 401" in str(outcomes[0].error)


def test_a_server_that_cannot_be_reached_fails_everything_after_one_retry_budget() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    records = [{"n": i} for i in range(100)]
    with Core("nowhere-key", server_url=f"http://127.0.0.1:{port}/v1") as nowhere:
        writes = write_many(nowhere, records, **WHERE, batch_size=10, concurrency=2, retries=QUICK)
        outcomes = by_index(writes)

    assert sorted(outcomes) == list(range(100))
    assert {o.status for o in outcomes.values()} == {"failed"}
    errors = Counter(str(o.error).split(":")[0] for o in outcomes.values())
    assert errors["not sent"] >= 80  # once one request gave up, the rest were not tried
    assert "5 attempts" in str(outcomes[0].error) or "5 attempts" in str(outcomes[10].error)
    assert writes.progress.requests <= 2 * 5


def test_a_rate_limit_that_never_ends_gives_up_on_the_whole_run(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.set_faults(Faults(rate_limit=1.0, retry_after=0))
    records = [{"n": i} for i in range(30)]

    outcomes = by_index(
        write_many(ampwrite_core, records, **WHERE, batch_size=10, concurrency=1, retries=QUICK)
    )

    assert {o.status for o in outcomes.values()} == {"failed"}
    assert "gave up after 5 attempts" in str(outcomes[0].error)
    assert str(outcomes[29].error).startswith("not sent: the run gave up on the server")
    assert len(ampwrite_sandbox.requests) == 5


def test_an_ambiguous_answer_is_resent_only_after_a_backoff(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.fail_next(500)
    patient = RetryConfig(initial_interval=600.0, max_interval=600.0, jitter=0.0)
    found: list[Outcome] = []

    writes = write_many(ampwrite_core, [{"n": 1}], **WHERE, retry_ambiguous=True, retries=patient)
    worker = threading.Thread(target=lambda: found.extend(writes))
    worker.start()
    while not write_bodies(ampwrite_sandbox):
        worker.join(0.01)
    writes.stop()  # during the backoff: nothing is sent again
    worker.join()

    assert len(write_bodies(ampwrite_sandbox)) == 1
    assert [o.status for o in found] == ["unknown"], found
    assert "stopped before trying again" in str(found[0].error)


def test_records_refused_before_sending_do_not_pile_up(ampwrite_core: Core) -> None:
    read = 0

    def records() -> Iterator[dict[str, int]]:
        nonlocal read
        for n in range(10_000):
            read += 1
            yield {"n": n}

    def broken(record: object) -> None:
        raise RuntimeError("no associations")

    with write_many(
        ampwrite_core, records(), **WHERE, batch_size=10, concurrency=2, associations=broken
    ) as writes:
        first = next(writes)
        assert first.status == "failed"
        assert read <= 20  # not the whole input
        rest = list(writes)

    assert len(rest) == 9_999


def test_on_send_hears_of_every_request_before_it_is_sent(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    ampwrite_sandbox.fail_next(429, count=3, retry_after=0)
    announced: list[tuple[int, ...]] = []
    stored_then: list[int] = []

    def on_send(indices: tuple[int, ...]) -> None:
        announced.append(indices)
        stored = {r["n"] for r in ampwrite_sandbox.records(object_name="contacts")}
        stored_then.extend(i for i in indices if i in stored)

    records = [{"n": i} for i in range(95)]
    outcomes = by_index(write_many(ampwrite_core, records, **WHERE, batch_size=10, on_send=on_send))

    assert {o.status for o in outcomes.values()} == {"written"}
    assert sorted(i for batch in announced for i in batch) == list(range(95)), "each once"
    assert stored_then == [], "announced before being sent"
    assert len(announced) == 10  # once per batch, not per attempt (3 were throttled)


@pytest.mark.parametrize(
    ("error", "failing_call"),
    [(OSError("the journal's disk is full"), 3), (SystemExit("the journal went away"), 2)],
)
def test_on_send_failing_stops_the_run(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, error: BaseException, failing_call: int
) -> None:
    calls = 0

    def on_send(indices: tuple[int, ...]) -> None:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise error

    reported: list[Outcome] = []
    with pytest.raises(type(error), match="journal"):
        for outcome in write_many(
            ampwrite_core,
            ({"n": i} for i in range(100)),
            **WHERE,
            batch_size=10,
            concurrency=1,
            on_send=on_send,
        ):
            reported.append(outcome)

    sent = list(range(10 * (failing_call - 1)))  # the batch it refused: never sent, no outcome
    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert stored == sent == sorted(o.index for o in reported)
    assert {o.status for o in reported} == {"written"}
    assert calls == failing_call


class Unreadable(Mapping[str, Any]):
    """A record that fails when read (a lazy mapping over a broken source, say)."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("the source went away")

    def __iter__(self) -> Iterator[str]:
        return iter(["email"])

    def __len__(self) -> int:
        return 1


def test_a_record_that_cannot_be_read_fails_alone(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records: list[Any] = [{"n": i} for i in range(10)]
    records[4] = Unreadable()

    outcomes = by_index(write_many(ampwrite_core, records, **WHERE, batch_size=10))

    assert outcomes[4].status == "failed"
    assert (
        outcomes[4].error
        == "invalid record: could not be read: RuntimeError('the source went away')"
    )
    assert all(outcomes[i].status == "written" for i in range(10) if i != 4)
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 9
