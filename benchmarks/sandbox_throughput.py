"""Throughput benchmark for ``ampwrite.sandbox``: sequential single-record creates from one
keep-alive ``http.client`` connection, reported as writes per second.

    python benchmarks/sandbox_throughput.py                 # 5 seconds, sandbox in a thread
    python benchmarks/sandbox_throughput.py --smoke         # about 2 seconds
    python benchmarks/sandbox_throughput.py --requests 20000
    python benchmarks/sandbox_throughput.py --server process   # sandbox in its own process
    python benchmarks/sandbox_throughput.py --min-rate 1000    # exit 1 if slower

With ``--server thread`` (the default) client and server share one interpreter, so the
figure is a floor; ``--server process`` measures with the sandbox in a separate process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ampwrite.sandbox import Sandbox  # noqa: E402
from benchmarks._server import sandbox_in_process as answering_sandbox  # noqa: E402

PATH = "/v1/projects/bench-project/integrations/bench-integration/objects/contacts"


@contextmanager
def sandbox_in_thread() -> Iterator[tuple[str, int, str]]:
    with Sandbox() as sb:
        host, port = sb.address
        yield host, port, sb.api_key


@contextmanager
def sandbox_in_process() -> Iterator[tuple[str, int, str]]:
    with answering_sandbox() as (url, key):
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        yield parts.hostname, parts.port, key


def run(host: str, port: int, api_key: str, seconds: float, limit: int | None) -> dict[str, float]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
    latencies: list[float] = []
    # Warm up the connection and the server's code paths.
    for i in range(200):
        body = json.dumps({"groupRef": "warmup", "type": "create", "record": {"n": i}})
        conn.request("POST", PATH, body=body, headers=headers)
        conn.getresponse().read()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline and (limit is None or count < limit):
        body = json.dumps(
            {
                "groupRef": "bench",
                "type": "create",
                "record": {"email": f"user{count}@example.com", "lastName": "Bench"},
            }
        )
        conn.request("POST", PATH, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"write {count} answered {response.status}")
        count += 1
        after = time.perf_counter()
        latencies.append(after - now)
        now = after
    elapsed = now - started
    conn.close()
    latencies.sort()
    return {
        "writes": count,
        "seconds": elapsed,
        "rate": count / elapsed if elapsed else 0.0,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--requests", type=int, default=None, help="stop after this many writes")
    parser.add_argument("--smoke", action="store_true", help="a short run of about 2 seconds")
    parser.add_argument(
        "--server",
        choices=("thread", "process"),
        default="thread",
        help="run the sandbox in a thread of this process (default) or in its own process",
    )
    parser.add_argument(
        "--min-rate", type=float, default=0.0, help="exit 1 if fewer writes/s than this"
    )
    args = parser.parse_args(argv)
    seconds = 2.0 if args.smoke else args.seconds
    server = sandbox_in_process if args.server == "process" else sandbox_in_thread
    with server() as (host, port, api_key):
        result = run(host, port, api_key, seconds, args.requests)
    print(
        f"sandbox ({args.server}): {result['writes']:.0f} sequential creates in "
        f"{result['seconds']:.2f}s = {result['rate']:,.0f} writes/s "
        f"(p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms)"
    )
    if result["rate"] < args.min_rate:
        print(f"below the minimum of {args.min_rate:,.0f} writes/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
