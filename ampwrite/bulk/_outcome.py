"""What `write_many` reports: one `Outcome` per input record, and `Progress` snapshots."""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = ["FINAL_STATUSES", "STATUSES", "Outcome", "Progress", "Status"]

Status: TypeAlias = Literal["written", "failed", "unknown", "accepted"]

STATUSES: Final[tuple[Status, ...]] = ("written", "failed", "unknown", "accepted")
FINAL_STATUSES: Final = frozenset({"written", "failed", "accepted"})
"""Outcomes that need no further action: writing the record again could only duplicate it
(written, accepted) or fail again (failed)."""


@attrs.frozen
class Outcome:
    """How one input record fared.

    - `index`: its position in the input (0 for the first record);
    - `status`: `"written"` (stored once; `record_id` when the API gave one), `"accepted"`
      (asynchronous mode: queued by the API as `operation_id`), `"failed"` (nothing was
      written; `error` says why) or `"unknown"` (the request may or may not have written it:
      check before sending it again);
    - `error`: a short, human-readable reason for `"failed"` and `"unknown"`, else None;
    - `operation_id`: the API's operation that carried the record, when known;
    - `key`: the record's own key, when the write was given one (`write_partition(...,
      key=...)`): a `str` or an `int` that joins the outcome back to its input row.
    """

    index: int
    status: Status
    record_id: str | None = None
    error: str | None = None
    operation_id: str | None = None
    key: str | int | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON-ready dict (the line format of `ampwrite load --out`, and
        of a ledger with `"key"`, which is left out when it is None)."""
        data: dict[str, Any] = {
            "index": self.index,
            "status": self.status,
            "record_id": self.record_id,
            "error": self.error,
            "operation_id": self.operation_id,
        }
        if self.key is not None:
            data["key"] = self.key
        return data


@attrs.frozen(kw_only=True)
class Progress:
    """A snapshot of a `write_many` run, passed to `on_progress` after each finished request.

    `done` counts the outcomes yielded so far; `total` is `len(records)` when the input has a
    length, else None. `requests` counts HTTP requests sent, `throttled` the 429 and 503
    answers among them; `elapsed` is in seconds since the first record was read.
    """

    done: int
    total: int | None
    written: int
    failed: int
    unknown: int
    accepted: int
    requests: int
    throttled: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Outcomes per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0
