"""`ampwrite sandbox` object rules: `--require`, `--unique`, `--rules FILE`, as a user runs
them (a subprocess), and the default port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ampwrite import Core, write_records
from ampwrite.errors import WriteFailedError
from ampwrite.result import Err, Ok

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
AMPWRITE = [sys.executable, "-c", "import sys; from ampwrite.cli import main; sys.exit(main())"]
COMMANDS = {
    "ampwrite sandbox": [*AMPWRITE, "sandbox"],
    "python -m ampwrite.sandbox": [sys.executable, "-m", "ampwrite.sandbox"],
}


@contextmanager
def serving(command: list[str], *flags: str) -> Iterator[tuple[str, list[str]]]:
    """Run the sandbox with `flags` on a free port; its URL and the banner it printed."""
    argv = [*command, "--port", "0", "--api-key", "rules-key", *flags]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert process.stdout is not None
        banner: list[str] = []
        while not banner or not banner[-1].startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, f"the sandbox ended early: {banner}"
            banner.append(line.rstrip("\n"))
        url = banner[0].split("listening on ", 1)[1].strip()
        yield url, banner
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def create(core: Core, object_name: str, record: dict[str, Any], **body: Any) -> Any:
    request = {
        "projectIdOrName": "p",
        "integrationId": "i",
        "objectName": object_name,
        "requestBody": {"groupRef": "g", "type": "create", "record": record, **body},
    }
    return write_records(core, request)


def refusal(result: Any) -> str:
    assert isinstance(result, Err) and isinstance(result.error, WriteFailedError), result
    return " ".join(str(m.message) for m in result.error.errors)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGINT delivery to a child")
@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_flags_and_a_rules_file_set_object_rules(tmp_path: Path, command: str) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"deals": {"requiredFields": ["amount"], "deleteEnabled": False}}))
    flags = ["--require", "contacts:email,name", "--unique", "contacts:email"]

    with serving(COMMANDS[command], *flags, "--rules", str(rules)) as (url, banner):
        assert "  rules:      deals: required amount; no deletes" in banner
        assert "  rules:      contacts: required email, name; unique email" in banner
        with Core("rules-key", server_url=url) as core:
            missing = create(core, "contacts", {"name": "Ada"})
            first = create(core, "contacts", {"name": "Ada", "email": "ada@example.com"})
            again = create(core, "contacts", {"name": "Bob", "email": "ada@example.com"})
            no_amount = create(core, "deals", {"title": "big"})
            other = create(core, "companies", {})  # no rules: anything goes
            deal = create(core, "deals", {"amount": 3})
            assert isinstance(deal, Ok) and deal.value.result is not None
            deleted = write_records(
                core,
                {
                    "projectIdOrName": "p",
                    "integrationId": "i",
                    "objectName": "deals",
                    "requestBody": {
                        "groupRef": "g",
                        "type": "delete",
                        "record": {"id": deal.value.result.record_id},
                    },
                },
            )

    assert "Required fields are missing: [email]" in refusal(missing)
    assert isinstance(first, Ok)
    assert "duplicate value found: email" in refusal(again)
    assert "Required fields are missing: [amount]" in refusal(no_amount)
    assert isinstance(other, Ok)
    assert "Deletion is not enabled" in refusal(deleted)


def _rules_file(tmp_path: Path, content: str) -> str:
    path = tmp_path / "rules.json"
    path.write_text(content, encoding="utf-8")
    return str(path)


BAD: dict[str, tuple[list[str], str]] = {
    "no field": (["--require", "contacts"], "argument --require: expected OBJECT:FIELD"),
    "no object": (["--unique", ":email"], "argument --unique: expected OBJECT:FIELD"),
    "an empty field": (["--require", "contacts:email,"], "expected OBJECT:FIELD"),
    "a missing file": (["--rules", "{tmp}/none.json"], "none.json: cannot read it"),
    "not JSON": (["--rules", "@{"], "rules.json: malformed JSON"),
    "not an object": (["--rules", '@["contacts"]'], "expected a JSON object of rules"),
    "rules not an object": (["--rules", '@{"contacts": ["email"]}'], "contacts: expected"),
    "an unknown key": (
        ["--rules", '@{"contacts": {"required": ["email"]}}'],
        "unknown field(s) contacts.required",
    ),
    "fields not a list": (
        ["--rules", '@{"contacts": {"requiredFields": "email"}}'],
        "contacts.requiredFields: expected an array of non-empty strings",
    ),
    "deleteEnabled not a boolean": (
        ["--rules", '@{"contacts": {"deleteEnabled": "no"}}'],
        "contacts.deleteEnabled: expected a boolean",
    ),
    "an empty object name": (["--rules", '@{"": {}}'], "an object name must not be empty"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_rules_exit_2_with_a_clear_message(tmp_path: Path, case: str) -> None:
    flags, expected = BAD[case]
    argv: list[str] = []
    for flag in flags:  # "@..." is the content of a rules file written for the test
        flag = flag.replace("{tmp}", str(tmp_path))
        argv.append(_rules_file(tmp_path, flag[1:]) if flag.startswith("@") else flag)

    done = subprocess.run(
        [*COMMANDS["ampwrite sandbox"], "--port", "0", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "listening" not in done.stdout  # refused before serving


def test_the_default_port_is_not_dasks_dashboard() -> None:
    done = subprocess.run(
        [*COMMANDS["ampwrite sandbox"], "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )

    assert done.returncode == 0
    assert "(default: 8726)" in " ".join(done.stdout.split())
    assert "8787" not in done.stdout
