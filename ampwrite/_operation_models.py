"""The Platform API's operations as attrs classes: what became of an asynchronous write.

Public as `ampwrite.models.Operation` and its companions; kept in a module of their own so
that they load only when operations are read.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from ._model_base import Model

__all__ = [
    "Operation",
    "OperationLog",
    "OperationLogMessage",
    "OperationMetadata",
    "OperationPage",
    "OperationProgress",
    "OperationRetry",
    "OperationStatus",
]


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
        """True for `failure`."""
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


@attrs.frozen(kw_only=True, repr=False, eq=False)
class _Pagination(Model):
    """The `pagination` of a page of results on the wire: `done` on the last page (read into
    `OperationPage.next_page_token`)."""

    done: bool
    next_page_token: str | None = None
