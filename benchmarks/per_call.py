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
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from ampwrite import Core, RetryConfig, write_records
from benchmarks._server import answering_server
from benchmarks._side_by_side import compare

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
