"""The Write API's requests and responses, and the Platform API's operations, as attrs
classes.

Fields are snake_case here and camelCase on the wire; the mapping lives in `ampwrite._wire`,
not in these classes. Optional fields default to `None` and are left out of the request body.
Records and associations are plain JSON objects (`Mapping[str, Any]`) and travel as given.

`from ampwrite import Core, write_records` does not load this module (attrs builds each class
as it loads): it loads when first used, by `ampwrite.models`, an import from it, or the first
answer decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from ._model_base import Model

if TYPE_CHECKING:
    from ._operation_models import (
        Operation,
        OperationLog,
        OperationLogMessage,
        OperationMetadata,
        OperationPage,
        OperationProgress,
        OperationRetry,
        OperationStatus,
    )

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


class _WriteAnswer(Model):
    """What both answers of a write share: the narrowing to the shape the caller expects.

    `write_records` returns `SingleWriteResponse | BatchWriteResponse` (the model follows the
    body's shape), so a type checker asks which one before `.result` or `.success_count`; a
    caller who knows what they sent says so with `as_single()` or `as_batch()`."""

    __slots__ = ()

    def as_single(self) -> SingleWriteResponse:
        """This answer as the `SingleWriteResponse` of a single-record write; raises
        `ampwrite.errors.ResponseShapeError` if it is a batch's answer."""
        if not isinstance(self, SingleWriteResponse):
            raise _shape_error(
                f"expected the answer to a single-record write, got a {type(self).__name__} "
                "(the request held a batch); use as_batch()"
            )
        return self

    def as_batch(self) -> BatchWriteResponse:
        """This answer as the `BatchWriteResponse` of a batch write; raises
        `ampwrite.errors.ResponseShapeError` if it is a single-record write's answer."""
        if not isinstance(self, BatchWriteResponse):
            raise _shape_error(
                f"expected the answer to a batch write, got a {type(self).__name__} "
                "(the request held one record); use as_single()"
            )
        return self


def _shape_error(message: str) -> Exception:
    from .errors import ResponseShapeError  # errors imports the models: not at import time

    return ResponseShapeError(message)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class SingleWriteResponse(_WriteAnswer):
    """A single-record write that succeeded; `result` is None for asynchronous writes.

    `record_id` is the id of the record written, for when None is not an answer you expect.
    """

    operation_id: str
    result: WriteResult | None = None

    @property
    def record_id(self) -> str:
        """The id of the record a synchronous create or update wrote (`result.record_id`).
        Raises `ampwrite.errors.ResponseShapeError` when the answer holds none: an
        asynchronous write (only `operation_id`: follow it with `wait_for_operation`), or a
        result without an id (a delete, say)."""
        if self.result is None:
            raise _shape_error(
                f"no record id: the write was asynchronous and answered only operation "
                f"{self.operation_id!r}; follow it with wait_for_operation(core, project, "
                "response.operation_id)"
            )
        if self.result.record_id is None:
            raise _shape_error(
                f"no record id in the result of operation {self.operation_id!r} "
                f"(success={self.result.success}); the API gives one for a successful "
                "create or update only"
            )
        return self.result.record_id


@attrs.frozen(kw_only=True, repr=False, eq=False)
class BatchWriteResponse(_WriteAnswer):
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


_OPERATION_MODELS = frozenset(
    {
        "Operation",
        "OperationLog",
        "OperationLogMessage",
        "OperationMetadata",
        "OperationPage",
        "OperationProgress",
        "OperationRetry",
        "OperationStatus",
    }
)


def __getattr__(name: str) -> Any:
    """The operation models load when first used (they are in `ampwrite._operation_models`),
    so that `from ampwrite import Core, write_records` does not pay for them."""
    if name in _OPERATION_MODELS:
        from . import _operation_models

        value = getattr(_operation_models, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ampwrite.models' has no attribute {name!r}")
