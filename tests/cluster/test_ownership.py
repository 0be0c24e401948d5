"""Ownership among nodes, in one process: two registries (two "nodes") on one MariaDB
database, forwarding to each other directly. The real nodes (processes, peers, Redis) are
tested in the other modules of this folder; this one pins down the leases and the fence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from sneakerd import errors
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import ManualClock
from sneakerd.cluster.ownership import ClusterRegistry, RemoteDrop
from sneakerd.cluster.placement import preferred
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command, Reserve
from sneakerd.domain.model import DropInfo, ReservationRecord, Role
from sneakerd.store import Store, open_store

START = 1_796_000_000_000
TTL = 3_000


class Loopback:
    """Forwards to the registry named by the URL, as the peer connection would."""

    def __init__(self) -> None:
        self.nodes: dict[str, ClusterRegistry] = {}
        self.down: set[str] = set()

    async def ask(self, url: str, drop_id: int, command: Command) -> Reply:
        if url in self.down:
            raise errors.PeerUnreachable("the owner did not answer")
        actor = await self.nodes[url].take(drop_id)
        return await actor.ask(command)


@pytest.fixture
async def stores(mysql_url: str) -> AsyncIterator[tuple[Store, Store]]:
    first = await open_store(mysql_url)
    await first.init_schema()
    second = await open_store(mysql_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def node(store: Store, name: str, clock: ManualClock, net: Loopback) -> ClusterRegistry:
    registry = ClusterRegistry(
        store=store,
        sink=RecordingSink(),
        clock=clock,
        hold_ms=60_000,
        node_id=name,
        node_url=f"loop://{name}",
        lease_ms=TTL,
        forwarder=net,
    )
    net.nodes[f"loop://{name}"] = registry
    return registry


async def _drops(store: Store, n: int) -> list[int]:
    info = DropInfo(name="d", price=Decimal("1.00"), per_user_limit=100, holds_per_user=100)
    return [(await store.create_drop(info, 1000, START)).id for _ in range(n)]


async def test_two_nodes_split_the_drops_and_forward_to_each_other(
    stores: tuple[Store, Store],
) -> None:
    a_store, b_store = stores
    clock, net = ManualClock(START), Loopback()
    drops = await _drops(a_store, 8)
    user = await a_store.create_user("u", "u@example.com", "x", Role.CUSTOMER, START)
    a, b = node(a_store, "a", clock, net), node(b_store, "b", clock, net)
    try:
        await a.start()
        await b.start()
        # A lease time later (a hands back only drops that were quiet that long), both beat
        # and pass: a hands back what the hash gives b, and b takes it.
        clock.advance(TTL + 1)
        for registry in (a, b, a, b):
            await registry._store.heartbeat(registry.node_id, registry.node_url, clock.now_ms())
            await registry._pass()
        live = await a_store.nodes()
        for drop_id in drops:
            owner = preferred(live, drop_id)
            assert owner is not None
            mine, theirs = (a, b) if owner.id == "a" else (b, a)
            assert drop_id in mine.owned() and drop_id not in theirs.owned()
            handle = await theirs.get(drop_id)
            assert isinstance(handle, RemoteDrop)
            hold = await handle.ask(Reserve(user.id))
            assert isinstance(hold, ReservationRecord) and hold.drop_id == drop_id
        assert set(a.owned()) | set(b.owned()) == set(drops)
        assert set(a.owned()).isdisjoint(b.owned())
    finally:
        await a.stop_all()
        await b.stop_all()


async def test_a_dead_owners_drops_are_taken_over_and_its_commits_fenced(
    stores: tuple[Store, Store],
) -> None:
    a_store, b_store = stores
    clock, net = ManualClock(START), Loopback()
    [drop_id] = await _drops(a_store, 1)
    users = [
        (await a_store.create_user(f"u{i}", f"u{i}@example.com", "x", Role.CUSTOMER, START)).id
        for i in range(3)
    ]
    a, b = node(a_store, "a", clock, net), node(b_store, "b", clock, net)
    try:
        await a.start()
        owner = await a.take(drop_id)  # a owns it, whatever the hash says
        assert isinstance(await owner.ask(Reserve(users[0])), ReservationRecord)
        await b.start()
        # a "pauses": it stops renewing. After the lease time b takes the drop over.
        net.down.add("loop://a")
        clock.advance(TTL + 1)
        taken = await b.take(drop_id)
        assert taken.epoch is not None and owner.epoch is not None and taken.epoch > owner.epoch
        assert b.cluster_stats.takeovers == 1
        assert isinstance(await taken.ask(Reserve(users[1])), ReservationRecord)
        # a wakes up and tries to write: the fence refuses it and its actor stops.
        with pytest.raises(errors.LeaseLost):
            await owner.ask(Reserve(users[2]))
        await asyncio.sleep(0)
        assert not owner.running and drop_id not in a.owned()
        state = await a_store.load_state(drop_id)
        assert state is not None and state.drop.reserved == 2
        assert await a_store.check(clock.now_ms()) == []
    finally:
        await a.stop_all()
        await b.stop_all()


async def test_a_drop_held_by_a_live_owner_is_not_taken(stores: tuple[Store, Store]) -> None:
    a_store, b_store = stores
    clock, net = ManualClock(START), Loopback()
    [drop_id] = await _drops(a_store, 1)
    a, b = node(a_store, "a", clock, net), node(b_store, "b", clock, net)
    try:
        await a.start()
        await a.take(drop_id)
        await b.start()
        with pytest.raises(errors.Unavailable):
            await b.take(drop_id)
        handle = await b.get(drop_id)
        assert isinstance(handle, RemoteDrop) and handle.url == "loop://a"
        assert handle.refusal(1) is None and handle.state is None
    finally:
        await a.stop_all()
        await b.stop_all()


async def test_a_refusal_the_owner_answered_does_not_make_its_node_look_down(
    stores: tuple[Store, Store],
) -> None:
    """A forward that reached the owner and came back with the owner's own failure (here its
    commit failed: a user the database does not have) says nothing about the owner's
    reachability. Taking it for a lost owner left that node out of routing until its next
    heartbeat, so every other caller's write through this node answered 503 meanwhile."""
    a_store, b_store = stores
    clock, net = ManualClock(START), Loopback()
    (drop_id,) = await _drops(a_store, 1)
    user = await a_store.create_user("u", "u@example.com", "x", Role.CUSTOMER, START)
    a, b = node(a_store, "a", clock, net), node(b_store, "b", clock, net)
    try:
        await a.start()
        await b.start()
        owner, other = (a, b) if drop_id in a.owned() else (b, a)
        assert drop_id in owner.owned()
        handle = await other.get(drop_id)
        assert isinstance(handle, RemoteDrop)
        with pytest.raises(errors.Unavailable):
            await handle.ask(Reserve(user.id + 1_000))  # no such user: the foreign key refuses
        hold = await (await other.get(drop_id)).ask(Reserve(user.id))
        assert isinstance(hold, ReservationRecord) and hold.drop_id == drop_id
    finally:
        await a.stop_all()
        await b.stop_all()


async def test_an_actor_that_stops_while_its_lease_is_renewed_does_not_break_the_pass(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal reads which actors hold leases, then waits on the database. An actor that
    stops meanwhile (its commit was fenced after a pause) leaves the registry; the renewal
    then finds its lease gone and must stop what it read, not look the drop up again (that
    was a KeyError, which skipped the rest of the pass: the other lost drops, take-over)."""
    a_store, _ = stores
    clock, net = ManualClock(START), Loopback()
    first, second = await _drops(a_store, 2)
    a = node(a_store, "a", clock, net)
    try:
        await a.start()
        gone, other = await a.take(first), await a.take(second)
        real = a_store.renew_leases

        async def renew(node_id: str, held: dict[int, int], now: int, ttl: int) -> set[int]:
            await real(node_id, held, now, ttl)
            gone.lose()  # it stops itself while the renewal waits (as a fenced commit does)
            for _ in range(100):
                if first not in a._actors:
                    break
                await asyncio.sleep(0.01)
            assert first not in a._actors
            return set()  # and both leases turn out lost

        monkeypatch.setattr(a_store, "renew_leases", renew)
        await a._renew(clock.now_ms())
        await asyncio.sleep(0.05)  # the other lost one stops as its mailbox closes
        assert not gone.running and not other.running
        assert a.cluster_stats.lost == 2
    finally:
        await a.stop_all()
