"""From a slice of input records to one request, and from its `Result` to per-record
outcomes. Pure functions: no I/O, no waiting.

The accounting rules, in one place:

- a 2xx with one result per record: each record written (accepted, when asynchronous) or
  failed, as its result says; a 2xx to an asynchronous write: accepted, with the operation
  id; a 2xx that does not fit (shape, number of results): unknown;
- `RequestValidationError` (nothing was sent): the records its issues name failed, the others
  are sent again;
- 422: failed, per record when the answer says which (all of them with allOrNone);
- 413 (the server refused the request unread, for its size): a batch is split in two, each
  half sent as a request of its own, until the record too large is alone: it fails, the
  others are written as usual (with allOrNone the batch is not split: it fails whole);
- 429, 503: sent again after the shared throttle's wait; a connection never made: sent again
  after a backoff;
- any other 5xx, a reset or timeout after sending: unknown, or sent again with
  `retry_ambiguous`; a malformed 2xx or an answer too large: unknown;
- other 4xx, 3xx, a TLS failure, a configuration error: failed.

A record whose earlier attempt ended ambiguously is never reported "failed" afterwards, in
a request split from that one too: the earlier attempt may have written it, so it is
"unknown".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import attrs

from ..errors import (
    AmpWriteError,
    APIError,
    RequestValidationError,
    WriteFailedError,
)
from ..models import BatchWriteResponse, SingleWriteResponse, WriteResponse, WriteResult
from ..result import Ok, Result
from ..retries import Disposition, disposition, server_wait
from ._outcome import Outcome, Status

__all__ = [
    "Item",
    "Regroup",
    "Resend",
    "Target",
    "Verdict",
    "after_ambiguous",
    "build_request",
    "judge",
    "short",
]

MAX_ERROR: Final = 500
MAYBE_TWICE: Final = "an earlier attempt may have written it too: check for a duplicate"
"""The `error` of a record written (or accepted) after an ambiguous attempt."""
_CONTENT_TOO_LARGE: Final = 413  # "Content Too Large" (RFC 9110), once "Payload Too Large"
_ITEM_PATH: Final = re.compile(r"^requestBody\.batch\[(\d+)\]")
_ITEM_MESSAGE: Final = re.compile(r"^batch\[(\d+)\]:\s*")


@attrs.frozen
class Item:
    """One input record on its way: its index, the record and its associations."""

    index: int
    record: object
    associations: object = None


@attrs.frozen(kw_only=True)
class Target:
    """Everything about the requests of a run but the records."""

    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    type: str
    mode: str
    all_or_none: bool

    @property
    def single(self) -> bool:
        """Whether each request carries one `record` (delete) rather than a `batch`."""
        return self.type == "delete"

    @property
    def asynchronous(self) -> bool:
        return self.mode == "asynchronous"


def build_request(target: Target, items: Sequence[Item]) -> dict[str, Any]:
    """The request, in the API's JSON shape, that writes `items`."""
    body: dict[str, Any] = {"groupRef": target.group_ref, "type": target.type}
    if target.mode != "synchronous":
        body["mode"] = target.mode
    if target.single:
        (item,) = items
        body["record"] = item.record
        if item.associations is not None:
            body["associations"] = item.associations
    else:
        batch = []
        for item in items:
            entry: dict[str, Any] = {"record": item.record}
            if item.associations is not None:
                entry["associations"] = item.associations
            batch.append(entry)
        body["batch"] = batch
        if target.all_or_none:
            body["batchPolicy"] = {"allOrNone": True}
    return {
        "projectIdOrName": target.project_id_or_name,
        "integrationId": target.integration_id,
        "objectName": target.object_name,
        "requestBody": body,
    }


# -- verdicts -------------------------------------------------------------------------------


@attrs.frozen
class Resend:
    """Send the same request again. `throttled`: 429/503 (with the server's `wait`, if any);
    `unreachable`: no connection was made; otherwise the outcome was ambiguous."""

    error: str
    throttled: bool = False
    unreachable: bool = False
    wait: float | None = None

    @property
    def ambiguous(self) -> bool:
        return not (self.throttled or self.unreachable)


@attrs.frozen
class Regroup:
    """Nothing was written: `failed` are settled; send each group of `groups` as a request
    of its own."""

    failed: tuple[Outcome, ...]
    groups: tuple[tuple[Item, ...], ...]


Verdict: TypeAlias = "tuple[Outcome, ...] | Resend | Regroup"


def short(error: BaseException) -> str:
    """An error as one short line: its class and its first line of text."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 3] + "..."


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _settle(
    items: Sequence[Item],
    status: Status,
    error: str | None,
    operation_id: str | None = None,
    *,
    ambiguous_before: bool = False,
) -> tuple[Outcome, ...]:
    if status == "failed" and ambiguous_before:
        status, error = "unknown", after_ambiguous(error)
    return tuple(Outcome(item.index, status, None, error, operation_id) for item in items)


def after_ambiguous(error: str | None) -> str:
    """The `error` of a record that would have failed, after an ambiguous attempt."""
    return _clip(f"an earlier attempt may have written it; then: {error or 'failed'}")


def _halves(items: Sequence[Item]) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
    """`items` (two or more) in two groups, to find which of them a refusal is about."""
    middle = len(items) // 2
    return tuple(items[:middle]), tuple(items[middle:])


def judge(
    result: Result[WriteResponse, AmpWriteError],
    target: Target,
    items: Sequence[Item],
    *,
    ambiguous_before: bool,
    retry_ambiguous: bool,
) -> Verdict:
    """What `result`, the answer to `build_request(target, items)`, means for each item."""
    if isinstance(result, Ok):
        return _judge_answer(result.value, target, items, ambiguous_before)
    error = result.error
    if isinstance(error, RequestValidationError):
        return _regroup(error, target, items)
    if isinstance(error, WriteFailedError):
        return _judge_422(error, target, items, ambiguous_before)
    too_large = isinstance(error, APIError) and error.status == _CONTENT_TOO_LARGE
    if too_large and len(items) > 1 and not target.all_or_none:  # refused unread: bisect
        return Regroup((), _halves(items))
    kind = disposition(error)  # what is safe to resend: decided once, in ampwrite.retries
    if kind is Disposition.REFUSED:
        return Resend(short(error), throttled=True, wait=server_wait(error))
    if kind is Disposition.NOT_SENT:
        return Resend(short(error), unreachable=True)
    if kind is Disposition.AMBIGUOUS:
        if retry_ambiguous:
            return Resend(short(error))
        return _settle(items, "unknown", short(error))
    if kind is Disposition.REJECTED:
        return _settle(items, "failed", short(error), ambiguous_before=ambiguous_before)
    return _settle(items, "unknown", short(error))  # it may have been processed


def _judge_answer(
    response: WriteResponse, target: Target, items: Sequence[Item], ambiguous_before: bool
) -> Verdict:
    operation_id = response.operation_id
    if isinstance(response, SingleWriteResponse):
        if target.asynchronous:
            return _settle(items, "accepted", None, operation_id)
        if not target.single or response.result is None:
            what = "a batch" if not target.single else "a synchronous write"
            return _settle(
                items, "unknown", f"the answer to {what} did not have its shape", operation_id
            )
        return (_one(items[0], response.result, "", target, operation_id, ambiguous_before),)
    if len(response.results) != len(items):
        error = f"the answer has {len(response.results)} results for {len(items)} records"
        return _settle(items, "unknown", error, operation_id)
    messages = _item_messages(response.errors)
    return tuple(
        _one(item, result, messages.get(position, ""), target, operation_id, ambiguous_before)
        for position, (item, result) in enumerate(zip(items, response.results, strict=True))
    )


def _one(
    item: Item,
    result: WriteResult,
    message: str,
    target: Target,
    operation_id: str | None,
    ambiguous_before: bool,
) -> Outcome:
    if result.success:
        status: Status = "accepted" if target.asynchronous else "written"
        note = MAYBE_TWICE if ambiguous_before else None
        return Outcome(item.index, status, result.record_id, note, operation_id)
    return _failed(
        item, message or "the provider refused the record", operation_id, ambiguous_before
    )


def _item_messages(errors: Sequence[Any]) -> dict[int, str]:
    """Per-record messages of a batch answer (`batch[3]: ...`), by position in the batch."""
    found: dict[int, str] = {}
    for message in errors:
        text = getattr(message, "message", None)
        if not isinstance(text, str):
            continue
        match = _ITEM_MESSAGE.match(text)
        if match:
            position = int(match.group(1))
            rest = text[match.end() :]
            found[position] = f"{found[position]}; {rest}" if position in found else rest
    return found


def _judge_422(
    error: WriteFailedError, target: Target, items: Sequence[Item], ambiguous_before: bool
) -> Verdict:
    response = error.response
    operation_id = error.operation_id
    if isinstance(response, BatchWriteResponse):
        if not target.all_or_none and len(response.results) == len(items):
            return _judge_answer(response, target, items, ambiguous_before)
        if not target.all_or_none and (response.results or response.success_count > 0):
            # some records may have been written, and the results cannot say which
            reason = (
                f"the answer has {len(response.results)} results for {len(items)} records"
                f" and {response.success_count} written: {short(error)}"
            )
            return _settle(items, "unknown", _clip(reason), operation_id)
        # allOrNone (or an answer without usable results): nothing of the batch was written
        messages = _item_messages(response.errors)
        general = "; ".join(
            m.message for m in response.errors if m.message and not _ITEM_MESSAGE.match(m.message)
        )
        general = general or short(error)
        return tuple(
            _failed(
                item,
                f"{messages[p]} ({general})" if p in messages else general,
                operation_id,
                ambiguous_before,
            )
            for p, item in enumerate(items)
        )
    messages_text = "; ".join(m.message for m in error.errors if m.message)
    reason = messages_text or short(error)
    return tuple(_failed(item, reason, operation_id, ambiguous_before) for item in items)


def _failed(item: Item, error: str, operation_id: str | None, ambiguous_before: bool) -> Outcome:
    if ambiguous_before:
        return Outcome(item.index, "unknown", None, after_ambiguous(error), operation_id)
    return Outcome(item.index, "failed", None, _clip(error), operation_id)


def _regroup(error: RequestValidationError, target: Target, items: Sequence[Item]) -> Verdict:
    """Map the issues back to records; records named fail, the others go again.

    Issues that name no record (a string that cannot be encoded, say) split the group in
    two until they do: a record alone fails with every issue of its request.
    """
    by_position: dict[int, list[str]] = {}
    unplaced: list[str] = []
    for issue in error.issues:
        match = None if target.single else _ITEM_PATH.match(issue.path)
        if match is not None and int(match.group(1)) < len(items):
            where = issue.path[match.end() :].lstrip(".") or "item"
            by_position.setdefault(int(match.group(1)), []).append(f"{where}: {issue.message}")
        elif target.single and issue.path.startswith("requestBody."):
            where = issue.path.removeprefix("requestBody.")
            by_position.setdefault(0, []).append(f"{where}: {issue.message}")
        else:
            unplaced.append(str(issue) if issue.path else issue.message)
    if target.all_or_none and (unplaced or by_position) and len(items) > 1:
        return Regroup(_all_or_none_refused(items, by_position, unplaced), ())
    if unplaced and len(items) == 1:
        by_position.setdefault(0, []).extend(unplaced)
        unplaced = []
    failed = tuple(
        Outcome(items[p].index, "failed", None, _clip("invalid record: " + "; ".join(found)))
        for p, found in sorted(by_position.items())
    )
    rest = tuple(item for p, item in enumerate(items) if p not in by_position)
    if not rest:
        return Regroup(failed, ())
    if unplaced and not by_position:
        return Regroup(failed, _halves(rest))
    return Regroup(failed, (rest,))


def _all_or_none_refused(
    items: Sequence[Item], by_position: dict[int, list[str]], unplaced: list[str]
) -> tuple[Outcome, ...]:
    """With allOrNone, one invalid record fails its whole batch, and nothing is sent."""
    invalid = ", ".join(str(items[p].index) for p in sorted(by_position)) or "some record"
    reason = "; ".join(unplaced)
    outcomes = []
    for position, item in enumerate(items):
        if position in by_position:
            error = "invalid record: " + "; ".join(by_position[position])
        else:
            error = f"not sent: allOrNone is set and its batch holds an invalid record ({invalid})"
            if reason:
                error += f" ({reason})"
        outcomes.append(Outcome(item.index, "failed", None, _clip(error)))
    return tuple(outcomes)
