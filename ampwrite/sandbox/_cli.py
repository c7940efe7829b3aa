"""Command-line helpers for the sandbox: fault flags for ``argparse`` and a ``main`` that
runs a sandbox in the foreground (used by ``python -m ampwrite.sandbox``).

Kept apart from the package's ``__init__`` so that importing ``ampwrite.sandbox`` does not
import ``argparse``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._faults import Faults
from ._server import DEFAULT_API_KEY, Sandbox

__all__ = ["add_fault_arguments", "add_server_arguments", "faults_from_args", "main"]

DEFAULT_PORT = 8787

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
        default=DEFAULT_API_KEY,
        help=f"the API key clients must send as X-Api-Key (default: {DEFAULT_API_KEY})",
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
    add_fault_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run a sandbox in the foreground until Ctrl-C; return an exit status."""
    return run(build_parser(prog).parse_args(argv))


def run(ns: argparse.Namespace) -> int:
    """Serve with the settings parsed by `add_server_arguments` and `add_fault_arguments`."""
    try:
        faults = faults_from_args(ns)
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
    try:
        sandbox.start()
    except OSError as exc:
        print(f"error: cannot listen on {ns.host}:{ns.port}: {exc}", file=sys.stderr)
        return 1
    print(f"ampwrite sandbox listening on {sandbox.url}", flush=True)
    print(f"  API key:    {sandbox.api_key}", flush=True)
    print(f"  operations: {sandbox.url}/projects/PROJECT/operations/ID", flush=True)
    print(f"  inspection: {sandbox.base_url}/_sandbox/records", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    sandbox.serve_forever()
    return 0
