"""When each hold expires, kept as cheaply as possible.

One `loop.call_at` handle per hold leaves tens of thousands of live handles in a burst and makes
full GC passes slow (docs/DESIGN.md). Each drop keeps instead a heap of (deadline, reservation id)
pairs of plain ints and its actor arms a single timer for the earliest one. Holds that were
bought or cancelled stay in the heap until their deadline and are ignored then; the heap is
therefore bounded by the holds made within one hold period.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class DeadlineQueue:
    __slots__ = ("_heap",)

    def __init__(self, items: Iterable[tuple[int, int]] = ()) -> None:
        self._heap = list(items)
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, deadline: int, reservation_id: int) -> None:
        heapq.heappush(self._heap, (deadline, reservation_id))

    def next_deadline(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int) -> tuple[int, ...]:
        """Remove and return the ids of every entry whose deadline is at or before `now`."""
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[1])
        return tuple(due)
