"""The drop actor against real databases: races, expiry timing, recovery, failed commits.

The timer tests drive a `ManualClock`: time moves only when a test advances it, so a deadline
is checked to the millisecond and no test sleeps for a hold to run out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from sneakerd import errors
from sneakerd.actors.drop_actor import DropActor
from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import ManualClock, SystemClock
from sneakerd.domain.commands import Cancel, DeleteDrop, Purchase, RequestKey, Reserve
from sneakerd.domain.events import Expired, Reserved, StockChanged, is_side
from sneakerd.domain.model import DropInfo, PurchaseRecord, ReservationRecord, Role
from sneakerd.domain.rules import Rejection
from sneakerd.service import DropService
from sneakerd.store import Store, open_store
from tests.store.helpers import sql

CLOCK = SystemClock()


async def make_users(store: Store, n: int) -> list[int]:
    now = CLOCK.now_ms()
    return [
        (await store.create_user(f"u{i}", f"u{i}@example.com", "x", Role.CUSTOMER, now)).id
        for i in range(n)
    ]


async def make_drop(store: Store, stock: int, **info: object) -> int:
    drop = await store.create_drop(
        DropInfo(name="Dunk Low", price=Decimal("110.00"), **info),  # type: ignore[arg-type]
        stock,
        CLOCK.now_ms(),
    )
    return drop.id


@pytest.fixture
async def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def registry(store: Store, sink: RecordingSink) -> AsyncIterator[Registry]:
    reg = Registry(store=store, sink=sink, clock=CLOCK, hold_ms=60_000)
    yield reg
    await reg.stop_all()


async def test_a_thousand_racing_users_get_exactly_the_stock(
    store: Store, registry: Registry, sink: RecordingSink
) -> None:
    users = await make_users(store, 1000)
    drop_id = await make_drop(store, 100)
    actor = await registry.get(drop_id)
    replies = await asyncio.gather(*(actor.ask(Reserve(u)) for u in users))
    held = [r for r in replies if isinstance(r, ReservationRecord)]
    refused = Counter(r.error.code for r in replies if isinstance(r, Rejection))
    assert len(held) == 100 and refused == {"out_of_stock": 900}
    assert len({r.id for r in held}) == 100 and len({r.user_id for r in held}) == 100
    # The database agrees, row by row.
    drop = await store.get_drop(drop_id)
    assert drop is not None and (drop.stock, drop.reserved, drop.sold) == (0, 100, 0)
    [(active,)] = await sql(
        store,
        "SELECT COUNT(*) FROM reservations WHERE drop_id = %s AND status = 'active'",
        (drop_id,),
    )
    assert active == 100
    assert await store.check(CLOCK.now_ms()) == []
    assert actor.stats.max_batch_size > 1, "racing callers should share batches"
    # Events went out after the commits, and the last one shows the final stock.
    stock_events = [e for e in sink.events if isinstance(e, StockChanged)]
    assert stock_events[-1].stock == 0 and stock_events[-1].seq == drop.version
    seqs = [e.seq for e in sink.events]
    numbered = [e.seq for e in sink.events if not is_side(e)]
    assert seqs == sorted(seqs) and len(set(numbered)) == len(numbered)
    # Each hold made is also said by a side event, which carries its batch's seq.
    assert sum(isinstance(e, Reserved) for e in sink.events) == 100
    assert {e.seq for e in sink.events if is_side(e)} <= set(numbered)


async def test_a_hold_expires_on_time_and_its_unit_is_back_in_the_database(
    store: Store, sink: RecordingSink
) -> None:
    clock = ManualClock(CLOCK.now_ms())
    [user] = await make_users(store, 1)
    drop_id = await make_drop(store, 1)
    registry = Registry(store=store, sink=sink, clock=clock, hold_ms=300)
    try:
        actor = await registry.get(drop_id)
        hold = await actor.ask(Reserve(user))
        assert isinstance(hold, ReservationRecord) and hold.expires_at == clock.now_ms() + 300
        assert clock.pending == 1, "the actor keeps one timer, for its earliest hold"
        clock.advance(299)
        # A batch a millisecond before the deadline leaves the hold alone.
        assert isinstance(await actor.ask(Cancel(user, 999_999)), Rejection)
        drop = await store.get_drop(drop_id)
        assert drop is not None and drop.stock == 0
        clock.advance(1)  # the deadline: only the timer wakes the actor now
        await _until(lambda: any(isinstance(e, Expired) for e in sink.events), "the expiry")
        # Published after the commit, so the database has it already.
        drop = await store.get_drop(drop_id)
        assert drop is not None and (drop.stock, drop.reserved) == (1, 0)
        record = await store.get_reservation(hold.id)
        assert record is not None and record.status.value == "expired"
        assert next(e for e in sink.events if isinstance(e, Expired)).reservation_id == hold.id
        assert actor.stats.expiry_lags_ms == [0], "committed at its deadline"
        assert clock.pending == 0, "no hold left, no timer"
    finally:
        await registry.stop_all()


async def test_a_new_registry_recovers_every_hold_with_its_deadline(
    store_url: str, store: Store
) -> None:
    clock = ManualClock(CLOCK.now_ms())
    users = await make_users(store, 30)
    drop_id = await make_drop(store, 50, per_user_limit=2)
    short = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=400)
    actor = await short.get(drop_id)
    early = [await actor.ask(Reserve(u)) for u in users[:10]]
    await short.stop_all()  # the process "dies": its memory is gone, the database stays
    assert clock.pending == 0, "a stopped actor leaves no timer behind"
    clock.advance(100)
    long = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    actor = await long.get(drop_id)
    late = [await actor.ask(Reserve(u)) for u in users[10:]]
    await long.stop_all()
    holds = {r.id: r.expires_at for r in early + late if isinstance(r, ReservationRecord)}
    assert len(holds) == 30

    # A fresh store connection and registry: nothing shared with the ones above.
    fresh_store = await open_store(store_url)
    revived = Registry(store=fresh_store, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    try:
        await revived.start()
        assert revived.recovered
        actor = await revived.get(drop_id)
        assert actor.state is not None
        recovered = {rid: h.expires_at for rid, h in actor.state.holds.items()}
        assert recovered == holds, "every hold, with its deadline"
        clock.advance(300)  # the short holds' deadline: their timer fires
        await _until(lambda: actor.stats.expired == 10, "the short holds' expiry")
        drop = await fresh_store.get_drop(drop_id)
        assert drop is not None and (drop.stock, drop.reserved) == (30, 20)
        assert set(actor.state.holds) == {r.id for r in late if isinstance(r, ReservationRecord)}
        assert await fresh_store.check(clock.now_ms()) == []
    finally:
        await revived.stop_all()
        await fresh_store.close()


async def test_holds_that_fell_due_while_no_actor_ran_expire_as_it_starts(store: Store) -> None:
    clock = ManualClock(CLOCK.now_ms())
    users = await make_users(store, 3)
    drop_id = await make_drop(store, 5)
    first = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=1_000)
    actor = await first.get(drop_id)
    holds = [await actor.ask(Reserve(u)) for u in users]
    await first.stop_all()
    clock.advance(1_000)
    second = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=1_000)
    try:
        await second.start()
        actor = await second.get(drop_id)
        await _until(lambda: actor.stats.expired == 3, "the overdue holds' expiry")
        drop = await store.get_drop(drop_id)
        assert drop is not None and (drop.stock, drop.reserved) == (5, 0)
        for hold in holds:
            assert isinstance(hold, ReservationRecord)
            record = await store.get_reservation(hold.id)
            assert record is not None and record.status.value == "expired"
    finally:
        await second.stop_all()


async def test_an_expiry_whose_commit_failed_is_retried_half_a_second_later(
    store_url: str, store: Store
) -> None:
    clock = ManualClock(CLOCK.now_ms())
    [user] = await make_users(store, 1)
    drop_id = await make_drop(store, 1)
    registry = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=300)
    try:
        actor = await registry.get(drop_id)
        assert isinstance(await actor.ask(Reserve(user)), ReservationRecord)
        async with _broken(store_url, store):
            clock.advance(300)
            await _until(lambda: actor.stats.failures == 1, "the failed expiry commit")
        assert actor.stats.expired == 0 and clock.pending == 1, "a retry is armed"
        clock.advance(499)
        assert clock.pending == 1 and actor.mailbox_depth == 0, "the retry is not due yet"
        clock.advance(1)
        assert clock.pending == 0, "the retry fired"
        await _until(lambda: actor.stats.expired == 1, "the retried expiry")
        drop = await store.get_drop(drop_id)
        assert drop is not None and (drop.stock, drop.reserved) == (1, 0)
        assert await store.check(clock.now_ms()) == []
    finally:
        await registry.stop_all()


async def _until(done: Callable[[], bool], what: str) -> None:
    """Let the loop run (the actor commits on it) until `done()`; the ManualClock stands still,
    so this waits for work to finish, never for time to pass."""
    for _ in range(5_000):
        if done():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{what} never happened")


async def test_a_commit_that_fails_midway_changes_nothing(
    store: Store, registry: Registry, sink: RecordingSink
) -> None:
    """The next reservation id is already taken, so the INSERT fails after the UPDATE ran."""
    [user, other] = await make_users(store, 2)
    drop_id = await make_drop(store, 5)
    other_drop = await make_drop(store, 1)
    next_id = await _occupy_next_reservation_id(store, other_drop, other)
    actor = await registry.get(drop_id)
    before_db = await store.get_drop(drop_id)
    assert actor.state is not None
    before_memory = actor.state.copy()
    with pytest.raises(errors.Unavailable):
        await actor.ask(Reserve(user))
    assert await store.get_drop(drop_id) == before_db
    assert actor.state == before_memory
    assert sink.events == []
    assert await sql(store, "SELECT id FROM reservations WHERE drop_id = %s", (drop_id,)) == []
    # The actor reloads and serves the next request correctly.
    hold = await actor.ask(Reserve(user))
    assert isinstance(hold, ReservationRecord) and hold.id != next_id
    assert await store.check(CLOCK.now_ms()) == []


async def test_a_broken_connection_answers_unavailable_and_changes_nothing(
    store_url: str, store: Store, registry: Registry, sink: RecordingSink
) -> None:
    [user, other] = await make_users(store, 2)
    drop_id = await make_drop(store, 5)
    actor = await registry.get(drop_id)
    first = await actor.ask(Reserve(user))  # warm up
    assert isinstance(first, ReservationRecord)
    assert actor.state is not None
    before_db, before_memory = await store.get_drop(drop_id), actor.state.copy()
    events = len(sink.events)
    async with _broken(store_url, store):
        with pytest.raises(errors.Unavailable):
            await actor.ask(Reserve(other))
    assert await store.get_drop(drop_id) == before_db
    assert actor.state == before_memory and len(sink.events) == events
    # Once the database is back, requests are decided on what really committed.
    assert isinstance(await actor.ask(Reserve(other)), ReservationRecord)
    reply = await actor.ask(Reserve(user))
    assert isinstance(reply, Rejection) and reply.error is errors.LimitReached
    assert await store.check(CLOCK.now_ms()) == []


async def test_a_second_writer_is_caught_by_the_version_check(
    store: Store, registry: Registry
) -> None:
    users = await make_users(store, 4)
    drop_id = await make_drop(store, 2)
    actor = await registry.get(drop_id)
    assert isinstance(await actor.ask(Reserve(users[0])), ReservationRecord)
    # An operator restocks by hand, bumping the version as the schema asks. The actor's memory
    # still says one unit is left; its next commit finds the version moved and reloads.
    await sql(
        store,
        "UPDATE drops SET initial_stock = initial_stock + 2, stock = stock + 2, "
        "version = version + 1 WHERE id = %s",
        (drop_id,),
    )
    replies = await asyncio.gather(*(actor.ask(Reserve(u)) for u in users[1:]))
    assert all(isinstance(r, ReservationRecord) for r in replies), replies
    assert actor.stats.conflicts >= 1
    drop = await store.get_drop(drop_id)
    assert drop is not None and (drop.initial_stock, drop.stock, drop.reserved) == (4, 0, 4)
    assert actor.state is not None and actor.state.drop == drop
    assert await store.check(CLOCK.now_ms()) == []


async def test_service_rules_end_to_end(store: Store, registry: Registry) -> None:
    [ana, bob] = await make_users(store, 2)
    service = DropService(store=store, registry=registry, clock=CLOCK)
    drop_id = await make_drop(store, 3, per_user_limit=2)
    hold = await service.reserve(ana, drop_id)
    with pytest.raises(errors.NotFound):
        await service.purchase(bob, "u1", hold.id)  # a stranger's reservation does not exist
    purchase, created = await service.purchase(ana, "u0", hold.id)
    assert created and purchase.price == Decimal("110.00")
    again, created = await service.purchase(ana, "u0", hold.id)
    assert again == purchase and not created
    with pytest.raises(errors.ReservationNotActive):
        await service.cancel(ana, hold.id)
    second = await service.reserve(ana, drop_id)
    with pytest.raises(errors.LimitReached):
        await service.reserve(ana, drop_id)
    cancelled = await service.cancel(ana, second.id)
    assert cancelled.status.value == "cancelled"
    with pytest.raises(errors.ReservationNotActive):
        await service.purchase(ana, "u0", second.id)
    with pytest.raises(errors.DropHasSales):
        await service.delete_drop(drop_id)
    with pytest.raises(errors.StockBelowCommitted):
        from sneakerd.domain.commands import UpdateDrop

        await service.update_drop(drop_id, UpdateDrop(initial_stock=0))
    with pytest.raises(errors.NotFound):
        await service.reserve(ana, 999_999)
    assert await store.check(CLOCK.now_ms()) == []


async def _occupy_next_reservation_id(store: Store, drop_id: int, user_id: int) -> int:
    """Write a (cancelled) reservation under the id the next actor to start will hand out
    first, so that actor's first INSERT fails after its UPDATE ran. Actors take their first
    block of ids as they start, and the block begins at `id_blocks.next_id`."""
    [(next_id,)] = await sql(store, "SELECT next_id FROM id_blocks WHERE name = 'reservations'")
    await sql(
        store,
        "INSERT INTO reservations (id, drop_id, user_id, status, expires_at, created_at) "
        "VALUES (%s, %s, %s, 'cancelled', %s, %s)",
        (next_id, drop_id, user_id, *(_time(store, CLOCK.now_ms()),) * 2),
    )
    return int(next_id)


def _time(store: Store, value: int) -> object:
    from tests.store.helpers import ms

    return ms(store, value)


class _broken:
    """Break the store's write path for real: kill MySQL's connections, lock SQLite's file."""

    def __init__(self, url: str, store: Store) -> None:
        self.url, self.store = url, store

    async def __aenter__(self) -> None:
        if self.url.startswith("mysql"):
            from tests.conftest import _admin_connection

            ids = await self.store.connection_ids()  # type: ignore[attr-defined]
            conn = _admin_connection()
            with conn.cursor() as cur:
                for cid in ids:
                    cur.execute(f"KILL {cid}")
            conn.close()
            self._lock = None
        else:
            import sqlite3

            await self.store._writer.execute_fetchall("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]
            self._lock = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=1)
            self._lock.execute("BEGIN EXCLUSIVE")

    async def __aexit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            await self.store._writer.execute_fetchall("PRAGMA busy_timeout = 5000")  # type: ignore[attr-defined]


async def test_delete_cancels_holds_in_the_database(store: Store, registry: Registry) -> None:
    users = await make_users(store, 3)
    service = DropService(store=store, registry=registry, clock=CLOCK)
    drop_id = await make_drop(store, 5)
    holds = [await service.reserve(u, drop_id) for u in users]
    await service.delete_drop(drop_id)
    assert await store.get_drop(drop_id) is None
    for hold in holds:
        record = await store.get_reservation(hold.id)
        assert record is not None and record.status.value == "cancelled"
    with pytest.raises(errors.NotFound):
        await service.reserve(users[0], drop_id)
    with pytest.raises(errors.NotFound):
        await service.delete_drop(drop_id)
    assert await store.check(CLOCK.now_ms()) == []


async def test_the_sale_window_through_the_actor(store: Store, registry: Registry) -> None:
    [user] = await make_users(store, 1)
    service = DropService(store=store, registry=registry, clock=CLOCK)
    now = CLOCK.now_ms()
    upcoming = await make_drop(store, 5, starts_at=now + 3_600_000)
    ended = await make_drop(store, 5, starts_at=now - 7_200_000, ends_at=now - 3_600_000)
    with pytest.raises(errors.DropNotLive):
        await service.reserve(user, upcoming)
    with pytest.raises(errors.DropEnded):
        await service.reserve(user, ended)


async def test_stop_answers_everything_queued_then_refuses(store: Store) -> None:
    users = await make_users(store, 50)
    drop_id = await make_drop(store, 20)
    registry = Registry(store=store, sink=RecordingSink(), clock=CLOCK, hold_ms=60_000)
    actor = await registry.get(drop_id)
    pending = [asyncio.ensure_future(actor.ask(Reserve(u))) for u in users]
    await registry.stop_all()
    replies = await asyncio.gather(*pending)
    assert sum(isinstance(r, ReservationRecord) for r in replies) == 20
    with pytest.raises(errors.ActorStopped):
        await actor.ask(Reserve(users[0]))
    with pytest.raises(errors.ActorStopped):
        await registry.get(drop_id)
    drop = await store.get_drop(drop_id)
    assert drop is not None and drop.reserved == 20


async def test_concurrent_first_use_starts_one_actor(store: Store, registry: Registry) -> None:
    drop_id = await make_drop(store, 1)
    actors = await asyncio.gather(*(registry.get(drop_id) for _ in range(20)))
    assert len({id(a) for a in actors}) == 1
    with pytest.raises(errors.NotFound):
        await registry.get(123_456)


async def test_a_keyed_success_is_recorded_in_the_same_commit_as_its_act(
    store: Store, registry: Registry
) -> None:
    """Idempotency-Key: the key row and the hold (or sale) it made commit together, so a crash
    between them cannot exist; when the commit fails, neither is there."""

    [user, other] = await make_users(store, 2)
    drop_id = await make_drop(store, 5, per_user_limit=3)
    actor = await registry.get(drop_id)
    reserve_key = RequestKey("POST /api/reservations", "k-1")
    hold = await actor.ask(Reserve(user, reserve_key))
    assert isinstance(hold, ReservationRecord)
    kept = await store.idempotent_answer(user, reserve_key.key)
    # The store knows no HTTP: a success recorded with its act has no status (the web layer
    # answers it as the success it was).
    assert kept is not None and (kept.status, kept.ref_id) == (None, hold.id)
    buy_key = RequestKey("POST /api/purchases", "k-1b")
    bought = await actor.ask(Purchase(user, hold.id, "u0", buy_key))
    assert isinstance(bought, PurchaseRecord)
    kept = await store.idempotent_answer(user, buy_key.key)
    assert kept is not None and (kept.status, kept.ref_id) == (None, hold.id)
    # A refusal records nothing in the batch (the web layer saves it: it changed nothing).
    await sql(
        store,
        "UPDATE drops SET per_user_limit = 1, version = version + 1 WHERE id = %s",
        (drop_id,),
    )
    refused = await actor.ask(Reserve(user, RequestKey("POST /api/reservations", "k-2")))
    assert isinstance(refused, Rejection)
    assert await store.idempotent_answer(user, "k-2") is None
    # A commit that fails midway (the next reservation id is taken) leaves no key behind.
    fresh_drop = await make_drop(store, 5)
    await _occupy_next_reservation_id(store, drop_id, other)
    fresh = await registry.get(fresh_drop)
    with pytest.raises(errors.Unavailable):
        await fresh.ask(Reserve(other, RequestKey("POST /api/reservations", "k-3")))
    assert await store.idempotent_answer(other, "k-3") is None
    assert await store.check(CLOCK.now_ms()) == []


async def test_a_refusal_is_read_from_the_committed_state_without_queueing(
    store: Store, registry: Registry
) -> None:
    """What the edge may answer without the actor: only refusals, and only from a state
    that is known to be the database's."""
    users = await make_users(store, 3)
    drop_id = await make_drop(store, 1, per_user_limit=1)
    actor = await registry.get(drop_id)
    assert actor.refusal(users[0]) is None  # might succeed: only the batch decides
    assert isinstance(await actor.ask(Reserve(users[0])), ReservationRecord)
    limit, sold_out = actor.refusal(users[0]), actor.refusal(users[1])
    assert limit is not None and limit.error is errors.LimitReached
    assert sold_out is not None and sold_out.error is errors.OutOfStock
    batches = actor.stats.batches
    assert actor.refusal(users[2]) is not None and actor.stats.batches == batches
    # After a failure the memory may be behind the database: no early answers until reloaded.
    actor._stale = True
    assert actor.refusal(users[1]) is None


class _CountingIds:
    """The real store, with its id allocations counted by kind."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.allocations: Counter[str] = Counter()

    async def allocate_ids(self, kind: str, count: int) -> int:
        self.allocations[kind] += 1
        return await self._store.allocate_ids(kind, count)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


async def test_a_drop_that_can_sell_takes_its_id_blocks_before_its_first_shopper(
    store: Store, sink: RecordingSink
) -> None:
    counting = _CountingIds(store)
    registry = Registry(store=counting, sink=sink, clock=CLOCK, hold_ms=60_000)  # type: ignore[arg-type]
    service = DropService(store=counting, registry=registry, clock=CLOCK)  # type: ignore[arg-type]
    try:
        [ana] = await make_users(store, 1)
        drop_id = await make_drop(store, 5)
        await registry.get(drop_id)  # started, and holding its blocks already
        assert counting.allocations == {"reservations": 1, "purchases": 1}
        hold = await service.reserve(ana, drop_id)
        await service.purchase(ana, "u0", hold.id)
        assert counting.allocations == {"reservations": 1, "purchases": 1}
    finally:
        await registry.stop_all()


@pytest.mark.parametrize("kind", ["ended", "sold out"])
async def test_a_drop_that_cannot_sell_takes_no_ids(
    store: Store, sink: RecordingSink, kind: str
) -> None:
    counting = _CountingIds(store)
    registry = Registry(store=counting, sink=sink, clock=CLOCK, hold_ms=60_000)  # type: ignore[arg-type]
    try:
        now = CLOCK.now_ms()
        if kind == "ended":
            drop_id = await make_drop(store, 5, starts_at=now - 60_000, ends_at=now - 1_000)
        else:
            drop_id = await make_drop(store, 0)
        actor = await registry.get(drop_id)
        # A cancel of a hold that is not there takes no ids either.
        reply = await actor.ask(Cancel(user_id=1, reservation_id=999_999))
        assert isinstance(reply, Rejection)
        assert counting.allocations == {}
    finally:
        await registry.stop_all()


async def test_one_callers_conflicting_row_fails_only_that_caller(
    store: Store, registry: Registry, sink: RecordingSink
) -> None:
    """A batch whose commit is refused for one caller's row (here a key row that another
    process already wrote) is decided again without it: everyone else in the batch gets their
    hold, and only that caller is refused, with nothing of theirs written."""
    users = await make_users(store, 41)
    attacker, shoppers = users[0], users[1:]
    drop_id = await make_drop(store, 100)
    actor = await registry.get(drop_id)
    await sql(
        store,
        "INSERT INTO idempotency_keys (user_id, idem_key, request, fingerprint, status_code, "
        "body, created_at) VALUES (%s, 'taken', 'POST /api/reservations', '', 409, '{}', %s)",
        (attacker, _time(store, CLOCK.now_ms())),
    )
    # Hold the actor inside a commit so every ask below lands in one batch.
    gate = await actor.ask(Reserve(shoppers[0]))
    assert isinstance(gate, ReservationRecord)
    asks = [actor.ask(Reserve(u)) for u in shoppers[1:20]]
    asks.append(actor.ask(Reserve(attacker, RequestKey("POST /api/reservations", "taken"))))
    asks += [actor.ask(Reserve(u)) for u in shoppers[20:]]
    replies = await asyncio.gather(*asks, return_exceptions=True)
    mine = replies[19]
    others = replies[:19] + replies[20:]
    assert isinstance(mine, errors.Unavailable), mine
    assert all(isinstance(r, ReservationRecord) for r in others), others
    assert actor.stats.row_conflicts >= 1
    rows = await sql(
        store,
        "SELECT COUNT(*) FROM reservations WHERE drop_id = %s AND user_id = %s",
        (drop_id, attacker),
    )
    assert rows[0][0] == 0
    drop = await store.get_drop(drop_id)
    assert drop is not None and drop.reserved == 40
    assert await store.check(CLOCK.now_ms()) == []


async def test_one_callers_row_without_its_parent_fails_only_that_caller(
    store: Store, registry: Registry
) -> None:
    """The same for a row whose parent is missing (here a user the database does not have,
    which the HTTP edge refuses first, but nothing else does): the others get their holds."""
    shoppers = await make_users(store, 20)
    drop_id = await make_drop(store, 100)
    actor = await registry.get(drop_id)
    gate = await actor.ask(Reserve(shoppers[0]))
    assert isinstance(gate, ReservationRecord)
    ghost = max(shoppers) + 1_000
    asks = [actor.ask(Reserve(u)) for u in shoppers[1:10]]
    asks.append(actor.ask(Reserve(ghost)))
    asks += [actor.ask(Reserve(u)) for u in shoppers[10:]]
    replies = await asyncio.gather(*asks, return_exceptions=True)
    assert isinstance(replies[9], errors.RowRefused), replies[9]
    others = replies[:9] + replies[10:]
    assert all(isinstance(r, ReservationRecord) for r in others), others
    drop = await store.get_drop(drop_id)
    assert drop is not None and drop.reserved == 20
    assert await store.check(CLOCK.now_ms()) == []


async def test_two_commands_with_one_key_in_one_batch_refuse_the_second(
    store: Store, registry: Registry
) -> None:
    [user, other] = await make_users(store, 2)
    drop_id = await make_drop(store, 10, per_user_limit=5)
    actor = await registry.get(drop_id)
    key = RequestKey("POST /api/reservations", "twin")
    replies = await asyncio.gather(
        actor.ask(Reserve(user, key)), actor.ask(Reserve(user, key)), actor.ask(Reserve(other))
    )
    assert isinstance(replies[0], ReservationRecord)
    assert isinstance(replies[1], Rejection) and replies[1].error is errors.RequestInProgress
    assert isinstance(replies[2], ReservationRecord)


async def test_a_deleted_drops_actor_is_let_go_in_one_place(
    store: Store, registry: Registry
) -> None:
    [user] = await make_users(store, 1)
    drop_id = await make_drop(store, 5)
    actor = await registry.get(drop_id)
    assert isinstance(await actor.ask(Reserve(user)), ReservationRecord)
    assert await actor.ask(DeleteDrop()) is None
    assert not actor.running
    assert drop_id not in [a.drop_id for a in registry.running()]
    with pytest.raises(errors.NotFound):
        await registry.get(drop_id)


class Answers:
    """A `ReplyTo` that keeps each answer with the drop's committed `reserved` at that moment
    (the actor moves its memory only once the commit returned)."""

    def __init__(self, actor: DropActor) -> None:
        self._actor = actor
        self.got: list[tuple[object, int]] = []

    def done(self) -> bool:
        return False  # the actor answers each envelope once; keep every answer it gives

    def set_result(self, result: object, /) -> None:
        state = self._actor.state
        assert state is not None
        self.got.append((result, state.drop.reserved))

    def set_exception(self, exception: BaseException, /) -> None:
        self.got.append((exception, -1))


async def test_posted_and_asked_commands_share_batches_and_are_answered_after_the_commit(
    store: Store, registry: Registry
) -> None:
    users = await make_users(store, 30)
    drop_id = await make_drop(store, 20)
    await registry.get(drop_id)
    actor = registry.running_here(drop_id)
    assert actor is not None
    answers = Answers(actor)
    for u in users[:15]:
        actor.post(Reserve(u), answers)
    asked = await asyncio.gather(*(actor.ask(Reserve(u)) for u in users[15:]))
    # Posted first, so decided in the same batch as the asks or before: answered already.
    assert len(answers.got) == 15
    posted_holds = [(r, seen) for r, seen in answers.got if isinstance(r, ReservationRecord)]
    holds = len(posted_holds) + sum(isinstance(r, ReservationRecord) for r in asked)
    assert holds == 20  # one writer decided both kinds: exactly the stock
    assert all(seen >= 1 for _, seen in posted_holds)  # each answered after its commit
    drop = await store.get_drop(drop_id)
    assert drop is not None and drop.reserved == 20
    await registry.stop_all()
    assert registry.running_here(drop_id) is None
    with pytest.raises(errors.ActorStopped):
        actor.post(Reserve(users[0]), answers)


async def test_a_timer_batch_refused_for_a_row_comes_back_for_its_due_holds(
    store: Store, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that only the timer started (here the expiry of one hold) whose commit is
    refused for a row gives its due holds back to the deadline queue; the actor must come
    back for them on its own, since no caller's message may ever arrive to wake it."""
    clock = ManualClock(CLOCK.now_ms())
    [user] = await make_users(store, 1)
    drop_id = await make_drop(store, 1)
    registry = Registry(store=store, sink=sink, clock=clock, hold_ms=300)
    commit = store.commit
    refused: list[object] = []

    async def refuse_the_first_expiry(changes: Any) -> None:
        if changes.status_changes and not refused:
            refused.append(changes)
            raise errors.RowConflict("a row of the expiry batch")
        await commit(changes)

    try:
        actor = await registry.get(drop_id)
        hold = await actor.ask(Reserve(user))
        assert isinstance(hold, ReservationRecord)
        monkeypatch.setattr(store, "commit", refuse_the_first_expiry)
        clock.advance(300)
        await _until(lambda: bool(refused), "the refused expiry")
        await _until(lambda: actor.stats.row_conflicts == 1, "the conflict handled")
        clock.advance(1_000)  # no caller comes: only the actor's own timer can retry
        await _until(lambda: any(isinstance(e, Expired) for e in sink.events), "the expiry")
        record = await store.get_reservation(hold.id)
        assert record is not None and record.status.value == "expired"
        assert await store.check(clock.now_ms()) == []
    finally:
        await registry.stop_all()
