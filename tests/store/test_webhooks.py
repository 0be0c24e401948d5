"""Webhooks on both databases: the outbox written with its batch, registrations, fan-out,
per-drop order, the retry schedule (driven by a ManualClock), dead deliveries and replay.

Deliveries go to a real receiver on loopback; the deliverer is driven pass by pass
(`run_once`), so time moves only when a test advances the clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from loadtest.receiver import Receiver
from sneakerd import errors
from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import ManualClock
from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import Purchase, Reserve
from sneakerd.domain.model import DropInfo, ReservationRecord, Role
from sneakerd.store import Store
from sneakerd.webhooks.deliverer import Deliverer
from sneakerd.webhooks.pacing import Pacer
from sneakerd.webhooks.registrations import register
from sneakerd.webhooks.schedule import RetryPolicy
from tests.store.helpers import sql
from tests.unit.test_book_stateful import CountingIds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ms=time.time_ns() // 1_000_000)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def registry(store: Store, clock: ManualClock) -> AsyncIterator[Registry]:
    reg = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    yield reg
    await reg.stop_all()


async def _users(store: Store, n: int, now: int) -> list[int]:
    return [
        (await store.create_user(f"w{i}", f"w{i}@example.com", "x", Role.CUSTOMER, now)).id
        for i in range(n)
    ]


async def _drop(store: Store, stock: int, now: int) -> int:
    info = DropInfo(name="Hook", price=Decimal("50.00"), starts_at=now - 1, per_user_limit=10)
    return (await store.create_drop(info, stock, now)).id


async def _events(store: Store, drop_id: int | None = None) -> list[tuple[Any, ...]]:
    where = "" if drop_id is None else f" WHERE drop_id = {int(drop_id)}"
    rows = await sql(
        store, f"SELECT id, drop_id, type, data FROM webhook_events{where} ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def _pass(deliverer: Deliverer) -> None:
    await deliverer.run_once()
    await deliverer.wait_idle()


async def test_no_webhook_no_outbox_rows(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    [user] = await _users(store, 1, clock.now_ms())
    drop_id = await _drop(store, 2, clock.now_ms())
    assert not await store.webhooks.refresh()
    await (await registry.get(drop_id)).ask(Reserve(user))
    assert await _events(store) == []


async def test_events_are_written_with_their_batch(
    store: Store, registry: Registry, clock: ManualClock
) -> None:
    now = clock.now_ms()
    [ana, bob] = await _users(store, 2, now)
    drop_id = await _drop(store, 2, now)
    await register(store.webhooks, "http://127.0.0.1:9/x", [], now)
    actor = await registry.get(drop_id)
    hold = await actor.ask(Reserve(ana))
    assert isinstance(hold, ReservationRecord)
    await actor.ask(Purchase(ana, hold.id, "w0"))
    await actor.ask(Reserve(bob))  # the last unit: sold out
    rows = await _events(store, drop_id)
    assert [r[2] for r in rows] == [
        "reservation.created",
        "purchase.completed",
        "reservation.created",
        "drop.sold_out",
    ]
    created = json.loads(rows[0][3])["reservation"]
    assert (created["id"], created["status"], created["userId"]) == (hold.id, "active", ana)
    bought = json.loads(rows[1][3])["purchase"]
    assert (bought["reservationId"], bought["price"]) == (hold.id, "50.00")
    drop = json.loads(rows[3][3])["drop"]
    assert (drop["stock"], drop["reserved"], drop["sold"], drop["status"]) == (0, 1, 1, "sold_out")


async def test_a_batch_that_does_not_commit_writes_no_event(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now_ms()
    [ana] = await _users(store, 1, now)
    drop_id = await _drop(store, 3, now)
    await register(store.webhooks, "http://127.0.0.1:9/x", [], now)
    state = await store.load_state(drop_id)
    assert state is not None
    book = DropBook(state, now=now, hold_ms=60_000, ids=CountingIds(), outbox=True)
    book.reserve(Reserve(ana))
    changes = book.finish().changes
    assert changes is not None and len(changes.outbox) == 1
    await sql(store, "UPDATE drops SET version = version + 1 WHERE id = %s", (drop_id,))
    with pytest.raises(errors.VersionConflict):
        await store.commit(changes)
    assert await _events(store) == []


async def test_delivered_once_answered_2xx_signed_and_in_order(
    store: Store, registry: Registry, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now_ms()
    users = await _users(store, 3, now)
    drop_id = await _drop(store, 10, now)
    hook, secret = await register(store.webhooks, receiver.url, [], now)
    receiver.secret = secret
    actor = await registry.get(drop_id)
    for user in users:
        await actor.ask(Reserve(user))
    deliverer = Deliverer(store.webhooks, clock, RetryPolicy(), rand=lambda: 1.0)
    deliverer.open()
    try:
        for _ in range(3):  # one event per (webhook, drop) at a time: three passes
            await _pass(deliverer)
    finally:
        await deliverer.stop()
    assert [r.type for r in receiver.got] == ["reservation.created"] * 3
    assert all(r.signed for r in receiver.got)
    ids = [r.event_id for r in receiver.got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    payload = receiver.got[0].payload
    assert set(payload) == {"id", "type", "createdAt", "data"}
    page = await store.webhooks.deliveries()
    assert {(d.state, d.attempts, d.webhook_id) for d in page.items} == {("delivered", 1, hook.id)}


async def test_a_pass_that_read_before_a_lane_landed_does_not_send_its_event_again(
    store: Store,
    registry: Registry,
    clock: ManualClock,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass reads the due deliveries while a lane for the same (webhook, drop) is still in
    flight; the lane records its delivery and lands before the read comes back. What the read
    saw is stale: the pass must not start a second lane that sends the event again."""
    now = clock.now_ms()
    [ana] = await _users(store, 1, now)
    drop_id = await _drop(store, 5, now)
    _, receiver.secret = await register(store.webhooks, receiver.url, [], now)
    await (await registry.get(drop_id)).ask(Reserve(ana))
    rows = store.webhooks
    deliverer = Deliverer(rows, clock, RetryPolicy(), rand=lambda: 1.0)
    real_due, real_record = rows.due, rows.record_delivered
    read = asyncio.Event()
    calls = 0

    async def due(drop_ids: Any, at: int, limit: int = 256) -> Any:
        nonlocal calls
        calls += 1
        found = await real_due(drop_ids, at, limit)
        if calls == 2:  # the second pass: its read is done, now let the lane land
            read.set()
            await deliverer.wait_idle()
        return found

    async def record_delivered(sent: Any, *, started: int, now: int) -> None:
        await read.wait()  # the lane records only after the second pass has read
        await real_record(sent, started=started, now=now)

    monkeypatch.setattr(rows, "due", due)
    monkeypatch.setattr(rows, "record_delivered", record_delivered)
    deliverer.open()
    try:
        await deliverer.run_once()  # starts the lane
        await _pass(deliverer)  # reads while the lane is in flight
        await _pass(deliverer)
    finally:
        await deliverer.stop()
    assert [r.event_id for r in receiver.got] == [(await _events(store))[0][0]]


async def test_failures_back_off_then_die_and_replay_starts_again(
    store: Store, registry: Registry, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now_ms()
    [ana] = await _users(store, 1, now)
    drop_id = await _drop(store, 5, now)
    _, receiver.secret = await register(store.webhooks, receiver.url, [], now)
    await (await registry.get(drop_id)).ask(Reserve(ana))
    await (await registry.get(drop_id)).ask(Reserve(ana))  # a second event waits behind it
    receiver.answer = lambda _event: 503
    policy = RetryPolicy(base_ms=1_000, cap_ms=8_000, retry_for_ms=20_000)
    deliverer = Deliverer(store.webhooks, clock, policy, rand=lambda: 1.0)
    deliverer.open()
    try:
        await _pass(deliverer)
        [first] = (await store.webhooks.deliveries(state="pending")).items[-1:]
        assert (first.attempts, first.last_status, first.last_error) == (1, 503, "HTTP 503")
        assert first.next_attempt_at == clock.now_ms() + 1_000  # the first ceiling, jitter 1.0
        await _pass(deliverer)  # not due yet: nothing sent
        assert len(receiver.got) == 1
        waits = []
        while (await store.webhooks.deliveries(state="dead")).items == []:
            row = min((await store.webhooks.deliveries(state="pending")).items, key=lambda d: d.id)
            waits.append(row.next_attempt_at - clock.now_ms())
            clock.advance(row.next_attempt_at - clock.now_ms())
            await _pass(deliverer)
        assert waits == [1_000, 2_000, 4_000, 8_000, 8_000]  # doubling, capped
        assert {r.event_id for r in receiver.got} == {receiver.got[0].event_id}  # 2nd waited
        [dead] = (await store.webhooks.deliveries(state="dead")).items
        assert dead.attempts == 6
        await _pass(deliverer)  # the dead one no longer holds the drop's next event back
        assert len({r.event_id for r in receiver.got}) == 2

        receiver.answer = None
        assert await store.webhooks.replay(None, clock.now_ms()) == 1
        await _pass(deliverer)
    finally:
        await deliverer.stop()
    delivered = (await store.webhooks.deliveries(state="delivered")).items
    assert [d.id for d in delivered] == [dead.id]
    assert receiver.got[-1].event_id == dead.event_id and receiver.got[-1].answered == 200


async def test_a_failing_drop_does_not_hold_up_another(
    store: Store, registry: Registry, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now_ms()
    [ana] = await _users(store, 1, now)
    stuck, fine = await _drop(store, 5, now), await _drop(store, 5, now)
    _, receiver.secret = await register(store.webhooks, receiver.url, [], now)
    for drop_id in (stuck, fine, stuck, fine):
        await (await registry.get(drop_id)).ask(Reserve(ana))
    receiver.answer = lambda e: 500 if e["data"]["reservation"]["dropId"] == stuck else 200
    deliverer = Deliverer(store.webhooks, clock, RetryPolicy(), rand=lambda: 1.0)
    deliverer.open()
    try:
        for _ in range(3):
            await _pass(deliverer)
    finally:
        await deliverer.stop()
    by_drop: dict[int, list[int]] = {}
    for r in receiver.got:
        by_drop.setdefault(r.payload["data"]["reservation"]["dropId"], []).append(r.answered)
    assert by_drop == {stuck: [500], fine: [200, 200]}


async def test_filters_and_owned_drops(
    store: Store, registry: Registry, clock: ManualClock, receiver: Receiver
) -> None:
    now = clock.now_ms()
    [ana] = await _users(store, 1, now)
    mine, theirs = await _drop(store, 5, now), await _drop(store, 5, now)
    _, receiver.secret = await register(store.webhooks, receiver.url, ["purchase.completed"], now)
    for drop_id in (mine, theirs):
        hold = await (await registry.get(drop_id)).ask(Reserve(ana))
        assert isinstance(hold, ReservationRecord)
        await (await registry.get(drop_id)).ask(Purchase(ana, hold.id, "w0"))
    # A node delivers only the drops it owns (among several nodes: its leases).
    deliverer = Deliverer(store.webhooks, clock, RetryPolicy(), drops=lambda: [mine])
    deliverer.open()
    try:
        await _pass(deliverer)
        await _pass(deliverer)
    finally:
        await deliverer.stop()
    assert [(r.type, r.payload["data"]["purchase"]["dropId"]) for r in receiver.got] == [
        ("purchase.completed", mine)
    ]
    unfanned = await sql(store, "SELECT COUNT(*) FROM webhook_events WHERE fanned_out = 0")
    assert int(unfanned[0][0]) == 2  # the other drop's two events wait for their owner


async def test_registrations_and_the_deliveries_page(store: Store, clock: ManualClock) -> None:
    rows = store.webhooks
    a, secret = await register(rows, "https://a.example/h", ["drop.updated"], clock.now_ms())
    b, _ = await register(rows, "https://b.example/h", [], clock.now_ms())
    assert secret.startswith("whsec_")
    assert [(w.id, w.url, w.events) for w in await rows.registered()] == [
        (a.id, "https://a.example/h", ("drop.updated",)),
        (b.id, "https://b.example/h", ()),
    ]
    assert rows.live
    assert await rows.remove(a.id) and not await rows.remove(a.id)
    assert await rows.remove(b.id)
    assert not rows.live and not await rows.refresh()
    empty = await rows.deliveries(limit=5)
    assert (empty.items, empty.next) == ([], None)


async def test_a_burst_gets_a_trickle_and_the_rest_follows_once_it_is_over(
    store: Store, registry: Registry, clock: ManualClock, receiver: Receiver
) -> None:
    """While the outbox grows faster than the pacer's busy rate, the deliverer sends only its
    trickle (a pass's share); once the outbox stops growing it sends the rest, in order."""
    now = clock.now_ms()
    users = await _users(store, 4, now)
    info = DropInfo(
        name="Burst",
        price=Decimal("50.00"),
        starts_at=now - 1,
        per_user_limit=100,
        holds_per_user=100,
    )
    drop_id = (await store.create_drop(info, 500, now)).id
    _, receiver.secret = await register(store.webhooks, receiver.url, [], now)
    pacer = Pacer(busy_rate=200, trickle=20)  # a pass every second while yielding: 20 each
    deliverer = Deliverer(store.webhooks, clock, RetryPolicy(), pacer=pacer)
    deliverer.open()
    try:
        await _pass(deliverer)  # the outbox's first reading: empty
        actor = await registry.get(drop_id)
        for i in range(120):
            await actor.ask(Reserve(users[i % 4]))
        clock.advance(300)  # 120 events in 300 ms: 400 a second, a burst
        await _pass(deliverer)
        assert pacer.yielding(clock.monotonic_ms())
        assert len(receiver.got) == 20  # one pass's share of the trickle
        clock.advance(300)  # nothing new: the burst is over
        await _pass(deliverer)
        assert not pacer.yielding(clock.monotonic_ms())
    finally:
        await deliverer.stop()
    ids = [r.event_id for r in receiver.got]
    assert len(ids) == 120 and ids == sorted(ids)
    assert all(r.signed and r.answered == 200 for r in receiver.got)
    delivered = await sql(
        store, "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'"
    )
    assert int(delivered[0][0]) == 120
