"""The raffle's use cases: entering a draw, and reading the draw's public record.

Entering goes to the drop's actor like every write. Reading takes the drop's committed state
from its running actor where there is one (its entries and its draw order are in memory), else
the store, and recomputes the order from the stored seed: the draw is a pure function of the
seed and the entries (`domain.raffle`), so both ways give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sneakerd import errors
from sneakerd.domain.commands import Enter
from sneakerd.domain.model import Drop
from sneakerd.domain.raffle import EntryRecord, draw_order
from sneakerd.domain.rules import Rejection
from sneakerd.service import DropService


@dataclass(frozen=True, slots=True)
class RaffleRecord:
    """A raffle drop's public record: the drop (its proofs), its entry ids ascending, and its
    winners in draw order (None before the draw)."""

    drop: Drop
    entries: list[int]
    winners: list[int] | None


class RaffleService:
    def __init__(self, drops: DropService) -> None:
        self._drops = drops

    async def enter(self, user_id: int, drop_id: int) -> EntryRecord:
        actor = await self._drops.registry.get(drop_id)
        reply = await actor.ask(Enter(user_id))
        if isinstance(reply, Rejection):
            raise reply.to_error()
        if not isinstance(reply, EntryRecord):  # a bug, not a client error
            raise TypeError(f"expected an entry, the actor answered {reply!r}")
        return reply

    async def record(self, drop_id: int) -> RaffleRecord:
        """The draw's public record; raises `NotFound` (no such drop) or `NotARaffle`."""
        state = self._drops.committed_state(drop_id)
        if state is not None:
            drop = state.drop
            entries = sorted(state.entries.users)
            raffle = drop.raffle
            order = None if raffle is None or not raffle.drawn else state.entries.order(raffle.seed)
        else:
            found = await self._drops.store.get_drop(drop_id)
            if found is None:
                raise errors.NotFound("No such drop")
            drop = found
            raffle = drop.raffle
            entries = [] if raffle is None else await self._drops.store.entry_ids(drop_id)
            order = None if raffle is None or not raffle.drawn else draw_order(raffle.seed, entries)
        if raffle is None:
            raise errors.NotARaffle("This drop is not a raffle")
        winners = None if order is None else list(order[: raffle.winners])
        return RaffleRecord(drop, entries, winners)

    async def my_entry(self, user_id: int, drop_id: int) -> tuple[EntryRecord | None, RaffleRecord]:
        """A user's entry (None: not entered) and the record it is judged by; raises
        `NotFound` or `NotARaffle` as `record` does."""
        record = await self.record(drop_id)
        return await self._drops.store.entry_of(drop_id, user_id), record
