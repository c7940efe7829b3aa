"""The Write API's requests and responses as attrs classes.

Fields are snake_case here and camelCase on the wire; the mapping lives in `ampwrite._wire`,
not in these classes. Optional fields default to `None` and are left out of the request body.
Records and associations are plain JSON objects (`Mapping[str, Any]`) and travel as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "AutoBatchPolicy",
    "BatchItem",
    "BatchPolicy",
    "BatchWriteResponse",
    "Header",
    "InputValidationIssue",
    "Message",
    "Problem",
    "RetryPolicy",
    "SingleWriteResponse",
    "WriteFailure",
    "WriteMode",
    "WriteRecordsRequest",
    "WriteRequest",
    "WriteResponse",
    "WriteResult",
    "WriteType",
]

WriteType = Literal["create", "update", "delete"]
WriteMode = Literal["synchronous", "asynchronous"]
JSONObject = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------
# Requests


@attrs.frozen(kw_only=True)
class Header:
    """A header passed on to the provider (currently Salesforce only)."""

    key: str
    value: str


@attrs.frozen(kw_only=True)
class BatchPolicy:
    """`all_or_none=True`: the whole batch fails if any record fails."""

    all_or_none: bool | None = None


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How long (1 to 48 hours) an asynchronous write may keep retrying."""

    deadline_hours: int | None = None


@attrs.frozen(kw_only=True)
class AutoBatchPolicy:
    """Group asynchronous single-record writes into batches on the server."""

    max_delay_minutes: int
    retry_deadline_hours: int | None = None


@attrs.frozen(kw_only=True)
class BatchItem:
    """One record of a batch, with its (HubSpot) associations."""

    record: JSONObject
    associations: Sequence[JSONObject] | None = None


@attrs.frozen(kw_only=True)
class WriteRequest:
    """The request body: what to write and how. Give `record` or `batch`, not both."""

    group_ref: str
    type: WriteType
    mode: WriteMode | None = None
    record: JSONObject | None = None
    batch: Sequence[BatchItem] | None = None
    batch_policy: BatchPolicy | None = None
    retry_policy: RetryPolicy | None = None
    auto_batch_policy: AutoBatchPolicy | None = None
    associations: Sequence[JSONObject] | None = None
    headers: Sequence[Header] | None = None


@attrs.frozen(kw_only=True)
class WriteRecordsRequest:
    """Where to write (the three path parameters) and the request body."""

    project_id_or_name: str
    integration_id: str
    object_name: str
    request_body: WriteRequest


# ---------------------------------------------------------------------------------------------
# Responses


@attrs.frozen(kw_only=True)
class Message:
    """An error or warning reported by the API."""

    message: str | None = None


@attrs.frozen(kw_only=True)
class WriteResult:
    """The outcome of one record: `record_id` on a successful create or update."""

    success: bool
    record_id: str | None = None
    data: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class SingleWriteResponse:
    """A single-record write that succeeded; `result` is None for asynchronous writes."""

    operation_id: str
    result: WriteResult | None = None


@attrs.frozen(kw_only=True)
class BatchWriteResponse:
    """A batch write: counts, per-record results in input order, top-level errors."""

    operation_id: str
    success_count: int
    failure_count: int
    results: tuple[WriteResult, ...] = ()
    errors: tuple[Message, ...] = ()


WriteResponse: TypeAlias = SingleWriteResponse | BatchWriteResponse


@attrs.frozen(kw_only=True)
class WriteFailure:
    """The body of a 422 answer to a single-record write."""

    operation_id: str
    errors: tuple[Message, ...]
    result: WriteResult | None = None
    warnings: tuple[Message, ...] = ()
    raw_response: str | None = None


@attrs.frozen(kw_only=True)
class InputValidationIssue:
    """One input the server found invalid (`in_` is `in` on the wire)."""

    type: str | None = None
    title: str | None = None
    detail: str | None = None
    in_: str | None = None
    name: str | None = None
    value: Any = None


@attrs.frozen(kw_only=True)
class Problem:
    """Problem details (RFC 9457) with the API's extra fields; unknown fields land in `extras`."""

    type: str | None = None
    href: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    instance: str | None = None
    subsystem: str | None = None
    time: str | None = None
    request_id: str | None = None
    causes: tuple[str, ...] = ()
    remedy: str | None = None
    support_email: str | None = None
    support_phone: str | None = None
    support_url: str | None = None
    retryable: bool | None = None
    retry_after: str | None = None
    context: dict[str, Any] | None = None
    issues: tuple[InputValidationIssue, ...] = ()
    extras: dict[str, Any] = attrs.field(factory=dict)
