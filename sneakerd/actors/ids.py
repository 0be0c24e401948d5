"""Ids for new reservations and purchases, taken from durable blocks so deciding never waits.

Each actor keeps its own pool and tops it up before a batch (`ensure`), so the decision code can
take ids synchronously. A block that a crash leaves unused is just a gap in the id sequence.
"""

from __future__ import annotations

from sneakerd.store import Store

BLOCK = 256


class IdPool:
    __slots__ = ("_kind", "_next", "_stop", "_store")

    def __init__(self, store: Store, kind: str) -> None:
        self._store = store
        self._kind = kind
        self._next = 0
        self._stop = 0

    @property
    def available(self) -> int:
        return self._stop - self._next

    async def ensure(self, count: int) -> None:
        """Make sure `count` ids can be taken without I/O; raises `Unavailable` if it cannot."""
        if self.available >= count:
            return
        size = max(BLOCK, count)
        first = await self._store.allocate_ids(self._kind, size)
        self._next, self._stop = first, first + size

    def take(self) -> int:
        if self._next >= self._stop:
            raise RuntimeError(f"id pool for {self._kind} is empty: ensure() was not awaited")
        self._next += 1
        return self._next - 1


class ActorIds:
    """The `Ids` a `DropBook` takes: a reservation pool and a purchase pool."""

    __slots__ = ("entries", "purchases", "reservations")

    def __init__(self, store: Store) -> None:
        self.reservations = IdPool(store, "reservations")
        self.purchases = IdPool(store, "purchases")
        self.entries = IdPool(store, "raffle_entries")

    def reservation(self) -> int:
        return self.reservations.take()

    def purchase(self) -> int:
        return self.purchases.take()

    def entry(self) -> int:
        return self.entries.take()
