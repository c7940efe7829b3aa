"""The `ampwrite` command explains itself: retries as they happen, a final message that says
what to check, failures by record, flags rather than keyword arguments. Each case runs the
command in a child process and reads what it printed."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
from typing import Any

import pytest

from ampwrite.cli import EXIT_API_ERROR, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE
from ampwrite.sandbox import Faults, Sandbox
from tests.requests_data import write_argv

AMPWRITE = [sys.executable, "-m", "ampwrite"]


def ampwrite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AMPERSAND_")}
    environment.update(env or {})
    return subprocess.run(
        [*AMPWRITE, *args], capture_output=True, text=True, timeout=120, env=environment
    )


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused, nothing is sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def load_argv(url: str, key: str, path: pathlib.Path, *extra: str) -> list[str]:
    return [
        "load", str(path), "--project", "p", "--integration", "i", "--object", "contacts",
        "--group-ref", "g", "--api-key", key, "--server-url", url, *extra,
    ]  # fmt: skip


def jsonl(path: pathlib.Path, records: list[Any], *, tail: str = "") -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def test_write_to_a_closed_port_shows_each_retry_and_what_to_check() -> None:
    url = closed_port_url()
    done = ampwrite(*write_argv(url, "sk-secret-1", "--record", "{}", "--retry-for", "2"))

    assert done.returncode == EXIT_TRANSPORT
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "ampwrite write: attempt 1 of 6 failed (connection refused); retrying in "
        + lines[0].rsplit("retrying in ", 1)[1]
    )
    retries = [line for line in lines if "failed (connection refused); retrying in" in line]
    assert retries, "a retry is shown as it happens"  # and each: the count below says so
    final = next(line for line in lines if "no answer from" in line)
    attempts = len(retries) + 1
    assert f"no answer from {url} after {attempts} attempts in " in final
    assert f"hint: is the server at {url} running? check --server-url / AMPERSAND_SERVER_URL" in (
        done.stderr
    )
    assert "sk-secret-1" not in done.stderr + done.stdout


def test_write_no_retry_makes_one_attempt() -> None:
    url = closed_port_url()
    done = ampwrite(*write_argv(url, "sk-test-key-0001", "--record", "{}", "--no-retry"))

    assert done.returncode == EXIT_TRANSPORT
    assert "retrying" not in done.stderr
    assert "after 1 attempt in" in done.stderr


def test_a_server_url_without_v1_gets_a_hint(ampwrite_sandbox: Sandbox) -> None:
    url = ampwrite_sandbox.url.removesuffix("/v1")
    done = ampwrite(*write_argv(url, ampwrite_sandbox.api_key, "--record", "{}"))

    assert done.returncode == EXIT_API_ERROR
    assert "404" in done.stderr
    assert f"hint: the server URL usually ends in /v1 (got {url})" in done.stderr


def test_a_url_with_v1_gets_no_such_hint(ampwrite_sandbox: Sandbox) -> None:
    done = ampwrite(*write_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, "--record", "{}"))

    assert done.returncode == EXIT_OK, done.stderr
    assert "hint" not in done.stderr


def test_a_rejected_key_gets_a_hint_without_the_key(ampwrite_sandbox: Sandbox) -> None:
    done = ampwrite(*write_argv(ampwrite_sandbox.url, "sk-wrong-key-42", "--record", "{}"))

    assert done.returncode == EXIT_API_ERROR
    assert "401" in done.stderr
    assert "hint: the API key was refused: check --api-key / AMPERSAND_API_KEY" in done.stderr
    assert "sk-wrong-key-42" not in done.stderr + done.stdout


def test_a_missing_key_is_asked_for_as_a_flag(ampwrite_sandbox: Sandbox) -> None:
    argv = write_argv(ampwrite_sandbox.url, "x", "--record", "{}")
    argv[argv.index("--api-key") : argv.index("--api-key") + 2] = []
    done = ampwrite(*argv)

    assert done.returncode == EXIT_USAGE
    assert "pass --api-key or set AMPERSAND_API_KEY" in done.stderr
    assert "api_key=" not in done.stderr
    assert ampwrite_sandbox.requests == []


def test_a_bad_server_url_is_named_as_the_flag() -> None:
    done = ampwrite(*write_argv("ftp://example.com/v1", "sk-test-key-0001", "--record", "{}"))

    assert done.returncode == EXIT_USAGE
    assert "--server-url" in done.stderr and "server_url" not in done.stderr


@pytest.mark.parametrize("value", ["{not json", "@{missing}"])
def test_bad_json_in_record_names_the_flag(value: str, tmp_path: pathlib.Path) -> None:
    value = value.replace("{missing}", str(tmp_path / "missing.json"))
    done = ampwrite(*write_argv(closed_port_url(), "sk-test-key-0001", "--record", value))

    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("ampwrite write: --record")
    assert "retrying" not in done.stderr  # nothing was sent


def test_write_takes_the_object_as_load_does(ampwrite_sandbox: Sandbox) -> None:
    argv = write_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, "--record", "{}")
    argv.remove("contacts")
    done = ampwrite(*argv, "--object", "contacts")

    assert done.returncode == EXIT_OK, done.stderr
    assert len(ampwrite_sandbox.records(object_name="contacts")) == 1

    twice = ampwrite(*argv, "--object", "leads", "--type", "create", "contacts")
    assert twice.returncode == EXIT_USAGE and "given twice" in twice.stderr
    neither = ampwrite(*argv)
    assert neither.returncode == EXIT_USAGE and "pass --object" in neither.stderr


def test_help_lists_the_choices_and_names_the_journal_as_it_is() -> None:
    write = ampwrite("write", "--help").stdout
    assert "{create,update,delete}" in write
    assert "--object" in write
    load = ampwrite("load", "--help").stdout
    assert "RESULTS.inflight" in load and "FILE.inflight" not in load
    assert "--out RESULTS" in load


def test_load_to_a_closed_port_shows_retries_and_what_to_check(tmp_path: pathlib.Path) -> None:
    url = closed_port_url()
    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}, {"n": 2}])
    done = ampwrite(*load_argv(url, "sk-secret-2", source, "--retry-for", "2"))

    assert done.returncode == EXIT_API_ERROR  # nothing written: every record failed
    assert "ampwrite load: attempt 1 of 20 failed (connection refused); every writer waits" in (
        done.stderr
    )
    assert f"ampwrite load: no answer from {url}: gave up after " in done.stderr
    assert f"hint: is the server at {url} running? check --server-url" in done.stderr
    assert "sk-secret-2" not in done.stderr


def test_load_without_out_prints_each_failure(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}, {"n": 2}], tail="{oops\n")
    done = ampwrite(*load_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, source))

    assert done.returncode == EXIT_API_ERROR
    assert "ampwrite load: record 2 failed: line 3: not JSON" in done.stderr
    assert "written 2, failed 1, unknown 0" in done.stderr
    assert "record 0" not in done.stderr and "record 1" not in done.stderr


def test_load_without_out_prints_what_the_api_refused(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"id": "no-such-record"}])
    done = ampwrite(
        *load_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, source, "--type", "update")
    )

    assert done.returncode == EXIT_API_ERROR
    assert "ampwrite load: record 0 failed: " in done.stderr
    assert "no-such-record" in done.stderr


def test_load_shows_the_throttled_answers_it_rode_through(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    ampwrite_sandbox.set_faults(Faults(seed=3, rate_limit=0.3, retry_after=0.05))
    source = jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(16)])
    done = ampwrite(
        *load_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, source, "--batch-size", "2")
    )

    assert done.returncode == EXIT_OK, done.stderr
    throttled = sum(1 for entry in ampwrite_sandbox.requests if entry.status == 429)
    assert throttled > 0
    summary = done.stderr.splitlines()[-1]
    assert f", {throttled:,} throttled (429/503) and waited out" in summary
    assert f"; {8 + throttled:,} request(s)" in summary
    assert "failed (429 Too Many Requests); every writer waits" in done.stderr


def test_the_progress_line_tells_the_wait_under_way() -> None:
    import io
    import logging

    from ampwrite.cli._load import ProgressBar
    from ampwrite.cli._notices import RetryLines, showing_retries
    from ampwrite.retries import RETRY_LOG_KEY, RetryNotice

    screen = io.StringIO()
    bar = ProgressBar(screen, total=100, enabled=True, start=40)
    lines = RetryLines(screen, "ampwrite load", clear=bar.clear)
    bar.status = lines.waiting
    bar.requests, bar.throttled = 7, 3
    notice = RetryNotice(3, 20, 30.0, "429 Too Many Requests", 2.0, "http://127.0.0.1/v1")
    with showing_retries(lines):
        logging.getLogger("ampwrite").info("a retry", extra={RETRY_LOG_KEY: notice})
        logging.getLogger("ampwrite").info("not a retry")  # shown by no one
    line = bar.line()

    assert screen.getvalue() == "ampwrite load: a retry\n"
    assert " 40/100 " in line and "7 req, 3 throttled (429/503)" in line
    assert "waiting 29." in line or "waiting 30.0 s" in line
    assert line.endswith("(429 Too Many Requests, attempt 3 of 20)")


def test_the_library_never_imports_the_cli() -> None:
    code = """
import importlib, pkgutil, sys
import ampwrite
skip = ("ampwrite.cli", "ampwrite.__main__", "ampwrite.mcp", "ampwrite.bulk.spark",
        "ampwrite.bulk.dask", "ampwrite.pytest_plugin")
def walk(package):  # pkgutil.walk_packages would import the skipped packages to walk them
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not info.name.startswith(skip):
            module = importlib.import_module(info.name)
            if info.ispkg:
                walk(module)
walk(ampwrite)
loaded = sorted(name for name in sys.modules if name.startswith("ampwrite.cli"))
print(loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_load_hints_at_a_url_without_v1_and_at_a_refused_key(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}, {"n": 2}])
    url = ampwrite_sandbox.url.removesuffix("/v1")
    no_v1 = ampwrite(*load_argv(url, ampwrite_sandbox.api_key, source))
    assert no_v1.returncode == EXIT_API_ERROR
    assert no_v1.stderr.count(f"hint: the server URL usually ends in /v1 (got {url})") == 1

    wrong_key = ampwrite(*load_argv(ampwrite_sandbox.url, "sk-wrong-key-7", source))
    assert wrong_key.returncode == EXIT_API_ERROR
    assert wrong_key.stderr.count("hint: the API key was refused: check --api-key") == 1
    assert "sk-wrong-key-7" not in wrong_key.stderr


def test_operation_against_a_closed_port_says_which_flag_to_check() -> None:
    url = closed_port_url()
    done = ampwrite(
        "operation", "get", "op-1", "--project", "p", "--api-key", "sk-test-key-0001",
        "--platform-url", url, "--retry-for", "2",
    )  # fmt: skip

    assert done.returncode == EXIT_TRANSPORT
    assert "ampwrite operation get: attempt 1 of" in done.stderr
    assert f"no answer from {url} after " in done.stderr
    assert "check --platform-url / AMPERSAND_PLATFORM_URL" in done.stderr


def test_load_usage_errors_name_the_flags_and_the_library_its_arguments(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    from ampwrite import Core
    from ampwrite.bulk import FileLoad, LoadError

    source = jsonl(tmp_path / "in.jsonl", [{"n": 1}])
    argv = load_argv(ampwrite_sandbox.url, ampwrite_sandbox.api_key, source)
    done = ampwrite(*argv, "--batch-size", "0")
    assert done.returncode == EXIT_USAGE
    assert done.stderr == "ampwrite load: --batch-size must be from 1 to 100, got 0\n"
    resume = ampwrite(*argv, "--resume")
    assert "--resume needs --out" in resume.stderr

    core = Core(ampwrite_sandbox.api_key, server_url=ampwrite_sandbox.url)
    with core, pytest.raises(LoadError, match="`batch_size` must be from 1 to 100"):
        FileLoad(
            core,
            str(source),
            project_id_or_name="p",
            integration_id="i",
            object_name="contacts",
            group_ref="g",
            batch_size=0,
        )
    assert ampwrite_sandbox.requests == []


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_terminal_sees_progress_over_the_whole_input_with_requests_on_resume(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out.jsonl"
    key, url = ampwrite_sandbox.api_key, ampwrite_sandbox.url
    first = jsonl(tmp_path / "first.jsonl", [{"n": i} for i in range(30)])
    assert ampwrite(*load_argv(url, key, first, "--out", str(out))).returncode == EXIT_OK
    whole = jsonl(tmp_path / "whole.jsonl", [{"n": i} for i in range(50)])
    controller, terminal = os.openpty()
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AMPERSAND_")}
        process = subprocess.Popen(
            [*AMPWRITE, *load_argv(url, key, whole, "--out", str(out), "--resume")],
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            env=environment,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal (EIO on Linux)
                break
            if not chunk:
                break
            drawn += chunk
        assert process.wait(timeout=60) == EXIT_OK
    finally:
        os.close(controller)
    text = drawn.decode()
    bars = [part for part in text.split("\r") if "rec/s" in part]
    assert bars, text
    assert "50/50" in bars[-1] and " req" in bars[-1]  # the whole input, with the requests
    assert "/20 " not in text  # never only the rows left
    assert "30 settled by earlier runs" in text


@pytest.mark.parametrize("command", ["write", "load", "operation"])
def test_retry_for_takes_seconds_from_0(command: str) -> None:
    done = ampwrite(command, "--retry-for", "-1")

    assert done.returncode == EXIT_USAGE
    assert "argument --retry-for: seconds from 0, got -1" in done.stderr
