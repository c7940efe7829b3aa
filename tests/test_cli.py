"""The `ampwrite` command: help, version, write, demo, and the exit statuses."""

from __future__ import annotations

import json
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

from ampwrite import __version__
from ampwrite.cli import EXIT_API_ERROR, EXIT_OK, EXIT_TRANSPORT, EXIT_USAGE, main
from ampwrite.sandbox import Sandbox
from tests.requests_data import write_argv


def _write_args(sandbox: Sandbox, *extra: str) -> list[str]:
    return write_argv(sandbox.url, sandbox.api_key, *extra)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"ampwrite {__version__}"


@pytest.mark.parametrize("command", [[], ["write"], ["sandbox"], ["demo"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: ampwrite" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "demo" in capsys.readouterr().out


def test_write_a_record(ampwrite_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(_write_args(ampwrite_sandbox, "--record", '{"email": "ada@example.com"}'))

    assert status == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed["result"]["success"] is True
    stored = ampwrite_sandbox.records(object_name="contacts")
    assert [r["id"] for r in stored] == [printed["result"]["recordId"]]


def test_write_a_batch_from_jsonl(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "records.jsonl"
    lines.write_text('{"email": "a@example.com"}\n\n{"email": "b@example.com"}\n')

    status = main(_write_args(ampwrite_sandbox, "--batch", str(lines)))

    assert status == EXIT_OK
    assert json.loads(capsys.readouterr().out)["successCount"] == 2


def test_record_from_a_file(
    ampwrite_sandbox: Sandbox, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "record.json"
    record.write_text('{"email": "file@example.com"}')

    assert main(_write_args(ampwrite_sandbox, "--record", f"@{record}")) == EXIT_OK
    assert ampwrite_sandbox.records()[0]["email"] == "file@example.com"


def test_invalid_request_exits_2_and_sends_nothing(
    ampwrite_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(_write_args(ampwrite_sandbox, "--type", "upsert", "--record", "{}"))

    assert status == EXIT_USAGE
    report = json.loads(capsys.readouterr().out)
    assert report["error"] == "RequestValidationError"
    assert report["issues"][0]["path"] == "requestBody.type"
    assert ampwrite_sandbox.requests == []


def test_unreadable_record_exits_2(ampwrite_sandbox: Sandbox) -> None:
    assert main(_write_args(ampwrite_sandbox, "--record", "{not json")) == EXIT_USAGE


def test_write_failure_exits_3(
    ampwrite_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(_write_args(ampwrite_sandbox, "--type", "update", "--record", '{"id": "nope"}'))

    assert status == EXIT_API_ERROR
    report = json.loads(capsys.readouterr().out)
    assert report["error"] == "WriteFailedError" and report["status"] == 422
    assert "nope" in report["response"]["errors"][0]["message"]


def test_transport_failure_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    with Sandbox() as sandbox:
        args = _write_args(sandbox, "--record", "{}")
    # the sandbox has stopped: nothing listens there any more
    assert main([*args, "--timeout", "1"]) == EXIT_TRANSPORT


def test_demo_runs_and_every_step_behaves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "UNEXPECTED" not in out
    assert "Every step behaved as shown." in out


def test_demo_ends_with_three_next_steps_that_work(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ampwrite.cli import build_parser
    from ampwrite.sandbox._cli import rules_from_args

    assert main(["demo"]) == EXIT_OK
    steps = capsys.readouterr().out.split("\nNext, three things to try:\n", 1)[1]
    assert all(f"\n  {n}. " in "\n" + steps for n in (1, 2, 3))
    assert "docs/sandbox.md" in steps
    shown = [line.strip() for line in steps.splitlines()]
    commands = {}
    for line in shown:
        words = shlex.split(line) if line.startswith(("ampwrite ", "export ")) else []
        if words[:1] == ["ampwrite"]:
            commands[words[1]] = build_parser().parse_args(words[1:])  # each one is valid
        for setting in words[1:] if words[:1] == ["export"] else []:
            assert setting.split("=")[0] in ("AMPERSAND_SERVER_URL", "AMPERSAND_API_KEY")
    assert sorted(commands) == ["load", "sandbox", "write"]

    # the steps, against a sandbox with the rules the shown `ampwrite sandbox` sets
    with Sandbox() as sandbox:
        for object_name, rules in rules_from_args(commands["sandbox"]).items():
            sandbox.configure_object(object_name, **rules)
        monkeypatch.setenv("AMPERSAND_SERVER_URL", sandbox.url)
        monkeypatch.setenv("AMPERSAND_API_KEY", sandbox.api_key)
        monkeypatch.chdir(tmp_path)
        (write,) = [line for line in shown if line.startswith("ampwrite write ")]
        assert main(shlex.split(write)[1:]) == EXIT_API_ERROR  # no email: refused
        assert sandbox.records() == []
        (tmp_path / "contacts.csv").write_text("email,name\na@example.com,A\nb@example.com,B\n")
        (load,) = [line for line in shown if line.startswith("ampwrite load ")]
        assert main(shlex.split(load)[1:]) == EXIT_OK
        outcomes = (tmp_path / "results.jsonl").read_text().splitlines()
        assert [json.loads(line)["status"] for line in outcomes] == ["written", "written"]


def test_console_script_is_installed() -> None:
    beside = pathlib.Path(sys.executable).parent / "ampwrite"
    script = str(beside) if beside.exists() else shutil.which("ampwrite")
    assert script is not None, "pip install should have put an ampwrite command on PATH"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"ampwrite {__version__}"


def test_sandbox_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ampwrite.cli import main; raise SystemExit(main())",
            "sandbox",
            "--port",
            "0",
            "--api-key",
            "cli-key-1234",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "http://127.0.0.1:" in first
        url = first.split()[-1]
        status = main(write_argv(url, "cli-key-1234", "--record", '{"a": 1}'))
        assert status == EXIT_OK
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        process.wait(timeout=30)
