"""Per-call cost of `write_records` against hand-written HTTP code, measured side by side.

Sequential single-record creates over keep-alive loopback to a minimal server in another
process. Three clients take turns in interleaved rounds (so drift on a noisy machine hits
them alike); the script prints the median wall and CPU time per call of each and the ratios.

    python benchmarks/per_call.py            # about 20 seconds
    python benchmarks/per_call.py --smoke    # a few seconds, same ratios, noisier
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from ampwrite import Core, RetryConfig, write_records
from benchmarks._server import answering_server

KEY = "bench-key"
PATH = "/projects/bench-project/integrations/bench-integration/objects/contacts"
BODY = {
    "groupRef": "group-1",
    "type": "create",
    "mode": "synchronous",
    "record": {"email": "ada@example.com", "firstName": "Ada", "score": 42},
}


def ampwrite_client(url: str) -> Callable[[], None]:
    core = Core(KEY, server_url=url, retries=RetryConfig.none())
    request = {
        "projectIdOrName": "bench-project",
        "integrationId": "bench-integration",
        "objectName": "contacts",
        "requestBody": BODY,
    }

    def call() -> None:
        assert write_records(core, request).ok

    return call


def requests_client(url: str) -> Callable[[], None]:
    """What a user would write by hand with requests."""
    session = requests.Session()
    headers = {"X-Api-Key": KEY}
    target = url + PATH

    def call() -> None:
        response = session.post(target, json=BODY, headers=headers, timeout=(10, 60))
        response.raise_for_status()
        assert response.json()["result"]["success"]

    return call


def http_client(url: str) -> Callable[[], None]:
    """The floor: the standard library's http.client, no checks, one connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    headers = {"X-Api-Key": KEY, "Content-Type": "application/json"}
    path = parts.path + PATH

    def call() -> None:
        connection.request("POST", path, json.dumps(BODY).encode(), headers)
        response = connection.getresponse()
        assert json.loads(response.read())["result"]["success"]

    return call


CLIENTS = {"ampwrite": ampwrite_client, "raw requests": requests_client, "http.client": http_client}


def measure(call: Callable[[], None], calls: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call over `calls` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    args = parser.parse_args()
    rounds, calls = (5, 200) if args.smoke else (15, 1000)
    with answering_server() as url:
        clients = {name: make(url) for name, make in CLIENTS.items()}
        for call in clients.values():  # warm up: connections, caches, generated code
            measure(call, 50)
        walls: dict[str, list[float]] = {name: [] for name in clients}
        cpus: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(rounds):
            for name, call in clients.items():
                wall, cpu = measure(call, calls)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base_wall = statistics.median(walls["raw requests"])
    base_cpu = statistics.median(cpus["raw requests"])
    print(f"{rounds} interleaved rounds of {calls} sequential calls each; medians per call")
    header = ("client", "wall µs", "cpu µs", "wall ÷ requests", "cpu ÷ requests")
    print(f"{header[0]:<14} {header[1]:>9} {header[2]:>9} {header[3]:>16} {header[4]:>15}")
    for name in clients:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(
            f"{name:<14} {wall * 1e6:>9.1f} {cpu * 1e6:>9.1f} "
            f"{wall / base_wall:>16.2f} {cpu / base_cpu:>15.2f}"
        )


if __name__ == "__main__":
    main()
