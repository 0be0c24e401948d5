"""What a node knows of the drops other nodes own: their last committed state, from the bus.

A node that does not own a drop still answers the refusals that the drop's committed state
already decides (ended, not started, sold out, deleted) without forwarding: in a burst at a
sold-out drop nearly every request is one, and the owner should not pay for them. The state
comes from the database once (the first time the node meets the drop), then from the events
every owner publishes after each commit: `stockUpdate`'s counts and `dropUpdated`'s drop, kept
only when their seq is newer. When the bus reports a gap for a drop the entry is dropped, and
read again from the database next time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sneakerd import errors
from sneakerd.domain.events import DropDeleted, DropEvent, DropUpdated, StockChanged
from sneakerd.domain.model import Drop
from sneakerd.domain.rules import PAUSED, Rejection, reserve_refusal
from sneakerd.store import Store


class CommittedDrops:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._drops: dict[int, Drop] = {}

    async def load(self, drop_id: int) -> None:
        """Read the drop once, if this node has no state of it yet (best effort)."""
        if drop_id in self._drops:
            return
        try:
            drop = await self._store.get_drop(drop_id)
        except errors.Unavailable:
            return
        if drop is not None:
            self._put(drop)

    def refusal(self, drop_id: int, now: int) -> Rejection | None:
        """A reserve's refusal that the drop's last committed state decides for every user;
        None when it might succeed (or when this node knows nothing of the drop)."""
        drop = self._drops.get(drop_id)
        if drop is None:
            return None
        # A user with no hold and no purchase: only refusals that hold for everyone. A pause
        # is left to the owner, whose actor reads a paused drop again (`actors.pause_check`):
        # refused here, a pause lifted by the operator CLI would never reach it.
        refused = reserve_refusal(drop, drop.stock, 0, now, 0)
        return None if refused is PAUSED else refused

    def observe(self, events: Sequence[DropEvent]) -> None:
        """Keep what the events say of drops this node already follows."""
        for event in events:
            known = self._drops.get(event.drop_id)
            if known is None or event.seq <= known.version:
                continue
            if isinstance(event, StockChanged):
                self._drops[event.drop_id] = dataclasses.replace(
                    known,
                    stock=event.stock,
                    reserved=event.reserved,
                    sold=event.sold,
                    version=event.seq,
                )
            elif isinstance(event, DropUpdated):
                self._put(event.drop)  # the drop as its batch left it (its last version)
            elif isinstance(event, DropDeleted):
                self._put(dataclasses.replace(known, deleted=True, version=event.seq))

    def forget(self, drop_id: int) -> None:
        """The bus missed events of this drop: read it again before trusting it."""
        self._drops.pop(drop_id, None)

    def _put(self, drop: Drop) -> None:
        known = self._drops.get(drop.id)
        if known is None or drop.version >= known.version:
            self._drops[drop.id] = drop
