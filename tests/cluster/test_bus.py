"""The events bus: two nodes on the real Redis, each handing what arrives to its own "hub"."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import get_args

import pytest
import redis.asyncio as aredis

from sneakerd.cluster.bus import RedisBus
from sneakerd.cluster.wire_events import decode_events, encode_events
from sneakerd.domain.events import (
    Cancelled,
    DropCreated,
    DropDeleted,
    DropEvent,
    DropUpdated,
    Expired,
    Purchased,
    Reserved,
    StockChanged,
)
from sneakerd.domain.model import Drop, DropInfo
from sneakerd.web.hub import Hub

DROP = Drop(
    id=7,
    info=DropInfo(name="Air Max", price=Decimal("189.99"), brand="Nike", ends_at=2_000_000),
    initial_stock=10,
    stock=8,
    reserved=1,
    sold=1,
    version=5,
    created_at=1_000,
    updated_at=1_500,
)


class Node:
    """A node's end of the bus: what its hub was handed, and the drops it was asked to resync."""

    def __init__(self, bus_factory: Callable[[Node], RedisBus]) -> None:
        self.delivered: list[DropEvent] = []
        self.resyncs: list[int] = []
        self.bus = bus_factory(self)

    def deliver(self, events: Sequence[DropEvent]) -> None:
        self.delivered.extend(events)

    def seqs(self, drop_id: int) -> list[int]:
        return [e.seq for e in self.delivered if e.drop_id == drop_id]


MakeNode = Callable[..., Node]


@pytest.fixture
async def make_node(redis_url: str, prefix: str) -> AsyncIterator[MakeNode]:
    """Started, subscribed nodes of one deployment (one prefix); stopped afterwards."""
    nodes: list[Node] = []

    async def make(name: str, *, url: str = redis_url, wait: bool = True, **options: float) -> Node:
        node = Node(lambda n: RedisBus(url, prefix, name, n.deliver, n.resyncs.append, **options))
        nodes.append(node)
        node.bus.start()
        if wait:
            await asyncio.wait_for(node.bus.wait_subscribed(), 5)
        return node

    yield make
    for node in nodes:
        await node.bus.stop(drain=0)


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def stock(drop_id: int, seq: int) -> StockChanged:
    return StockChanged(drop_id=drop_id, seq=seq, stock=10 - seq, reserved=seq, sold=0)


def test_every_kind_of_event_crosses_the_wire_unchanged() -> None:
    batch: list[DropEvent] = [
        stock(7, 1),
        Expired(drop_id=7, seq=2, reservation_id=40),
        Purchased(drop_id=7, seq=3, purchase_id=9, purchaser="ann@example.com", user_id=12),
        DropUpdated(drop_id=7, seq=4, drop=DROP),
        DropDeleted(drop_id=7, seq=5),
        Reserved(drop_id=7, seq=5, reservation_id=41, user_id=12),
        Cancelled(drop_id=7, seq=5, reservation_id=41, user_id=12),
        DropCreated(drop_id=7, seq=5, drop=DROP),
    ]
    assert {type(e) for e in batch} == set(get_args(DropEvent))  # a new kind must be added here
    assert decode_events(encode_events(batch)) == batch


async def test_events_published_on_one_node_arrive_on_both_in_seq_order(
    make_node: MakeNode,
) -> None:
    owner, other = await make_node("a"), await make_node("b")
    batches: list[list[DropEvent]] = [
        [stock(7, 1)],
        [Expired(drop_id=7, seq=2, reservation_id=40), stock(7, 3)],
        [stock(8, 1)],
        [Purchased(drop_id=7, seq=4, purchase_id=9, purchaser="ann@example.com")],
        [DropUpdated(drop_id=7, seq=5, drop=DROP)],
        [stock(8, 2)],
        [DropDeleted(drop_id=7, seq=6)],
    ]
    for batch in batches:
        owner.bus.publish(batch)
    sent = [e for batch in batches for e in batch]
    for node in (owner, other):  # the owner hears its own events through Redis too
        await eventually(lambda n=node: len(n.delivered) == len(sent))
        assert node.delivered == sent
        assert node.resyncs == []
    # Counted once the pipeline's reply is back, which may come after the subscribers' copies.
    await eventually(lambda: owner.bus.stats().published == len(batches))
    assert other.bus.stats().received == len(batches)


async def test_a_replayed_or_older_seq_is_dropped(make_node: MakeNode) -> None:
    owner, other = await make_node("a"), await make_node("b")
    for seq in (1, 2, 3):
        owner.bus.publish([stock(7, seq)])
    owner.bus.publish([stock(7, 2)])  # a replay
    owner.bus.publish([stock(7, 3), stock(7, 4)])  # a batch half of which was seen
    owner.bus.publish([stock(7, 1)])
    owner.bus.publish([stock(7, 5)])
    for node in (owner, other):
        await eventually(lambda n=node: n.bus.stats().received == 7)
        assert node.seqs(7) == [1, 2, 3, 4, 5]  # never backwards, never twice
        assert node.bus.stats().stale == 3
        assert node.resyncs == []


async def test_side_events_share_their_batch_seq_and_a_replay_of_them_is_dropped(
    make_node: MakeNode,
) -> None:
    owner, other = await make_node("a"), await make_node("b")
    made = [stock(7, 1), Reserved(drop_id=7, seq=1, reservation_id=40, user_id=3)]
    owner.bus.publish(made)
    owner.bus.publish(made)  # a retried send: every event of it is old now
    cancelled = [stock(7, 2), Cancelled(drop_id=7, seq=2, reservation_id=40, user_id=3)]
    owner.bus.publish(cancelled)
    for node in (owner, other):
        await eventually(lambda n=node: n.bus.stats().received == 3)
        assert node.delivered == made + cancelled
        assert node.bus.stats().stale == 2
        assert node.resyncs == [], "a side event never moves the seq, so it makes no gap"


async def test_a_gap_delivers_what_came_and_asks_for_a_resync(make_node: MakeNode) -> None:
    owner, other = await make_node("a"), await make_node("b")
    owner.bus.publish([stock(7, 1)])
    owner.bus.publish([stock(7, 4), stock(7, 5)])  # 2 and 3 never reached Redis
    owner.bus.publish([stock(7, 6)])
    owner.bus.publish([stock(9, 30)])  # a drop not seen before: nothing to compare with
    for node in (owner, other):
        await eventually(lambda n=node: len(n.delivered) == 5)
        assert node.seqs(7) == [1, 4, 5, 6]
        assert node.resyncs == [7]
        assert node.bus.stats().gaps == 1


async def test_after_a_reconnect_every_drop_resyncs_at_its_next_message(
    make_node: MakeNode, redis_url: str
) -> None:
    owner, other = await make_node("a"), await make_node("b")
    owner.bus.publish([stock(7, 1)])
    await eventually(lambda: other.seqs(7) == [1])
    admin = aredis.Redis.from_url(redis_url)
    try:  # cut b's subscription (and only b's: other tests share the server)
        clients = await admin.client_list()
        ids = [
            c["id"]
            for c in clients
            if c["name"] == other.bus._client_name and int(c.get("sub", 0)) > 0
        ]
        assert len(ids) == 1
        await admin.client_kill_filter(_id=ids[0])
    finally:
        await admin.aclose()
    await eventually(lambda: other.bus.stats().reconnects == 1)
    owner.bus.publish([stock(7, 2)])  # no hole in seq, but b may have missed anything
    owner.bus.publish([stock(7, 3)])
    owner.bus.publish([stock(11, 5)])  # a drop b never saw: its watchers may have missed some
    await eventually(lambda: len(other.delivered) == 4)
    assert other.seqs(7) == [1, 2, 3]
    assert other.resyncs == [7, 11]  # once each, at the first message after the reconnect
    assert owner.resyncs == []


async def test_a_burst_of_publishes_does_not_block_the_caller(make_node: MakeNode) -> None:
    owner, other = await make_node("a"), await make_node("b")
    started = time.perf_counter()
    for seq in range(1, 10_001):
        owner.bus.publish([stock(7, seq)])
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"10,000 publishes took {elapsed:.3f} s"  # no I/O, no wait
    await eventually(lambda: len(other.delivered) == 10_000, within=30)
    assert other.seqs(7) == list(range(1, 10_001))
    assert other.resyncs == []
    assert owner.bus.stats().dropped == 0


async def test_a_full_queue_drops_the_oldest_and_receivers_resync(make_node: MakeNode) -> None:
    owner, other = await make_node("a", queue_limit=100), await make_node("b")
    owner.bus.publish([stock(7, 1)])
    await eventually(lambda: other.seqs(7) == [1])
    for seq in range(2, 1_002):  # before the sender runs: only the newest 100 stay queued
        owner.bus.publish([stock(7, seq)])
    assert owner.bus.stats().dropped == 900
    await eventually(lambda: len(other.delivered) == 101)
    assert other.seqs(7) == [1, *range(902, 1_002)]
    assert other.resyncs == [7]


async def test_a_malformed_message_is_dropped_and_the_bus_goes_on(
    make_node: MakeNode, redis_url: str, prefix: str
) -> None:
    owner, other = await make_node("a"), await make_node("b")
    admin = aredis.Redis.from_url(redis_url)
    try:
        await admin.publish(prefix + "events", b"not json")
        await admin.publish(prefix + "events", b'[{"k": "nonsense", "e": {}}]')
    finally:
        await admin.aclose()
    owner.bus.publish([stock(7, 1)])
    await eventually(lambda: other.seqs(7) == [1])
    assert other.bus.stats().malformed == 2


async def test_without_redis_publish_still_returns_and_stop_is_prompt(
    make_node: MakeNode,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = await make_node("a", url=f"redis://127.0.0.1:{port}", wait=False)
    for seq in range(1, 101):
        node.bus.publish([stock(7, seq)])
    await eventually(lambda: node.bus.stats().dropped > 0)
    started = time.perf_counter()
    await node.bus.stop(drain=0.2)
    assert time.perf_counter() - started < 2
    assert node.bus.stats().published == 0


async def test_the_hub_resync_sends_a_drops_watchers_a_snapshot_instead_of_their_backlog() -> None:
    hub = Hub(lambda drop: {"id": drop.id})
    watcher, closing, elsewhere = hub.subscribe(7), hub.subscribe(7), hub.subscribe(8)
    for subscriber in (watcher, closing, elsewhere):
        subscriber.offer([(1, b"{}"), (2, b"{}")])
        subscriber.wakeup.clear()
    closing.close(1000)
    closing.wakeup.clear()
    hub.resync(7)
    assert watcher.resync and watcher.resyncs == 1 and not watcher.outbox
    assert watcher.wakeup.is_set()  # its writer wakes to send the snapshot
    assert not closing.resync and not closing.wakeup.is_set()
    assert not elsewhere.resync and len(elsewhere.outbox) == 2
    hub.resync(99)  # a drop nobody here watches: nothing to do


async def test_an_idle_subscription_is_pinged_and_kept(make_node: MakeNode) -> None:
    owner = await make_node("a")
    other = await make_node("b", ping_interval=0.05)  # silent past 3 pings would reconnect
    await asyncio.sleep(0.4)
    owner.bus.publish([stock(7, 1)])
    await eventually(lambda: other.seqs(7) == [1])
    assert other.bus.stats().reconnects == 0
    assert other.resyncs == []


async def test_stop_lets_what_is_queued_go_out_first(make_node: MakeNode) -> None:
    owner, other = await make_node("a"), await make_node("b")
    for seq in range(1, 1_001):
        owner.bus.publish([stock(7, seq)])
    await owner.bus.stop(drain=5)
    assert owner.bus.stats().published == 1_000
    await eventually(lambda: len(other.delivered) == 1_000)
