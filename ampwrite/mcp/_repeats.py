"""The repeat guard: a model that lost track, or retried a tool call on its own, sends the same
create again, and each one writes the records once more. The server remembers the creates it
sent (or may have sent) for a while, by a fingerprint of their arguments, and refuses an
identical one unless the call says `allowRepeat: true`.

Only creates are guarded (an update or a delete sent twice ends where one would). A create
that was refused before anything was written (invalid, 429, ...) is forgotten, so it can be
sent again as it is; one still in flight counts, so two identical calls made at once write once.
"""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

__all__ = ["DEFAULT_REPEAT_WINDOW", "Earlier", "RecentCreates", "fingerprint"]

DEFAULT_REPEAT_WINDOW: Final = 600.0
"""Seconds during which an identical create is refused (`--repeat-window`)."""
MAX_REMEMBERED: Final = 4096


class Earlier(NamedTuple):
    """What became of an earlier identical create: `summary` is what its call answered (or
    that it is still in flight), `at` when it was sent (the guard's clock)."""

    summary: Mapping[str, Any]
    at: float


def fingerprint(arguments: Mapping[str, Any]) -> str | None:
    """A digest of a call's arguments (None when they are no JSON, which the checks refuse)."""
    try:
        text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RecentCreates:
    """The creates sent in the last `window` seconds, by fingerprint (at most
    `MAX_REMEMBERED`, the oldest forgotten first)."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self.window = window
        self._clock = clock
        self._sent: collections.OrderedDict[str, Earlier] = collections.OrderedDict()

    def _prune(self, now: float) -> None:
        while self._sent:
            oldest = next(iter(self._sent.values()))
            if now - oldest.at <= self.window and len(self._sent) <= MAX_REMEMBERED:
                return
            self._sent.popitem(last=False)

    def earlier(self, key: str) -> Earlier | None:
        """The earlier identical create, if one was sent within the window."""
        self._prune(self._clock())
        return self._sent.get(key)

    def sending(self, key: str) -> None:
        self._sent[key] = Earlier({"outcome": "in flight"}, self._clock())
        self._sent.move_to_end(key)

    def settled(self, key: str, summary: Mapping[str, Any] | None) -> None:
        """Record what the create's call answered; None: nothing was written, forget it."""
        entry = self._sent.get(key)
        if entry is None:
            return
        if summary is None:
            del self._sent[key]
        else:
            self._sent[key] = Earlier(summary, entry.at)

    def age(self, earlier: Earlier) -> float:
        return max(0.0, self._clock() - earlier.at)
