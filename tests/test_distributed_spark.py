"""`ampwrite.bulk.spark` on Spark in local mode with task retries (`local[2,4]`) against the
sandbox: a Python worker killed mid-partition, sandbox faults, two actions on the result, and
a consumer that stops early."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java 17+, and none is installed", allow_module_level=True)

from pyspark.sql import DataFrame, SparkSession

from ampwrite import Core
from ampwrite.bulk import Ledger
from ampwrite.bulk.spark import RESULT_SCHEMA, write_dataframe
from ampwrite.sandbox import Faults, Sandbox
from tests.test_docs import ROOT, run_tagged_snippets

WHERE: dict[str, Any] = {
    "project_id_or_name": "proj",
    "integration_id": "int",
    "object_name": "contacts",
    "group_ref": "group",
}
COUNT, PARTITIONS = 2_000, 8
DOCS = ROOT / "docs" / "distributed.md"


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    before = os.environ.get("PYSPARK_PYTHON")
    sigint = signal.getsignal(signal.SIGINT)  # a SparkContext installs a handler of its own
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python: this one
    session = (
        SparkSession.builder.master("local[2,4]")  # 2 cores, a task is tried up to 4 times
        .appName("ampwrite-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(PARTITIONS))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        signal.signal(signal.SIGINT, sigint)
        if before is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = before


def _frame(spark: SparkSession) -> DataFrame:
    rows = [(f"k{i}", f"u{i}@example.com") for i in range(COUNT)]
    return spark.createDataFrame(rows, "k string, email string").repartition(PARTITIONS, "k")


def _stored(sandbox: Sandbox) -> Counter[str]:
    return Counter(r["k"] for r in sandbox.records(object_name="contacts"))


def _epochs(ledger: Path) -> list[int]:
    return [int((ledger / f"part-{p}.lock").read_text().split()[0]) for p in range(PARTITIONS)]


def _dies_once(marker: str, at: str) -> Callable[[dict[str, Any]], str]:
    """A key function that kills its Python worker the first time it meets key `at` (after
    earlier batches of that partition were sent): the task fails and Spark retries it."""

    def key(record: dict[str, Any]) -> str:
        if record["k"] == at and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(17)
        return str(record["k"])

    return key


def test_a_killed_python_worker_retries_faults_and_two_actions_write_nothing_twice(
    spark: SparkSession, sb: Sandbox, tmp_path: Path
) -> None:
    sb.set_faults(
        Faults(
            seed=23,
            latency=0.01,
            rate_limit=0.1,
            error_503=0.05,
            reset=0.05,
            commit_then_fail=0.05,
            retry_after=0,
        )
    )
    ledger, marker = tmp_path / "ledger", str(tmp_path / "died")
    with Core(sb.api_key, server_url=sb.url) as core:
        results = write_dataframe(
            _frame(spark),
            core,
            key=_dies_once(marker, "k1000"),
            ledger=ledger,
            batch_size=20,
            concurrency=2,
            **WHERE,
        )
        assert results.schema == RESULT_SCHEMA

        rows = results.collect()
        assert os.path.exists(marker), "a Python worker was killed mid-partition"
        assert max(_epochs(ledger)) >= 2, "and its task tried again"
        sent = len(sb.requests)
        assert results.count() == COUNT  # a second action runs every partition again
        assert len(sb.requests) == sent, "the second action sends nothing"
        assert min(_epochs(ledger)) >= 2

    assert Counter(row.key for row in rows) == Counter(f"k{i}" for i in range(COUNT))
    statuses = Counter(row.status for row in rows)
    assert statuses["written"] + statuses["failed"] + statuses["unknown"] == COUNT
    assert statuses["unknown"] > 0, "the faults (and the kill) were met"
    stored = _stored(sb)
    status = {row.key: row.status for row in rows}
    assert {status[k] for k, copies in stored.items() if copies > 1} <= {"unknown"}
    assert all(stored[k] == 1 for k, s in status.items() if s == "written")
    assert all(stored[k] == 0 for k, s in status.items() if s == "failed")
    assert {row.partition for row in rows} == set(range(PARTITIONS))


def test_a_consumer_that_stops_early_leaves_no_sent_record_without_an_outcome(
    spark: SparkSession, sb: Sandbox, tmp_path: Path
) -> None:
    with Core(sb.api_key, server_url=sb.url) as core:
        results = write_dataframe(_frame(spark), core, key="k", ledger=tmp_path, **WHERE)

        assert len(results.take(3)) == 3  # runs some partitions, reads 3 rows

        recorded: dict[object, str] = {}
        for partition in range(PARTITIONS):
            recorded.update((k, o.status) for k, o in Ledger(tmp_path).outcomes(partition).items())
        stored = _stored(sb)
        assert stored, "take() ran some partitions"
        assert set(stored) == set(recorded), "every record sent has its outcome in the ledger"
        assert not list(tmp_path.glob("*.inflight")), "no attempt left a journal open"

        rows = results.collect()

    assert Counter(row.status for row in rows) == Counter({"written": COUNT})
    assert max(_stored(sb).values()) == 1


def test_the_spark_snippets_of_the_docs_run(
    spark: SparkSession, sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPERSAND_API_KEY", sb.api_key)
    monkeypatch.setenv("AMPERSAND_SERVER_URL", sb.url)
    namespace: dict[str, Any] = {"__name__": "docs.distributed", "spark": spark, "where": WHERE}

    assert run_tagged_snippets(DOCS, "spark", namespace) == 1

    assert len(sb.records(object_name="contacts")) == 300
