"""Errors in the command's terms: flags rather than keyword arguments, and a hint on what to
check for the failures a user can fix (a server URL without `/v1`, a rejected key, a server
that does not answer). Nothing here ever shows the API key."""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from ..errors import AmpWriteError, APIError, TransportError

__all__ = ["hints", "in_cli_terms", "no_answer", "outcome_hints"]

# Core's keyword arguments as the command spells them; `api_key=...` first (it is longest)
_FLAGS: Final = (
    (
        re.compile(r"pass api_key=\.\.\. or set the (\w+) environment variable"),
        r"pass --api-key or set \1",
    ),
    (re.compile(r"pass the API key as api_key\b"), "pass the API key with --api-key"),
    (re.compile(r"\bserver_url\b"), "--server-url"),
    (re.compile(r"\bplatform_url\b"), "--platform-url"),
    (re.compile(r"\bapi_key\b"), "--api-key"),
    (re.compile(r"^timeout\b"), "--timeout"),
)


# `ampwrite.bulk`'s load names its arguments in backquotes; these are flags of `load`
_LOAD_ARGUMENTS: Final = {
    "batch_size": "--batch-size",
    "column_types": "--column-type",
    "concurrency": "--concurrency",
    "mode": "--mode",
    "out": "--out",
    "resume": "--resume",
    "retry_unknown": "--retry-unknown",
    "wait": "--wait",
    "wait_timeout": "--wait-timeout",
}
_QUOTED: Final = re.compile(r"`(\w+)`")


def in_cli_terms(message: str) -> str:
    """`message` of the library with its keyword arguments named as the command's flags."""
    for pattern, flag in _FLAGS:
        message = pattern.sub(flag, message)
    return _QUOTED.sub(lambda m: _LOAD_ARGUMENTS.get(m.group(1), m.group(0)), message)


KEY_HINT: Final = "hint: the API key was refused: check --api-key / AMPERSAND_API_KEY"


def _status_hints(status: int, *, url: str, url_flag: str) -> list[str]:
    if status == 404 and "/v1" not in urllib.parse.urlsplit(url).path:
        return [f"hint: the server URL usually ends in /v1 (got {url}); check {url_flag}"]
    if status in (401, 403):
        return [KEY_HINT]
    return []


def hints(error: AmpWriteError, *, url: str, url_flag: str, url_env: str) -> list[str]:
    """What to check after `error`, one `hint: ...` line each (none when nothing obvious).
    `url` is the server the request went to, `url_flag` and `url_env` where it came from."""
    if isinstance(error, APIError):
        return _status_hints(error.status, url=url, url_flag=url_flag)
    if isinstance(error, TransportError) and not error.maybe_sent:
        return [f"hint: is the server at {url} running? check {url_flag} / {url_env}"]
    return []


_OUTCOME_STATUS: Final = re.compile(r"^(?:\w*Error): (\d{3}) ")


def outcome_hints(error: str | None, *, url: str) -> list[str]:
    """`hints` for a record of a load, whose outcome keeps the error as a line of text
    (`AuthenticationError: 401 Unauthorized: ...`, as `ampwrite.bulk` writes it)."""
    found = _OUTCOME_STATUS.match(error or "")
    if found is None:
        return []
    return _status_hints(int(found.group(1)), url=url, url_flag="--server-url")


def no_answer(error: TransportError, *, url: str, seconds: float) -> str:
    """The final line for a call that got no usable answer: attempts, time, why."""
    attempts = max(1, error.attempts)
    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
    return f"no answer from {url} after {tries} in {seconds:.1f} s: {error}"
