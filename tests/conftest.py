"""Shared fixtures: a scripted loopback server, Cores pointed at it, and the two drivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ampwrite import Core, RetryConfig, aio, write_records
from ampwrite.errors import AmpWriteError
from ampwrite.models import WriteResponse
from ampwrite.result import Result
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


class Driver:
    """`driver(core, request, **options)`: one write through the synchronous function, or
    through `ampwrite.aio.write_records` on an event loop of its own, for tests that hold both
    to the same guarantees. On the asyncio side, a Core whose `sleep` a test replaced waits
    between retries with that same function (it records or fakes the waits without blocking)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_async = name == "aio"

    def __call__(
        self, core: Core, request: Any, **options: Any
    ) -> Result[WriteResponse, AmpWriteError]:
        if not self.is_async:
            return write_records(core, request, **options)
        if core.async_sleep is None and core.sleep is not time.sleep:
            fake = core.sleep

            async def sleep(seconds: float) -> None:
                fake(seconds)

            core.async_sleep = sleep
        return asyncio.run(aio.write_records(core, request, **options))

    def __repr__(self) -> str:
        return self.name


DRIVERS = (Driver("sync"), Driver("aio"))


@pytest.fixture(params=DRIVERS, ids=repr)
def driver(request: pytest.FixtureRequest) -> Driver:
    """Each test that takes it runs once per driver: `write_records` and `aio.write_records`."""
    driver: Driver = request.param
    return driver
