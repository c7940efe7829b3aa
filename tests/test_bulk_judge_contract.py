"""The bulk judge decides from what the contract promises, never from message wording.

A server that follows the Write API contract answers a batch with per-record `results`
(`success`, `recordId`), the counts `successCount` and `failureCount`, and top-level
`errors` whose wording the contract leaves free. These tests answer in that shape from a
purpose-built loopback server, without the sandbox's own `batch[i]: ...` wording (or with it
pointing the wrong way), and check each record's status, and that an answer which cannot
say which record was written says so in the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from ampwrite import Core
from ampwrite.bulk import Outcome, write_many
from tests.conftest import API_KEY
from tests.scripted_server import Reply, ScriptedServer, json_reply

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}
RECORDS = [{"email": f"u{n}@example.com"} for n in range(3)]
CANNOT_SAY = "the answer does not say which records were written"


def batch_body(
    *results: bool | None, success: int | None = None, failure: int | None = None, **extra: Any
) -> dict[str, Any]:
    """A batch answer: one result per `results` entry (True: written as `r-<position>`),
    the counts (by default those of the results) and any other field in `extra`."""
    listed = [
        {"success": True, "recordId": f"r-{n}"} if ok else {"success": False}
        for n, ok in enumerate(results)
    ]
    successes = sum(1 for ok in results if ok)
    body: dict[str, Any] = {
        "operationId": "op-1",
        "successCount": successes if success is None else success,
        "failureCount": len(results) - successes if failure is None else failure,
        **extra,
    }
    if listed:
        body["results"] = listed
    return body


def run(
    server: ScriptedServer, reply: Reply, records: Iterable[Any] = RECORDS, **options: Any
) -> list[Outcome]:
    """Write `records` as one request answered by `reply`; the outcomes by input index."""
    server.script(reply)
    with Core(API_KEY, server_url=server.url) as core:
        outcomes = sorted(write_many(core, records, **WHERE, **options), key=lambda o: o.index)
    assert [o.index for o in outcomes] == list(range(len(outcomes)))  # each one exactly once
    assert len(server.received) == 1
    return outcomes


def statuses(outcomes: list[Outcome]) -> list[str]:
    return [o.status for o in outcomes]


def test_per_record_results_decide_and_top_level_errors_only_explain(
    server: ScriptedServer,
) -> None:
    body = batch_body(True, False, True, errors=[{"message": "Email is already taken"}])

    outcomes = run(server, json_reply(200, body))

    assert statuses(outcomes) == ["written", "failed", "written"]
    assert [o.record_id for o in outcomes] == ["r-0", None, "r-2"]
    assert outcomes[1].error is not None and "Email is already taken" in outcomes[1].error
    assert outcomes[0].error is None and outcomes[2].error is None


def test_wording_that_names_a_written_record_does_not_fail_it(server: ScriptedServer) -> None:
    body = batch_body(
        True,
        True,
        False,
        errors=[
            {"message": "batch[0]: duplicate value found: email"},  # a warning, say
            {"message": "batch[7]: no such record in this batch"},
        ],
    )

    outcomes = run(server, json_reply(200, body))

    assert statuses(outcomes) == ["written", "written", "failed"]
    assert outcomes[0].record_id == "r-0" and outcomes[0].error is None
    assert "no such record" not in str(outcomes[2].error)


@pytest.mark.parametrize("status", [200, 422])
def test_a_message_naming_a_record_enriches_its_failure(
    server: ScriptedServer, status: int
) -> None:
    body = batch_body(
        False, False, False, errors=[{"message": "batch[1]: REQUIRED_FIELD_MISSING: email"}]
    )

    outcomes = run(server, json_reply(status, body))

    assert statuses(outcomes) == ["failed"] * 3
    assert "REQUIRED_FIELD_MISSING" in str(outcomes[1].error)
    assert "REQUIRED_FIELD_MISSING" not in str(outcomes[0].error)


def test_counts_alone_saying_every_record_was_written(server: ScriptedServer) -> None:
    outcomes = run(server, json_reply(200, batch_body(success=3, failure=0)))

    assert statuses(outcomes) == ["written"] * 3
    assert [o.record_id for o in outcomes] == [None] * 3  # the answer gave no ids
    assert {o.operation_id for o in outcomes} == {"op-1"}


@pytest.mark.parametrize("status", [200, 422])
def test_counts_alone_saying_every_record_failed(server: ScriptedServer, status: int) -> None:
    body = batch_body(success=0, failure=3, errors=[{"message": "provider rolled back"}])

    outcomes = run(server, json_reply(status, body))

    assert statuses(outcomes) == ["failed"] * 3
    assert all("provider rolled back" in str(o.error) for o in outcomes)


COUNTS_THAT_CANNOT_ATTRIBUTE: dict[str, tuple[int, dict[str, Any], bool]] = {
    "a 200 with mixed counts": (200, batch_body(success=1, failure=2), False),
    "a 422 with mixed counts": (422, batch_body(success=2, failure=1), False),
    "a 422 with fewer failures than records": (422, batch_body(success=0, failure=1), False),
    "a 422 to allOrNone saying some were written": (
        422,
        batch_body(success=2, failure=1),
        True,
    ),  # HubSpot batch updates can partly succeed whatever allOrNone says
}


@pytest.mark.parametrize(
    "case", COUNTS_THAT_CANNOT_ATTRIBUTE, ids=list(COUNTS_THAT_CANNOT_ATTRIBUTE)
)
def test_counts_that_cannot_say_which_record_leave_every_record_unknown(
    server: ScriptedServer, case: str
) -> None:
    status, body, all_or_none = COUNTS_THAT_CANNOT_ATTRIBUTE[case]

    outcomes = run(server, json_reply(status, body), all_or_none=all_or_none)

    assert statuses(outcomes) == ["unknown"] * 3
    for outcome in outcomes:
        assert outcome.error is not None and CANNOT_SAY in outcome.error
        assert f"{body['successCount']} succeeded" in outcome.error


def test_with_all_or_none_a_422_without_results_failed_every_record(
    server: ScriptedServer,
) -> None:
    body = batch_body(success=0, failure=1, errors=[{"message": "Batch write failed"}])

    outcomes = run(server, json_reply(422, body), all_or_none=True)

    assert statuses(outcomes) == ["failed"] * 3
    assert all("Batch write failed" in str(o.error) for o in outcomes)


def test_with_all_or_none_results_saying_written_are_believed(server: ScriptedServer) -> None:
    body = batch_body(True, False, True, errors=[{"message": "partly written"}])

    outcomes = run(server, json_reply(422, body), all_or_none=True)

    assert statuses(outcomes) == ["written", "failed", "written"]
    assert [o.record_id for o in outcomes] == ["r-0", None, "r-2"]


def test_counts_that_contradict_the_results_leave_every_record_unknown(
    server: ScriptedServer,
) -> None:
    body = batch_body(True, False, True, success=3, failure=0)

    outcomes = run(server, json_reply(200, body))

    assert statuses(outcomes) == ["unknown"] * 3
    for outcome in outcomes:
        assert "disagree" in str(outcome.error) and CANNOT_SAY in str(outcome.error)


def test_a_message_enriches_an_outcome_the_answer_cannot_attribute(
    server: ScriptedServer,
) -> None:
    body = batch_body(success=2, failure=1, errors=[{"message": "batch[1]: DUPLICATE_VALUE"}])

    outcomes = run(server, json_reply(422, body))

    assert statuses(outcomes) == ["unknown"] * 3  # the message names a record: not proof
    assert "DUPLICATE_VALUE" in str(outcomes[1].error)
    assert "DUPLICATE_VALUE" not in str(outcomes[0].error)


def test_a_single_record_failure_answering_a_batch_cannot_say_which(
    server: ScriptedServer,
) -> None:
    body = {
        "operationId": "op-1",
        "errors": [{"message": "write failed"}],
        "result": {"success": False},
    }

    outcomes = run(server, json_reply(422, body))

    assert statuses(outcomes) == ["unknown"] * 3
    assert all(CANNOT_SAY in str(o.error) and "write failed" in str(o.error) for o in outcomes)


def test_a_single_record_failure_answering_an_all_or_none_batch_failed_it(
    server: ScriptedServer,
) -> None:
    body = {
        "operationId": "op-1",
        "errors": [{"message": "write failed"}],
        "result": {"success": False},
    }

    outcomes = run(server, json_reply(422, body), all_or_none=True)

    assert statuses(outcomes) == ["failed"] * 3
    assert all("write failed" in str(o.error) for o in outcomes)


def test_a_delete_refused_in_the_single_record_shape_failed(server: ScriptedServer) -> None:
    body = {
        "operationId": "op-1",
        "errors": [{"message": "The record with ID 003xx000001 was not found"}],
        "result": {"success": False},
    }

    outcomes = run(server, json_reply(422, body), records=[{"id": "003xx000001"}], type="delete")

    assert statuses(outcomes) == ["failed"]
    assert "was not found" in str(outcomes[0].error)
