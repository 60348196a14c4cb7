"""Failure counting state behind a small interface, so it can later live in Redis (a fleet of
mail servers sharing counts) or be keyed by network prefix (address pools taking turns).

The in-memory store keeps failures in time buckets: an address lives in the bucket of its latest
failure, and expiring old failures drops whole buckets, which is O(1) per failure and keeps the
memory per tracked address small (a dict slot, the address string and one float for the common
single-failure case).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Protocol

log = logging.getLogger("logban.counts")


class CountStore(Protocol):
    def add(self, key: str, ts: float) -> int:
        """Record a failure at ``ts``; return how many fall within the window ending at the
        newest failure of ``key`` (lines may arrive out of time order)."""

    def forget(self, key: str) -> None:
        """Drop all failures of ``key`` (it was banned)."""

    def count(self, key: str, now: float) -> int:
        """Failures of ``key`` within the window ending at ``now``."""

    def expire(self, now: float) -> int:
        """Drop failures older than the window; return how many keys were dropped."""

    def __len__(self) -> int: ...

    def items(self) -> "Iterator[tuple[str, tuple[float, ...]]]":
        """Every key with its failure times (to save at a clean stop)."""

    def restore(self, key: str, times: tuple[float, ...]) -> None:
        """Put back saved failure times (at start)."""

    def times(self, key: str) -> tuple[float, ...] | None:
        """The failure times kept for ``key``, or None when it has none."""


Times = float | tuple[float, ...]


class MemoryCounts:
    """Sliding-window counts per key, bounded in time (the window) and in size (``cap``).

    When ``cap`` keys are tracked, the oldest bucket is dropped early: the policy under a flood of
    distinct addresses is to forget the stalest single failures first, and it is logged.
    """

    def __init__(self, window: float, keep: int, cap: int = 1_000_000, buckets: int = 4) -> None:
        self.window = window
        self.keep = max(1, keep)  # only the latest ``keep`` times matter (maxretry)
        self.cap = cap
        self.width = max(1.0, window / buckets)
        self._buckets: dict[int, dict[str, Times]] = {}
        self._size = 0
        self.dropped_for_cap = 0

    def __len__(self) -> int:
        return self._size

    def _find(self, key: str) -> tuple[int, Times] | None:
        for b, d in self._buckets.items():
            v = d.get(key)
            if v is not None:
                return b, v
        return None

    def add(self, key: str, ts: float) -> int:
        found = self._find(key)
        start = ts - self.window
        if found is None:
            times: tuple[float, ...] = (ts,)
            bucket = int(ts // self.width)
        else:
            old_bucket, v = found
            del self._buckets[old_bucket][key]
            self._size -= 1
            prev = (v,) if isinstance(v, float) else v
            times = tuple(t for t in prev if t >= start) + (ts,)
            times = tuple(sorted(times)[-self.keep:])
            bucket = max(old_bucket, int(times[-1] // self.width))
        d = self._buckets.get(bucket)
        if d is None:
            d = self._buckets[bucket] = {}
        d[key] = times[0] if len(times) == 1 else times
        self._size += 1
        if self._size > self.cap:
            self._drop_oldest()
        # Within the window ending at the newest failure, not at ``ts``: lines of two sources
        # reach us out of time order, and a later failure already seen still counts.
        return sum(1 for t in times if t >= times[-1] - self.window)

    def count(self, key: str, now: float) -> int:
        found = self._find(key)
        if found is None:
            return 0
        v = found[1]
        times = (v,) if isinstance(v, float) else v
        return sum(1 for t in times if t >= now - self.window)

    def forget(self, key: str) -> None:
        found = self._find(key)
        if found is not None:
            del self._buckets[found[0]][key]
            self._size -= 1

    def expire(self, now: float) -> int:
        # A bucket whose newest possible time is older than the window is wholly stale.
        limit = math.floor((now - self.window) / self.width)
        dropped = 0
        for b in [b for b in self._buckets if b < limit]:
            dropped += len(self._buckets.pop(b))
        self._size -= dropped
        return dropped

    def _drop_oldest(self) -> None:
        b = min(self._buckets)
        n = len(self._buckets.pop(b))
        self._size -= n
        self.dropped_for_cap += n
        log.warning("tracking more than %d addresses: forgot the %d oldest single failures "
                    "(raise max_tracked to keep more)", self.cap, n)

    def keys(self) -> list[str]:
        return [k for d in self._buckets.values() for k in d]

    def items(self) -> Iterator[tuple[str, tuple[float, ...]]]:
        for d in self._buckets.values():
            for k, v in d.items():
                yield k, ((v,) if isinstance(v, float) else v)

    def restore(self, key: str, times: tuple[float, ...]) -> None:
        for t in sorted(times)[-self.keep:]:
            self.add(key, float(t))

    def times(self, key: str) -> tuple[float, ...] | None:
        found = self._find(key)
        if found is None:
            return None
        v = found[1]
        return (v,) if isinstance(v, float) else v
