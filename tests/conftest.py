"""Shared fixtures: a scripted loopback server and Cores pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ampwrite import Core, RetryConfig
from ampwrite.sandbox import Sandbox
from tests.sandbox_client import Client
from tests.scripted_server import ScriptedServer

API_KEY = "test-key-5f3c9a"


class Sleeps(list[float]):
    """Records the waits a retry loop asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def core(server: ScriptedServer, sleeps: Sleeps) -> Iterator[Core]:
    """A Core on the scripted server whose retries record their waits instead of sleeping."""
    with Core(
        API_KEY,
        server_url=server.url,
        timeout=(2.0, 2.0),
        retries=RetryConfig(jitter=0.0),
        sleep=sleeps,
    ) as configured:
        yield configured


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A sandbox of the test's own (the plugin's `ampwrite_sandbox` is shared and reset)."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> Iterator[Client]:
    """An independent http.client connection to `sb`."""
    connection = Client(sb)
    yield connection
    connection.close()
