"""Numbered pages and batched lookups on both stores: what the /compat mount reads.

A numbered page is a count and an OFFSET read, newest first with the id breaking ties, so
the pages of a list put together are the whole list exactly once, in the keyset lists' order.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from sneakerd.domain.model import (
    Drop,
    DropInfo,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
    User,
)
from sneakerd.domain.outcome import Changes
from sneakerd.store import Store
from tests.store.test_paging import NOW, _commit, _drop


async def _user(store: Store, name: str) -> User:
    return await store.create_user(name, f"{name}@example.com", "h", Role.CUSTOMER, NOW)


async def _sell(
    store: Store, drop: Drop, buyers: list[User], *, at: int = NOW, same_time: bool = False
) -> list[PurchaseRecord]:
    """One purchase per buyer on `drop`, committed as one batch; each a millisecond after the
    one before unless `same_time` (then the ids alone order them)."""
    count = len(buyers)
    rid = await store.allocate_ids("reservations", count)
    pid = await store.allocate_ids("purchases", count)
    holds = tuple(
        ReservationRecord(rid + i, drop.id, b.id, ReservationStatus.COMPLETED, at, at)
        for i, b in enumerate(buyers)
    )
    bought = [
        PurchaseRecord(
            pid + i, drop.id, b.id, rid + i, Decimal("10.00"), at if same_time else at + i
        )
        for i, b in enumerate(buyers)
    ]
    await _commit(
        store,
        drop,
        stock=drop.stock - count,
        sold=drop.sold + count,
        new_reservations=holds,
        new_purchases=tuple(bought),
    )
    return bought


async def test_drops_are_numbered_newest_first_with_their_total(store: Store) -> None:
    made: list[Drop] = []
    for i in range(23):
        # Pairs share a creation time: the id must break the tie.
        info = DropInfo(name=f"Jordan {i}" if i % 3 == 0 else f"Dunk {i}", price=Decimal("1"))
        made.append(await store.create_drop(info, 5, NOW + i // 2))
    newest_first = sorted(made, key=lambda d: (d.created_at, d.id), reverse=True)

    pages = [await store.drops_numbered(offset=o, limit=10) for o in (0, 10, 20)]
    assert [p.total for p in pages] == [23, 23, 23]
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert [d for p in pages for d in p.items] == newest_first

    past = await store.drops_numbered(offset=30, limit=10)
    assert past.items == [] and past.total == 23

    jordans = await store.drops_numbered(offset=0, limit=50, q="JORDAN")
    assert [d.id for d in jordans.items] == [d.id for d in newest_first if "Jordan" in d.info.name]
    assert jordans.total == 8
    # LIKE's wildcards are literal in a search.
    assert (await store.drops_numbered(offset=0, limit=5, q="%")).total == 0


async def test_a_deleted_drop_is_not_listed_but_is_still_found_by_id(store: Store) -> None:
    kept = await _drop(store, name="kept")
    gone = await _drop(store, name="gone")
    await store.commit(
        Changes(
            drop=dataclasses.replace(gone, version=gone.version + 1, deleted=True),
            expected_version=gone.version,
            new_reservations=(),
            status_changes=(),
            new_purchases=(),
        )
    )
    listed = await store.drops_numbered(offset=0, limit=10)
    assert [d.id for d in listed.items] == [kept.id] and listed.total == 1
    found = await store.drops_by_ids([gone.id, kept.id, gone.id, 999_999])
    assert set(found) == {kept.id, gone.id}
    assert found[gone.id].deleted and not found[kept.id].deleted
    assert await store.drops_by_ids([]) == {}


async def test_a_users_reservations_are_numbered_and_filtered_by_statuses(store: Store) -> None:
    user = await _user(store, "holder")
    other = await _user(store, "other")
    drop = await _drop(store, stock=100)
    statuses = list(ReservationStatus)
    first = await store.allocate_ids("reservations", 31)
    made = [
        ReservationRecord(first + i, drop.id, user.id, statuses[i % 4], NOW + 60_000, NOW + i // 3)
        for i in range(30)
    ]
    theirs = ReservationRecord(
        first + 30, drop.id, other.id, ReservationStatus.EXPIRED, NOW + 60_000, NOW
    )
    await _commit(store, drop, new_reservations=(*made, theirs))
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)

    one = await store.user_reservations_numbered(user.id, offset=0, limit=20)
    two = await store.user_reservations_numbered(user.id, offset=20, limit=20)
    assert (one.total, two.total) == (30, 30)
    assert one.items + two.items == newest_first

    ended = (ReservationStatus.EXPIRED, ReservationStatus.CANCELLED)
    gone = await store.user_reservations_numbered(user.id, offset=0, limit=50, statuses=ended)
    assert gone.items == [r for r in newest_first if r.status in ended]
    assert gone.total == len(gone.items) == 15


async def test_a_users_purchases_are_numbered(store: Store) -> None:
    buyer = await _user(store, "buyer")
    drop = await _drop(store, stock=30)
    bought = await _sell(store, drop, [buyer] * 12)
    newest_first = sorted(bought, key=lambda p: (p.created_at, p.id), reverse=True)
    pages = [await store.user_purchases_numbered(buyer.id, offset=o, limit=5) for o in (0, 5, 10)]
    assert [p.total for p in pages] == [12, 12, 12]
    assert [x for p in pages for x in p.items] == newest_first
    nobody = await _user(store, "nobody")
    empty = await store.user_purchases_numbered(nobody.id, offset=0, limit=5)
    assert empty.items == [] and empty.total == 0


async def test_each_drops_latest_purchases_come_newest_first_with_the_buyers(
    store: Store,
) -> None:
    ann, bob, cy = [await _user(store, n) for n in ("ann", "bob", "cy")]
    busy = await _drop(store, stock=20)
    tied = await _drop(store, stock=20)
    quiet = await _drop(store, stock=20)
    busy_sales = await _sell(store, busy, [ann, bob, cy, ann, bob])
    tied_sales = await _sell(store, tied, [cy, ann], same_time=True)

    latest = await store.latest_purchases([busy.id, tied.id, quiet.id], 3)
    assert set(latest) == {busy.id, tied.id, quiet.id}
    want: Any = [(p.id, p.user_id) for p in reversed(busy_sales)][:3]
    assert [(b.purchase.id, b.purchase.user_id) for b in latest[busy.id]] == want
    assert [b.username for b in latest[busy.id]] == ["bob", "ann", "cy"]
    assert latest[busy.id][0].purchase == busy_sales[-1]
    # The same time: the newer id first.
    assert [b.purchase.id for b in latest[tied.id]] == [tied_sales[1].id, tied_sales[0].id]
    assert latest[quiet.id] == []

    ten = await store.latest_purchases([busy.id], 10)
    assert [b.purchase.id for b in ten[busy.id]] == [p.id for p in reversed(busy_sales)]
