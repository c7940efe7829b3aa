"""The Write API's requests and responses, and the Platform API's operations, as attrs
classes.

Fields are snake_case here and camelCase on the wire; the mapping lives in `ampwrite._wire`,
not in these classes. Optional fields default to `None` and are left out of the request body.
Records and associations are plain JSON objects (`Mapping[str, Any]`) and travel as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = [
    "AutoBatchPolicy",
    "BatchItem",
    "BatchPolicy",
    "BatchWriteResponse",
    "Header",
    "InputValidationIssue",
    "Message",
    "Operation",
    "OperationLog",
    "OperationLogMessage",
    "OperationMetadata",
    "OperationPage",
    "OperationProgress",
    "OperationRetry",
    "OperationStatus",
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


class Model:
    """What every model shares: a repr, equality and a hash over its fields, written once here
    rather than generated for each class (which would make `import ampwrite` slower)."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        return tuple(field.name for field in type(self).__attrs_attrs__)  # type: ignore[attr-defined]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Model):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())


WriteType = Literal["create", "update", "delete"]
WriteMode = Literal["synchronous", "asynchronous"]
JSONObject = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------
# Requests


@attrs.frozen(kw_only=True, repr=False, eq=False)
class Header(Model):
    """A header passed on to the provider (currently Salesforce only)."""

    key: str
    value: str


@attrs.frozen(kw_only=True, repr=False, eq=False)
class BatchPolicy(Model):
    """`all_or_none=True`: the whole batch fails if any record fails."""

    all_or_none: bool | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class RetryPolicy(Model):
    """How long (1 to 48 hours) an asynchronous write may keep retrying."""

    deadline_hours: int | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class AutoBatchPolicy(Model):
    """Group asynchronous single-record writes into batches on the server."""

    max_delay_minutes: int
    retry_deadline_hours: int | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class BatchItem(Model):
    """One record of a batch, with its (HubSpot) associations."""

    record: JSONObject
    associations: Sequence[JSONObject] | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class WriteRequest(Model):
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


@attrs.frozen(kw_only=True, repr=False, eq=False)
class WriteRecordsRequest(Model):
    """Where to write (the three path parameters) and the request body."""

    project_id_or_name: str
    integration_id: str
    object_name: str
    request_body: WriteRequest


# ---------------------------------------------------------------------------------------------
# Responses


@attrs.frozen(kw_only=True, repr=False, eq=False)
class Message(Model):
    """An error or warning reported by the API."""

    message: str | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class WriteResult(Model):
    """The outcome of one record: `record_id` on a successful create or update."""

    success: bool
    record_id: str | None = None
    data: dict[str, Any] | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class SingleWriteResponse(Model):
    """A single-record write that succeeded; `result` is None for asynchronous writes."""

    operation_id: str
    result: WriteResult | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class BatchWriteResponse(Model):
    """A batch write: counts, per-record results in input order, top-level errors."""

    operation_id: str
    success_count: int
    failure_count: int
    results: tuple[WriteResult, ...] = ()
    errors: tuple[Message, ...] = ()


WriteResponse: TypeAlias = SingleWriteResponse | BatchWriteResponse


@attrs.frozen(kw_only=True, repr=False, eq=False)
class WriteFailure(Model):
    """The body of a 422 answer to a single-record write."""

    operation_id: str
    errors: tuple[Message, ...]
    result: WriteResult | None = None
    warnings: tuple[Message, ...] = ()
    raw_response: str | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class InputValidationIssue(Model):
    """One input the server found invalid (`in_` is `in` on the wire)."""

    type: str | None = None
    title: str | None = None
    detail: str | None = None
    in_: str | None = None
    name: str | None = None
    value: Any = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class Problem(Model):
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


# ---------------------------------------------------------------------------------------------
# Operations (the Platform API): what became of an asynchronous write


class OperationStatus:
    """The statuses the API documents for `Operation.status`.

    Not an enum: the server may add statuses, and `Operation.status` keeps whatever string
    came. `in_progress` is the only one that is not final.
    """

    IN_PROGRESS: Final = "in_progress"
    SUCCESS: Final = "success"
    """Done. For an auto-batched write this may include some failed records (see `result`)."""
    FAILURE: Final = "failure"
    KNOWN: Final = frozenset({IN_PROGRESS, SUCCESS, FAILURE})


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationRetry(Model):
    """How often the operation was attempted (`last_attempt`, `last_notified`: RFC 3339)."""

    attempts: int | None = None
    last_attempt: str | None = None
    last_notified: str | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationProgress(Model):
    """The progress of a read operation."""

    installation_id: str | None = None
    object_name: str | None = None
    operation_id: str | None = None
    records_processed: int | None = None
    records_estimated_total: int | None = None


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationMetadata(Model):
    """Details of an operation. `successful_record_ids` are the provider's ids of the records a
    write created or updated; fields ampwrite does not know are kept in `extras`."""

    objects: tuple[str, ...] = ()
    successful_record_ids: tuple[str, ...] = ()
    retry: OperationRetry | None = None
    progress: OperationProgress | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class Operation(Model):
    """An asynchronous read, write or subscribe action, as `get_operation` reads it.

    `status` is the string the server sent (see `OperationStatus`); `result` a summary such as
    "Batch write completed (3 succeeded, 1 failed)", or None. Times are RFC 3339 strings as
    sent. Top-level fields ampwrite does not know (`resource`, say) are kept in `extras`.

    Only `id` and `status` must be present: the contract also requires the project,
    integration, installation, config and action type, but an answer that lacks one still
    says how the operation ended, so it decodes (the field is None) rather than fail a wait.
    """

    id: str
    status: str
    project_id: str | None = None
    integration_id: str | None = None
    installation_id: str | None = None
    config_id: str | None = None
    action_type: str | None = None
    result: str | None = None
    metadata: OperationMetadata = attrs.field(factory=OperationMetadata)
    create_time: str | None = None
    update_time: str | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)

    @property
    def done(self) -> bool:
        """True once the status is anything but `in_progress` (an unknown status included)."""
        return self.status != OperationStatus.IN_PROGRESS

    @property
    def succeeded(self) -> bool:
        """True for `success`, which for a batch may still mean some records failed."""
        return self.status == OperationStatus.SUCCESS

    @property
    def failed(self) -> bool:
        return self.status == OperationStatus.FAILURE


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationLogMessage(Model):
    """The message of a log entry: `msg`, and `error` when something failed. Fields ampwrite
    does not know are kept in `extras`."""

    msg: str
    error: str | None = None
    operation_id: str | None = None
    details: dict[str, str] | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationLog(Model):
    """One log entry of an operation (`timestamp`: RFC 3339; `severity`: "DEBUG", ...)."""

    timestamp: str
    severity: str
    message: OperationLogMessage


@attrs.frozen(kw_only=True, repr=False, eq=False)
class OperationPage(Model):
    """One page of `list_operations`; `next_page_token` is None on the last page."""

    results: tuple[Operation, ...]
    next_page_token: str | None = None
