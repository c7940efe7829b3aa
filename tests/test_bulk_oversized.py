"""`write_many` and a server that refuses a request as too large (413), unread: the batch is
split until the record too large is alone, and its neighbours are written."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ampwrite import Core
from ampwrite.bulk import BulkWrites, write_many
from ampwrite.bulk._judge import MAYBE_TWICE
from ampwrite.sandbox import Sandbox
from ampwrite.sandbox._http import MAX_BODY
from tests.conftest import API_KEY
from tests.scripted_server import Reply, ScriptedServer
from tests.test_bulk import QUICK, WHERE, _batch_answer, by_index

TOO_LARGE = Reply(413, body=b"the body is over the limit", content_type="text/plain")
BAD_GATEWAY = Reply(502, body=b"bad gateway", content_type="text/plain")


def oversized(n: int) -> dict[str, Any]:
    """A record that makes any request holding it larger than the sandbox takes."""
    return {"n": n, "note": "x" * MAX_BODY}


def test_a_record_too_large_fails_alone_and_its_neighbours_are_written(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records = [oversized(i) if i == 5 else {"n": i} for i in range(8)]

    writes = write_many(ampwrite_core, records, **WHERE, batch_size=8)
    outcomes = by_index(writes)

    assert [outcomes[i].status for i in range(8)] == ["written"] * 5 + ["failed"] + ["written"] * 2
    assert str(outcomes[5].error).startswith("APIError: 413")
    assert f"request body larger than {MAX_BODY} bytes" in str(outcomes[5].error)
    stored = sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert stored == [0, 1, 2, 3, 4, 6, 7]
    # 0-7 refused; 0-3 written, 4-7 refused; 4-5 refused, 6-7 written; 4 written, 5 refused
    assert writes.progress.requests == 7
    assert writes.progress.throttled == 0  # a 413 does not slow the run down


def test_with_all_or_none_a_record_too_large_fails_its_batch_whole(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records = [oversized(i) if i == 1 else {"n": i} for i in range(4)]

    writes = write_many(ampwrite_core, records, **WHERE, batch_size=2, all_or_none=True)
    outcomes = by_index(writes)

    assert [outcomes[i].status for i in range(4)] == ["failed", "failed", "written", "written"]
    assert "413" in str(outcomes[0].error)
    assert sorted(r["n"] for r in ampwrite_sandbox.records(object_name="contacts")) == [2, 3]
    assert writes.progress.requests == 2  # its batch is never split


def test_halves_of_a_request_that_met_an_ambiguous_answer_may_be_written_twice(
    server: ScriptedServer,
) -> None:
    ok = {"success": True, "recordId": "r-1"}
    server.script(BAD_GATEWAY, TOO_LARGE, _batch_answer(ok), _batch_answer(ok))

    with Core(API_KEY, server_url=server.url) as core:
        writes = write_many(
            core, [{"n": 1}, {"n": 2}], **WHERE, retry_ambiguous=True, retries=QUICK
        )
        outcomes = by_index(writes)

    assert [len(request.json()["batch"]) for request in server.received] == [2, 2, 1, 1]
    for outcome in outcomes.values():  # the 502'd attempt may have stored them
        assert (outcome.status, outcome.error) == ("written", MAYBE_TWICE)


@pytest.mark.parametrize("ambiguous", [False, True], ids=["first attempt", "after a 502"])
def test_a_stop_before_the_halves_are_sent_reports_only_what_may_be_written(
    server: ScriptedServer, ambiguous: bool
) -> None:
    writes: BulkWrites | None = None

    def stop_then_refuse(connection: socket.socket) -> None:
        assert writes is not None
        writes.stop()  # before the halves are sent
        connection.sendall(TOO_LARGE.encode())

    server.script(*([BAD_GATEWAY] if ambiguous else []), stop_then_refuse)

    with Core(API_KEY, server_url=server.url) as core:
        writes = write_many(
            core, [{"n": 1}, {"n": 2}], **WHERE, retry_ambiguous=ambiguous, retries=QUICK
        )
        outcomes = by_index(writes)

    assert len(server.received) == 1 + ambiguous
    if not ambiguous:  # refused unread, not sent again: not written, and not failed either
        assert outcomes == {}
        return
    assert sorted(outcomes) == [0, 1], "no record that may be written goes unreported"
    for outcome in outcomes.values():
        assert outcome.status == "unknown"
        assert "may have written it" in str(outcome.error)
