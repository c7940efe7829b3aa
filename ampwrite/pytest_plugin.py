"""pytest fixtures for code that writes through ampwrite, registered when ampwrite is installed.

- `ampwrite_sandbox`: a running `ampwrite.sandbox.Sandbox`, emptied before each test.
- `ampwrite_core`: a `Core` pointed at that sandbox, with its key: the sandbox serves both
  the Write API (`server_url`) and the Platform API's operations (`platform_url`).

    def test_sync_contacts(ampwrite_core, ampwrite_sandbox):
        my_app.sync_contacts(ampwrite_core)
        assert len(ampwrite_sandbox.records(object_name="contacts")) == 3

The sandbox server is started once per test session and reset between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ampwrite.core import Core
    from ampwrite.sandbox import Sandbox


@pytest.fixture(scope="session")
def _ampwrite_sandbox_server() -> Iterator[Sandbox]:
    from ampwrite.sandbox import Sandbox

    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def ampwrite_sandbox(_ampwrite_sandbox_server: Sandbox) -> Sandbox:
    """A running sandbox with an empty store, no faults and an empty request log."""
    from ampwrite.sandbox import Faults

    _ampwrite_sandbox_server.reset()
    _ampwrite_sandbox_server.set_faults(Faults())
    return _ampwrite_sandbox_server


@pytest.fixture
def ampwrite_core(ampwrite_sandbox: Sandbox) -> Iterator[Core]:
    """A `Core` that writes to `ampwrite_sandbox` and reads its operations there too."""
    from ampwrite.core import Core

    url = ampwrite_sandbox.url
    with Core(ampwrite_sandbox.api_key, server_url=url, platform_url=url) as core:
        yield core
