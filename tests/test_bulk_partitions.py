"""`write_many` per partition in other processes: the Core and the outcomes cross over."""

from __future__ import annotations

import multiprocessing
import pickle
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import attrs

from ampwrite import Core
from ampwrite.bulk import Outcome, write_many, write_partition
from ampwrite.sandbox import Faults, Sandbox

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}


def test_partitions_in_a_process_pool(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    ampwrite_sandbox.set_faults(Faults(seed=3, rate_limit=0.1, retry_after=0))
    rows = [{"key": f"k{i}"} for i in range(1_000)]
    size = 250
    starts = list(range(0, len(rows), size))
    job = partial(write_partition, ampwrite_core, **WHERE, batch_size=50, concurrency=2)

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        partitions = list(pool.map(job, (rows[s : s + size] for s in starts)))

    outcomes: list[Outcome] = [
        attrs.evolve(outcome, index=start + outcome.index)
        for start, partition in zip(starts, partitions, strict=True)
        for outcome in partition
    ]
    assert sorted(o.index for o in outcomes) == list(range(1_000))
    assert {o.status for o in outcomes} == {"written"}
    stored = Counter(r["key"] for r in ampwrite_sandbox.records(object_name="contacts"))
    assert len(stored) == 1_000 and max(stored.values()) == 1
    by_id = {r["id"]: r["key"] for r in ampwrite_sandbox.records(object_name="contacts")}
    assert all(by_id[str(o.record_id)] == f"k{o.index}" for o in outcomes)


def test_a_pickled_core_writes_on_its_own(ampwrite_core: Core, ampwrite_sandbox: Sandbox) -> None:
    clone = pickle.loads(pickle.dumps(ampwrite_core))

    outcomes = list(write_many(clone, [{"n": 1}, {"n": 2}], **WHERE))

    assert [o.status for o in outcomes] == ["written", "written"]
    assert pickle.loads(pickle.dumps(outcomes)) == outcomes
