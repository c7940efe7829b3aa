"""`write_partition` with `key=` and `ledger=`: one outcome per key across attempts, against
the sandbox, with attempts killed for real (a child process that exits mid-partition)."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ampwrite import Core
from ampwrite.bulk import Outcome, write_partition
from ampwrite.bulk._ledger import KILLED, RESENT_WRITTEN, FencedOut, Ledger, LedgerBusy
from ampwrite.sandbox import Faults, Sandbox

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}


def _records(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"k": f"k{i}", "email": f"u{i}@example.com"} for i in range(start, start + count)]


def _stored(sandbox: Sandbox) -> Counter[str]:
    return Counter(r["k"] for r in sandbox.records(object_name="contacts"))


def _check_accounting(outcomes: list[Outcome], keys: list[str], sandbox: Sandbox) -> None:
    """Every key one outcome; nothing stored twice unless reported unknown; nothing reported
    written or failed that the store contradicts."""
    assert Counter(o.key for o in outcomes) == Counter(keys), "every key exactly one outcome"
    stored = _stored(sandbox)
    by_key = {o.key: o for o in outcomes}
    for key, copies in stored.items():
        assert key in by_key
        if copies > 1:
            assert by_key[key].status == "unknown", f"{key} stored {copies} times"
    for outcome in outcomes:
        copies = stored[str(outcome.key)]
        if outcome.status == "written":
            assert copies == 1, f"{outcome.key} reported written, stored {copies} times"
        if outcome.status == "failed":
            assert copies == 0, f"{outcome.key} reported failed, stored"


def test_key_puts_each_records_key_on_its_outcome(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox
) -> None:
    records = [*_records(3), {"email": "nokey@example.com"}, {"k": 7.5}]

    outcomes = write_partition(ampwrite_core, records, **WHERE, key="k")

    by_index = {o.index: o for o in outcomes}
    assert [by_index[i].key for i in range(3)] == ["k0", "k1", "k2"]
    assert {by_index[i].status for i in range(3)} == {"written"}
    assert by_index[3].status == "failed" and by_index[3].key is None
    assert by_index[3].error == "key: the record has no field 'k'"
    assert by_index[4].error == "key: must be a str or an int, got float"
    assert sorted(_stored(ampwrite_sandbox)) == ["k0", "k1", "k2"], "no keyless record sent"
    assert outcomes[0].to_json()["key"] == "k0"


def test_a_key_function_and_int_keys(ampwrite_core: Core) -> None:
    outcomes = write_partition(
        ampwrite_core, _records(4), **WHERE, key=lambda record: int(record["k"][1:]) * 10
    )
    assert sorted(o.key for o in outcomes if isinstance(o.key, int)) == [0, 10, 20, 30]


def test_a_second_attempt_sends_nothing_and_reports_the_same(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    records = _records(250)
    first = write_partition(ampwrite_core, records, **WHERE, key="k", ledger=tmp_path, partition=3)
    sent = len(ampwrite_sandbox.requests)

    again = write_partition(ampwrite_core, records, **WHERE, key="k", ledger=tmp_path, partition=3)

    assert len(ampwrite_sandbox.requests) == sent, "nothing sent again"
    assert again == first
    assert {o.status for o in first} == {"written"} and all(o.record_id for o in first)
    assert max(_stored(ampwrite_sandbox).values()) == 1
    assert not (tmp_path / "part-3.jsonl.inflight").exists(), "a finished attempt's journal goes"
    assert Ledger(tmp_path).outcomes(3) == {o.key: o for o in first}


def test_new_records_of_a_partition_are_sent_and_old_ones_not(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    write_partition(ampwrite_core, _records(100), **WHERE, key="k", ledger=tmp_path, partition=0)

    outcomes = write_partition(
        ampwrite_core, _records(150), **WHERE, key="k", ledger=tmp_path, partition=0
    )

    assert [o.index for o in outcomes] == list(range(150))
    assert max(_stored(ampwrite_sandbox).values()) == 1
    assert len(_stored(ampwrite_sandbox)) == 150


def _die_after(marker: str, at: int) -> Any:
    def key(record: dict[str, Any]) -> str:
        if record["k"] == f"k{at}" and not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(0.1)  # the batches just handed to the writers are sent (0.3 s each)
            os._exit(9)  # killed mid-partition: no cleanup, no outcome of what is in flight
        return str(record["k"])

    return key


def _attempt(url: str, api_key: str, ledger: str, marker: str, count: int) -> None:
    with Core(api_key, server_url=url) as core:
        write_partition(
            core,
            _records(count),
            **WHERE,
            key=_die_after(marker, count // 2),
            ledger=ledger,
            partition=0,
            batch_size=20,
            concurrency=4,
        )


def test_an_attempt_killed_mid_partition_leaves_nothing_to_write_twice(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.3))  # requests in flight at the kill
    ledger, marker, count = str(tmp_path / "ledger"), str(tmp_path / "died"), 400
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(
        target=_attempt,
        args=(ampwrite_sandbox.url, ampwrite_sandbox.api_key, ledger, marker, count),
    )
    child.start()
    child.join(60)
    assert child.exitcode == 9, "the first attempt died mid-partition"
    ampwrite_sandbox.wait_idle()
    stored_by_first = set(_stored(ampwrite_sandbox))
    assert 0 < len(stored_by_first) < count

    outcomes = write_partition(
        ampwrite_core,
        _records(count),
        **WHERE,
        key=_die_after(marker, count // 2),
        ledger=ledger,
        partition=0,
        batch_size=20,
    )

    _check_accounting(outcomes, [f"k{i}" for i in range(count)], ampwrite_sandbox)
    assert max(_stored(ampwrite_sandbox).values()) == 1, "nothing stored twice"
    unknown = [o for o in outcomes if o.status == "unknown"]
    assert unknown, "the requests in flight at the kill are unknown"
    assert {o.error for o in unknown} == {KILLED}
    written_before = {o.key for o in outcomes if o.status == "written"} & stored_by_first
    assert written_before, "what the first attempt settled is reported from the ledger"


def test_resend_unknown_sends_them_again_and_says_to_check(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    ampwrite_sandbox.set_faults(Faults(seed=3, error_502=0.5))
    first = write_partition(
        ampwrite_core, _records(200), **WHERE, key="k", ledger=tmp_path, partition=0, batch_size=10
    )
    unknown = {o.key for o in first if o.status == "unknown"}
    assert unknown, "some answers were ambiguous"
    ampwrite_sandbox.set_faults(Faults())

    without = write_partition(
        ampwrite_core, _records(200), **WHERE, key="k", ledger=tmp_path, partition=0
    )
    assert without == first, "unknown ones are not sent again unless asked"

    resent = write_partition(
        ampwrite_core,
        _records(200),
        **WHERE,
        key="k",
        ledger=tmp_path,
        partition=0,
        resend_unknown=True,
    )
    again = {o.key: o for o in resent if o.key in unknown}
    assert {o.status for o in again.values()} == {"written"}
    assert {o.error for o in again.values()} == {RESENT_WRITTEN}
    assert {o.key: o for o in resent if o.key not in unknown} == {
        o.key: o for o in first if o.key not in unknown
    }


def test_two_attempts_at_once_are_fenced_one_sends(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.02))
    results: list[list[Outcome]] = []

    def attempt() -> None:
        with Core(ampwrite_sandbox.api_key, server_url=ampwrite_sandbox.url) as core:
            results.append(
                write_partition(
                    core,
                    _records(300),
                    **WHERE,
                    key="k",
                    ledger=tmp_path,
                    partition=0,
                    batch_size=10,
                )
            )

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 2 and results[0] == results[1]
    assert len(ampwrite_sandbox.requests) == 30, "one attempt sent, the other waited and read"
    assert max(_stored(ampwrite_sandbox).values()) == 1


def test_a_busy_fence_is_given_up_after_fence_timeout(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    held = Ledger(tmp_path).attempt(0, _target())
    try:
        with pytest.raises(LedgerBusy, match="another attempt"):
            write_partition(
                ampwrite_core,
                _records(5),
                **WHERE,
                key="k",
                ledger=tmp_path,
                partition=0,
                fence_timeout=0.2,
            )
    finally:
        held.close(complete=True)
    assert len(ampwrite_sandbox.requests) == 0


def _target() -> dict[str, Any]:
    return {**WHERE, "type": "create", "mode": "synchronous"}


def test_an_attempt_whose_fence_was_taken_over_sends_no_more(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    lock = tmp_path / "part-0.lock"

    def key(record: dict[str, Any]) -> str:
        if record["k"] == "k150":  # as if its NFS lease expired and another attempt came
            lock.write_text("99 someone-else\n")
        return str(record["k"])

    with pytest.raises(FencedOut, match="took over"):
        write_partition(
            ampwrite_core,
            _records(300),
            **WHERE,
            key=key,
            ledger=tmp_path,
            partition=0,
            batch_size=50,
            concurrency=1,
        )

    stored = _stored(ampwrite_sandbox)
    assert len(stored) < 300 and "k299" not in stored, "nothing sent after the takeover"
    assert (tmp_path / "part-0.jsonl.inflight").exists(), "the journal stays for the next"


def test_bad_ledger_arguments_are_refused_before_sending(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(TypeError, match="key must be"):
        write_partition(ampwrite_core, _records(2), **WHERE, ledger=tmp_path, partition=0)
    with pytest.raises(ValueError, match="needs partition"):
        write_partition(ampwrite_core, _records(2), **WHERE, key="k", ledger=tmp_path)
    with pytest.raises(ValueError, match="partition must be"):
        write_partition(
            ampwrite_core, _records(2), **WHERE, key="k", ledger=tmp_path, partition="../x"
        )
    write_partition(ampwrite_core, _records(2), **WHERE, key="k", ledger=tmp_path, partition=0)
    with pytest.raises(ValueError, match="records another write"):
        write_partition(
            ampwrite_core,
            _records(2),
            **{**WHERE, "object_name": "leads"},
            key="k",
            ledger=tmp_path,
            partition=0,
        )
    assert len(ampwrite_sandbox.requests) == 1


def test_two_records_with_one_key_the_second_fails(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [*_records(2), {"k": "k0", "email": "again@example.com"}]

    outcomes = write_partition(
        ampwrite_core, records, **WHERE, key="k", ledger=tmp_path, partition=0
    )

    assert [o.status for o in outcomes] == ["written", "written", "failed"]
    assert outcomes[2].error == "key: 'k0' is the key of an earlier record of this partition"
    assert _stored(ampwrite_sandbox) == Counter({"k0": 1, "k1": 1})


def test_faults_every_key_one_outcome_and_a_rerun_sends_nothing_settled(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    ampwrite_sandbox.set_faults(
        Faults(
            seed=5, rate_limit=0.1, error_503=0.05, reset=0.05, commit_then_fail=0.05, retry_after=0
        )
    )
    keys = [f"k{i}" for i in range(600)]
    first = write_partition(
        ampwrite_core,
        _records(600),
        **WHERE,
        key="k",
        ledger=tmp_path,
        partition=0,
        batch_size=20,
    )
    _check_accounting(first, keys, ampwrite_sandbox)
    assert Counter(o.status for o in first)["unknown"] > 0, "the faults were met"
    sent = len(ampwrite_sandbox.requests)

    again = write_partition(
        ampwrite_core, _records(600), **WHERE, key="k", ledger=tmp_path, partition=0
    )

    assert again == first and len(ampwrite_sandbox.requests) == sent


def test_the_ledger_files_are_json_lines_a_person_can_read(
    ampwrite_core: Core, tmp_path: Path
) -> None:
    write_partition(ampwrite_core, _records(2), **WHERE, key="k", ledger=tmp_path, partition=0)
    lines = (tmp_path / "part-0.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["k0", "k1"]
    manifest = json.loads((tmp_path / "ledger.json").read_text())
    assert manifest["target"] == _target()


@pytest.mark.parametrize("ledgered", [False, True], ids=["key only", "with a ledger"])
def test_a_callers_on_send_still_hears_of_every_request(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path, ledgered: bool
) -> None:
    announced: list[tuple[int, ...]] = []
    extra: dict[str, Any] = {"ledger": tmp_path, "partition": 0} if ledgered else {}

    write_partition(
        ampwrite_core,
        _records(30),
        **WHERE,
        key="k",
        batch_size=10,
        on_send=announced.append,
        **extra,
    )

    assert sorted(i for batch in announced for i in batch) == list(range(30))
    assert len(announced) == len(ampwrite_sandbox.requests) == 3


def test_reading_a_batch_ahead_keeps_concurrency_requests_in_flight_at_most(
    ampwrite_core: Core, ampwrite_sandbox: Sandbox, tmp_path: Path
) -> None:
    ampwrite_sandbox.set_faults(Faults(latency=0.1))
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:  # how many requests the sandbox is handling, every few ms
        while not done.is_set():
            seen.append(ampwrite_sandbox._handling)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        write_partition(
            ampwrite_core,
            _records(200),
            **WHERE,
            key="k",
            ledger=tmp_path,
            partition=0,
            batch_size=10,
            concurrency=3,
        )
    finally:
        done.set()
        sampler.join()
    assert max(seen) == 3, "concurrency requests at once, never one more"
