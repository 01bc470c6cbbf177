"""A small bounded memo shared by an API process's request threads.

What a player asks for again and again (a finished document's timeline, a
chapter's layout) is immutable once made, so each process keeps the last few
it made, least recently used out first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most ``size`` values by key; thread-safe.

    Threads missing the same key at once wait for one make (a player asks
    for three chapters of a book at once: its timeline, 20 MB of JSON for
    *Moby-Dick*, is parsed once, not three times); a make holds only its own
    key's lock, so one slow make blocks no other key.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a memo holds at least one value, not {size}")
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[K, threading.Lock] = {}

    def get(self, key: K) -> V | None:
        """Return the value kept for ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key``, dropping the least recently used beyond ``size``."""
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """Return the value kept for ``key``, making and keeping it if there is none."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        try:
            with making:
                value = self.get(key)  # made by the thread this one waited for
                return value if value is not None else self.put(key, make())
        finally:
            with self._lock:
                if self._making.get(key) is making and not making.locked():
                    del self._making[key]

    def drop(self, key: K) -> None:
        """Forget ``key``'s value, if kept."""
        with self._lock:
            self._values.pop(key, None)
