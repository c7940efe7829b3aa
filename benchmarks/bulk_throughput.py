"""Throughput of `write_many` against the sandbox with injected latency per request.

10,000 creates in batches of 100 with 4 requests in flight, against a sandbox that waits
50 ms before each answer (`Faults(latency=0.05)`), compared with the ideal time
(requests / concurrency x latency) and with a naive loop of one `write_records` call per
record. The sandbox runs in its own process (`--server thread` to run it in this one).
Each measurement is repeated and the median kept; the script prints the numbers and ratios.

    python benchmarks/bulk_throughput.py             # about 15 seconds
    python benchmarks/bulk_throughput.py --smoke     # a few seconds
    python benchmarks/bulk_throughput.py --max-ratio 1.5   # exit 1 if slower than that
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ampwrite import Core, RetryConfig, write_records  # noqa: E402
from ampwrite.bulk import write_many  # noqa: E402
from ampwrite.sandbox import Faults, Sandbox  # noqa: E402
from benchmarks._server import sandbox_in_process as answering_sandbox  # noqa: E402

WHERE: dict[str, Any] = {
    "project_id_or_name": "bench-project",
    "integration_id": "bench-integration",
    "object_name": "contacts",
    "group_ref": "bench",
}


@contextmanager
def sandbox_in_thread(latency: float) -> Iterator[tuple[str, str]]:
    with Sandbox(faults=Faults(latency=latency)) as sandbox:
        yield sandbox.url, sandbox.api_key


@contextmanager
def sandbox_in_process(latency: float) -> Iterator[tuple[str, str]]:
    with answering_sandbox("--latency", str(latency)) as (url, key):
        yield url, key


def records(count: int, run: int) -> Iterator[dict[str, object]]:
    for i in range(count):
        yield {"email": f"user{run}-{i}@example.com", "firstName": "Ada", "score": i}


def bulk_seconds(core: Core, count: int, batch_size: int, concurrency: int, run: int) -> float:
    started = time.perf_counter()
    statuses = Counter(
        outcome.status
        for outcome in write_many(
            core,
            records(count, run),
            **WHERE,
            batch_size=batch_size,
            concurrency=concurrency,
        )
    )
    elapsed = time.perf_counter() - started
    if statuses != {"written": count}:
        raise RuntimeError(f"not everything was written: {statuses}")
    return elapsed


def naive_seconds_per_record(core: Core, count: int) -> float:
    started = time.perf_counter()
    for record in records(count, -1):
        request = {
            **_path(),
            "requestBody": {"groupRef": "bench", "type": "create", "record": record},
        }
        if not write_records(core, request).ok:
            raise RuntimeError("a naive write failed")
    return (time.perf_counter() - started) / count


def _path() -> dict[str, str]:
    return {
        "projectIdOrName": WHERE["project_id_or_name"],
        "integrationId": WHERE["integration_id"],
        "objectName": WHERE["object_name"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is kept")
    parser.add_argument("--naive", type=int, default=100, help="records for the naive loop")
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument("--max-ratio", type=float, default=0.0, help="exit 1 above this ratio")
    args = parser.parse_args(argv)
    if args.smoke:
        args.records, args.repeat, args.naive = 2_000, 1, 20
    server = sandbox_in_process if args.server == "process" else sandbox_in_thread
    requests_needed = math.ceil(args.records / args.batch_size)
    ideal = math.ceil(requests_needed / args.concurrency) * args.latency
    with server(args.latency) as (url, key), Core(key, server_url=url) as core:
        bulk_seconds(
            core, args.batch_size * args.concurrency, args.batch_size, args.concurrency, -2
        )
        runs = [
            bulk_seconds(core, args.records, args.batch_size, args.concurrency, run)
            for run in range(args.repeat)
        ]
        per_record = naive_seconds_per_record(
            Core(key, server_url=url, retries=RetryConfig.none()), args.naive
        )
    measured = statistics.median(runs)
    naive = per_record * args.records
    ratio = measured / ideal
    print(
        f"write_many: {args.records:,} records, batch {args.batch_size}, concurrency "
        f"{args.concurrency}, {args.latency * 1000:.0f} ms per request ({args.server} sandbox)"
    )
    print(
        f"  measured {measured:.3f} s (median of {len(runs)}: "
        + ", ".join(f"{r:.3f}" for r in runs)
        + f") = {args.records / measured:,.0f} records/s"
    )
    print(
        f"  ideal    {ideal:.3f} s ({requests_needed} requests / {args.concurrency} x "
        f"{args.latency:.3f} s)  ->  measured / ideal = {ratio:.2f}"
    )
    print(
        f"  naive one-record loop: {per_record * 1000:.1f} ms per record (measured on "
        f"{args.naive}) -> {naive:.1f} s for {args.records:,}  ->  "
        f"write_many is {naive / measured:.0f}x faster"
    )
    if args.max_ratio and ratio > args.max_ratio:
        print(f"measured / ideal {ratio:.2f} is above {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
