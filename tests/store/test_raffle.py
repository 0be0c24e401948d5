"""A raffle drop through its actor, on both databases: entering, the digest, the draw, the
pass-down of an unclaimed win, and a restart between the close and the draw.

Every draw is checked against a recomputation written here with hashlib and hmac from the
published values only (never with sneakerd's own functions), as an outsider would do it. The
`ManualClock` drives the entry window and the holds; nothing sleeps for time to pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from sneakerd.actors.drop_actor import DropActor
from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import ManualClock, SystemClock
from sneakerd.domain.commands import Cancel, Enter, Purchase, Reserve, UpdateDrop
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropMode,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
)
from sneakerd.domain.outcome import Changes
from sneakerd.domain.raffle import EntryRecord
from sneakerd.domain.rules import Rejection
from sneakerd.errors import VersionConflict
from sneakerd.raffle_service import RaffleService
from sneakerd.raffle_views import proofs
from sneakerd.service import DropService
from sneakerd.store import Store, open_store
from tests.store.helpers import sql

OPEN_IN = 1_000
CLOSE_IN = 5_000
CLAIM = 600


def recompute(seed_hex: str, entries: list[int], stock: int) -> tuple[str, str, list[int]]:
    """(commitment, digest, the first `stock` of the draw order) from the public values."""
    seed = bytes.fromhex(seed_hex)
    commitment = hashlib.sha256(seed).hexdigest()
    digest = hashlib.sha256("\n".join(str(i) for i in sorted(entries)).encode()).hexdigest()

    def key(entry_id: int) -> str:
        return hmac.new(seed, str(entry_id).encode(), hashlib.sha256).hexdigest()

    return commitment, digest, sorted(entries, key=key)[:stock]


async def _until(done: Callable[[], bool], what: str) -> None:
    """Let the loop run until `done()` (the clock stands still: this waits for work only)."""
    for _ in range(5_000):
        if done():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{what} never happened")


async def _users(store: Store, n: int, now: int) -> list[int]:
    return [
        (await store.create_user(f"r{i}", f"r{i}@example.com", "x", Role.CUSTOMER, now)).id
        for i in range(n)
    ]


async def _raffle(store: Store, clock: ManualClock, stock: int) -> Drop:
    now = clock.now_ms()
    info = DropInfo(
        name="Air Max 1 'Raffle'",
        price=Decimal("150.00"),
        starts_at=now,
        mode=DropMode.RAFFLE,
        entries_open_at=now + OPEN_IN,
        entries_close_at=now + CLOSE_IN,
        claim_seconds=CLAIM,
    )
    return await store.create_drop(info, stock, now)


def _drawn(actor: DropActor) -> Callable[[], bool]:
    def done() -> bool:
        state = actor.state
        return bool(state and state.drop.raffle and state.drop.raffle.drawn)

    return done


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(SystemClock().now_ms())


@pytest.fixture
async def registry(store: Store, clock: ManualClock) -> AsyncIterator[Registry]:
    reg = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    yield reg
    await reg.stop_all()


async def test_the_draw_matches_a_recomputation_from_the_published_values(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    users = await _users(store, 12, clock.now_ms())
    drop = await _raffle(store, clock, stock=3)
    actor = await registry.get(drop.id)
    early = await actor.ask(Enter(users[0]))
    assert isinstance(early, Rejection) and early.error.code == "entries_not_open"
    shown = proofs(drop, clock.now_ms())
    assert shown is not None and shown["seedCommitment"] is None, "not before entriesOpenAt"

    clock.advance(OPEN_IN)
    entries = [await actor.ask(Enter(u)) for u in users]
    assert all(isinstance(e, EntryRecord) for e in entries)
    again = await actor.ask(Enter(users[0]))
    assert isinstance(again, Rejection) and again.error.code == "already_entered"
    held = await actor.ask(Reserve(users[1]))
    assert isinstance(held, Rejection) and held.error.code == "raffle_only"
    stored = await store.get_drop(drop.id)
    assert stored is not None and stored.raffle is not None
    commitment = proofs(stored, clock.now_ms())
    assert commitment is not None and commitment["seed"] is None, "the seed stays secret"

    clock.advance(CLOSE_IN - OPEN_IN)
    await _until(_drawn(actor), "the draw")
    record = await RaffleService(DropService(store=store, registry=registry, clock=clock)).record(
        drop.id
    )
    public = proofs(record.drop, clock.now_ms())
    assert public is not None
    ids = [e.id for e in entries if isinstance(e, EntryRecord)]
    assert record.entries == sorted(ids)
    expected = recompute(public["seed"], record.entries, 3)
    assert (public["seedCommitment"], public["entriesDigest"], record.winners) == expected
    assert public["seedCommitment"] == commitment["seedCommitment"], "the seed did not change"

    # Each winner holds a real reservation of claimSeconds; the purchase path buys it.
    by_entry = {e.id: e.user_id for e in entries if isinstance(e, EntryRecord)}
    assert actor.state is not None
    holds = {h.user_id: (rid, h) for rid, h in actor.state.holds.items()}
    assert set(holds) == {by_entry[w] for w in expected[2]}
    drawn_at = record.drop.raffle.drawn_at if record.drop.raffle else None
    assert all(h.expires_at == drawn_at + CLAIM * 1000 for _, h in holds.values() if drawn_at)
    winner = by_entry[expected[2][0]]
    bought = await actor.ask(Purchase(winner, holds[winner][0], f"r{users.index(winner)}"))
    assert isinstance(bought, PurchaseRecord)
    after = await store.get_drop(drop.id)
    assert after is not None and (after.stock, after.reserved, after.sold) == (0, 2, 1)
    assert await store.check(clock.now_ms()) == []


async def test_no_entry_is_added_after_the_digest_by_the_actor_nor_by_the_store(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    users = await _users(store, 3, clock.now_ms())
    drop = await _raffle(store, clock, stock=1)
    actor = await registry.get(drop.id)
    clock.advance(OPEN_IN)
    assert isinstance(await actor.ask(Enter(users[0])), EntryRecord)
    clock.advance(CLOSE_IN - OPEN_IN)
    await _until(_drawn(actor), "the draw")
    late = await actor.ask(Enter(users[1]))
    assert isinstance(late, Rejection) and late.error.code == "entries_closed"

    # A batch that still believes the entries open (its drop has no digest), at the version
    # the database is at: the store refuses it and writes nothing.
    committed = await store.get_drop(drop.id)
    assert committed is not None and committed.raffle is not None
    assert committed.raffle.digest is not None
    believed = dataclasses.replace(
        committed,
        version=committed.version + 1,
        raffle=dataclasses.replace(committed.raffle, digest=None, drawn_at=None),
    )
    forged = Changes(
        drop=believed,
        expected_version=committed.version,
        new_reservations=(),
        status_changes=(),
        new_purchases=(),
        new_entries=(EntryRecord(9_999_999, drop.id, users[2], clock.now_ms()),),
    )
    with pytest.raises(VersionConflict):
        await store.commit(forged)
    assert await store.entry_ids(drop.id) == sorted(
        e.id for e in [await store.entry_of(drop.id, users[0])] if e is not None
    )
    again = await store.get_drop(drop.id)
    assert again == committed


async def test_an_unclaimed_win_passes_to_the_next_entry_in_draw_order(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    users = await _users(store, 5, clock.now_ms())
    drop = await _raffle(store, clock, stock=2)
    actor = await registry.get(drop.id)
    clock.advance(OPEN_IN)
    entries = [await actor.ask(Enter(u)) for u in users]
    by_entry = {e.id: e.user_id for e in entries if isinstance(e, EntryRecord)}
    clock.advance(CLOSE_IN - OPEN_IN)
    await _until(_drawn(actor), "the draw")
    seed = await sql(store, "SELECT raffle_seed FROM drops WHERE id = %s", (drop.id,))
    _, _, order = recompute(seed[0][0], list(by_entry), 5)
    service = RaffleService(DropService(store=store, registry=registry, clock=clock))
    assert (await service.record(drop.id)).winners == order[:2]

    def hold_of(user_id: int) -> int:
        assert actor.state is not None
        return next(rid for rid, h in actor.state.holds.items() if h.user_id == user_id)

    # The first winner cancels a little later: the third in order gets a hold at once.
    clock.advance(100)
    first = by_entry[order[0]]
    cancelled = await actor.ask(Cancel(first, hold_of(first)))
    assert isinstance(cancelled, ReservationRecord)
    assert cancelled.status is ReservationStatus.CANCELLED
    assert (await service.record(drop.id)).winners == order[:3]
    third = hold_of(by_entry[order[2]])

    # The second winner lets the claim time run out: the fourth gets a hold.
    clock.advance(CLAIM * 1000 - 100)
    fourth = by_entry[order[3]]
    await _until(
        lambda: bool(actor.state and fourth in {h.user_id for h in actor.state.holds.values()}),
        "the pass-down of the lapsed win",
    )
    assert (await service.record(drop.id)).winners == order[:4]
    [(status,)] = await sql(store, "SELECT status FROM reservations WHERE id = %s", (third,))
    assert status == "active", "the third's own claim time runs from its own hold"
    stored = await store.get_drop(drop.id)
    assert stored is not None and stored.raffle is not None and stored.raffle.winners == 4
    assert await store.check(clock.now_ms()) == []


async def test_a_restart_between_the_digest_and_the_draw_draws_the_same(
    store_url: str, store: Store, clock: ManualClock
) -> None:
    users = await _users(store, 8, clock.now_ms())
    drop = await _raffle(store, clock, stock=3)
    slow = Registry(
        store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000, draw_delay_ms=3_600_000
    )
    actor = await slow.get(drop.id)
    clock.advance(OPEN_IN)
    for u in users:
        assert isinstance(await actor.ask(Enter(u)), EntryRecord)
    clock.advance(CLOSE_IN - OPEN_IN)
    await _until(
        lambda: bool(actor.state and actor.state.drop.raffle and actor.state.drop.raffle.digest),
        "the digest",
    )
    before = await store.get_drop(drop.id)
    assert before is not None and before.raffle is not None and not before.raffle.drawn
    await slow.stop_all()  # the process "dies" after the digest, before the draw

    fresh = await open_store(store_url)
    revived = Registry(store=fresh, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    try:
        await revived.start()
        actor = await revived.get(drop.id)
        await _until(_drawn(actor), "the draw after the restart")
        service = RaffleService(DropService(store=fresh, registry=revived, clock=clock))
        record = await service.record(drop.id)
        raffle = record.drop.raffle
        assert raffle is not None and before.raffle is not None
        assert (raffle.seed, raffle.digest) == (before.raffle.seed, before.raffle.digest)
        expected = recompute(raffle.seed.hex(), record.entries, 3)
        assert (raffle.commitment, raffle.digest, record.winners) == expected
    finally:
        await revived.stop_all()
        await fresh.close()


async def test_what_an_admin_may_change_about_a_raffle(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    [user] = await _users(store, 1, clock.now_ms())
    plain = await store.create_drop(
        DropInfo(name="Dunk", price=Decimal("99"), starts_at=clock.now_ms()), 2, clock.now_ms()
    )
    assert plain.raffle is None
    now = clock.now_ms()
    becomes = UpdateDrop(
        mode=DropMode.RAFFLE,
        entries_open_at=now,
        entries_close_at=now + CLOSE_IN,
        seed=bytes(range(32)),
    )
    changed = await (await registry.get(plain.id)).ask(becomes)
    assert isinstance(changed, Drop) and changed.raffle is not None
    assert changed.raffle.seed == bytes(range(32))
    actor = await registry.get(plain.id)
    assert isinstance(await actor.ask(Enter(user)), EntryRecord)
    back = await actor.ask(UpdateDrop(mode=DropMode.FCFS))
    assert isinstance(back, Rejection) and back.field == "mode"
    backwards = await actor.ask(UpdateDrop(entries_close_at=now - 1))
    assert isinstance(backwards, Rejection) and backwards.field == "entriesCloseAt"
    clock.advance(CLOSE_IN)
    await _until(_drawn(actor), "the draw")
    moved = await actor.ask(UpdateDrop(entries_close_at=now + 2 * CLOSE_IN))
    assert isinstance(moved, Rejection) and moved.field == "entriesCloseAt"
