"""The store contract: every test here runs against SQLite and MariaDB alike."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest

from sneakerd import errors
from sneakerd.domain.model import (
    DropInfo,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
)
from sneakerd.domain.outcome import Changes
from sneakerd.store import SCHEMA_VERSION, Store

NOW = 1_795_510_800_123  # 2026-11-24T09:00:00.123Z: millisecond precision must survive


async def test_init_schema_is_idempotent(store: Store) -> None:
    await store.init_schema()
    await store.init_schema()
    assert await store.schema_version() == SCHEMA_VERSION
    assert await store.check(NOW) == []


async def test_users_are_unique_by_email_and_username_case_insensitively(store: Store) -> None:
    user = await store.create_user("Ana", "ana@example.com", "hash", Role.CUSTOMER, NOW)
    assert (user.username, user.email, user.role, user.created_at) == (
        "Ana",
        "ana@example.com",
        Role.CUSTOMER,
        NOW,
    )
    with pytest.raises(errors.EmailTaken):
        await store.create_user("other", "ANA@example.com", "h", Role.CUSTOMER, NOW)
    with pytest.raises(errors.UsernameTaken):
        await store.create_user("ana", "b@example.com", "h", Role.CUSTOMER, NOW)
    assert await store.user_by_id(user.id) == user
    found = await store.user_by_email("ana@example.com")
    assert found == (user, "hash")
    promoted = await store.set_role("ana@example.com", Role.ADMIN)
    assert promoted is not None and promoted.role is Role.ADMIN
    assert await store.set_role("nobody@example.com", Role.ADMIN) is None
    assert await store.user_by_id(999_999) is None


async def test_drop_round_trip(store: Store) -> None:
    info = DropInfo(
        name="Air Max 1 'Patta' ✓",
        price=Decimal("199.90"),
        brand="Nike",
        description="Waves",
        image_url="https://img.example/1.png",
        per_user_limit=2,
        starts_at=NOW - 1000,
        ends_at=NOW + 3_600_000,
    )
    drop = await store.create_drop(info, 100, NOW)
    assert drop.info == info
    assert (drop.initial_stock, drop.stock, drop.reserved, drop.sold, drop.version) == (
        100,
        100,
        0,
        0,
        1,
    )
    assert (drop.created_at, drop.updated_at, drop.deleted) == (NOW, NOW, False)
    assert await store.get_drop(drop.id) == drop
    assert (await store.list_drops(now=NOW)).items == [drop]
    assert await store.drops_to_recover(NOW) == [drop.id]
    assert await store.drops_to_recover(NOW + 3_600_000) == []  # ended, no holds


async def _user_and_drop(store: Store, stock: int = 10) -> tuple[int, int]:
    user = await store.create_user("buyer", "buyer@example.com", "h", Role.CUSTOMER, NOW)
    drop = await store.create_drop(DropInfo(name="D", price=Decimal("10")), stock, NOW)
    return user.id, drop.id


async def test_commit_writes_a_batch_and_load_state_reads_it_back(store: Store) -> None:
    user_id, drop_id = await _user_and_drop(store)
    start = await store.load_state(drop_id)
    assert start is not None and dict(start.holds) == {} and dict(start.user_counts) == {}
    rid = await store.allocate_ids("reservations", 3)
    pid = await store.allocate_ids("purchases", 1)
    held = [
        ReservationRecord(rid + i, drop_id, user_id, ReservationStatus.ACTIVE, NOW + 60_000, NOW)
        for i in range(3)
    ]
    drop = start.drop
    after = drop.__class__(drop.id, drop.info, 10, 7, 2, 1, 4, drop.created_at, NOW + 5)
    await store.commit(
        Changes(
            drop=after,
            expected_version=1,
            new_reservations=tuple(held),
            status_changes=((rid, ReservationStatus.COMPLETED),),
            new_purchases=(PurchaseRecord(pid, drop_id, user_id, rid, Decimal("10.00"), NOW + 5),),
        )
    )
    state = await store.load_state(drop_id)
    assert state is not None
    assert state.drop == after
    assert set(state.holds) == {rid + 1, rid + 2}
    assert state.holds[rid + 1].expires_at == NOW + 60_000
    assert dict(state.user_counts) == {user_id: 3}
    assert (await store.get_reservation(rid)).status is ReservationStatus.COMPLETED  # type: ignore[union-attr]
    assert [r.id for r in (await store.user_reservations(user_id)).items] == [
        rid + 2,
        rid + 1,
        rid,
    ]
    purchase = await store.purchase_for_reservation(rid)
    assert purchase is not None and purchase.price == Decimal("10.00")
    assert (await store.user_purchases(user_id)).items == [purchase]
    assert await store.get_purchase(purchase.id) == purchase
    assert await store.get_purchase(purchase.id + 1) is None
    [public] = (await store.drop_purchases(drop_id)).items
    assert (public.id, public.purchaser) == (pid, "buyer")
    assert await store.check(NOW + 10) == []


async def test_a_stale_version_writes_nothing(store: Store) -> None:
    user_id, drop_id = await _user_and_drop(store)
    state = await store.load_state(drop_id)
    assert state is not None
    drop = state.drop
    rid = await store.allocate_ids("reservations", 1)
    stale = Changes(
        drop=drop.__class__(drop.id, drop.info, 10, 9, 1, 0, 2, drop.created_at, NOW),
        expected_version=7,
        new_reservations=(
            ReservationRecord(rid, drop_id, user_id, ReservationStatus.ACTIVE, NOW + 1, NOW),
        ),
        status_changes=(),
        new_purchases=(),
    )
    with pytest.raises(errors.VersionConflict):
        await store.commit(stale)
    assert await store.get_reservation(rid) is None
    assert await store.get_drop(drop_id) == drop


async def test_allocated_id_blocks_never_overlap(store: Store) -> None:
    firsts = await asyncio.gather(*(store.allocate_ids("reservations", 100) for _ in range(10)))
    ranges = [range(f, f + 100) for f in sorted(firsts)]
    for a, b in itertools.pairwise(ranges):
        assert a.stop <= b.start
    with pytest.raises(ValueError):
        await store.allocate_ids("users", 1)


async def test_deleted_drops_are_hidden(store: Store) -> None:
    _, drop_id = await _user_and_drop(store)
    state = await store.load_state(drop_id)
    assert state is not None
    drop = state.drop
    await store.commit(
        Changes(
            drop=drop.__class__(
                drop.id, drop.info, 10, 10, 0, 0, 2, drop.created_at, NOW, deleted=True
            ),
            expected_version=1,
            new_reservations=(),
            status_changes=(),
            new_purchases=(),
        )
    )
    assert await store.get_drop(drop_id) is None
    assert (await store.list_drops(now=NOW)).items == []
    assert await store.drops_to_recover(NOW) == []
