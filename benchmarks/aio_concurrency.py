"""`ampwrite.aio` under concurrency, and its per-call cost, measured in one run.

1. Concurrency: 1,000 `aio.write_records` with 100 in flight against a server answering each
   request after 50 ms (in another process). The ideal is 1,000 / 100 * 50 ms = 0.5 s. Meanwhile
   a ticker on the same event loop asks to wake every 1 ms and records how late it wakes: the
   lag says whether anything blocks the loop. With httpx importable, a hand-written
   `httpx.AsyncClient` loop does the same, for comparison.
2. Per call: sequential `aio.write_records` against a hand-written `httpx.AsyncClient().post`
   (if httpx is importable), and against the synchronous `write_records`, side by side.

    python benchmarks/aio_concurrency.py            # about 30 seconds
    python benchmarks/aio_concurrency.py --smoke    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ampwrite import Core, RetryConfig, aio, write_records
from benchmarks._server import answering_server

httpx: Any
try:
    import httpx  # type: ignore[import-not-found, no-redef, unused-ignore]
except ImportError:  # an optional comparison
    httpx = None

KEY = "bench-key"
PATH = "/projects/bench-project/integrations/bench-integration/objects/contacts"
BODY = {
    "groupRef": "group-1",
    "type": "create",
    "mode": "synchronous",
    "record": {"email": "ada@example.com", "firstName": "Ada", "score": 42},
}
REQUEST = {
    "projectIdOrName": "bench-project",
    "integrationId": "bench-integration",
    "objectName": "contacts",
    "requestBody": BODY,
}
LATENCY = 0.05


async def _ticking(work: Awaitable[None]) -> tuple[float, list[float]]:
    """Seconds `work` took, and how late (seconds) a 1 ms ticker woke meanwhile."""
    lags: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            asked = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - asked - 0.001)

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await work
    elapsed = time.perf_counter() - started
    done = True
    await tick
    return elapsed, lags


async def _flood(call: Callable[[], Awaitable[None]], total: int, in_flight: int) -> None:
    """`total` calls, `in_flight` at a time (each worker takes the next)."""
    left = iter(range(total))

    async def worker() -> None:
        for _ in left:
            await call()

    await asyncio.gather(*(worker() for _ in range(in_flight)))


def _lag_line(lags: list[float]) -> str:
    ms = sorted(lag * 1000 for lag in lags)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"ticker lag p50 {statistics.median(ms):5.2f} ms, p99 {p99:5.2f} ms, max {ms[-1]:6.2f} ms"
    )


async def concurrency(url: str, total: int, in_flight: int, workers: int) -> None:
    ideal = total / in_flight * LATENCY
    print(
        f"{total} writes, {in_flight} in flight, {LATENCY * 1000:.0f} ms latency: "
        f"ideal {ideal:.2f} s"
    )
    core = Core(KEY, server_url=url, retries=RetryConfig.none(), async_workers=workers)

    async def ours() -> None:
        assert (await aio.write_records(core, REQUEST)).ok

    await _flood(ours, in_flight, in_flight)  # warm up: threads and connections
    cpu = time.process_time()
    elapsed, lags = await _ticking(_flood(ours, total, in_flight))
    cpu = time.process_time() - cpu
    name = f"aio.write_records, async_workers={workers}"
    print(f"  {name:<38} {elapsed:5.2f} s = {elapsed / ideal:4.2f} x ideal, cpu {cpu:4.2f} s")
    print(f"  {'':<38} {_lag_line(lags)}")
    core.close()
    if httpx is None:
        return
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits) as client:
        target = url + PATH

        async def theirs() -> None:
            response = await client.post(target, json=BODY, headers={"X-Api-Key": KEY})
            response.raise_for_status()
            assert response.json()["result"]["success"]

        await _flood(theirs, in_flight, in_flight)
        cpu = time.process_time()
        elapsed, lags = await _ticking(_flood(theirs, total, in_flight))
        cpu = time.process_time() - cpu
    name = "raw httpx.AsyncClient"
    print(f"  {name:<38} {elapsed:5.2f} s = {elapsed / ideal:4.2f} x ideal, cpu {cpu:4.2f} s")
    print(f"  {'':<38} {_lag_line(lags)}")


async def per_call(url: str, rounds: int, calls: int) -> None:
    core = Core(KEY, server_url=url, retries=RetryConfig.none())
    clients: dict[str, Callable[[], Awaitable[Any]]] = {}

    async def ours() -> None:
        assert (await aio.write_records(core, REQUEST)).ok

    async def sync() -> None:  # the synchronous function, on the loop's thread: the floor
        assert write_records(core, REQUEST).ok

    clients["aio.write_records"] = ours
    clients["sync write_records"] = sync
    client = None
    if httpx is not None:
        client = httpx.AsyncClient()
        target = url + PATH

        async def theirs() -> None:
            assert client is not None
            response = await client.post(target, json=BODY, headers={"X-Api-Key": KEY})
            response.raise_for_status()
            assert response.json()["result"]["success"]

        clients["raw httpx.AsyncClient"] = theirs
    walls: dict[str, list[float]] = {name: [] for name in clients}
    cpus: dict[str, list[float]] = {name: [] for name in clients}
    for call in clients.values():
        for _ in range(50):
            await call()
    for _ in range(rounds):
        for name, call in clients.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                await call()
            walls[name].append((time.perf_counter() - wall) / calls)
            cpus[name].append((time.process_time() - cpu) / calls)
    if client is not None:
        await client.aclose()
    core.close()
    baseline = "raw httpx.AsyncClient" if httpx is not None else "sync write_records"
    base_wall, base_cpu = statistics.median(walls[baseline]), statistics.median(cpus[baseline])
    print(f"{rounds} interleaved rounds of {calls} sequential calls each; medians per call")
    print(f"  {'client':<24} {'wall µs':>8} {'cpu µs':>8} {'wall ÷ base':>12} {'cpu ÷ base':>11}")
    for name in clients:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(
            f"  {name:<24} {wall * 1e6:>8.1f} {cpu * 1e6:>8.1f} "
            f"{wall / base_wall:>12.2f} {cpu / base_cpu:>11.2f}"
        )
    print(f"  (base: {baseline})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[32, 100], help="async_workers to try"
    )
    args = parser.parse_args()
    print(f"httpx: {httpx.__version__ if httpx is not None else 'not importable'}")
    total, rounds, calls = (300, 3, 100) if args.smoke else (1000, 9, 500)
    with answering_server(LATENCY) as url:
        for workers in args.workers:
            asyncio.run(concurrency(url, total, 100, workers))
    with answering_server() as url:
        asyncio.run(per_call(url, rounds, calls))


if __name__ == "__main__":
    main()
