"""The ledger: what every attempt at writing a set of records sent, and what it learnt.

One mechanism, two users:

- `ampwrite load --out RESULTS`: the results file `RESULTS` (one outcome per line) and its
  journal `RESULTS.inflight` (the keys of each request, written before it is sent), where
  a record's key is its index in the input file;
- `write_partition(..., ledger=DIR, partition=P, key=...)`: the same two files per partition,
  `DIR/part-P.jsonl` and `DIR/part-P.jsonl.inflight`, keyed by the caller's record key, plus
  a fence (`DIR/part-P.lock`) so that only one attempt of a partition sends at a time.

The rules, in one place:

- a request's keys are appended to the journal, flushed and fsync'd, before it is sent; if
  that fails, it is not sent (`LedgerError`). `write_partition` journals each batch as it
  is read, one batch ahead of the writers, so the fsync overlaps the requests in flight
  (a batch journaled and never sent, its attempt dead first, comes back unknown);
- each outcome is appended to the results file as it arrives (flushed; fsync'd when the
  attempt ends), and the last line of a key counts;
- an attempt starts by reading both: a key with a final outcome (written, accepted, failed) is
  not sent again and keeps that outcome; a journaled key without one may have been written
  and becomes "unknown" (a results line says so), sent again only when asked; then the
  journal starts afresh. An attempt that ends on its own removes the journal (every key it
  lists then has its line);
- a line torn by a crash (not JSON) is ignored: a torn journal line was never fsync'd, so its
  request was never sent.

Fencing (`Fence`): an attempt holds an exclusive `flock` on the partition's lock file for as
long as it runs (a second attempt, a speculative copy or a retry while a zombie still runs,
waits for it), and writes a fresh token into it; before every append it checks the token is
still its own, so an attempt whose lock was taken over (an NFS client whose lease expired)
appends nothing more and sends nothing more (`FencedOut`). On a local filesystem the lock is
exact, and the kernel releases it when the process dies. On NFS (v4, or v3 with lockd),
`flock` is carried as a POSIX lock by the server: a client that loses its lease loses the
lock, and the token check stops it before its next request, but a request already past the
check may still be sent. Object stores have no locks: a ledger must be a filesystem path.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Final, TextIO, TypeAlias, TypeGuard

import attrs

from ._judge import short
from ._outcome import FINAL_STATUSES, STATUSES, Outcome

__all__ = [
    "JOURNAL_SUFFIX",
    "KILLED",
    "RESENT_WRITTEN",
    "FencedOut",
    "Journal",
    "Key",
    "KeyFunction",
    "Ledger",
    "LedgerBusy",
    "LedgerError",
    "ResultsFile",
    "after_unknown",
    "json_lines",
    "key_of",
]

Key: TypeAlias = "str | int"
KeyFunction: TypeAlias = "str | Callable[[Any], object]"

JOURNAL_SUFFIX: Final = ".inflight"
KILLED: Final = "sent by an earlier run that ended before recording its outcome: may be written"
"""The error of a journaled record without an outcome, when a later attempt finds it."""
MANIFEST: Final = "ledger.json"
RESENT_WRITTEN: Final = "an earlier run may have written it too: check for a duplicate"
"""The error of a record written again although an earlier attempt may have written it."""
DEFAULT_FENCE_TIMEOUT: Final = 600.0
_PARTITION: Final = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_FENCE_POLL: Final = 0.05


class LedgerError(Exception):
    """The ledger could not be read or written; nothing more was sent. `message` says what
    failed; `error` is the `OSError` behind it, if any."""

    def __init__(self, message: str, error: OSError | None = None) -> None:
        super().__init__(message)
        self.error = error


class LedgerBusy(LedgerError):
    """Another attempt of the partition held its fence for longer than the wait allowed."""


class FencedOut(LedgerError):
    """Another attempt took this partition's fence: this one sends and records no more."""


# -- keys ---------------------------------------------------------------------------------------


def key_of(key: KeyFunction, record: object) -> Key | ValueError:
    """The record's key (a field name's value, or what the function returns) as a `str` or
    an `int`; a `ValueError` saying why when there is none."""
    if type(record) is dict and isinstance(key, str):  # the common case, first
        if key not in record:
            return ValueError(f"key: the record has no field {key!r}")
        value = record[key]
    elif callable(key):
        try:
            value = key(record)
        except Exception as exc:  # the caller's function: its failure is this record's
            return ValueError(f"key: the key function failed: {short(exc)}")
    elif isinstance(record, Mapping):
        if key not in record:
            return ValueError(f"key: the record has no field {key!r}")
        value = record[key]
    else:
        return ValueError(f"key: the record is not an object (got {type(record).__name__})")
    if isinstance(value, str):
        return value
    if not isinstance(value, bool) and hasattr(value, "__index__"):
        return operator.index(value)  # numpy and pandas integers too
    return ValueError(f"key: must be a str or an int, got {type(value).__name__}")


def is_key(value: object) -> TypeGuard[Key]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def after_unknown(outcome: Outcome) -> Outcome:
    """The outcome of a record sent again although an earlier attempt may have written it:
    a refusal (a duplicate key, say) does not settle it, and a success may be a second copy."""
    if outcome.status == "failed":
        error = f"an earlier run may have written it; then: {outcome.error or 'failed'}"
        return attrs.evolve(outcome, status="unknown", error=error[:500])
    if outcome.status in ("written", "accepted"):
        return attrs.evolve(outcome, error=RESENT_WRITTEN)
    return outcome


# -- the two files ------------------------------------------------------------------------------


def json_lines(handle: IO[bytes]) -> Iterator[tuple[int, object]]:
    """(line number, value) of each JSON line; torn lines (not JSON) are skipped."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield number, json.loads(raw)
        except (ValueError, RecursionError):
            continue  # a line torn by a crash, or not ours


class ResultsFile:
    """Appends one line per outcome and flushes it at once; `sync()` makes them durable."""

    def __init__(self, path: str) -> None:
        torn = False
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                torn = existing.read(1) != b"\n"
        self._handle: TextIO = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        if torn:  # a line cut short by a crash: end it, so the next line stands alone
            self._handle.write("\n")
            self._handle.flush()

    def append(self, outcome: Outcome) -> None:
        self._handle.write(json.dumps(outcome.to_json()) + "\n")
        self._handle.flush()

    def append_all(self, outcomes: list[Outcome]) -> None:
        """Append several lines in one write, and flush them."""
        self._handle.write("".join(json.dumps(o.to_json()) + "\n" for o in outcomes))
        self._handle.flush()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> OSError | None:
        """Close the file; the error if that failed (the last lines may be lost)."""
        try:
            self._handle.close()
        except OSError as exc:
            return exc
        return None


class Journal:
    """`RESULTS.inflight`: the keys of each request (one JSON list per line), appended,
    flushed and fsync'd just before it is first sent, from the writer threads. `check`, if
    given, is called before each append, and may raise to refuse it.

    A run that ends in any way it controls has recorded an outcome for every key it lists
    and removes it. So a journal found by a later run means the earlier one was killed (or
    could not record outcomes): its keys without a final outcome may have been written.
    """

    def __init__(self, path: str, check: Callable[[], None] | None = None) -> None:
        self.path = path
        self.complete = False  # every key it lists has its outcome recorded: remove it
        self._check = check
        self._lock = threading.Lock()  # one line at a time
        self._syncing = threading.Lock()  # one fsync at a time, for every line written before
        self._written = 0  # lines written and flushed
        self._synced = 0  # lines made durable
        self._handle: TextIO = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115

    @staticmethod
    def read(path: str, valid: Callable[[object], bool]) -> set[Any]:
        """The keys (those `valid` accepts) an earlier run's journal at `path` holds."""
        found: set[Any] = set()
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return found
        with handle:
            for _, entry in json_lines(handle):
                if isinstance(entry, list):
                    found.update(k for k in entry if valid(k))
        return found

    def record(self, keys: list[Any]) -> None:
        """Returns once the line is durable. Raises `LedgerError` (nothing may be sent then),
        or what `check` raises. Writers that come together share one fsync: each waits for
        the one under way, which may already cover its line."""
        if self._check is not None:
            self._check()  # before the line, and outside the lock: writers check at once
        try:
            with self._lock:
                self._handle.write(json.dumps(keys) + "\n")
                self._handle.flush()
                self._written += 1
                mine = self._written
            with self._syncing:
                if self._synced < mine:
                    covered = self._written  # every line counted there is flushed
                    os.fsync(self._handle.fileno())
                    self._synced = covered
        except OSError as exc:
            raise LedgerError(str(exc), exc) from exc

    def close(self, *, remove: bool) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        if remove:
            with contextlib.suppress(OSError):
                os.remove(self.path)


# -- the fence ----------------------------------------------------------------------------------


_HELD: dict[str, threading.Lock] = {}  # one per lock file and process: flock alone, on NFS,
_HELD_GUARD = threading.Lock()  # is a POSIX lock, which two threads of a process both get


class Fence:
    """The right to send for one partition, held from `acquire` to `release`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.token = f"{uuid.uuid4().hex} pid {os.getpid()}"
        self.epoch = 0
        self._fd: int | None = None
        with _HELD_GUARD:
            self._local = _HELD.setdefault(os.path.realpath(path), threading.Lock())

    def acquire(self, timeout: float) -> None:
        import fcntl  # POSIX only: a ledger needs it

        deadline = time.monotonic() + timeout
        if not self._local.acquire(timeout=max(0.0, timeout)):
            raise LedgerBusy(f"{self.path}: another attempt of this partition is running")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise LedgerBusy(
                            f"{self.path}: another attempt of this partition held it for "
                            f"more than {timeout:g} s"
                        ) from None
                    time.sleep(_FENCE_POLL)
            self._fd = fd
            previous = os.pread(fd, 200, 0).decode("utf-8", "replace").split(" ", 1)[0]
            self.epoch = int(previous) + 1 if previous.isdigit() else 1
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.epoch} {self.token}\n".encode(), 0)
            os.fsync(fd)
        except BaseException:
            self.release()
            raise

    def check(self) -> None:
        """Raise `FencedOut` unless the lock file still holds this attempt's token (read
        through a fresh open, so an NFS client sees the server's copy)."""
        try:
            with open(self.path, "rb") as handle:
                held = handle.read(300).decode("utf-8", "replace").strip()
        except OSError as exc:
            raise LedgerError(f"{self.path}: {exc.strerror or exc}", exc) from exc
        if held != f"{self.epoch} {self.token}":
            raise FencedOut(
                f"{self.path}: another attempt of this partition took over (epoch "
                f"{held.split(' ', 1)[0] or '?'}, this one {self.epoch}): nothing more is sent"
            )

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # and with it the flock
        with contextlib.suppress(RuntimeError):
            self._local.release()


# -- the ledger ---------------------------------------------------------------------------------


class Ledger:
    """A directory that every attempt of every partition of a write reaches.

    `Ledger(path)` only names it (`path`: a local or shared filesystem directory); `bind`
    writes (or checks) what the write is, and `attempt(partition, target)` opens one attempt
    of one partition. `ampwrite.bulk`
    calls them for you: pass the path as `write_partition(..., ledger=path)`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"Ledger({self.path!r})"

    def bind(self, target: Mapping[str, Any], *, partitions: int | None = None) -> None:
        """Create the directory and its manifest, or check that the manifest is for this
        write (and, when `partitions` is given, this many partitions). Raises `ValueError`
        for a ledger of another write; `LedgerError` when it cannot be read or written."""
        manifest: dict[str, Any] = {"ampwrite_ledger": 1, "target": dict(target)}
        if partitions is not None:
            manifest["partitions"] = partitions
        path = os.path.join(self.path, MANIFEST)
        try:
            os.makedirs(self.path, exist_ok=True)
            found = self._read_manifest(path)
            if found is None:
                temporary = f"{path}.{uuid.uuid4().hex}"
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(manifest, handle, sort_keys=True)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(temporary, path)  # atomic, and never replaces one made meanwhile
                except FileExistsError:
                    pass
                finally:
                    os.remove(temporary)
                found = self._read_manifest(path)
        except OSError as exc:
            raise LedgerError(f"ledger {self.path}: {exc.strerror or exc}", exc) from exc
        if found is None:
            raise LedgerError(f"ledger {self.path}: {MANIFEST} cannot be read")
        if found.get("target") != manifest["target"]:
            raise ValueError(
                f"ledger {self.path} records another write ({_shown(found.get('target'))}), "
                f"not this one ({_shown(manifest['target'])}): use a new ledger directory"
            )
        if partitions is not None and found.get("partitions", partitions) != partitions:
            raise ValueError(
                f"ledger {self.path} records {found.get('partitions')} partitions, this "
                f"dataset has {partitions}: a partition's ledger is only right for the same "
                "records, so keep the partitioning of the run it records"
            )

    @staticmethod
    def _read_manifest(path: str) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as handle:
                found = json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def attempt(
        self,
        partition: str | int,
        target: Mapping[str, Any],
        *,
        fence_timeout: float = DEFAULT_FENCE_TIMEOUT,
    ) -> Attempt:
        """Open an attempt of `partition`: bind the ledger, wait for the partition's fence,
        read what earlier attempts left and settle their journaled records as unknown."""
        name = partition_name(partition)
        self.bind(target)
        base = os.path.join(self.path, f"part-{name}.jsonl")
        fence = Fence(os.path.join(self.path, f"part-{name}.lock"))
        fence.acquire(fence_timeout)
        try:
            return Attempt(base, fence)
        except BaseException:
            fence.release()
            raise

    def outcomes(self, partition: str | int) -> dict[Key, Outcome]:
        """The last outcome of each key of `partition`, as recorded (without its fence:
        what a reader sees while an attempt may still be running)."""
        path = os.path.join(self.path, f"part-{partition_name(partition)}.jsonl")
        try:
            return read_outcomes(path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LedgerError(f"{path}: {exc.strerror or exc}", exc) from exc


def _shown(target: object) -> str:
    if not isinstance(target, dict):
        return "unreadable"
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items()))


def partition_name(partition: object) -> str:
    """`partition` as part of a file name; `ValueError` if it cannot be one."""
    if isinstance(partition, int) and not isinstance(partition, bool) and partition >= 0:
        return str(partition)
    if isinstance(partition, str) and _PARTITION.match(partition) and partition not in (".", ".."):
        return partition
    raise ValueError(
        "partition must be an int from 0 or a name of letters, digits, '.', '_' and '-', "
        f"got {partition!r}"
    )


def read_outcomes(path: str) -> dict[Key, Outcome]:
    """The last outcome of each key in a ledger's results file (lines without a valid key
    or status are not outcomes of a ledger, and are skipped)."""
    found: dict[Key, Outcome] = {}
    with open(path, "rb") as handle:
        for _, entry in json_lines(handle):
            if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
                continue
            key = entry.get("key")
            if not is_key(key):
                continue
            found[key] = Outcome(
                index=entry["index"] if isinstance(entry.get("index"), int) else 0,
                status=entry["status"],
                record_id=_text(entry.get("record_id")),
                error=_text(entry.get("error")),
                operation_id=_text(entry.get("operation_id")),
                key=key,
            )
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Attempt:
    """One attempt of one partition, holding its fence. `earlier` is the last outcome of each
    key that earlier attempts recorded (journaled keys without one are in it as unknown)."""

    def __init__(self, base: str, fence: Fence) -> None:
        self.fence = fence
        self.journal_path = base + JOURNAL_SUFFIX
        try:
            self.earlier = read_outcomes(base) if os.path.exists(base) else {}
            sent = Journal.read(self.journal_path, is_key)
            self.results = ResultsFile(base)
            for key in sorted(sent, key=lambda k: (isinstance(k, str), k)):
                before = self.earlier.get(key)
                if before is None or before.status not in FINAL_STATUSES | {"unknown"}:
                    unknown = Outcome(0, "unknown", None, KILLED, key=key)
                    self.results.append(unknown)
                    self.earlier[key] = unknown
            self.results.sync()  # before the journal that said so is emptied
            self.journal = Journal(self.journal_path, fence.check)
        except OSError as exc:
            raise LedgerError(f"ledger {base}: {exc.strerror or exc}", exc) from exc

    def sending(self, keys: list[Key]) -> None:
        """Journal `keys` before their request is sent (raises: do not send it)."""
        self.journal.record(keys)

    def settled(self, outcomes: list[Outcome]) -> None:
        """Record `outcomes` (with their keys), unless another attempt took the fence."""
        self.fence.check()
        try:
            self.results.append_all(outcomes)
        except OSError as exc:
            raise LedgerError(f"ledger {self.journal_path}: {exc.strerror or exc}", exc) from exc

    def close(self, *, complete: bool) -> None:
        """End the attempt. `complete`: every journaled key has its outcome recorded, so the
        journal goes (after the results are fsync'd)."""
        try:
            if complete:
                self.fence.check()
                self.results.sync()
            problem = self.results.close()
            self.journal.close(remove=complete and problem is None)
        except LedgerError:
            self.results.close()
            self.journal.close(remove=False)
        except OSError:
            self.journal.close(remove=False)
        finally:
            self.fence.release()
