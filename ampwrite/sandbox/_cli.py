"""Command-line helpers for the sandbox: fault flags for ``argparse`` and a ``main`` that
runs a sandbox in the foreground (used by ``python -m ampwrite.sandbox``).

Kept apart from the package's ``__init__`` so that importing ``ampwrite.sandbox`` does not
import ``argparse``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._limits import MIN_API_KEY_LENGTH
from ._faults import Faults
from ._handlers import object_rules
from ._server import DEFAULT_API_KEY, Sandbox
from ._validation import RequestInvalid, parse_json_body

__all__ = [
    "DEFAULT_PORT",
    "add_fault_arguments",
    "add_rule_arguments",
    "add_server_arguments",
    "faults_from_args",
    "main",
    "rules_from_args",
]

DEFAULT_PORT = 8726
"""Off the ports common tools take by default (8787 is Dask's dashboard)."""

# (flag, Faults field, help)
_FAULT_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--latency", "latency", "seconds added before answering each valid write"),
    ("--rate-limit", "rate_limit", "share of valid writes answered 429 with Retry-After"),
    ("--retry-after", "retry_after", "seconds that 429 and 503 answers ask clients to wait"),
    ("--error-500", "error_500", "share of valid writes answered 500"),
    ("--error-502", "error_502", "share of valid writes answered 502"),
    ("--error-503", "error_503", "share of valid writes answered 503 with Retry-After"),
    ("--reset", "reset", "share of valid writes whose connection is reset without an answer"),
    ("--commit-then-fail", "commit_then_fail", "share of valid writes stored, then answered 502"),
)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _api_key(text: str) -> str:
    if len(text) < MIN_API_KEY_LENGTH:
        raise argparse.ArgumentTypeError(
            f"expected at least {MIN_API_KEY_LENGTH} characters, got {len(text)}: "
            "the SDK refuses to send a shorter key"
        )
    return text


def _share(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the fault-injection flags (``--latency``, ``--rate-limit``, ... ``--seed``)."""
    defaults = Faults()
    group = parser.add_argument_group("fault injection (applies only to valid writes)")
    for flag, name, help_text in _FAULT_FLAGS:
        is_share = name not in ("latency", "retry_after")
        group.add_argument(
            flag,
            dest=f"fault_{name}",
            type=_share if is_share else _non_negative,
            default=getattr(defaults, name),
            metavar="SHARE" if is_share else "SECONDS",
            help=f"{help_text} (default: {getattr(defaults, name):g})",
        )
    group.add_argument(
        "--seed",
        dest="fault_seed",
        type=int,
        default=defaults.seed,
        metavar="SEED",
        help=f"seed for the fault sequence (default: {defaults.seed})",
    )


def faults_from_args(ns: argparse.Namespace) -> Faults:
    """Build ``Faults`` from a namespace parsed with ``add_fault_arguments`` flags.

    Raises ``ValueError`` if the rates add up to more than 1.
    """
    values = {name: getattr(ns, f"fault_{name}") for _, name, _ in _FAULT_FLAGS}
    return Faults(seed=ns.fault_seed, **values)


def _object_fields(text: str) -> tuple[str, tuple[str, ...]]:
    name, colon, listed = text.partition(":")
    fields = tuple(field.strip() for field in listed.split(","))
    if not colon or not name.strip() or not all(fields):
        raise argparse.ArgumentTypeError(f"expected OBJECT:FIELD[,FIELD...], got {text!r}")
    return name.strip(), fields


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the object-rule flags (``--require``, ``--unique``, ``--rules``)."""
    group = parser.add_argument_group(
        "object rules (what the fake provider refuses, per object, in every project)"
    )
    group.add_argument(
        "--require",
        dest="rules_require",
        action="append",
        type=_object_fields,
        default=[],
        metavar="OBJECT:FIELD[,FIELD]",
        help="fields a record of OBJECT must have, not blank (repeatable)",
    )
    group.add_argument(
        "--unique",
        dest="rules_unique",
        action="append",
        type=_object_fields,
        default=[],
        metavar="OBJECT:FIELD[,FIELD]",
        help="fields no two records of OBJECT in one installation may share (repeatable)",
    )
    group.add_argument(
        "--rules",
        dest="rules_file",
        metavar="FILE",
        help='a JSON file of rules by object, e.g. {"contacts": {"requiredFields": ["email"], '
        '"uniqueFields": ["email"], "deleteEnabled": false}}; flags add to it',
    )


def rules_from_args(ns: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The object rules that ``add_rule_arguments`` flags ask for: ``configure_object``
    keyword arguments by object name, those of the ``--rules`` file first.

    Raises ``ValueError`` naming the file and the field when the file cannot be read or
    does not hold rules in the shape of ``PUT /_sandbox/objects/{objectName}``.
    """
    rules: dict[str, dict[str, Any]] = {}
    if ns.rules_file is not None:
        where = f"--rules {ns.rules_file}"
        try:
            data = parse_json_body(Path(ns.rules_file).read_bytes())
            if not isinstance(data, dict):
                raise RequestInvalid("expected a JSON object of rules by object name")
            for name, entry in data.items():
                if not name:
                    raise RequestInvalid("an object name must not be empty")
                rules[name] = object_rules(entry, name)
        except OSError as exc:
            raise ValueError(f"{where}: cannot read it ({exc.strerror or exc})") from None
        except RequestInvalid as exc:
            raise ValueError(f"{where}: {str(exc).removeprefix('request body: ')}") from None
    for flag, key in (("rules_require", "required_fields"), ("rules_unique", "unique_fields")):
        for name, fields in getattr(ns, flag):
            entry = rules.setdefault(name, object_rules({}))
            entry[key] = [*entry[key], *(f for f in fields if f not in entry[key])]
    return rules


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port``, ``--api-key`` and ``--async-delay``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free port (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--api-key",
        type=_api_key,
        default=DEFAULT_API_KEY,
        help=(
            f"the API key clients must send as X-Api-Key, at least {MIN_API_KEY_LENGTH} "
            f"characters (default: {DEFAULT_API_KEY})"
        ),
    )
    parser.add_argument(
        "--async-delay",
        type=_non_negative,
        default=0.05,
        metavar="SECONDS",
        help=(
            "delay before an asynchronous write is applied; its operation is in_progress "
            "until then (default: 0.05)"
        ),
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a local emulator of Ampersand's Write API until interrupted.",
    )
    add_server_arguments(parser)
    add_rule_arguments(parser)
    add_fault_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run a sandbox in the foreground until Ctrl-C; return an exit status."""
    return run(build_parser(prog).parse_args(argv))


def run(ns: argparse.Namespace) -> int:
    """Serve with the settings parsed by `add_server_arguments` and `add_fault_arguments`."""
    try:
        faults = faults_from_args(ns)
        rules = rules_from_args(ns)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(
        host=ns.host,
        port=ns.port,
        api_key=ns.api_key,
        faults=faults,
        async_delay=ns.async_delay,
    )
    for object_name, arguments in rules.items():
        sandbox.configure_object(object_name, **arguments)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"error: cannot listen on {ns.host}:{ns.port}: {exc}", file=sys.stderr)
        return 1
    print(f"ampwrite sandbox listening on {sandbox.url}", flush=True)
    print(f"  API key:    {sandbox.api_key}", flush=True)
    print(f"  operations: {sandbox.url}/projects/PROJECT/operations/ID", flush=True)
    print(f"  inspection: {sandbox.base_url}/_sandbox/records", flush=True)
    for object_name, arguments in rules.items():
        print(f"  rules:      {object_name}: {_describe(arguments)}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    sandbox.serve_forever()
    return 0


def _describe(arguments: dict[str, Any]) -> str:
    parts = []
    if arguments["required_fields"]:
        parts.append(f"required {', '.join(arguments['required_fields'])}")
    if arguments["unique_fields"]:
        parts.append(f"unique {', '.join(arguments['unique_fields'])}")
    if not arguments["delete_enabled"]:
        parts.append("no deletes")
    return "; ".join(parts) or "none"
