"""The `ampwrite` command: `demo`, `write`, `load`, `operation`, `sandbox` and `mcp`.

Exit status:
    0  success
    1  unexpected internal error
    2  usage error, invalid request or configuration (nothing was sent)
    3  the API answered with an error (the write failed or was refused)
    4  no usable answer (connection refused or broken, timeout, malformed answer)
  130  interrupted

For `operation`, 3 also means the operation ended in `failure`, and 4 that `wait` gave up
before it ended.

For `load`, which writes many records, the status sums up every record of the results file
once the run ends: 0 all written (or accepted), 3 some record failed and none is unknown,
4 some record's outcome is unknown (it may or may not have been written), 2 a usage error
(nothing sent), 130 interrupted (the results file is valid: run again with --resume).

This package owns argparse, printing, exit codes, signals and progress; the library below
it exposes typed functions (`write_records`, `ampwrite.bulk.FileLoad`, ...) and never
imports it. `_load` is the `load` command, `_notices` shows the retries the library logs,
`_explain` puts errors in the command's terms and adds hints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._version import __version__

if TYPE_CHECKING:
    from ..core import Core

EXIT_OK: Final = 0
EXIT_INTERNAL: Final = 1
EXIT_USAGE: Final = 2
EXIT_API_ERROR: Final = 3
EXIT_TRANSPORT: Final = 4
EXIT_INTERRUPTED: Final = 130

WRITE_RETRIES: Final = 15.0
"""`ampwrite write` and `operation` are interactive: a request is retried for 15 s in all (the
library's default is 60 s), so a server that is not there is reported in about 8 s rather
than 16 s (`--retry-for` changes it)."""

EPILOG: Final = """exit status: 0 success, 2 usage or invalid request (nothing sent),
3 the API answered with an error, 4 no usable answer (network, timeout, malformed answer),
130 interrupted"""


def _read_json_argument(flag: str, value: str) -> Any:
    """JSON text, or @path to a file holding it; a `ValueError` naming `flag` otherwise."""
    try:
        if value.startswith("@"):
            with open(value[1:], encoding="utf-8") as handle:
                return json.load(handle)
        return json.loads(value)
    except json.JSONDecodeError as exc:
        where = f" {value}" if value.startswith("@") else ""
        raise ValueError(
            f"{flag}{where}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except OSError as exc:
        raise ValueError(
            f"{flag} {value}: cannot read {value[1:]}: {exc.strerror or exc}"
        ) from None
    except RecursionError:
        raise ValueError(f"{flag}: not JSON: nested too deeply") from None


def _read_batch(path: str) -> list[dict[str, Any]]:
    """One JSON record per line; blank lines are skipped."""
    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ValueError(f"--batch {path}: cannot read it: {exc.strerror or exc}") from None
    with handle:
        items = []
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    items.append({"record": json.loads(line)})
                except json.JSONDecodeError as exc:
                    raise ValueError(f"--batch {path}:{number}: not JSON: {exc.msg}") from None
        return items


def retry_seconds(text: str) -> float:
    """`--retry-for`: seconds, a finite number from 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds from 0, got {text}")
    return value


def make_core(ns: argparse.Namespace, label: str, *, platform: bool = False) -> Core | int:
    """The Core the flags (or the environment) ask for, or EXIT_USAGE once the reason is
    printed in the command's terms."""
    from ..core import Core
    from ..errors import AmpWriteError
    from ._explain import in_cli_terms

    options: dict[str, Any] = {"timeout": ns.timeout}
    if getattr(ns, "server_url", None) is not None or not platform:
        options["server_url"] = getattr(ns, "server_url", None)
    if platform:
        options["platform_url"] = getattr(ns, "platform_url", None)
    retries = getattr(ns, "retries", None)
    if retries is not None:
        options["retries"] = retries
    try:
        return Core(ns.api_key, **options)
    except AmpWriteError as exc:
        print(f"{label}: {in_cli_terms(str(exc))}", file=sys.stderr)
        return EXIT_USAGE


def explain(
    label: str, error: BaseException, *, url: str, url_flag: str, url_env: str, seconds: float
) -> None:
    """The error on stderr, in the command's terms, with what to check."""
    from ..errors import AmpWriteError, TransportError
    from ._explain import hints, in_cli_terms, no_answer

    if isinstance(error, TransportError):
        print(f"{label}: {no_answer(error, url=url, seconds=seconds)}", file=sys.stderr)
    else:
        print(f"{label}: {in_cli_terms(str(error))}", file=sys.stderr)
    if isinstance(error, AmpWriteError):
        for hint in hints(error, url=url, url_flag=url_flag, url_env=url_env):
            print(hint, file=sys.stderr)


def _exit_status(error: BaseException) -> int:
    from ..errors import APIError, ResponseValidationError, TransportError

    if isinstance(error, TransportError):
        return EXIT_TRANSPORT
    if isinstance(error, ResponseValidationError):
        return EXIT_TRANSPORT
    if isinstance(error, APIError):
        return EXIT_API_ERROR
    return EXIT_USAGE


def error_report(error: BaseException) -> dict[str, Any]:
    """An error as JSON-ready data (never containing the API key)."""
    from ..errors import APIError, RequestValidationError, WriteFailedError

    report: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, RequestValidationError):
        report["issues"] = [{"path": i.path, "message": i.message} for i in error.issues]
    if isinstance(error, APIError):
        report["status"] = error.status
        report["requestId"] = error.request_id
    if isinstance(error, WriteFailedError) and error.response is not None:
        from .._wire import to_wire

        report["response"] = to_wire(error.response)
    return report


def _cmd_write(ns: argparse.Namespace) -> int:
    from .._wire import to_wire
    from ..core import ENV_SERVER_URL
    from ..retries import RetryConfig
    from ..write import write_records
    from ._notices import RetryLines, showing_retries

    object_name = ns.object_flag or ns.object
    if ns.object and ns.object_flag and ns.object != ns.object_flag:
        print(
            f"ampwrite write: the object is given twice ({ns.object} and --object "
            f"{ns.object_flag}): pass --object only",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not object_name:
        print("ampwrite write: the object to write is missing: pass --object", file=sys.stderr)
        return EXIT_USAGE
    body: dict[str, Any] = {"groupRef": ns.group_ref, "type": ns.type}
    if ns.mode:
        body["mode"] = ns.mode
    try:
        if ns.batch is not None:
            body["batch"] = _read_batch(ns.batch)
        else:
            body["record"] = _read_json_argument("--record", ns.record)
    except ValueError as exc:
        print(f"ampwrite write: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if ns.all_or_none:
        body["batchPolicy"] = {"allOrNone": True}
    request = {
        "projectIdOrName": ns.project,
        "integrationId": ns.integration,
        "objectName": object_name,
        "requestBody": body,
    }
    ns.retries = RetryConfig.none() if ns.no_retry else RetryConfig(max_elapsed_time=ns.retry_for)
    core = make_core(ns, "ampwrite write")
    if isinstance(core, int):
        return core
    started = time.monotonic()
    with core, showing_retries(RetryLines(sys.stderr, "ampwrite write")):
        result = write_records(core, request)
    if result.ok:
        print(json.dumps(to_wire(result.value), indent=2))
        return EXIT_OK
    error = result.error
    print(json.dumps(error_report(error), indent=2))
    explain(
        "ampwrite write",
        error,
        url=core.server_url,
        url_flag="--server-url",
        url_env=ENV_SERVER_URL,
        seconds=time.monotonic() - started,
    )
    return _exit_status(error)


def _cmd_operation(ns: argparse.Namespace) -> int:
    from .._wire import to_wire
    from ..core import ENV_PLATFORM_URL
    from ..errors import AmpWriteError, OperationTimeoutError
    from ..models import OperationStatus
    from ..operations import get_operation, list_operation_logs, wait_for_operation
    from ..result import Result
    from ..retries import RetryConfig
    from ._notices import RetryLines, showing_retries

    label = f"ampwrite operation {ns.action}"
    ns.retries = RetryConfig(max_elapsed_time=ns.retry_for)
    core = make_core(ns, label, platform=True)
    if isinstance(core, int):
        return core
    result: Result[Any, AmpWriteError]
    started = time.monotonic()
    with core, showing_retries(RetryLines(sys.stderr, label)):
        if ns.action == "logs":
            result = list_operation_logs(core, ns.project, ns.operation_id)
        elif ns.action == "wait":
            options = {} if ns.poll_interval is None else {"poll_interval": ns.poll_interval}
            result = wait_for_operation(
                core, ns.project, ns.operation_id, timeout=ns.wait_timeout, **options
            )
        else:
            result = get_operation(core, ns.project, ns.operation_id)
    if result.ok:
        print(json.dumps(to_wire(result.value), indent=2))
        failed = getattr(result.value, "status", None) == OperationStatus.FAILURE
        return EXIT_API_ERROR if failed else EXIT_OK
    error = result.error
    report = error_report(error)
    if isinstance(error, OperationTimeoutError):
        report["operationId"] = error.operation_id
        report["last"] = None if error.last is None else to_wire(error.last)
    print(json.dumps(report, indent=2))
    explain(
        label,
        error,
        url=core.platform_url,
        url_flag="--platform-url",
        url_env=ENV_PLATFORM_URL,
        seconds=time.monotonic() - started,
    )
    return EXIT_TRANSPORT if isinstance(error, OperationTimeoutError) else _exit_status(error)


def _cmd_load(ns: argparse.Namespace) -> int:
    from ._load import run_load

    return run_load(ns)


def _cmd_sandbox(ns: argparse.Namespace) -> int:
    from ..sandbox._cli import run

    return run(ns)


def _cmd_mcp(ns: argparse.Namespace) -> int:
    from ..mcp._cli import run

    return run(ns)


def _cmd_demo(ns: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(pause=ns.pause)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ampwrite",
        description="Write records into your customers' SaaS through Ampersand's Write API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ampwrite {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="walk through the SDK against an embedded sandbox",
        description="Start an in-process sandbox and walk through what ampwrite does.",
        epilog=EPILOG,
    )
    demo.add_argument("--pause", type=float, default=0.0, help="seconds to pause between steps")
    demo.set_defaults(handler=_cmd_demo)

    write = commands.add_parser(
        "write",
        help="write one record or a batch",
        description="Create, update or delete records; print the API's answer as JSON. The API "
        "key and server come from --api-key/--server-url or AMPERSAND_API_KEY/"
        "AMPERSAND_SERVER_URL.",
        epilog=EPILOG,
    )
    write.add_argument(
        "object",
        nargs="?",
        help="the object to write, e.g. contacts (or --object, as load takes it)",
    )
    write.add_argument("--object", dest="object_flag", metavar="OBJECT", help="the object to write")
    write.add_argument("--project", required=True, help="project id or name")
    write.add_argument("--integration", required=True, help="integration id")
    write.add_argument("--group-ref", required=True, help="the installation's group ref")
    write.add_argument(
        "--type",
        default="create",
        help="create (default), update or delete",
        metavar="{create,update,delete}",
    )
    write.add_argument(
        "--mode",
        help="synchronous (default) or asynchronous",
        metavar="{synchronous,asynchronous}",
    )
    source = write.add_mutually_exclusive_group(required=True)
    source.add_argument("--record", help="the record as JSON, or @file.json")
    source.add_argument("--batch", help="a JSONL file of records, one per line (- for stdin)")
    write.add_argument(
        "--all-or-none", action="store_true", help="fail the whole batch if any fails"
    )
    write.add_argument("--api-key", help="API key (default: $AMPERSAND_API_KEY)")
    write.add_argument("--server-url", help="server URL (default: $AMPERSAND_SERVER_URL)")
    write.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    write.add_argument(
        "--retry-for",
        type=retry_seconds,
        default=WRITE_RETRIES,
        metavar="SECONDS",
        help="how long to retry after 429, 503 or a refused connection (default 15)",
    )
    write.add_argument(
        "--no-retry",
        action="store_true",
        help="one attempt only (by default 429, 503 and refused connections are retried "
        "for up to --retry-for seconds, each retry shown on stderr)",
    )
    write.set_defaults(handler=_cmd_write)

    _add_load_parser(commands)
    _add_operation_parser(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local emulator of the Write API",
        description="Serve a local emulator of the Write API until interrupted.",
    )
    from ..sandbox._cli import add_fault_arguments, add_rule_arguments, add_server_arguments

    add_server_arguments(sandbox)
    add_rule_arguments(sandbox)
    add_fault_arguments(sandbox)
    sandbox.set_defaults(handler=_cmd_sandbox)

    from ..mcp._cli import EPILOG as MCP_EPILOG
    from ..mcp._cli import add_arguments as add_mcp_arguments

    mcp = commands.add_parser(
        "mcp",
        help="serve the Write API as tools for AI agents (Model Context Protocol)",
        description="Serve write_records, validate_write, get_operation, wait_for_operation "
        "and list_operation_logs to an MCP client, over stdio or streamable HTTP. Needs the "
        'mcp extra: pip install "ampwrite[mcp]".',
        epilog=MCP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_mcp_arguments(mcp)
    mcp.set_defaults(handler=_cmd_mcp)
    return parser


LOAD_EPILOG: Final = """The results file (--out) gets one JSON line per input record:
{"index", "status", "record_id", "error", "operation_id"}, status one of written, failed,
unknown (the record may or may not have been written) and accepted (asynchronous mode).
Lines are appended and flushed one by one, so an interrupted or crashed run leaves a file
that --resume can continue from: records written, accepted or failed are not sent again,
unknown ones are listed and sent again only with --retry-unknown. Beside it, RESULTS.inflight
(the results file's name and .inflight) journals each request before it is sent, so after a
kill --resume records those without a line as unknown rather than sending them again; a run
that ends on its own removes it. Without --out, each failed or unknown record is printed
on stderr (index and error).
index counts the non-blank lines of a JSONL file, or the data rows of a CSV file, from 0.
On a terminal a progress line counts the whole input (on --resume, records settled by
earlier runs included) and shows requests, 429/503 answers waited out and any wait under
way; every retry is also printed on stderr (at most one line a second).
With --mode asynchronous --wait, once every record is sent each operation is followed to
its end and a second line records the final outcome (written, failed, or unknown when a
batch partly failed and the API does not say which records); one not followed to its end
stays accepted, saying why, and makes the exit status 4.

exit status: 0 every record written (or accepted), 3 some record failed (and none is
unknown), 4 some record's outcome is unknown, 2 usage error (nothing sent) or the input or
journal failed part way (records without an outcome were not sent), 130 interrupted (run
again with --resume). The status covers every record of the results file."""


def _add_load_parser(commands: Any) -> None:
    load = commands.add_parser(
        "load",
        help="write a CSV or JSONL file of records, with a results file to resume from",
        description="Write every record of FILE (CSV with a header row, or JSON Lines) in "
        "concurrent batches, showing progress on a terminal. The API key and server come "
        "from --api-key/--server-url or AMPERSAND_API_KEY/AMPERSAND_SERVER_URL.",
        epilog=LOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", metavar="FILE", help="a .csv or .jsonl file, or - for JSONL on stdin")
    load.add_argument("--project", required=True, help="project id or name")
    load.add_argument("--integration", required=True, help="integration id")
    load.add_argument("--object", required=True, help="the object to write, e.g. contacts")
    load.add_argument("--group-ref", required=True, help="the installation's group ref")
    load.add_argument("--type", default="create", choices=("create", "update", "delete"))
    load.add_argument("--mode", default="synchronous", choices=("synchronous", "asynchronous"))
    load.add_argument(
        "--batch-size", type=int, default=100, help="records per request, 1 to 100 (default 100)"
    )
    load.add_argument(
        "--concurrency", type=int, default=4, help="requests in flight at once (default 4)"
    )
    load.add_argument("--all-or-none", action="store_true", help="fail a batch if one record fails")
    load.add_argument(
        "--out",
        metavar="RESULTS",
        help="results file, one JSON line per record (without it, each failure is printed)",
    )
    load.add_argument(
        "--resume", action="store_true", help="send only the records --out has no final outcome for"
    )
    load.add_argument(
        "--retry-unknown",
        action="store_true",
        help="send again records whose outcome is unknown (a duplicate becomes possible)",
    )
    load.add_argument(
        "--format", choices=("csv", "jsonl"), help="the input format (default: from the name)"
    )
    load.add_argument(
        "--column-type",
        action="append",
        metavar="NAME=TYPE",
        help="CSV only: convert a column (str, int, float, bool, json); repeatable",
    )
    load.add_argument(
        "--wait",
        action="store_true",
        help="asynchronous mode: follow each operation to its end and record the final outcome",
    )
    load.add_argument(
        "--wait-timeout",
        type=float,
        default=600.0,
        help="seconds, in all, to follow the operations with --wait (default 600)",
    )
    load.add_argument("--api-key", help="API key (default: $AMPERSAND_API_KEY)")
    load.add_argument("--server-url", help="server URL (default: $AMPERSAND_SERVER_URL)")
    load.add_argument(
        "--platform-url", help="Platform API URL, for --wait (default: $AMPERSAND_PLATFORM_URL)"
    )
    load.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    load.add_argument(
        "--retry-for",
        type=retry_seconds,
        default=600.0,
        metavar="SECONDS",
        help="how long one request may be retried after 429, 503 or a refused connection "
        "(default 600)",
    )
    load.set_defaults(handler=_cmd_load)


OPERATION_EPILOG: Final = """get prints the operation, logs its log entries, wait polls until
its status is no longer in_progress (with growing pauses, or every --poll-interval seconds)
and prints it. An asynchronous write answers with the operation id to pass here.

exit status: 0 the call worked (and the operation did not fail), 3 the operation's status
is failure or the API answered with an error (404: no such operation), 4 no usable answer,
or wait gave up after --wait-timeout seconds (the operation was still in progress), 2 usage
error (nothing sent)"""


def _add_operation_parser(commands: Any) -> None:
    operation = commands.add_parser(
        "operation",
        help="follow an asynchronous write: get, wait for, or list the logs of an operation",
        description="Read an operation of the Platform API (where the outcome of an "
        "asynchronous write lives) and print it as JSON. The API key and server come from "
        "--api-key/--platform-url or AMPERSAND_API_KEY/AMPERSAND_PLATFORM_URL.",
        epilog=OPERATION_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    operation.add_argument("action", choices=("get", "wait", "logs"), help="what to do")
    operation.add_argument("operation_id", metavar="ID", help="the operation id")
    operation.add_argument("--project", required=True, help="project id or name")
    operation.add_argument(
        "--wait-timeout",
        type=float,
        default=300.0,
        help="wait: seconds to wait for the operation to end (default 300)",
    )
    operation.add_argument(
        "--poll-interval",
        type=float,
        help="wait: seconds between polls (default: growing from 0.5 s to 10 s)",
    )
    operation.add_argument("--api-key", help="API key (default: $AMPERSAND_API_KEY)")
    operation.add_argument(
        "--platform-url", help="Platform API URL (default: $AMPERSAND_PLATFORM_URL)"
    )
    operation.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    operation.add_argument(
        "--retry-for",
        type=retry_seconds,
        default=WRITE_RETRIES,
        metavar="SECONDS",
        help="how long to retry one request after 429, 503 or no answer (default 15)",
    )
    operation.set_defaults(handler=_cmd_operation)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(ns, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(ns)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
