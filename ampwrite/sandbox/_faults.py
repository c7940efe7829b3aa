"""Fault injection for the sandbox: the ``Faults`` settings and the seeded decision maker.

Faults only ever apply to valid, authenticated write requests. Each such request gets one
draw from a ``random.Random`` seeded with ``Faults.seed``, so a given sequence of requests
meets the same faults on every run. Scripted faults (``fail_next`` / ``reset_next``) take
precedence over random ones and do not consume a draw.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

__all__ = ["FaultDecision", "FaultInjector", "Faults", "faults_from_mapping"]

_RATE_FIELDS: Final = (
    "rate_limit",
    "error_500",
    "error_502",
    "error_503",
    "reset",
    "commit_then_fail",
)


@dataclass(frozen=True)
class Faults:
    """How often the sandbox misbehaves, deterministically for a given ``seed``.

    Every rate is a share between 0 and 1 of valid write requests; together they may not
    exceed 1. ``latency`` (seconds) is added before every answer to a valid write, and
    ``retry_after`` (seconds) is what 429 and 503 answers ask the client to wait.
    """

    seed: int = 0
    latency: float = 0.0
    rate_limit: float = 0.0
    retry_after: float = 1.0
    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    reset: float = 0.0
    commit_then_fail: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"Faults.seed must be an int, got {type(self.seed).__name__}")
        for name in ("latency", "retry_after", *_RATE_FIELDS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Faults.{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Faults.{name} must be a finite number >= 0, got {value}")
        for name in _RATE_FIELDS:
            if getattr(self, name) > 1:
                raise ValueError(f"Faults.{name} is a share and must be <= 1")
        if self.total_rate > 1 + 1e-9:
            raise ValueError(f"the fault rates add up to {self.total_rate:g}, more than 1")

    @property
    def total_rate(self) -> float:
        """The share of valid writes that meet some fault."""
        return float(sum(getattr(self, name) for name in _RATE_FIELDS))

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (the same keys the constructor takes)."""
        return asdict(self)


def faults_from_mapping(data: object) -> Faults:
    """Build ``Faults`` from decoded JSON; raise ``ValueError`` with a readable message."""
    if not isinstance(data, dict):
        raise ValueError("faults: expected a JSON object")
    known = {f.name for f in fields(Faults)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"faults: unknown field(s) {', '.join(unknown)}; allowed: {sorted(known)}")
    try:
        return Faults(**data)
    except TypeError as exc:
        raise ValueError(f"faults: {exc}") from None


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one valid write request."""

    kind: Literal["status", "reset", "commit_then_fail"]
    status: int = 0
    retry_after: float | None = None


_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


class FaultInjector:
    """Thread-safe holder of the current ``Faults`` and of the scripted fault queue."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._script: deque[FaultDecision] = deque()

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the settings and re-seed the random source."""
        if not isinstance(faults, Faults):
            raise TypeError("set_faults() expects a Faults instance")
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def reset(self) -> None:
        """Forget scripted faults and start the random sequence again from the seed."""
        with self._lock:
            self._script.clear()
            self._rng = random.Random(self._faults.seed)

    def fail_next(self, status: int, count: int, retry_after: float | None) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        _check_count(count)
        if retry_after is not None and (
            isinstance(retry_after, bool) or not math.isfinite(retry_after) or retry_after < 0
        ):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        with self._lock:
            if retry_after is None and status in _RETRY_AFTER_STATUSES:
                retry_after = self._faults.retry_after
            decision = FaultDecision("status", status, retry_after)
            self._script.extend([decision] * count)

    def reset_next(self, count: int) -> None:
        _check_count(count)
        with self._lock:
            self._script.extend([FaultDecision("reset")] * count)

    def decide(self) -> tuple[float, FaultDecision | None]:
        """Latency to add and the fault (if any) for the next valid write."""
        with self._lock:
            faults = self._faults
            if self._script:
                return faults.latency, self._script.popleft()
            if faults.total_rate <= 0:
                return faults.latency, None
            draw = self._rng.random()
        edge = 0.0
        for name in _RATE_FIELDS:
            edge += getattr(faults, name)
            if draw < edge:
                return faults.latency, _decision_for(name, faults)
        return faults.latency, None


def _decision_for(name: str, faults: Faults) -> FaultDecision:
    if name == "rate_limit":
        return FaultDecision("status", 429, faults.retry_after)
    if name == "error_503":
        return FaultDecision("status", 503, faults.retry_after)
    if name in ("error_500", "error_502"):
        return FaultDecision("status", int(name[-3:]))
    if name == "reset":
        return FaultDecision("reset")
    return FaultDecision("commit_then_fail", 502)


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
