"""`Core`: configuration, the key, the URL and headers it sends, and how it travels."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import requests
import requests.adapters

from ampwrite import AmpWrite, Core, Err, Ok, RetryConfig, write_records
from ampwrite.core import DEFAULT_SERVER_URL
from ampwrite.errors import ConfigurationError
from tests.conftest import API_KEY
from tests.requests_data import single, with_changes
from tests.scripted_server import ScriptedServer


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("AMPERSAND_API_KEY", raising=False)
    monkeypatch.delenv("AMPERSAND_SERVER_URL", raising=False)
    yield monkeypatch


def test_key_and_url_come_from_the_environment(
    clean_env: pytest.MonkeyPatch, server: ScriptedServer
) -> None:
    clean_env.setenv("AMPERSAND_API_KEY", "env-key-1234")
    clean_env.setenv("AMPERSAND_SERVER_URL", server.url)
    with Core() as core:
        assert core.server_url == server.url
        write_records(core, single())

    assert server.received[0].headers["x-api-key"] == "env-key-1234"


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    core = Core(API_KEY)
    assert core.server_url == DEFAULT_SERVER_URL
    assert core.timeout == (10.0, 60.0, 70.0)  # connect, read, the attempt as a whole
    assert core.retries == RetryConfig()


def test_missing_key_is_a_configuration_error(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="AMPERSAND_API_KEY"):
        Core()


@pytest.mark.parametrize("key", ["", "a\r\nb", "a\0b"])
def test_unsendable_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Core(key)
    assert key not in str(caught.value) or not key


def test_a_callable_key_is_asked_on_every_call(server: ScriptedServer) -> None:
    keys = iter(["rotating-key-1", "rotating-key-2"])
    with Core(lambda: next(keys), server_url=server.url) as core:
        write_records(core, single())
        write_records(core, single())

    assert [r.headers["x-api-key"] for r in server.received] == ["rotating-key-1", "rotating-key-2"]


def test_a_failing_key_callable_is_an_error_value(server: ScriptedServer) -> None:
    def broken() -> str:
        raise RuntimeError("vault down")

    with Core(broken, server_url=server.url) as core:
        result = write_records(core, single())

    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert server.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/v1",
        "http://10.0.0.8/v1",
        "ftp://example.com",
        "example.com",
        "https://user:pw@example.com/v1",
        "https://example.com/v1?x=1",
        "",
    ],
)
def test_unsafe_or_malformed_server_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Core(API_KEY, server_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8726/v1", "http://localhost:1/v1", "http://[::1]:80/v1"]
)
def test_plain_http_is_fine_on_loopback(url: str) -> None:
    assert Core(API_KEY, server_url=url).server_url == url


def test_plain_http_elsewhere_needs_explicit_permission() -> None:
    core = Core(API_KEY, server_url="http://api.internal/v1/", allow_insecure_http=True)
    assert core.server_url == "http://api.internal/v1"


def test_per_call_server_url_is_checked_too(core: Core, server: ScriptedServer) -> None:
    result = write_records(core, single(), server_url="http://api.example.com/v1")

    assert isinstance(result, Err) and isinstance(result.error, ConfigurationError)
    assert server.received == []


@pytest.mark.parametrize("timeout", [0, -1, (1, 0), (1, 2, 3), "5", float("inf"), True])
def test_bad_timeouts_are_refused(timeout: object) -> None:
    with pytest.raises(ConfigurationError):
        Core(API_KEY, timeout=timeout)  # type: ignore[arg-type]


def test_headers_sent(core: Core, server: ScriptedServer) -> None:
    write_records(core, single(), headers={"X-Trace-Id": "t-1"})

    headers = server.received[0].headers
    assert headers["x-api-key"] == API_KEY
    assert headers["content-type"] == "application/json"
    assert "application/json" in headers["accept"]
    assert "application/problem+json" in headers["accept"]
    assert "text/plain" in headers["accept"]
    assert headers["user-agent"].startswith("ampwrite/")
    assert "python/" in headers["user-agent"] and "requests/" in headers["user-agent"]
    assert headers["x-trace-id"] == "t-1"


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a/b", "a%2Fb"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("x?y#z", "x%3Fy%23z"),
        ("50%", "50%25"),
        ("a;b c", "a%3Bb%20c"),
        ("Kontakt·ü", "Kontakt%C2%B7%C3%BC"),
    ],
)
def test_path_parameters_stay_one_segment(
    core: Core, server: ScriptedServer, name: str, segment: str
) -> None:
    request = with_changes(single(), objectName=name, projectIdOrName=name)
    write_records(core, request)

    assert server.received[0].path == f"/v1/projects/{segment}/integrations/int-1/objects/{segment}"


def test_keep_alive_reuses_one_connection(core: Core, server: ScriptedServer) -> None:
    for _ in range(5):
        assert isinstance(write_records(core, single()), Ok)

    assert server.connections == 1


def test_the_key_never_shows(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ampwrite")
    client = AmpWrite(API_KEY, server_url=server.url)
    write_records(client.core, single())

    shown = [
        repr(client.core),
        str(client.core),
        repr(client),
        repr(client.core.retries),
        caplog.text,
    ]
    assert all(API_KEY not in text for text in shown)
    assert "POST http://127.0.0.1" in caplog.text and "-> 200" in caplog.text


def test_a_callers_session_is_used_and_left_open(server: ScriptedServer) -> None:
    session = requests.Session()
    session.headers["X-From-Session"] = "yes"
    with Core(API_KEY, server_url=server.url, session=session) as core:
        assert core.session is session
        write_records(core, single())

    assert server.received[0].headers["x-from-session"] == "yes"
    assert server.received[0].headers["user-agent"].startswith("ampwrite/")
    assert session.adapters  # not closed by Core.close: still usable
    assert session.get(server.url.replace("/v1", "/ping")).status_code == 200


def test_core_pickles_without_its_session(server: ScriptedServer) -> None:
    core = Core(API_KEY, server_url=server.url, retries=RetryConfig(max_attempts=2))
    copy = pickle.loads(pickle.dumps(core))

    assert copy.session is not core.session
    assert copy.retries == core.retries and copy.server_url == core.server_url
    assert isinstance(write_records(copy, single()), Ok)
    assert server.received[0].headers["x-api-key"] == API_KEY


def _write_in_child(core: Core) -> tuple[int, bool]:
    return os.getpid(), write_records(core, single()).ok


def test_a_pickled_core_works_in_worker_processes(server: ScriptedServer) -> None:
    core = Core(API_KEY, server_url=server.url)
    with ProcessPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(_write_in_child, [core] * 8))

    assert all(ok for _, ok in outcomes)
    assert len(server.received) == 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_connection(server: ScriptedServer) -> None:
    core = Core(API_KEY, server_url=server.url)
    assert write_records(core, single()).ok
    pid = os.fork()
    if pid == 0:  # child: must open its own connection
        os._exit(0 if write_records(core, single()).ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert write_records(core, single()).ok  # the parent's pool still works
    assert server.connections == 2


def test_importing_the_function_path_stays_lean() -> None:
    code = textwrap.dedent(
        """
        import sys
        from ampwrite import Core, write_records
        heavy = ["ampwrite.facade", "ampwrite.cli", "ampwrite.sandbox", "ampwrite.bulk",
                 "argparse", "http.server", "tqdm"]
        print(",".join(name for name in heavy if name in sys.modules))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""


def test_facade_is_importable_lazily() -> None:
    import ampwrite

    assert ampwrite.AmpWrite.__name__ == "AmpWrite"
    with pytest.raises(AttributeError):
        ampwrite.NoSuchThing  # noqa: B018


def test_environment_proxies_are_read_once_and_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer() as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        core = Core(API_KEY, server_url="http://api.example.test/v1", allow_insecure_http=True)
        monkeypatch.delenv("HTTP_PROXY")  # read when the Core was made, not per call
        result = write_records(core, single())

    assert isinstance(result, Ok)
    assert (
        proxy.received[0].path
        == "http://api.example.test/v1/projects/proj/integrations/int-1/objects/contacts"
    )


def test_a_callers_mounted_adapter_is_used(server: ScriptedServer) -> None:
    sent: list[str] = []

    class Recording(requests.adapters.HTTPAdapter):
        def send(
            self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
        ) -> requests.Response:
            sent.append(request.url or "")
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.mount("http://", Recording())
    with Core(API_KEY, server_url=server.url, session=session) as core:
        assert write_records(core, single()).ok

    assert sent == [f"{server.url}/projects/proj/integrations/int-1/objects/contacts"]


def test_a_sessions_headers_never_duplicate_ours_or_carry_a_key(server: ScriptedServer) -> None:
    session = requests.Session()
    session.headers.update({"user-agent": "theirs/1.0", "x-api-key": "stale", "X-Team": "a"})
    with Core(API_KEY, server_url=server.url, session=session) as core:
        write_records(core, single())

    sent = server.received[0]
    assert sent.count("User-Agent") == 1 and sent.headers["user-agent"].startswith("ampwrite/")
    assert sent.count("X-Api-Key") == 1 and sent.headers["x-api-key"] == API_KEY
    assert sent.headers["x-team"] == "a"
