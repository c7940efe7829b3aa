"""From a slice of input records to one request, and from its `Result` to per-record
outcomes. Pure functions: no I/O, no waiting.

The accounting rules, in one place:

- a batch answer (a 2xx, or a 422 in the batch shape) decides from the contract's fields
  only: one `results` entry per record, in agreement with `successCount` and
  `failureCount`: each record written (accepted, when asynchronous) or failed, as its result
  says; no results: the counts, when they speak for every record (all succeeded: written;
  none succeeded and all failed, or a 422 to an allOrNone batch: failed); anything else
  cannot say which record was written: every record unknown, its `error` saying so
  (`CANNOT_SAY`). Messages (the sandbox's `batch[3]: ...` too) only explain a status;
- a 2xx to an asynchronous write: accepted, with the operation id; a 2xx that does not fit
  (shape): unknown;
- `RequestValidationError` (nothing was sent): the records its issues name failed, the others
  are sent again;
- a 422 in the single-record shape: failed for one record or an allOrNone batch, else
  unknown (it cannot say which); a 422 in no write answer's shape: failed;
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
REFUSED: Final = "the provider refused the record"
CANNOT_SAY: Final = "the answer does not say which records were written"
"""The start of the `error` of every record of an answer that cannot attribute its
failures: each of them is unknown."""


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
        return (_one(items[0], response.result, REFUSED, target, operation_id, ambiguous_before),)
    return _judge_batch(response, target, items, ambiguous_before, False)


def _judge_batch(
    response: BatchWriteResponse,
    target: Target,
    items: Sequence[Item],
    ambiguous_before: bool,
    refused: bool,
) -> tuple[Outcome, ...]:
    """A batch answer (a 200, or with `refused` the body of a 422), from its contract fields.

    The per-record `results` decide when there is one per record and the counts agree
    with them. Without results, the counts decide when they speak for every record (all
    succeeded, or all failed), and so does a 422 to an allOrNone batch counting none
    written. Any other answer cannot say which record was written: every record is unknown,
    and its `error` says so. Messages, `batch[3]: ...` included, only explain a status.
    """
    operation_id = response.operation_id
    results, total = response.results, len(items)
    succeeded, failed = response.success_count, response.failure_count
    messages = _item_messages(response.errors)
    general = _general(response.errors)
    if results:
        listed = sum(1 for result in results if result.success)
        if len(results) != total:
            why = f"it has {len(results)} results for {total} records"
        elif (listed, total - listed) != (succeeded, failed):
            why = (
                f"its counts, {succeeded} succeeded and {failed} failed, disagree with its"
                f" results, {listed} succeeded and {total - listed} failed"
            )
        else:
            return tuple(
                _one(
                    item,
                    result,
                    _reason(messages.get(position, ""), general),
                    target,
                    operation_id,
                    ambiguous_before,
                )
                for position, (item, result) in enumerate(zip(items, results, strict=True))
            )
    elif succeeded == total and failed == 0 and not refused:
        status: Status = "accepted" if target.asynchronous else "written"
        note = MAYBE_TWICE if ambiguous_before else None
        return tuple(Outcome(item.index, status, None, note, operation_id) for item in items)
    elif succeeded == 0 and (failed == total or (refused and target.all_or_none)):
        return tuple(
            _failed(
                item,
                _reason(messages.get(p, ""), general),
                operation_id,
                ambiguous_before,
            )
            for p, item in enumerate(items)
        )
    else:
        why = f"it counts {succeeded} succeeded and {failed} failed of {total}, without results"
    return _unattributed(items, why, messages, general, operation_id)


def _one(
    item: Item,
    result: WriteResult,
    reason: str,
    target: Target,
    operation_id: str | None,
    ambiguous_before: bool,
) -> Outcome:
    if result.success:
        status: Status = "accepted" if target.asynchronous else "written"
        note = MAYBE_TWICE if ambiguous_before else None
        return Outcome(item.index, status, result.record_id, note, operation_id)
    return _failed(item, reason, operation_id, ambiguous_before)


def _reason(message: str, general: str) -> str:
    """Why a record failed: the message about it, and the answer's other messages."""
    if message:
        return f"{message} ({general})" if general else message
    return general or REFUSED


def _item_messages(errors: Sequence[Any]) -> dict[int, str]:
    """Messages that name a record of the batch (`batch[3]: ...`, the sandbox's wording),
    by position. They explain a record's status, never decide it."""
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


def _general(errors: Sequence[Any]) -> str:
    """The messages of an answer that name no record, as one line."""
    texts = (getattr(message, "message", None) for message in errors)
    return "; ".join(t for t in texts if isinstance(t, str) and t and not _ITEM_MESSAGE.match(t))


def _unattributed(
    items: Sequence[Item],
    why: str,
    messages: dict[int, str],
    general: str,
    operation_id: str | None,
) -> tuple[Outcome, ...]:
    """The outcomes of an answer that cannot say which of `items` were written: unknown,
    saying so and why, with whatever the answer's messages tell about each record."""
    outcomes = []
    for position, item in enumerate(items):
        error = f"{CANNOT_SAY}: {why}"
        if position in messages:
            error += f"; about this record: {messages[position]}"
        if general:
            error += f"; {general}"
        outcomes.append(Outcome(item.index, "unknown", None, _clip(error), operation_id))
    return tuple(outcomes)


def _judge_422(
    error: WriteFailedError, target: Target, items: Sequence[Item], ambiguous_before: bool
) -> Verdict:
    response = error.response
    if isinstance(response, BatchWriteResponse):
        return _judge_batch(response, target, items, ambiguous_before, True)
    reason = "; ".join(m.message for m in error.errors if m.message) or short(error)
    if response is None or target.single or target.all_or_none:
        # the one record failed, or the allOrNone batch; or a refusal in no write answer's
        # shape (a problem, no body), which refused the request as a whole, like a 400
        return tuple(_failed(item, reason, error.operation_id, ambiguous_before) for item in items)
    why = "it is a single record's failure, to a batch"
    return _unattributed(items, why, {}, reason, error.operation_id)


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
