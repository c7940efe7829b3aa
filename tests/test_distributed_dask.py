"""`ampwrite.bulk.dask` on a real `distributed.LocalCluster` (2 worker processes) against the
sandbox: a worker killed mid-run, partitions recomputed after they finished, faults."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dask.dataframe", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

import dask.bag  # noqa: E402
import dask.dataframe  # noqa: E402
import pandas  # noqa: E402

from ampwrite import Core  # noqa: E402
from ampwrite.bulk.dask import RESULT_COLUMNS, write_bag, write_dataframe  # noqa: E402
from ampwrite.sandbox import Faults, Sandbox  # noqa: E402
from tests.test_docs import ROOT, run_tagged_snippets  # noqa: E402

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}
COUNT, PARTITIONS = 2_000, 8
DOCS = ROOT / "docs" / "distributed.md"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


def _records() -> list[dict[str, Any]]:
    return [{"k": f"k{i}", "email": f"u{i}@example.com"} for i in range(COUNT)]


def _check(table: pandas.DataFrame, sandbox: Sandbox) -> Counter[str]:
    """Every input key one row; nothing stored twice unless reported unknown; nothing
    reported written or failed that the store contradicts. Returns the statuses."""
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert Counter(table["key"]) == Counter(f"k{i}" for i in range(COUNT))
    stored = Counter(r["k"] for r in sandbox.records(object_name="contacts"))
    status = dict(zip(table["key"], table["status"], strict=True))
    twice = {key for key, copies in stored.items() if copies > 1}
    assert {status[key] for key in twice} <= {"unknown"}, "stored twice and not unknown"
    assert all(stored[k] == 1 for k, s in status.items() if s == "written")
    assert all(stored[k] == 0 for k, s in status.items() if s == "failed")
    return Counter(status.values())


def _epochs(ledger: Path) -> list[int]:
    """How many attempts each partition has had (its fence's epoch)."""
    return [int((ledger / f"part-{p}.lock").read_text().split()[0]) for p in range(PARTITIONS)]


def test_a_killed_worker_and_recomputed_partitions_write_nothing_twice(
    client: Any, sb: Sandbox, tmp_path: Path
) -> None:
    sb.set_faults(Faults(latency=0.1))  # a few seconds of writes: time to kill a worker
    ledger = tmp_path / "ledger"
    with Core(sb.api_key, server_url=sb.url) as core:
        bag = dask.bag.from_sequence(_records(), npartitions=PARTITIONS)  # type: ignore[no-untyped-call]
        results = write_bag(
            bag, core, key="k", ledger=ledger, batch_size=10, concurrency=2, **WHERE
        )

        future = client.compute(results)
        deadline = time.monotonic() + 60
        while len(sb.records(object_name="contacts")) < COUNT // 4:
            assert time.monotonic() < deadline and not future.done()
            time.sleep(0.05)
        victim = sorted(client.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)  # mid-run: its partitions are run again elsewhere
        table = future.result(timeout=120)
        future.release()  # else the cluster keeps the results, and nothing is recomputed

    statuses = _check(table, sb)
    assert max(_epochs(ledger)) >= 2, "some partition was attempted again after the kill"
    assert max(Counter(r["k"] for r in sb.records(object_name="contacts")).values()) == 1
    assert statuses["written"] + statuses["unknown"] == COUNT, statuses
    sent = len(sb.requests)

    again = client.compute(results).result(timeout=120)  # every partition recomputed

    assert len(sb.requests) == sent, "a recomputed partition sends nothing"
    assert min(_epochs(ledger)) >= 2
    by_key = table.set_index("key").sort_index()
    assert again.set_index("key").sort_index().equals(by_key), "and reports the same"


def test_faults_every_record_one_outcome_and_nothing_stored_twice_but_unknown(
    client: Any, sb: Sandbox, tmp_path: Path
) -> None:
    sb.set_faults(
        Faults(
            seed=17,
            rate_limit=0.1,
            error_503=0.05,
            reset=0.05,
            commit_then_fail=0.05,
            retry_after=0,
        )
    )
    frame = dask.dataframe.from_pandas(pandas.DataFrame(_records()), npartitions=PARTITIONS)  # type: ignore[no-untyped-call]
    with Core(sb.api_key, server_url=sb.url) as core:
        results = write_dataframe(frame, core, key="k", ledger=tmp_path, batch_size=20, **WHERE)

        first = client.compute(results)
        table = first.result(timeout=120)
        first.release()
        statuses = _check(table, sb)
        assert statuses["written"] + statuses["failed"] + statuses["unknown"] == COUNT
        assert statuses["unknown"] > 0, "the faults were met"
        sent = len(sb.requests)

        again = client.compute(results).result(timeout=120)

    assert len(sb.requests) == sent
    assert min(_epochs(tmp_path)) >= 2, "every partition was recomputed"
    assert again.set_index("key").sort_index().equals(table.set_index("key").sort_index())
    assert set(table["partition"]) == set(range(PARTITIONS))
    assert str(table["partition"].dtype) == "int64"


def test_another_partitioning_of_the_same_ledger_is_refused(
    client: Any, sb: Sandbox, tmp_path: Path
) -> None:
    with Core(sb.api_key, server_url=sb.url) as core:
        bag = dask.bag.from_sequence(_records()[:40], npartitions=4)  # type: ignore[no-untyped-call]
        write_bag(bag, core, key="k", ledger=tmp_path, **WHERE).compute()  # type: ignore[no-untyped-call]
        with pytest.raises(ValueError, match="records 4 partitions, this dataset has 2"):
            write_bag(bag.repartition(2), core, key="k", ledger=tmp_path, **WHERE)


def test_the_dask_snippets_of_the_docs_run(
    client: Any, sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPERSAND_API_KEY", sb.api_key)
    monkeypatch.setenv("AMPERSAND_SERVER_URL", sb.url)
    namespace: dict[str, Any] = {"__name__": "docs.distributed", "client": client, "where": WHERE}

    assert run_tagged_snippets(DOCS, "dask", namespace) == 1

    assert len(sb.records(object_name="contacts")) == 300
