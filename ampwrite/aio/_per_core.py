"""What the asyncio driver keeps per Core (its thread pool, its connections): made at the
Core's first asyncio call that needs it, made anew in a forked child (which must not use its
parent's threads or sockets), and ended once, by `Core.close()` or when the Core is dropped
unclosed. A Core used after `close()` makes it again."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

from ..core import ON_CLOSE, Core

__all__ = ["PerCore"]

T = TypeVar("T")
_Entry: TypeAlias = "tuple[int, T, weakref.finalize[Any, Any]]"


class PerCore(Generic[T]):
    """`make(core)` once per Core and process; `end(value)` once, at the Core's close."""

    def __init__(self, make: Callable[[Core], T], end: Callable[[T], Any]) -> None:
        self._make = make
        self._end = end
        self._kept: weakref.WeakKeyDictionary[Core, _Entry[T]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        ON_CLOSE.append(self.release)
        if hasattr(os, "register_at_fork"):  # a thread of the parent may have held the lock
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def get(self, core: Core) -> T:
        pid = os.getpid()
        entry = self._kept.get(core)
        if entry is None or entry[0] != pid:
            with self._lock:
                entry = self._kept.get(core)
                if entry is None or entry[0] != pid:
                    value = self._make(core)
                    entry = (pid, value, weakref.finalize(core, self._end, value))
                    self._kept[core] = entry
        return entry[1]

    def release(self, core: Core) -> None:
        """End the Core's value, if it has one made in this process (a child's copy of its
        parent's is dropped, not ended: it is the parent's)."""
        with self._lock:
            entry = self._kept.pop(core, None)
        if entry is not None:
            if entry[0] == os.getpid():
                entry[2]()  # ends it, once
            else:
                entry[2].detach()
