"""When each hold expires, kept as cheaply as possible.

One `loop.call_at` handle per hold leaves tens of thousands of live handles in a burst and makes
full GC passes slow (docs/DESIGN.md). Each drop keeps instead its (deadline, reservation id)
pairs in two `array('q')` columns, which the garbage collector never walks, sorted by deadline,
and its actor arms a single timer for the earliest one. Every hold of a drop lasts as long, so
deadlines arrive in order and a push is an append; one that does not (holds recovered after
RESERVATION_DURATION changed) is inserted in place. Holds that were bought or cancelled stay
until their deadline and are ignored then, so the queue is bounded by the holds made within one
hold period.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable

_COMPACT_AT = 4096
"""Popped entries at the front that make it worth shifting the columns down (at least half of
them must be popped, so each entry is moved at most once on average)."""


class DeadlineQueue:
    __slots__ = ("_deadlines", "_head", "_ids")

    def __init__(self, items: Iterable[tuple[int, int]] = ()) -> None:
        pairs = sorted(items)
        self._deadlines = array("q", (d for d, _ in pairs))
        self._ids = array("q", (r for _, r in pairs))
        self._head = 0

    def push(self, deadline: int, reservation_id: int) -> None:
        deadlines = self._deadlines
        if len(deadlines) == self._head or deadlines[-1] <= deadline:
            deadlines.append(deadline)
            self._ids.append(reservation_id)
            return
        at = bisect.bisect_right(deadlines, deadline, lo=self._head)
        deadlines.insert(at, deadline)
        self._ids.insert(at, reservation_id)

    def next_deadline(self) -> int | None:
        return self._deadlines[self._head] if len(self._deadlines) > self._head else None

    def pop_due(self, now: int) -> tuple[int, ...]:
        """Remove and return the ids of every entry whose deadline is at or before `now`."""
        deadlines, start = self._deadlines, self._head
        end = bisect.bisect_right(deadlines, now, lo=start)
        if end == start:
            return ()
        due = tuple(self._ids[start:end])
        self._head = end
        if end == len(deadlines) or (end >= _COMPACT_AT and 2 * end >= len(deadlines)):
            del deadlines[:end]
            del self._ids[:end]
            self._head = 0
        return due
