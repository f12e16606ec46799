"""A heap of deadlines with lazy cancellation, for the sans-I/O engine.

Theory of operation: every protocol timer (group timer, source timer, the next general
query, the other-querier-present timer...) is a *deadline*, an absolute time in the
same clock the caller passes as ``now``. :class:`DeadlineHeap` maps a hashable key to its
current deadline and keeps a binary heap of ``(deadline, seq, key)`` entries to find the
earliest one in O(log n). Re-arming or cancelling a key does not search the heap: the
old entry stays and is skipped when it reaches the top, because it no longer matches
the key's current deadline ("lazy cancel"). Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from itertools import count


class DeadlineHeap:
    """Keyed deadlines: schedule, cancel, pop the due ones, peek at the earliest."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, float] = {}
        self._seq = count()

    def schedule(self, key: Hashable, deadline: float) -> None:
        """Arm (or re-arm) ``key`` to fire at ``deadline``."""
        if self._current.get(key) == deadline:
            return
        self._current[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._current):
            self._compact()

    def cancel(self, key: Hashable) -> None:
        self._current.pop(key, None)

    def deadline(self, key: Hashable) -> float | None:
        return self._current.get(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._current

    def __len__(self) -> int:
        return len(self._current)

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None when nothing is armed."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Hashable]:
        """Remove and return the keys whose deadline is at or before ``now``, earliest first."""
        due: list[Hashable] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return due
            _, _, key = heapq.heappop(self._heap)
            del self._current[key]
            due.append(key)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._current.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._current.get(e[2]) == e[0]]
        heapq.heapify(self._heap)
