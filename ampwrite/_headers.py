"""Request headers: which a caller may add, in one rule for per-call headers and a caller's
session headers alike, and how theirs merge with ampwrite's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ._validate import show
from .errors import ValidationIssue

__all__ = [
    "API_KEY_HEADER",
    "RESERVED_HEADERS",
    "has_control_characters",
    "header_issues",
    "is_token",
    "merge_headers",
]

API_KEY_HEADER: Final = "X-Api-Key"
RESERVED_HEADERS: Final = frozenset(
    {
        API_KEY_HEADER.lower(),
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "te",
        "trailer",
        "upgrade",
    }
)
"""Set by ampwrite (or by HTTP itself) for every request: a caller cannot replace them."""
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_HEADERS: Final = ("\r", "\n", "\0")


def is_token(text: str) -> bool:
    """True when `text` can be a header name (an RFC 9110 token)."""
    return _TOKEN.fullmatch(text) is not None


def has_control_characters(text: str) -> bool:
    """True when `text` holds CR, LF or NUL, which could split or end an HTTP header."""
    return any(c in text for c in _FORBIDDEN_IN_HEADERS)


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def header_issues(headers: object, path: str = "headers") -> tuple[ValidationIssue, ...]:
    """Why each of `headers` cannot be sent; `path` names where they came from."""
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        return (ValidationIssue(path, f"expected a mapping, got {type(headers).__name__}"),)
    try:
        items = list(headers.items())
    except Exception as exc:  # the caller's own mapping failed while being read
        return (ValidationIssue(path, f"could not be read: {show(exc, 200)}"),)
    issues = []
    for name, value in items:
        where = f"{path}[{show(name)}]"
        if not isinstance(name, str) or not isinstance(value, str):
            issues.append(ValidationIssue(where, "header names and values must be strings"))
        elif not is_token(name):
            issues.append(ValidationIssue(where, "is not a valid header name (RFC 9110 token)"))
        elif has_control_characters(value):
            issues.append(ValidationIssue(where, "value must not contain CR, LF or NUL characters"))
        elif not _is_latin1(value):
            issues.append(ValidationIssue(where, "value must be Latin-1 text"))
        elif name.lower() in RESERVED_HEADERS:
            issues.append(ValidationIssue(where, "is set by ampwrite and cannot be replaced"))
    return tuple(issues)


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`base` with `extra` on top: a name in `extra` replaces that name in `base`, whatever
    the case of either."""
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged
