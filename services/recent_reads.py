"""What a process read from the store, trusted for a while: a lookup on every request (an API
key, a station's existence, a poster's generation) would otherwise cost a store transaction
each time. A change made through this process clears what it touched at once; one made from
another process (the CLI) shows once the read is older than the time given."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentReads(Generic[K, V]):
    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._read: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        """The value read for `key`, if it was read less than `seconds` ago."""
        found = self._read.get(key)
        if found is None or self._monotonic() - found[1] >= self.seconds:
            return None
        return found[0]

    def put(self, key: K, value: V) -> None:
        if self.seconds > 0:
            self._read[key] = (value, self._monotonic())

    def forget(self, key: K | None = None) -> None:
        """Forget `key`, or everything."""
        if key is None:
            self._read = {}
        else:
            self._read.pop(key, None)
