"""Sandbox command-line helpers, ``python -m ampwrite.sandbox``, and the package's import
hygiene (standard library only; no ``argparse`` on a plain import)."""

from __future__ import annotations

import argparse
import ast
import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ampwrite.core import MIN_API_KEY_LENGTH
from ampwrite.sandbox import Faults
from ampwrite.sandbox._cli import add_fault_arguments, build_parser, faults_from_args

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ampwrite" / "sandbox"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_fault_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_give_default_faults() -> None:
    assert faults_from_args(parse()) == Faults()


def test_every_flag_maps_to_its_field() -> None:
    ns = parse(
        "--latency",
        "0.25",
        "--rate-limit",
        "0.1",
        "--retry-after",
        "3",
        "--error-500",
        "0.05",
        "--error-502",
        "0.06",
        "--error-503",
        "0.07",
        "--reset",
        "0.08",
        "--commit-then-fail",
        "0.09",
        "--seed",
        "99",
    )
    assert faults_from_args(ns) == Faults(
        seed=99,
        latency=0.25,
        rate_limit=0.1,
        retry_after=3.0,
        error_500=0.05,
        error_502=0.06,
        error_503=0.07,
        reset=0.08,
        commit_then_fail=0.09,
    )


@pytest.mark.parametrize(
    "argv",
    [["--rate-limit", "1.5"], ["--latency", "-1"], ["--error-500", "x"], ["--seed", "1.5"]],
)
def test_bad_flag_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)


def test_rates_adding_up_past_one_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        faults_from_args(parse("--error-500", "0.7", "--error-503", "0.7"))


def _imports(path: Path) -> set[str]:
    """The modules a file of the package imports, relative imports made absolute."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
                continue
            parent = ["ampwrite", "sandbox"][: 2 - (node.level - 1)]
            names.add(".".join([*parent, *([node.module] if node.module else [])]))
    return names


OWN_MODULES_ALLOWED = frozenset({"ampwrite._version", "ampwrite._limits"})
"""What the sandbox may import of ampwrite outside its package: modules of constants only."""


def test_package_imports_only_the_standard_library() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names
                or name == "ampwrite.sandbox"
                or name.startswith("ampwrite.sandbox.")
                or name in OWN_MODULES_ALLOWED
            )
            assert allowed, f"{path.name} imports {name}"
        if path.name not in ("_cli.py", "__main__.py"):
            assert "argparse" not in _imports(path), path.name


def test_the_import_check_sees_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "from . import _faults\nfrom ._server import Sandbox\nfrom .._validate import X\n"
        "from .. import core\nimport json\n",
        encoding="utf-8",
    )
    assert _imports(source) == {
        "ampwrite.sandbox",
        "ampwrite.sandbox._server",
        "ampwrite._validate",
        "ampwrite",
        "json",
    }


@pytest.mark.parametrize("key", ["", "short", "x" * (MIN_API_KEY_LENGTH - 1)])
def test_a_short_api_key_is_a_usage_error(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser("ampwrite sandbox").parse_args(["--api-key", key])
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert "usage: ampwrite sandbox" in said
    assert f"--api-key: expected at least {MIN_API_KEY_LENGTH} characters" in said


def test_the_command_refuses_a_short_api_key_without_a_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "ampwrite.sandbox", "--port", "0", "--api-key", "short"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "usage:" in done.stderr and "--api-key" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_plain_import_does_not_load_argparse() -> None:
    code = "import sys, ampwrite.sandbox; print('argparse' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGINT delivery to a child")
def test_module_entry_point_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "ampwrite.sandbox", "--port", "0", "--api-key", "cli-key-1234"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first
        url = first.split("listening on ", 1)[1].strip()
        assert url.endswith("/v1")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"groupRef": "g", "type": "create", "record": {}})
        path = "/v1/projects/p/integrations/i/objects/o"
        headers = {"X-Api-Key": "cli-key-1234", "Content-Type": "application/json"}
        conn.request("POST", path, body=body, headers=headers)
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
