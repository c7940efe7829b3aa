"""From an HTTP answer to a `Result`: the decoding table, in one place.

| answer                          | result                                        |
| ------------------------------- | --------------------------------------------- |
| 2xx that fits the contract      | Ok(SingleWriteResponse | BatchWriteResponse)  |
| 2xx that does not fit           | Err(ResponseValidationError)                  |
| 400                             | Err(BadRequestError)                          |
| 401, 403                        | Err(AuthenticationError)                      |
| 422                             | Err(WriteFailedError)                         |
| 429                             | Err(RateLimitError) with `retry_after`        |
| 5xx                             | Err(ServerError)                              |
| anything else (3xx, 404, ...)   | Err(APIError)                                 |

Problem details (problem+json, or any JSON object that is not a write answer) are parsed into
`.problem` on every `APIError`.

`redact` comes first: whatever the server echoes of the API key (in the reason phrase, a header
name or value, the body, or an error message made from its bytes) is replaced before anything
is decoded, so no value, error or log line downstream can hold it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from requests.structures import CaseInsensitiveDict

from ._transport import Answer
from ._wire import decode_problem, decode_write_failure
from .errors import (
    AmpWriteError,
    APIError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    TransportError,
    WriteFailedError,
)
from .result import Err, Ok, Result

if TYPE_CHECKING:
    from .models import BatchWriteResponse, Problem, WriteFailure

__all__ = ["decode_answer", "redact"]

T = TypeVar("T")

MAX_BODY_TEXT: Final = 16 * 1024
"""Characters of an error body kept on the error (the rest is cut, and says so)."""
REDACTED: Final = "***"


def _body_text(body: bytes) -> str:
    text = body[:MAX_BODY_TEXT].decode("utf-8", errors="replace")
    if len(body) > MAX_BODY_TEXT:
        text += f"... [{len(body) - MAX_BODY_TEXT} more bytes]"
    return text


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _summary(
    answer: Answer,
    problem: Problem | None,
    failure: WriteFailure | BatchWriteResponse | None,
    text: str,
) -> str:
    head = f"{answer.status} {answer.reason}".strip()
    if problem is not None and (problem.title or problem.detail):
        said = {answer.reason.strip().lower()}  # a title that repeats the reason is said once
        parts = []
        for part in (problem.title, problem.detail):
            if part and part.strip().lower() not in said:
                parts.append(part)
                said.add(part.strip().lower())
        return f"{head}: {': '.join(parts)}" if parts else head
    if failure is not None:
        messages = [m.message for m in failure.errors if m.message]
        if messages:
            return f"{head}: {'; '.join(messages[:3])}"
    if 300 <= answer.status < 400:
        return f"{head}: redirect to {answer.headers.get('Location', '(no Location)')} not followed"
    first_line = text.strip().splitlines()[0][:300] if text.strip() else ""
    return f"{head}: {first_line}" if first_line else head


def redact(outcome: Answer | TransportError, secret: str) -> Answer | TransportError:
    """`outcome` with every copy of `secret` replaced, whatever its length (`check_api_key`
    refuses keys too short to be secrets: every key ampwrite sends is redacted)."""
    if not secret:  # ampwrite never sends an empty key; nothing is hidden in every gap
        return outcome
    if isinstance(outcome, TransportError):
        if secret in outcome.message:
            outcome.message = outcome.message.replace(secret, REDACTED)
            outcome.args = (outcome.message,)
        return outcome
    answer = outcome
    secret_bytes = secret.encode("latin-1")
    if secret_bytes in answer.body:
        answer = answer._replace(body=answer.body.replace(secret_bytes, REDACTED.encode()))
    if b"\\u" in answer.body or json.detect_encoding(answer.body) != "utf-8":
        answer = answer._replace(body=_redact_decoded(answer.body, secret))
    if secret in answer.reason:
        answer = answer._replace(reason=answer.reason.replace(secret, REDACTED))
    if any(secret in name or secret in value for name, value in answer.headers.items()):
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for name, value in answer.headers.items():
            headers[name.replace(secret, REDACTED)] = value.replace(secret, REDACTED)
        answer = answer._replace(headers=headers)
    return answer


def _redact_decoded(body: bytes, secret: str) -> bytes:
    """A body in which the key may hide from a byte search (JSON's `\\u0073` escapes, UTF-16
    or UTF-32 JSON): what its decoding reads, with the key replaced, as UTF-8. A body that is
    not JSON is left as it is, once decoded text holds no key either."""
    try:
        text = body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        return body
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        if secret not in text:
            return body
        return text.replace(secret, REDACTED).encode("utf-8", "replace")
    scrubbed = _scrub(payload, secret)
    if scrubbed is payload and json.detect_encoding(body) == "utf-8":
        return body  # no escaped key: the body stays byte for byte
    return json.dumps(scrubbed, ensure_ascii=False).encode("utf-8", "replace")


def _scrub(value: Any, secret: str) -> Any:
    """`value` (decoded JSON) with `secret` replaced in every string and key; `value` itself
    when none holds it. Walks without recursion: the JSON may nest deeply."""
    found = False
    stack = [value]
    while stack and not found:
        item = stack.pop()
        if isinstance(item, str):
            found = secret in item
        elif isinstance(item, dict):
            found = any(secret in key for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if not found:
        return value
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]  # as it stands inside a JSON string
    try:
        return json.loads(json.dumps(value, ensure_ascii=False).replace(escaped, REDACTED))
    except (ValueError, RecursionError):
        return REDACTED  # too deep to rewrite: nothing of it is kept


def decode_answer(
    answer: Answer, *, attempts: int, decode: Callable[[Any], T]
) -> Result[T, AmpWriteError]:
    """Map one (redacted) answer to a value or an error, per the table above; `decode` makes
    the value of a 2xx from its JSON, raising when it does not fit."""
    status, headers = answer.status, answer.headers
    if status < 200:
        return Err(
            TransportError(
                f"the server answered {status} {answer.reason} and no final answer followed",
                maybe_sent=True,
                attempts=attempts,
            )
        )
    if 200 <= status < 300:
        try:
            return Ok(decode(json.loads(answer.body)))
        except Exception as exc:  # anything that does not fit is the server's problem
            reason = f"{type(exc).__name__}: {exc}"
            return Err(
                ResponseValidationError(
                    f"the {status} answer does not fit the contract ({reason[:300]})",
                    status=status,
                    headers=headers,
                    body=_body_text(answer.body),
                    attempts=attempts,
                )
            )
    media = _media_type(headers)
    payload = _json(answer.body) if "json" in media else None
    text = _body_text(answer.body)
    failure: WriteFailure | BatchWriteResponse | None = None
    if status == 422 and media != "application/problem+json":
        try:
            failure = decode_write_failure(payload)
        except Exception:
            failure = None
    problem = decode_problem(payload) if failure is None else None
    message = _summary(answer, problem, failure, text)
    if status == 422:
        return Err(
            WriteFailedError(
                message,
                response=failure,
                status=status,
                headers=headers,
                body=text,
                problem=problem,
                attempts=attempts,
            )
        )
    if status == 429:
        from .retries import parse_retry_after

        retry_after = parse_retry_after(headers, problem.retry_after if problem else None)
        return Err(
            RateLimitError(
                message,
                retry_after=retry_after,
                status=status,
                headers=headers,
                body=text,
                problem=problem,
                attempts=attempts,
            )
        )
    cls: type[APIError] = APIError
    if status == 400:
        cls = BadRequestError
    elif status in (401, 403):
        cls = AuthenticationError
    elif 500 <= status < 600:
        cls = ServerError
    return Err(
        cls(message, status=status, headers=headers, body=text, problem=problem, attempts=attempts)
    )
