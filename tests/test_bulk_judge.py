"""The pure accounting of `ampwrite.bulk._judge`: issues back to records, verdicts."""

from __future__ import annotations

import pytest

from ampwrite.bulk import Outcome
from ampwrite.bulk._judge import Item, Regroup, Resend, Target, judge
from ampwrite.errors import APIError, RequestValidationError, ServerError, ValidationIssue
from ampwrite.result import Err


def target(**changes: object) -> Target:
    settings: dict[str, object] = {
        "project_id_or_name": "p",
        "integration_id": "i",
        "object_name": "o",
        "group_ref": "g",
        "type": "create",
        "mode": "synchronous",
        "all_or_none": False,
        **changes,
    }
    return Target(**settings)  # type: ignore[arg-type]


ITEMS = tuple(Item(10 + i, {"n": i}) for i in range(4))


def invalid(*issues: tuple[str, str]) -> Err[RequestValidationError]:
    return Err(RequestValidationError(tuple(ValidationIssue(p, m) for p, m in issues)))


def test_issues_naming_records_fail_those_records_and_the_rest_goes_again() -> None:
    verdict = judge(
        invalid(("requestBody.batch[1].record.x", "nan is not a JSON number")),
        target(),
        ITEMS,
        ambiguous_before=False,
        retry_ambiguous=False,
    )

    assert verdict == Regroup(
        (Outcome(11, "failed", None, "invalid record: record.x: nan is not a JSON number"),),
        ((ITEMS[0], ITEMS[2], ITEMS[3]),),
    )


def test_an_issue_naming_no_record_splits_the_group_until_it_does() -> None:
    issue = ("requestBody", "cannot be encoded as UTF-8 JSON")

    halves = judge(invalid(issue), target(), ITEMS, ambiguous_before=False, retry_ambiguous=False)
    alone = judge(
        invalid(issue), target(), ITEMS[:1], ambiguous_before=False, retry_ambiguous=False
    )

    assert halves == Regroup((), (ITEMS[:2], ITEMS[2:]))
    assert alone == Regroup(
        (
            Outcome(
                10, "failed", None, "invalid record: requestBody: cannot be encoded as UTF-8 JSON"
            ),
        ),
        (),
    )


def test_with_all_or_none_an_invalid_record_fails_its_batch_unsent() -> None:
    verdict = judge(
        invalid(("requestBody.batch[2]", "expected an object, got str")),
        target(all_or_none=True),
        ITEMS,
        ambiguous_before=False,
        retry_ambiguous=False,
    )

    assert isinstance(verdict, Regroup) and verdict.groups == ()
    assert [o.status for o in verdict.failed] == ["failed"] * 4
    assert verdict.failed[2].error == "invalid record: item: expected an object, got str"
    assert str(verdict.failed[0].error).startswith("not sent: allOrNone")


def test_a_delete_maps_every_issue_to_its_one_record() -> None:
    verdict = judge(
        invalid(("requestBody.record.id", "delete needs the id of the record (a string)")),
        target(type="delete"),
        ITEMS[:1],
        ambiguous_before=False,
        retry_ambiguous=False,
    )

    assert verdict == Regroup(
        (
            Outcome(
                10,
                "failed",
                None,
                "invalid record: record.id: delete needs the id of the record (a string)",
            ),
        ),
        (),
    )


def test_503_is_resent_after_the_wait_the_problem_asks_for() -> None:
    from ampwrite.models import Problem

    error = ServerError(
        "503",
        status=503,
        headers={},
        body="",
        problem=Problem(retry_after="2999-01-01T00:00:00Z"),
    )

    verdict = judge(Err(error), target(), ITEMS, ambiguous_before=False, retry_ambiguous=False)

    assert isinstance(verdict, Resend) and verdict.throttled
    assert verdict.wait is not None and verdict.wait > 1e9


def too_large() -> Err[APIError]:
    return Err(APIError("413 Payload Too Large: over 1 MB", status=413, headers={}, body=""))


def test_413_splits_a_batch_in_two_and_fails_a_record_alone() -> None:
    halves = judge(too_large(), target(), ITEMS, ambiguous_before=False, retry_ambiguous=False)
    alone = judge(too_large(), target(), ITEMS[:1], ambiguous_before=False, retry_ambiguous=False)
    unsure = judge(too_large(), target(), ITEMS[:1], ambiguous_before=True, retry_ambiguous=False)

    assert halves == Regroup((), (ITEMS[:2], ITEMS[2:]))
    assert alone == (Outcome(10, "failed", None, "APIError: 413 Payload Too Large: over 1 MB"),)
    assert isinstance(unsure, tuple) and unsure[0].status == "unknown"  # an earlier attempt


def test_413_with_all_or_none_fails_the_batch_whole() -> None:
    verdict = judge(
        too_large(), target(all_or_none=True), ITEMS, ambiguous_before=False, retry_ambiguous=False
    )

    assert verdict == tuple(
        Outcome(item.index, "failed", None, "APIError: 413 Payload Too Large: over 1 MB")
        for item in ITEMS
    )


@pytest.mark.parametrize(
    "too_big",
    [{0}, {99}, {3, 4, 50}, set(range(100))],
    ids=["first", "last", "three", "every record"],
)
def test_splitting_on_413_ends_with_each_record_too_large_alone(too_big: set[int]) -> None:
    groups = [tuple(Item(i, {}) for i in range(100))]
    requests = 0
    failed: set[int] = set()
    while groups:
        group = groups.pop()
        requests += 1
        if not too_big & {item.index for item in group}:
            continue  # written
        verdict = judge(too_large(), target(), group, ambiguous_before=False, retry_ambiguous=False)
        if isinstance(verdict, Regroup):
            assert verdict.failed == () and all(verdict.groups)
            groups.extend(verdict.groups)
        else:
            assert isinstance(verdict, tuple) and {o.status for o in verdict} == {"failed"}
            failed.update(outcome.index for outcome in verdict)

    assert failed == too_big
    assert requests <= 2 * 100 - 1  # each request splits one group in two, or settles one
