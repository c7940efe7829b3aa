"""What the ledger costs, and distributed loads through Dask and Spark, against the sandbox.

1. `write_partition` of 10,000 records (batches of 100, 4 in flight) against a sandbox
   that waits 50 ms before each answer: without a key, with `key=` only, and with `key=` and
   a `ledger=` (a fresh directory each run: every request journaled and fsync'd, every
   outcome recorded), in interleaved runs; medians and the ratio to no ledger (target: at
   most 1.05).
2. 200,000 records in 16 partitions, with a ledger, through a Dask `LocalCluster` (2
   worker processes x 2 threads) and Spark `local[2]`, beside one `write_many` in this
   process, with records/s for each (sandbox latency `--engine-latency`, default none:
   what the engines add). An engine that is not installed (the `dask` and `spark` extras,
   Java for Spark) is reported as skipped.

The sandbox runs in its own process. Engine start-up is not counted.

    python benchmarks/ledger.py            # about two minutes
    python benchmarks/ledger.py --smoke    # 2,000 and 20,000 records
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ampwrite import Core  # noqa: E402
from ampwrite.bulk import write_many, write_partition  # noqa: E402
from benchmarks._server import sandbox_in_process  # noqa: E402

WHERE: dict[str, Any] = {
    "project_id_or_name": "bench-project",
    "integration_id": "bench-integration",
    "object_name": "contacts",
    "group_ref": "bench",
}
PARTITIONS = 16


def records(count: int, run: str) -> Iterator[dict[str, object]]:
    for i in range(count):
        yield {"email": f"user{run}-{i}@example.com", "firstName": "Ada", "score": i}


def _written(statuses: Counter[Any], count: int) -> None:
    if statuses != {"written": count}:
        raise RuntimeError(f"not everything was written: {dict(statuses)}")


# -- 1. the ledger's cost -----------------------------------------------------------------------


def ledger_cost(url: str, key: str, count: int, rounds: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="ampwrite-bench-"))
    runs = iter(range(10**6))

    def keyed(core: Core) -> Counter[str]:
        outcomes = write_partition(core, records(count, f"{next(runs)}"), key="email", **WHERE)
        return Counter(o.status for o in outcomes)

    def ledgered(core: Core) -> Counter[str]:
        run = next(runs)
        outcomes = write_partition(
            core,
            records(count, f"{run}"),
            key="email",
            ledger=scratch / f"run-{run}",
            partition=0,
            **WHERE,
        )
        return Counter(o.status for o in outcomes)

    cases: dict[str, Callable[[Core], Counter[str]]] = {
        "no key": lambda core: Counter(
            o.status for o in write_partition(core, records(count, f"{next(runs)}"), **WHERE)
        ),
        "key only": keyed,
        "key + ledger": ledgered,
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    try:
        with Core(key, server_url=url) as core:
            for case in cases.values():  # warm up
                case(core)
            for _ in range(rounds):
                for name, case in cases.items():
                    started = time.perf_counter()
                    _written(case(core), count)
                    seconds[name].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = statistics.median(seconds["no key"])
    print(
        f"write_partition: {count:,} records, batch 100, concurrency 4, 50 ms per request; "
        f"{rounds} interleaved rounds, medians"
    )
    print(f"{'case':<14} {'seconds':>8} {'records/s':>10} {'÷ no key':>9}")
    for name, runs_ in seconds.items():
        median = statistics.median(runs_)
        print(f"{name:<14} {median:>8.3f} {count / median:>10,.0f} {median / base:>9.3f}")
    cost = statistics.median(seconds["key + ledger"]) / base - 1
    print(f"  the ledger costs {cost:+.1%} (target: at most +5%)")


# -- 2. through the engines ---------------------------------------------------------------------


def in_process(url: str, key: str, count: int) -> float:
    with Core(key, server_url=url) as core:
        started = time.perf_counter()
        statuses = Counter(o.status for o in write_many(core, records(count, "one"), **WHERE))
        elapsed = time.perf_counter() - started
    _written(statuses, count)
    return elapsed


def through_dask(url: str, key: str, count: int, ledger: str) -> float | str:
    try:
        import dask.bag
        import distributed

        from ampwrite.bulk.dask import write_bag
    except ImportError as exc:
        return f"skipped: the dask extra is not installed ({exc.name})"
    with (
        distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),  # type: ignore[no-untyped-call]
        Core(key, server_url=url) as core,
    ):
        bag = dask.bag.from_sequence(  # type: ignore[no-untyped-call]
            list(records(count, "dask")), npartitions=PARTITIONS
        )
        results = write_bag(bag, core, key="email", ledger=ledger, **WHERE)
        started = time.perf_counter()
        table = results.compute()  # type: ignore[no-untyped-call]
        elapsed = time.perf_counter() - started
    _written(Counter(table["status"]), count)
    return elapsed


def through_spark(url: str, key: str, count: int, ledger: str) -> float | str:
    try:
        from pyspark.sql import SparkSession

        from ampwrite.bulk.spark import write_dataframe
    except ImportError as exc:
        return f"skipped: the spark extra is not installed ({exc.name})"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "skipped: no Java"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(PARTITIONS))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        rows = [(r["email"], r["firstName"], r["score"]) for r in records(count, "spark")]
        frame = spark.createDataFrame(rows, "email string, firstName string, score long")
        frame = frame.repartition(PARTITIONS).cache()
        frame.count()  # the input in memory: the write is what is measured
        with Core(key, server_url=url) as core:
            results = write_dataframe(frame, core, key="email", ledger=ledger, **WHERE)
            started = time.perf_counter()
            statuses = Counter(row.status for row in results.collect())
            elapsed = time.perf_counter() - started
    finally:
        spark.stop()
    _written(statuses, count)
    return elapsed


def engines(latency: float, count: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="ampwrite-bench-"))
    try:
        with sandbox_in_process("--latency", str(latency)) as (url, key):
            figures: dict[str, float | str] = {
                "write_many, one process (concurrency 4)": in_process(url, key, count),
                "Dask LocalCluster, 2 workers x 2 threads": through_dask(
                    url, key, count, str(scratch / "dask")
                ),
                "Spark local[2]": through_spark(url, key, count, str(scratch / "spark")),
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\n{count:,} records, {PARTITIONS} partitions with a ledger (Dask, Spark), "
        f"{latency * 1000:.0f} ms per request"
    )
    base = figures["write_many, one process (concurrency 4)"]
    print(f"{'through':<42} {'seconds':>8} {'records/s':>10} {'÷ one process':>14}")
    for name, figure in figures.items():
        if isinstance(figure, str):
            print(f"{name:<42} {figure}")
        else:
            ratio = figure / base if isinstance(base, float) else float("nan")
            print(f"{name:<42} {figure:>8.2f} {count / figure:>10,.0f} {ratio:>14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000, help="for the ledger's cost")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--engine-records", type=int, default=200_000)
    parser.add_argument("--engine-latency", type=float, default=0.0, help="seconds")
    parser.add_argument("--smoke", action="store_true", help="a run of seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.records, args.rounds, args.engine_records = 2_000, 2, 20_000
    with sandbox_in_process("--latency", "0.05") as (url, key):
        ledger_cost(url, key, args.records, args.rounds)
    engines(args.engine_latency, args.engine_records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
