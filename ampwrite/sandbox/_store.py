"""The sandbox's in-memory record store and the write semantics it applies.

Records live in buckets keyed by (project, integration, groupRef, objectName). A stored
record is never mutated in place: an update stores a new dict, so answers that refer to a
stored record stay valid. Everything here runs under one lock, which makes a batch atomic
with respect to other writers.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ObjectRules", "RecordFailure", "RecordStore", "WriteOutcome", "WriteTarget"]

Record = dict[str, Any]
BucketKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class ObjectRules:
    """Per-object behaviour a real provider would impose."""

    required_fields: tuple[str, ...] = ()
    unique_fields: tuple[str, ...] = ()
    delete_enabled: bool = True


@dataclass(frozen=True)
class WriteTarget:
    """Where a write goes, from the request path and body."""

    project: str
    integration: str
    object_name: str
    group_ref: str

    @property
    def key(self) -> BucketKey:
        return (self.project, self.integration, self.group_ref, self.object_name)


@dataclass(frozen=True)
class RecordFailure:
    """Why one record of a write failed; ``index`` is its place in the batch (None for a
    single-record write)."""

    index: int | None
    message: str


@dataclass(slots=True)
class WriteOutcome:
    """What a write did: the HTTP status and JSON body to answer, how many records succeeded
    and failed (as the answer counts them), the IDs of the records created or updated, each
    record's failure, and for a batch refused whole under ``allOrNone`` the reason."""

    status: int
    body: dict[str, Any]
    batch: bool
    succeeded: int
    failed: int
    written_ids: tuple[str, ...] = ()
    failures: tuple[RecordFailure, ...] = ()
    rolled_back: str | None = None


class _ItemFailed(Exception):
    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Staging:
    """Pending changes over a bucket, committed only when the whole write may go ahead."""

    def __init__(self, bucket: dict[str, Record]) -> None:
        self.bucket = bucket
        self.changes: dict[str, Record | None] = {}

    def get(self, record_id: str) -> Record | None:
        if record_id in self.changes:
            return self.changes[record_id]
        return self.bucket.get(record_id)

    def put(self, record_id: str, record: Record | None) -> None:
        self.changes[record_id] = record

    def items(self) -> Iterator[tuple[str, Record]]:
        changes = self.changes
        for record_id, record in self.bucket.items():
            current = changes.get(record_id, record) if record_id in changes else record
            if current is not None:
                yield record_id, current
        for record_id, changed in changes.items():
            if changed is not None and record_id not in self.bucket:
                yield record_id, changed

    def commit(self) -> None:
        for record_id, record in self.changes.items():
            if record is None:
                self.bucket.pop(record_id, None)
            else:
                self.bucket[record_id] = record
        self.changes.clear()


class RecordStore:
    """Thread-safe storage plus create / update / delete semantics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[BucketKey, dict[str, Record]] = {}
        self._rules: dict[str, ObjectRules] = {}
        self._counter = 0

    # -- configuration and inspection -------------------------------------------------

    def configure_object(self, object_name: str, rules: ObjectRules) -> None:
        with self._lock:
            self._rules[object_name] = rules

    def rules_for(self, object_name: str) -> ObjectRules:
        with self._lock:
            return self._rules.get(object_name, ObjectRules())

    def clear(self) -> None:
        """Drop every record and restart the ID counter (object rules are kept)."""
        with self._lock:
            self._buckets.clear()
            self._counter = 0

    def records(
        self,
        *,
        project: str | None = None,
        integration: str | None = None,
        object_name: str | None = None,
        group_ref: str | None = None,
    ) -> list[Record]:
        wanted = (project, integration, group_ref, object_name)
        with self._lock:
            found = [
                record
                for key, bucket in self._buckets.items()
                if all(w is None or w == k for w, k in zip(wanted, key, strict=True))
                for record in bucket.values()
            ]
        return copy.deepcopy(found)

    def insert(self, key: BucketKey, record: Record) -> Record:
        """Store ``record`` as-is (no object rules), assigning an ID unless it has one."""
        with self._lock:
            bucket = self._buckets.setdefault(key, {})
            record_id = record.get("id")
            if record_id is None:
                self._counter += 1
                record_id = f"003{self._counter:012d}"
            elif not isinstance(record_id, str) or not record_id:
                raise ValueError("record.id must be a non-empty string when given")
            elif record_id in bucket:
                raise ValueError(f"a record with ID {record_id} already exists")
            stored = {**copy.deepcopy(record), "id": record_id}
            bucket[record_id] = stored
            return copy.deepcopy(stored)

    # -- writes -----------------------------------------------------------------------

    def execute(
        self, target: WriteTarget, request: dict[str, Any], operation_id: str
    ) -> WriteOutcome:
        """Apply a validated write; return what it did and the answer to give."""
        write_type: str = request["type"]
        with self._lock:
            rules = self._rules.get(target.object_name, ObjectRules())
            bucket = self._buckets.setdefault(target.key, {})
            staging = _Staging(bucket)
            if "batch" in request:
                all_or_none = bool(request.get("batchPolicy", {}).get("allOrNone", False))
                return self._batch(
                    staging, write_type, request["batch"], rules, all_or_none, operation_id
                )
            return self._single(staging, write_type, request["record"], rules, operation_id)

    def _single(
        self,
        staging: _Staging,
        write_type: str,
        record: Record,
        rules: ObjectRules,
        operation_id: str,
    ) -> WriteOutcome:
        try:
            record_id, stored = self._apply(staging, write_type, record, rules)
        except _ItemFailed as failure:
            body: dict[str, Any] = {
                "operationId": operation_id,
                "errors": [{"message": failure.message}],
                "result": {"success": False},
            }
            if failure.code is not None:
                raw = [{"message": failure.message, "errorCode": failure.code}]
                body["rawResponse"] = json.dumps(raw)
            failure_of = RecordFailure(None, failure.message)
            return WriteOutcome(422, body, False, 0, 1, failures=(failure_of,))
        staging.commit()
        result: dict[str, Any] = {"success": True}
        written: tuple[str, ...] = ()
        if stored is not None:
            result["recordId"] = record_id
            result["data"] = stored
            written = (record_id,)
        body = {"operationId": operation_id, "result": result}
        return WriteOutcome(200, body, False, 1, 0, written_ids=written)

    def _batch(
        self,
        staging: _Staging,
        write_type: str,
        items: list[dict[str, Any]],
        rules: ObjectRules,
        all_or_none: bool,
        operation_id: str,
    ) -> WriteOutcome:
        results: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        failed: list[RecordFailure] = []
        written: list[str] = []
        for index, item in enumerate(items):
            try:
                record_id, _ = self._apply(staging, write_type, item["record"], rules)
            except _ItemFailed as failure:
                results.append({"success": False})
                errors.append({"message": f"batch[{index}]: {failure.message}"})
                failed.append(RecordFailure(index, failure.message))
            else:
                results.append({"success": True, "recordId": record_id})
                written.append(record_id)
        failures = len(errors)
        total = len(items)
        if failures and all_or_none:
            reason = (
                f"Batch write failed: {failures} of {total} record(s) failed and "
                "batchPolicy.allOrNone is set, so no record was written"
            )
            errors.append({"message": reason})
            body: dict[str, Any] = {
                "operationId": operation_id,
                "successCount": 0,
                "failureCount": total,
                "results": [{"success": False} for _ in items],
                "errors": errors,
            }
            return WriteOutcome(422, body, True, 0, total, (), tuple(failed), reason)
        staging.commit()
        body = {
            "operationId": operation_id,
            "successCount": total - failures,
            "failureCount": failures,
            "results": results,
        }
        if errors:
            body["errors"] = errors
        status = 422 if failures == total else 200
        return WriteOutcome(
            status, body, True, total - failures, failures, tuple(written), tuple(failed)
        )

    def _apply(
        self, staging: _Staging, write_type: str, record: Record, rules: ObjectRules
    ) -> tuple[str, Record | None]:
        if write_type == "create":
            return self._create(staging, record, rules)
        if write_type == "update":
            return self._update(staging, record, rules)
        return self._delete(staging, record, rules)

    def _create(self, staging: _Staging, record: Record, rules: ObjectRules) -> tuple[str, Record]:
        missing = [f for f in rules.required_fields if _is_blank(record.get(f))]
        if missing:
            raise _ItemFailed(_missing_message(missing), "REQUIRED_FIELD_MISSING")
        self._counter += 1
        record_id = f"003{self._counter:012d}"
        stored = {**record, "id": record_id}
        _check_unique(staging, record_id, stored, rules)
        staging.put(record_id, stored)
        return record_id, stored

    def _update(self, staging: _Staging, record: Record, rules: ObjectRules) -> tuple[str, Record]:
        record_id = _record_id(record, "an update")
        existing = staging.get(record_id)
        if existing is None:
            raise _ItemFailed(f"The record with ID {record_id} was not found", "NOT_FOUND")
        missing = [f for f in rules.required_fields if f in record and _is_blank(record[f])]
        if missing:
            raise _ItemFailed(_missing_message(missing), "REQUIRED_FIELD_MISSING")
        stored = {**existing, **record, "id": record_id}
        _check_unique(staging, record_id, stored, rules)
        staging.put(record_id, stored)
        return record_id, stored

    def _delete(self, staging: _Staging, record: Record, rules: ObjectRules) -> tuple[str, None]:
        record_id = _record_id(record, "a delete")
        if not rules.delete_enabled:
            raise _ItemFailed(
                "Deletion is not enabled for this object in the installation config", None
            )
        if staging.get(record_id) is None:
            raise _ItemFailed(f"The record with ID {record_id} was not found", "NOT_FOUND")
        staging.put(record_id, None)
        return record_id, None


def _record_id(record: Record, what: str) -> str:
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise _ItemFailed(f"record.id: {what} needs the record's ID as a non-empty string", None)
    return record_id


def _is_blank(value: object) -> bool:
    return value is None or value == ""


def _missing_message(missing: list[str]) -> str:
    return f"Required fields are missing: [{', '.join(missing)}]"


def _check_unique(staging: _Staging, record_id: str, record: Record, rules: ObjectRules) -> None:
    for field in rules.unique_fields:
        value = record.get(field)
        if _is_blank(value):
            continue
        for other_id, other in staging.items():
            if other_id != record_id and field in other and _same_json(other[field], value):
                raise _ItemFailed(
                    f"duplicate value found: {field} duplicates value on record with id: "
                    f"{other_id}",
                    "DUPLICATE_VALUE",
                )


def _same_json(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b
