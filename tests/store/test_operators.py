"""Pause, the audit log and the buyer list against both databases, through the drop's actor.

An entry is a row of the write's own commit: a write that commits has exactly one, a write that
does not (a refused change, a commit another writer beat) has none. A paused drop keeps its
holds' deadlines: the expiry timer (driven on a `ManualClock`) still returns the unit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.cli.operator_commands import change_drop
from sneakerd.clock import ManualClock
from sneakerd.domain.audit import AuditAction
from sneakerd.domain.commands import DeleteDrop, Expire, Purchase, Reserve, UpdateDrop
from sneakerd.domain.events import DropUpdated
from sneakerd.domain.model import Drop, DropInfo, PurchaseRecord, ReservationRecord, Role
from sneakerd.domain.rules import Rejection
from sneakerd.store import Store
from tests.store.helpers import sql

START = 1_795_510_800_000
HOLD_MS = 60_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def registry(store: Store, clock: ManualClock) -> AsyncIterator[Registry]:
    reg = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=HOLD_MS)
    yield reg
    await reg.stop_all()


async def new_drop(store: Store, stock: int = 5, actor: str = "user:1") -> Drop:
    info = DropInfo(name="Dunk Low", price=Decimal("110.00"), per_user_limit=5, starts_at=0)
    return await store.create_drop(info, stock, START, actor)


async def test_create_writes_its_entry_with_the_row(store: Store) -> None:
    drop = await new_drop(store, actor="cli")
    page = await store.audit_entries(drop_id=drop.id)
    [record] = page.items
    entry = record.entry
    assert (entry.actor, entry.action, entry.drop_id, entry.at) == (
        "cli",
        AuditAction.CREATE,
        drop.id,
        START,
    )
    assert entry.before is None and entry.after is not None
    assert entry.after["initialStock"] == 5 and entry.after["paused"] is False
    unlogged = await store.create_drop(drop.info, 1, START)
    assert (await store.audit_entries(drop_id=unlogged.id)).items == []


async def test_every_change_through_the_actor_commits_one_entry(
    store: Store, registry: Registry
) -> None:
    drop = await new_drop(store)
    actor = await registry.get(drop.id)
    for update in (
        UpdateDrop(paused=True, actor="user:1"),
        UpdateDrop(paused=False, actor="user:1"),
        UpdateDrop(initial_stock=8, actor="user:2"),
        UpdateDrop(name="Renamed", actor="user:2"),
        UpdateDrop(initial_stock=0, actor="user:2"),  # fewer units is an update, not a restock
    ):
        assert isinstance(await actor.ask(update), Drop)
    assert await actor.ask(DeleteDrop(actor="user:3")) is None
    records = (await store.audit_entries(drop_id=drop.id)).items
    actions = [r.entry.action.value for r in reversed(records)]
    assert actions == ["create", "pause", "unpause", "restock", "update", "update", "delete"]
    delete, restock = records[0].entry, records[3].entry
    assert delete.after is None and delete.before is not None
    assert delete.before["name"] == "Renamed" and delete.before["initialStock"] == 0
    assert restock.before is not None and restock.after is not None
    assert (restock.before["initialStock"], restock.after["initialStock"]) == (5, 8)
    ids = [r.id for r in records]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


async def test_a_refused_change_leaves_no_entry(store: Store, registry: Registry) -> None:
    drop = await new_drop(store, stock=1)
    user = await store.create_user("ann", "ann@example.com", "x", Role.CUSTOMER, START)
    actor = await registry.get(drop.id)
    assert isinstance(await actor.ask(Reserve(user.id)), ReservationRecord)
    refused = await actor.ask(UpdateDrop(initial_stock=0, actor="user:1"))
    assert isinstance(refused, Rejection) and refused.error.code == "stock_below_committed"
    assert [r.entry.action for r in (await store.audit_entries(drop_id=drop.id)).items] == [
        AuditAction.CREATE
    ]


async def test_a_paused_drop_keeps_its_holds_and_they_still_expire(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    drop = await new_drop(store, stock=2)
    ann = await store.create_user("ann", "ann@example.com", "x", Role.CUSTOMER, START)
    bob = await store.create_user("bob", "bob@example.com", "x", Role.CUSTOMER, START)
    actor = await registry.get(drop.id)
    hold = await actor.ask(Reserve(ann.id))
    assert isinstance(hold, ReservationRecord)
    assert isinstance(await actor.ask(UpdateDrop(paused=True, actor="user:1")), Drop)

    for command in (Reserve(bob.id), Purchase(ann.id, hold.id, "ann")):
        reply = await actor.ask(command)
        assert isinstance(reply, Rejection) and reply.error.code == "drop_paused"
    refused = actor.refusal(bob.id)  # the early refusal, from the committed state
    assert refused is not None and refused.error.code == "drop_paused"
    kept = await store.get_reservation(hold.id)
    assert kept is not None and kept.status.value == "active"
    assert kept.expires_at == hold.expires_at

    assert clock.pending == 1, "the hold's timer is still armed"
    clock.advance(HOLD_MS - 1)
    assert isinstance(await actor.ask(Reserve(bob.id)), Rejection)  # a batch just before
    still = await store.get_reservation(hold.id)
    assert still is not None and still.status.value == "active"
    clock.advance(1)  # the deadline, while still paused: the timer's batch expires it
    await actor.ask(Expire(()))  # queued behind the timer's tick, so that batch has run
    expired = await store.get_reservation(hold.id)
    assert expired is not None and expired.status.value == "expired"
    stored = await store.get_drop(drop.id)
    assert stored is not None and stored.info.paused
    assert (stored.stock, stored.reserved, stored.sold) == (2, 0, 0)

    assert isinstance(await actor.ask(UpdateDrop(paused=False, actor="user:1")), Drop)
    again = await actor.ask(Reserve(bob.id))
    assert isinstance(again, ReservationRecord)
    assert isinstance(await actor.ask(Purchase(bob.id, again.id, "bob")), PurchaseRecord)


async def test_the_cli_write_is_version_checked_and_logged_as_cli(
    store: Store, registry: Registry
) -> None:
    drop = await new_drop(store)
    actor = await registry.get(drop.id)
    paused = await change_drop(store, drop.id, UpdateDrop(paused=True, actor="cli"), HOLD_MS)
    assert paused.info.paused and paused.version > drop.version
    # The server's actor had the old version: its next write is refused by the version check,
    # it reloads, and decides against the paused drop.
    user = await store.create_user("ann", "ann@example.com", "x", Role.CUSTOMER, START)
    reply = await actor.ask(Reserve(user.id))
    assert isinstance(reply, Rejection) and reply.error.code == "drop_paused"
    [latest, _] = (await store.audit_entries(drop_id=drop.id)).items
    assert (latest.entry.actor, latest.entry.action) == ("cli", AuditAction.PAUSE)


async def test_the_audit_log_pages_newest_first_and_filters_by_drop(store: Store) -> None:
    drops = [await new_drop(store) for _ in range(3)]
    first = await store.audit_entries(limit=2)
    assert [r.entry.drop_id for r in first.items] == [drops[2].id, drops[1].id]
    assert first.next is not None
    rest = await store.audit_entries(limit=2, after=first.next)
    assert [r.entry.drop_id for r in rest.items] == [drops[0].id] and rest.next is None
    only = await store.audit_entries(drop_id=drops[1].id)
    assert [r.entry.drop_id for r in only.items] == [drops[1].id]


async def test_buyers_are_every_purchase_with_its_buyer(store: Store, registry: Registry) -> None:
    drop = await new_drop(store, stock=5)
    other = await new_drop(store, stock=5)
    bought: list[PurchaseRecord] = []
    for n in range(3):
        user = await store.create_user(f"b{n}", f"b{n}@example.com", "x", Role.CUSTOMER, START)
        for target in (drop, other):
            actor = await registry.get(target.id)
            hold = await actor.ask(Reserve(user.id))
            assert isinstance(hold, ReservationRecord)
            purchase = await actor.ask(Purchase(user.id, hold.id, user.username))
            assert isinstance(purchase, PurchaseRecord)
            if target is drop:
                bought.append(purchase)
    first = await store.drop_buyers(drop.id, limit=2)
    assert first.next is not None
    rest = await store.drop_buyers(drop.id, limit=2, after=first.next)
    buyers = first.items + rest.items
    assert rest.next is None and len(buyers) == 3
    assert {b.purchase for b in buyers} == set(bought)
    rows = await sql(
        store,
        "SELECT p.id, u.id, u.username, u.email FROM purchases p "
        "JOIN users u ON u.id = p.user_id WHERE p.drop_id = %s",
        (drop.id,),
    )
    assert {(int(r[0]), int(r[1]), r[2], r[3]) for r in rows} == {
        (b.purchase.id, b.user_id, b.username, b.email) for b in buyers
    }


async def test_a_cli_unpause_reaches_a_running_actor_and_its_watchers(
    store: Store, clock: ManualClock
) -> None:
    sink = RecordingSink()
    registry = Registry(store=store, sink=sink, clock=clock, hold_ms=HOLD_MS)
    try:
        drop = await new_drop(store)
        user = await store.create_user("ann", "ann@example.com", "x", Role.CUSTOMER, START)
        actor = await registry.get(drop.id)
        await change_drop(store, drop.id, UpdateDrop(paused=True, actor="cli"), HOLD_MS)
        refused = await actor.ask(Reserve(user.id))  # found by the version check
        assert isinstance(refused, Rejection) and refused.error.code == "drop_paused"
        told = [e for e in sink.events if isinstance(e, DropUpdated)]
        assert [e.drop.info.paused for e in told] == [True], "watchers heard of the pause"

        await change_drop(store, drop.id, UpdateDrop(paused=False, actor="cli"), HOLD_MS)
        # Nothing this actor commits would find that write: a paused drop is read again, at
        # most once a second, before its early refusal is trusted.
        clock.advance(1_000)
        assert actor.refusal(user.id) is None
        assert isinstance(await actor.ask(Reserve(user.id)), ReservationRecord)
        told = [e for e in sink.events if isinstance(e, DropUpdated)]
        assert [e.drop.info.paused for e in told] == [True, False]
        assert told[-1].seq < max(e.seq for e in sink.events), "in seq order, before the hold"
    finally:
        await registry.stop_all()


async def test_a_paused_drop_is_read_again_at_most_once_a_second(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    drop = await new_drop(store)
    user = await store.create_user("ann", "ann@example.com", "x", Role.CUSTOMER, START)
    actor = await registry.get(drop.id)
    assert isinstance(await actor.ask(UpdateDrop(paused=True, actor="user:1")), Drop)
    assert actor.refusal(user.id) is None  # never checked yet: the batch reads it first
    await actor.ask(Reserve(user.id))
    for _ in range(3):  # within the second: the committed state answers, without a batch
        refused = actor.refusal(user.id)
        assert refused is not None and refused.error.code == "drop_paused"
        clock.advance(300)
    clock.advance(100)
    assert actor.refusal(user.id) is None
