"""Nodes and leases on both stores: who owns a drop, and the fence that keeps a node which lost
its lease from ever committing again."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from sneakerd import errors
from sneakerd.domain.model import DropInfo, ReservationRecord, ReservationStatus, Role
from sneakerd.domain.outcome import Changes
from sneakerd.store import Store

NOW = 1_796_000_000_000
TTL = 5_000


async def _drop(store: Store) -> int:
    return (await store.create_drop(DropInfo(name="d", price=Decimal("1.00")), 10, NOW)).id


async def test_a_free_lease_is_taken_held_then_taken_over_with_a_higher_epoch(
    store: Store,
) -> None:
    drop_id = await _drop(store)
    assert await store.acquire_lease(drop_id, "a", NOW, TTL) == 1
    assert await store.acquire_lease(drop_id, "b", NOW + 1, TTL) is None  # a holds it
    assert await store.renew_leases("a", {drop_id: 1}, NOW + 2_000, TTL) == {drop_id}
    assert await store.acquire_lease(drop_id, "b", NOW + TTL + 1, TTL) is None  # renewed
    assert await store.acquire_lease(drop_id, "b", NOW + 2_000 + TTL + 1, TTL) == 2
    # a's renewal at its old epoch finds the lease lost.
    assert await store.renew_leases("a", {drop_id: 1}, NOW + 8_000, TTL) == set()
    lease = await store.lease_of(drop_id)
    assert lease is not None and (lease.owner, lease.epoch) == ("b", 2)
    # A node taking a lease it held in an earlier life fences that life too.
    assert await store.acquire_lease(drop_id, "b", NOW + 8_001, TTL) == 3
    await store.release_lease(drop_id, "b", 3)
    assert await store.acquire_lease(drop_id, "a", NOW + 8_002, TTL) == 4


async def test_heartbeats_list_nodes_and_leaving_frees_leases(store: Store) -> None:
    drop_id = await _drop(store)
    await store.heartbeat("a", "http://127.0.0.1:1", NOW)
    await store.heartbeat("b", "http://127.0.0.1:2", NOW)
    await store.heartbeat("a", "http://127.0.0.1:1", NOW + 100)
    assert [(n.id, n.seen_at) for n in await store.nodes()] == [("a", NOW + 100), ("b", NOW)]
    assert await store.acquire_lease(drop_id, "a", NOW, TTL) == 1
    await store.leave("a")
    assert [n.id for n in await store.nodes()] == ["b"]
    assert await store.acquire_lease(drop_id, "b", NOW + 1, TTL) == 2
    assert [(lease.drop_id, lease.owner) for lease in await store.leases()] == [(drop_id, "b")]


async def test_a_commit_under_a_lost_epoch_writes_nothing(store: Store) -> None:
    """The fence: the drop's UPDATE carries the epoch it was decided under; once another node
    took the lease, that UPDATE matches no row and nothing of the batch is written."""
    user = await store.create_user("u1", "u1@example.com", "x", Role.CUSTOMER, NOW)
    drop_id = await _drop(store)
    assert await store.acquire_lease(drop_id, "a", NOW, TTL) == 1
    state = await store.load_state(drop_id)
    assert state is not None
    rid = await store.allocate_ids("reservations", 1)
    held = ReservationRecord(rid, drop_id, user.id, ReservationStatus.ACTIVE, NOW + 60_000, NOW)
    drop = dataclasses.replace(state.drop, stock=9, reserved=1, version=2)
    changes = Changes(drop, 1, (held,), (), (), epoch=1)
    assert await store.acquire_lease(drop_id, "b", NOW + TTL + 1, TTL) == 2
    with pytest.raises(errors.VersionConflict):
        await store.commit(changes)
    assert await store.get_reservation(rid) is None
    after = await store.get_drop(drop_id)
    assert after is not None and (after.version, after.stock) == (1, 10)
    # Under the current epoch the same batch commits.
    await store.commit(dataclasses.replace(changes, epoch=2))
    assert await store.get_reservation(rid) == held
    assert await store.check(NOW) == []
