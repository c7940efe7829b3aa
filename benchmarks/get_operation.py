"""Per-call cost of `get_operation` against hand-written HTTP code, measured side by side.

Sequential reads of one finished operation over keep-alive loopback from a minimal server in
another process (`_server.py` answers any GET with an operation). Three clients take turns in
interleaved rounds; the script prints the median wall and CPU time per call of each and the
ratios to a hand-written `requests.Session().get(...)`.

    python benchmarks/get_operation.py            # about 15 seconds
    python benchmarks/get_operation.py --smoke    # a few seconds, same ratios, noisier
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from ampwrite import Core, RetryConfig, get_operation
from benchmarks._server import OPERATION, answering_server
from benchmarks._side_by_side import compare

KEY = "bench-key"
PROJECT = "bench-project"
OPERATION_ID = str(OPERATION["id"])
PATH = f"/projects/{PROJECT}/operations/{OPERATION_ID}"


def ampwrite_client(url: str) -> Callable[[], None]:
    core = Core(KEY, platform_url=url, retries=RetryConfig.none())

    def call() -> None:
        result = get_operation(core, PROJECT, OPERATION_ID)
        assert result.ok and result.value.succeeded

    return call


def requests_client(url: str) -> Callable[[], None]:
    """What a user would write by hand with requests."""
    session = requests.Session()
    headers = {"X-Api-Key": KEY}
    target = url + PATH

    def call() -> None:
        response = session.get(target, headers=headers, timeout=(10, 60))
        response.raise_for_status()
        assert response.json()["status"] == "success"

    return call


def http_client(url: str) -> Callable[[], None]:
    """The floor: the standard library's http.client, no checks, one connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    headers = {"X-Api-Key": KEY}
    path = parts.path + PATH

    def call() -> None:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert json.loads(response.read())["status"] == "success"

    return call


CLIENTS = {"ampwrite": ampwrite_client, "raw requests": requests_client, "http.client": http_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds")
    args = parser.parse_args()
    rounds, calls = (5, 200) if args.smoke else (15, 1000)
    with answering_server() as url:
        clients = {name: make(url) for name, make in CLIENTS.items()}
        compare(clients, rounds=rounds, calls=calls, baseline="raw requests")


if __name__ == "__main__":
    main()
