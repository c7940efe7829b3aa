"""The operations of the sandbox's writes, as the Platform API serves them: each write's
``Operation`` (status, result summary, metadata), its log, the installation it ran for, and
the worker that applies asynchronous writes when their delay is over.

Every write is an operation. A synchronous one is finished when it is answered; an
asynchronous one is ``in_progress`` until the scheduler applies it, then ``success`` or
``failure``; a write refused by an injected fault failed at once, with nothing written.
``status`` is ``success`` when the write was answered (or would have been) 200: for a batch
that may include failed records, as the result says, e.g. "Batch write completed (3
succeeded, 1 failed)". Deletes succeed without a ``successfulRecordIds`` entry: those are the
records created or updated.

Installations are one per (project, integration, groupRef), with IDs derived from those three
(UUID version 5), so an installation keeps its ID and its config ID across resets and runs.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import heapq
import itertools
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from ._responses import rfc3339
from ._store import RecordFailure, WriteOutcome, WriteTarget

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "OPERATION_LIMIT",
    "Installation",
    "Operation",
    "OperationBook",
    "PageTokenInvalid",
    "Scheduler",
]

OPERATION_LIMIT: Final = 10_000  # operations kept; the oldest go first
DEFAULT_PAGE_SIZE: Final = 200
MAX_PAGE_SIZE: Final = 1000
# names the sandbox's installation and config IDs (UUID version 5) are derived in
_ID_SPACE: Final = uuid.UUID("8426a259-6471-4cd7-a492-5af0609c23e4")

OperationStatus = Literal["in_progress", "success", "failure"]
Severity = Literal["INFO", "WARNING", "ERROR"]
# (seconds since the epoch, severity, msg, error, details)
_LogLine = tuple[float, Severity, str, str | None, dict[str, str] | None]


class PageTokenInvalid(ValueError):
    """A ``pageToken`` that no listing of this installation handed out."""


@dataclass(frozen=True)
class Installation:
    """The installation of an integration for one group (``groupRef``)."""

    id: str
    config_id: str
    project: str
    integration: str
    group_ref: str

    def to_json(self) -> dict[str, str]:
        return {
            "installationId": self.id,
            "configId": self.config_id,
            "projectId": self.project,
            "integrationId": self.integration,
            "groupRef": self.group_ref,
        }


@dataclass(slots=True)
class Operation:
    """One write's operation: the facts its JSON and its log are rendered from (times are
    seconds since the epoch). Changed only under its book's lock."""

    id: str
    seq: int  # creation order, across installations
    installation: Installation
    object_name: str
    write_type: str
    mode: str
    batch: bool
    records: int  # in the write
    created: float
    updated: float
    started: float | None = None
    status: OperationStatus = "in_progress"
    succeeded: int = 0
    failed: int = 0
    written_ids: tuple[str, ...] = ()
    failures: tuple[RecordFailure, ...] = ()
    rolled_back: str | None = None  # why a batch was refused whole
    refusal: str | None = None  # the injected fault that failed the write
    notes: list[_LogLine] | None = None  # log entries beyond the steps

    def finish(self, outcome: WriteOutcome, moment: float) -> None:
        self.status = "success" if outcome.status == 200 else "failure"
        self.succeeded = outcome.succeeded
        self.failed = outcome.failed
        self.written_ids = outcome.written_ids
        self.failures = outcome.failures
        self.rolled_back = outcome.rolled_back
        self.updated = moment

    @property
    def result(self) -> str | None:
        """The summary, once done: "Batch write completed (3 succeeded, 1 failed)"."""
        if self.status == "in_progress":
            return None
        if self.refusal is not None:
            return _summary(self.batch, False, 0, self.records, self.refusal)
        reason = None
        if self.rolled_back is not None:
            reason = "batchPolicy.allOrNone is set, so no record was written"
        elif not self.batch and self.failures:
            reason = self.failures[0].message
        return _summary(self.batch, self.status == "success", self.succeeded, self.failed, reason)

    def to_json(self) -> dict[str, Any]:
        """The contract's ``Operation``, with ``updateTime`` as the API's answers carry it."""
        installation = self.installation
        body: dict[str, Any] = {
            "projectId": installation.project,
            "integrationId": installation.integration,
            "installationId": installation.id,
            "configId": installation.config_id,
            "actionType": "write",
            "status": self.status,
            "id": self.id,
        }
        result = self.result
        if result is not None:
            body["result"] = result
        body["metadata"] = {
            "objects": [self.object_name],
            "successfulRecordIds": list(self.written_ids),
        }
        body["createTime"] = _timestamp(self.created)
        body["updateTime"] = _timestamp(self.updated)
        return body

    def logs_to_json(self) -> list[dict[str, Any]]:
        """The contract's ``Log`` entries, oldest first: accepted, started, each record that
        failed, completed (or the fault that failed it), and any notes."""
        entries = []
        for moment, severity, msg, error, details in self._log_lines():
            message: dict[str, Any] = {"msg": msg}
            if error is not None:
                message["error"] = error
            message["operation_id"] = self.id
            if details:
                message["details"] = details
            entries.append(
                {"timestamp": _timestamp(moment), "severity": severity, "message": message}
            )
        return entries

    def _log_lines(self) -> list[_LogLine]:
        records = "1 record" if self.records == 1 else f"{self.records} records"
        accepted = (
            f"Write accepted: {self.write_type} {records} of {self.object_name} ({self.mode})"
        )
        details = {
            "type": self.write_type,
            "mode": self.mode,
            "objectName": self.object_name,
            "records": str(self.records),
        }
        lines: list[_LogLine] = [(self.created, "INFO", accepted, None, details)]
        result = self.result
        if self.refusal is not None and result is not None:
            lines.append((self.created, "ERROR", result, self.refusal, None))
        if self.started is not None:
            lines.append((self.started, "INFO", "Write started", None, None))
        if self.started is not None and result is not None:
            for failure in self.failures:
                if failure.index is None:
                    lines.append((self.updated, "ERROR", "Record failed", failure.message, None))
                else:
                    msg = f"Record {failure.index} failed"
                    where = {"batchIndex": str(failure.index)}
                    lines.append((self.updated, "ERROR", msg, failure.message, where))
            if self.rolled_back is not None:
                lines.append((self.updated, "ERROR", "Batch rolled back", self.rolled_back, None))
            severity: Severity = "INFO" if self.status == "success" else "ERROR"
            lines.append((self.updated, severity, result, None, None))
        if self.notes:
            lines.extend(self.notes)
            lines.sort(key=_moment)  # stable: the steps keep their order
        return lines


class OperationBook:
    """Thread-safe record of the operations (at most ``OPERATION_LIMIT``, the oldest dropped
    first) and of the installations they ran for (kept by ``clear()``, like object rules)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: OrderedDict[str, Operation] = OrderedDict()
        self._installations: dict[tuple[str, str, str], Installation] = {}
        self._by_id: dict[str, Installation] = {}
        self._by_installation: dict[str, deque[Operation]] = {}
        self._seq = itertools.count()

    # -- installations ----------------------------------------------------------------

    def installation(self, project: str, integration: str, group_ref: str) -> Installation:
        """The installation for a group, made known to the book if it was not yet."""
        with self._lock:
            return self._installation((project, integration, group_ref))

    def installations(
        self,
        *,
        project: str | None = None,
        integration: str | None = None,
        group_ref: str | None = None,
    ) -> list[Installation]:
        wanted = (project, integration, group_ref)
        with self._lock:
            return [
                installation
                for key, installation in self._installations.items()
                if all(w is None or w == k for w, k in zip(wanted, key, strict=True))
            ]

    def find_installation(
        self, project: str, integration: str, installation_id: str
    ) -> Installation | None:
        """The known installation with that ID, if it is one of that project's integration."""
        with self._lock:
            installation = self._by_id.get(installation_id)
        if installation is None or (installation.project, installation.integration) != (
            project,
            integration,
        ):
            return None
        return installation

    def _installation(self, key: tuple[str, str, str]) -> Installation:
        installation = self._installations.get(key)
        if installation is None:
            name = "\x1f".join(key)
            installation = Installation(
                id=str(uuid.uuid5(_ID_SPACE, "installation\x1f" + name)),
                config_id=str(uuid.uuid5(_ID_SPACE, "config\x1f" + name)),
                project=key[0],
                integration=key[1],
                group_ref=key[2],
            )
            self._installations[key] = installation
            self._by_id[installation.id] = installation
            self._by_installation[installation.id] = deque()
        return installation

    # -- the life of an operation ----------------------------------------------------

    def record(
        self, operation_id: str, target: WriteTarget, write: dict[str, Any], outcome: WriteOutcome
    ) -> None:
        """A synchronous write, accepted, run and finished at once."""
        with self._lock:
            operation = self._open(operation_id, target, write)
            operation.started = operation.created
            operation.finish(outcome, operation.created)

    def open(self, operation_id: str, target: WriteTarget, write: dict[str, Any]) -> Operation:
        """An asynchronous write, accepted: ``in_progress`` until ``start`` and ``finish``."""
        with self._lock:
            return self._open(operation_id, target, write)

    def start(self, operation: Operation) -> None:
        with self._lock:
            operation.started = operation.updated = time.time()

    def finish(self, operation: Operation, outcome: WriteOutcome) -> None:
        with self._lock:
            operation.finish(outcome, time.time())

    def refuse(
        self, operation_id: str, target: WriteTarget, write: dict[str, Any], reason: str
    ) -> None:
        """A write that an injected fault failed before anything was written."""
        with self._lock:
            operation = self._open(operation_id, target, write)
            operation.status = "failure"
            operation.failed = operation.records
            operation.refusal = reason

    def note(self, operation_id: str, severity: Severity, msg: str) -> None:
        """Add a log entry to an operation, if it is still kept."""
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is not None:
                if operation.notes is None:
                    operation.notes = []
                operation.notes.append((time.time(), severity, msg, None, None))

    def _open(self, operation_id: str, target: WriteTarget, write: dict[str, Any]) -> Operation:
        key = (target.project, target.integration, target.group_ref)
        installation = self._installation(key)
        moment = time.time()
        batch = write.get("batch")
        operation = Operation(
            id=operation_id,
            seq=next(self._seq),
            installation=installation,
            object_name=target.object_name,
            write_type=write["type"],
            mode=write.get("mode", "synchronous"),
            batch=batch is not None,
            records=1 if batch is None else len(batch),
            created=moment,
            updated=moment,
        )
        self._operations[operation_id] = operation
        self._by_installation[installation.id].append(operation)
        if len(self._operations) > OPERATION_LIMIT:
            _, oldest = self._operations.popitem(last=False)
            # the oldest of all is the oldest of its installation
            self._by_installation[oldest.installation.id].popleft()
        return operation

    # -- reading ----------------------------------------------------------------------

    def get(self, operation_id: str, project: str | None = None) -> dict[str, Any] | None:
        """The operation as JSON, or None if unknown (or of another project, when given)."""
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None or project not in (None, operation.installation.project):
                return None
            return operation.to_json()

    def logs(self, operation_id: str, project: str) -> list[dict[str, Any]] | None:
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None or operation.installation.project != project:
                return None
            return operation.logs_to_json()

    def page(
        self, installation: Installation, size: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``size`` operations of an installation, newest first, starting after the
        one ``token`` names (from the newest when None), and the token of the next page
        (None on the last). Operations created meanwhile come before the walk's first page,
        so a walk sees each operation that is still kept exactly once."""
        cursor = None if token is None else _cursor(installation, token)
        with self._lock:
            operations = self._by_installation[installation.id]
            end = len(operations)
            if cursor is not None:
                end = bisect.bisect_left(operations, cursor, key=_seq_of)
            start = max(0, end - size)
            chosen = [operations[index] for index in range(end - 1, start - 1, -1)]
            results = [operation.to_json() for operation in chosen]
        if start == 0:
            return results, None
        return results, _token(installation, chosen[-1].seq)

    def clear(self) -> None:
        """Forget every operation (installations are kept)."""
        with self._lock:
            self._operations.clear()
            for operations in self._by_installation.values():
                operations.clear()


def _seq_of(operation: Operation) -> int:
    return operation.seq


def _moment(line: _LogLine) -> float:
    return line[0]


def _token(installation: Installation, seq: int) -> str:
    raw = f"{installation.id}:{seq}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _cursor(installation: Installation, token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        raise PageTokenInvalid("pageToken: not a token this listing handed out") from None
    owner, _, seq = raw.partition(":")
    if owner != installation.id or not seq.isdigit() or _token(installation, int(seq)) != token:
        raise PageTokenInvalid("pageToken: not a token this listing handed out")
    return int(seq)


def _summary(batch: bool, success: bool, succeeded: int, failed: int, reason: str | None) -> str:
    """E.g. "Batch write completed (3 succeeded, 1 failed)", "Write failed (0 succeeded, 1
    failed): The record with ID 42 was not found"."""
    what = "Batch write" if batch else "Write"
    done = "completed" if success else "failed"
    text = f"{what} {done} ({succeeded} succeeded, {failed} failed)"
    return f"{text}: {reason}" if reason else text


def _timestamp(moment: float) -> str:
    return rfc3339(datetime.fromtimestamp(moment, timezone.utc), "microseconds")


class Scheduler:
    """One worker thread that runs callables after a delay; ``clear()`` drops pending ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="ampwrite-sandbox-async", daemon=True
        )
        self._thread.start()

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
            with contextlib.suppress(Exception):
                job()
