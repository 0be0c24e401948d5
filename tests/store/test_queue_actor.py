"""The waiting room through the drop's actor, on both databases: a burst of joins committed in
one transaction, the draw and first admissions when the actor's one timer wakes at `startsAt`,
an unused admission lapsing on time, and a new registry (a restart) finding every ticket where
it was. The clock is a `ManualClock`: time moves only when the test advances it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sneakerd import errors
from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import ManualClock
from sneakerd.domain.commands import JoinQueue, Reserve
from sneakerd.domain.model import ReservationRecord
from sneakerd.domain.queue import QueueTicket
from sneakerd.domain.rules import Rejection
from sneakerd.store import Store
from tests.store.helpers import sql
from tests.store.test_actor import CLOCK, make_drop, make_users

HOLD_MS = 5_000


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2_000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_joins_draw_admit_lapse_and_survive_a_restart(store: Store) -> None:
    clock = ManualClock(CLOCK.now_ms())
    starts = clock.now_ms() + 10_000
    users = await make_users(store, 40)
    drop_id = await make_drop(store, 3, queue=True, starts_at=starts)
    registry = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=HOLD_MS)
    try:
        actor = await registry.get(drop_id)
        batches = actor.stats.batches
        tickets = await asyncio.gather(*(actor.ask(JoinQueue(u)) for u in users))
        assert all(isinstance(t, QueueTicket) and t.position is None for t in tickets)
        assert actor.stats.batches - batches < 5, "a burst of joins shares batches"
        [(rows,)] = await sql(
            store, "SELECT COUNT(*) FROM queue_tickets WHERE drop_id = %s", (drop_id,)
        )
        assert rows == 40

        clock.advance(10_000)  # startsAt: only the timer wakes the actor now
        await _until(lambda: actor.state is not None and actor.state.queue.active == 3, "admit")
        seen = {u: actor.ticket(u) for u in users}
        admitted = [u for u, t in seen.items() if t is not None and t.admitted]
        assert len(admitted) == 3
        waiting = [t for t in seen.values() if t is not None and not t.admitted and not t.done]
        assert sorted(t.position or 0 for t in waiting) == list(range(1, 38))
        assert all(seen[u].position == 1 for u in admitted)  # type: ignore[union-attr]
        [(stored,)] = await sql(
            store,
            "SELECT COUNT(*) FROM queue_tickets WHERE drop_id = %s AND admitted_at IS NOT NULL",
            (drop_id,),
        )
        assert stored == 3

        clock.advance(1_000)  # the hold outlives the admission that allowed it
        hold = await actor.ask(Reserve(admitted[0], admitted=True))
        assert isinstance(hold, ReservationRecord)
        refused = await actor.ask(Reserve(users[0] if users[0] not in admitted else users[-1]))
        assert isinstance(refused, Rejection) and refused.error is errors.NotAdmitted
        before = {u: actor.ticket(u) for u in users}
    finally:
        await registry.stop_all()

    # A restart: memory is gone, the database has every ticket, key and admission.
    again = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=HOLD_MS)
    try:
        actor = await again.get(drop_id)
        assert {u: actor.ticket(u) for u in users} == before
        # The two admissions not used lapse at their deadline; the holder keeps its turn.
        clock.advance(HOLD_MS - 1_000)
        await _until(
            lambda: sum(1 for u in users if (t := actor.ticket(u)) and t.admitted) == 3,
            "the next two admitted",
        )
        assert sum(1 for u in users if (t := actor.ticket(u)) and t.done) == 2
        still = actor.ticket(admitted[0])
        assert still is not None and still.admitted and not still.done
        [(done,)] = await sql(
            store,
            "SELECT COUNT(*) FROM queue_tickets WHERE drop_id = %s AND done_at IS NOT NULL",
            (drop_id,),
        )
        assert done == 2
    finally:
        await again.stop_all()
