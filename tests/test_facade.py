"""How `AmpWrite` is made: from the options of `Core` (typed as `CoreOptions`), or around a
`Core` the caller already has, which it then leaves open."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from ampwrite import AmpWrite, Core, Ok, write_records
from ampwrite.core import CoreOptions
from tests.conftest import API_KEY
from tests.requests_data import single
from tests.scripted_server import ScriptedServer


def _annotation(value: Any) -> str:
    return value.__forward_arg__ if isinstance(value, typing.ForwardRef) else str(value)


def test_core_options_are_the_keyword_parameters_of_core() -> None:
    keywords = {
        name: parameter.annotation
        for name, parameter in inspect.signature(Core.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    options = {name: _annotation(kind) for name, kind in CoreOptions.__annotations__.items()}
    assert options == keywords


def test_made_from_options_it_owns_its_core(server: ScriptedServer) -> None:
    client = AmpWrite(API_KEY, server_url=server.url, timeout=(2.0, 3.0))
    assert client.core.server_url == server.url and client.core.timeout.total == 5.0
    assert isinstance(write_records(client.core, single()), Ok)
    client.close()  # closes its connections: the next write opens another
    assert isinstance(write_records(client.core, single()), Ok)
    assert server.connections == 2


def test_made_around_a_core_it_leaves_the_core_open(server: ScriptedServer) -> None:
    with Core(API_KEY, server_url=server.url) as core:
        with AmpWrite(core=core) as client:
            assert client.core is core
            client.write.records(single())
        assert isinstance(write_records(core, single()), Ok)  # on the same connection
        assert server.connections == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"api_key": "k"}, r"AmpWrite\(core=...\) takes no other argument \(got api_key\)"),
        ({"timeout": 3, "retries": None}, r"\(got retries, timeout\)"),
    ],
)
def test_a_core_with_other_arguments_is_refused(
    server: ScriptedServer, arguments: dict[str, Any], message: str
) -> None:
    with Core(API_KEY, server_url=server.url) as core, pytest.raises(TypeError, match=message):
        AmpWrite(core=core, **arguments)


def test_core_must_be_a_core() -> None:
    with pytest.raises(TypeError, match=r"AmpWrite\(core=...\) needs a Core, got str"):
        AmpWrite(core="k")  # type: ignore[call-overload]


def test_a_misspelt_option_fails_at_run_time_too() -> None:
    with pytest.raises(TypeError, match="server_ur"):
        AmpWrite(API_KEY, server_ur="https://example.com")  # type: ignore[call-overload]
