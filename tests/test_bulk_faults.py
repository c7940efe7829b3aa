"""`write_many` (and `aio.write_many`) against a misbehaving server, and the shared throttle on
its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ampwrite import Core, RetryConfig, aio
from ampwrite.bulk import Outcome, Progress, write_many
from ampwrite.bulk._throttle import EXPIRED, STOPPED, Answer, Throttle, Ticket
from ampwrite.sandbox import Faults, Sandbox

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}


def _through_aio(
    core: Core, records: Iterator[dict[str, Any]], *, asynchronous: bool, **options: Any
) -> tuple[list[Outcome], Progress]:
    """The same run through `aio.write_many`, from a plain or an async iterable."""

    async def source() -> AsyncIterator[dict[str, Any]]:
        for record in records:
            yield record

    async def run() -> tuple[list[Outcome], Progress]:
        writes = aio.write_many(core, source() if asynchronous else records, **options)
        return [outcome async for outcome in writes], writes.progress

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("seed", "via"),
    [(11, "sync"), (29, "sync"), (11, "aio"), (29, "aio, async input")],
)
def test_5000_records_through_every_kind_of_fault(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, seed: int, via: str
) -> None:
    ampwrite_sandbox.set_faults(
        Faults(
            seed=seed,
            rate_limit=0.10,
            error_503=0.03,
            reset=0.01,
            commit_then_fail=0.01,
            retry_after=0,  # Retry-After: 0, so the test does not sleep
        )
    )
    total = 5_000
    records = ({"key": f"k{i}", "n": i} for i in range(total))

    options: dict[str, Any] = {**WHERE, "batch_size": 25, "concurrency": 4}
    if via == "sync":
        writes = write_many(ampwrite_core, records, **options)
        outcomes, progress = list(writes), writes.progress
    else:
        outcomes, progress = _through_aio(
            ampwrite_core, records, asynchronous=via != "aio", **options
        )

    indexes = Counter(o.index for o in outcomes)
    assert sorted(indexes) == list(range(total)), "every index is reported"
    assert set(indexes.values()) == {1}, "and only once"
    stored = Counter(r["key"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert max(stored.values()) == 1, "no record is stored twice"
    by_status: dict[str, set[int]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, set()).add(outcome.index)
    written = by_status.get("written", set())
    failed = by_status.get("failed", set())
    unknown = by_status.get("unknown", set())
    assert not {i for i in failed if f"k{i}" in stored}, "nothing reported failed was stored"
    assert all(f"k{i}" in stored for i in written), "everything reported written was stored"
    assert {int(key[1:]) for key in stored} <= written | unknown
    assert len(written) >= 0.9 * total, Counter(o.status for o in outcomes)
    assert progress.throttled > 0, "the faults were met"
    assert progress.written == len(written)


# -- the throttle -------------------------------------------------------------------------------


def _throttle(limit: int = 4, **config: Any) -> Throttle:
    settings = {"initial_interval": 5.0, "jitter": 0.0, **config}
    return Throttle(limit, RetryConfig(**settings), stop=threading.Event())


def _hold(throttle: Throttle, count: int) -> list[Ticket]:
    tickets = []
    for _ in range(count):
        ticket = throttle.acquire()
        assert isinstance(ticket, Ticket)
        tickets.append(ticket)
    return tickets


def test_a_server_wait_pauses_every_writer() -> None:
    throttle = _throttle()
    first, second = _hold(throttle, 2)

    throttle.release(first, Answer.THROTTLED, server_wait=30.0)

    # another writer, with or without a deadline, may not send before the wait is over
    assert throttle.acquire(deadline=time.monotonic() + 1.0) == EXPIRED
    throttle.release(second, Answer.OK)
    assert throttle.acquire(deadline=time.monotonic() + 1.0) == EXPIRED


def test_the_wait_is_capped_by_max_retry_after() -> None:
    throttle = _throttle(max_retry_after=0.0)
    (ticket,) = _hold(throttle, 1)

    throttle.release(ticket, Answer.THROTTLED, server_wait=3600.0)

    assert isinstance(throttle.acquire(deadline=time.monotonic() + 1.0), Ticket)


def test_without_a_server_wait_the_backoff_applies() -> None:
    throttle = _throttle()
    (ticket,) = _hold(throttle, 1)

    throttle.release(ticket, Answer.UNREACHABLE)

    assert throttle.acquire(deadline=time.monotonic() + 1.0) == EXPIRED  # initial_interval 5 s


def test_concurrency_halves_once_per_round_and_recovers() -> None:
    throttle = _throttle(limit=8, max_retry_after=0.0)
    tickets = _hold(throttle, 8)
    assert throttle.allowed == 8

    # four answers to requests of the same round: one cut, not four
    for ticket in tickets[:4]:
        throttle.release(ticket, Answer.THROTTLED, server_wait=0.0)
    assert throttle.allowed == 4
    for ticket in tickets[4:]:
        throttle.release(ticket, Answer.OK)

    next_round = _hold(throttle, 4)
    throttle.release(next_round[0], Answer.THROTTLED, server_wait=0.0)
    assert throttle.allowed == 2
    for ticket in next_round[1:]:
        throttle.release(ticket, Answer.OK)

    for _ in range(40):
        (ticket,) = _hold(throttle, 1)
        throttle.release(ticket, Answer.OK)
    assert throttle.allowed == 8
    assert throttle.requests == 8 + 4 + 40
    assert throttle.throttled == 5


def test_no_more_than_the_allowed_requests_are_in_flight_until_stopped() -> None:
    stop = threading.Event()
    throttle = Throttle(2, RetryConfig(), stop=stop)
    _hold(throttle, 2)

    waiting: list[Ticket | str] = []
    blocked = threading.Thread(target=lambda: waiting.append(throttle.acquire()))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive() and waiting == []

    stop.set()
    throttle.wake()
    blocked.join(5)
    assert waiting == [STOPPED]
