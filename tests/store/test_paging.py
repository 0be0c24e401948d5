"""Paged lists on both stores: keyset pages, newest first, filters, and reads side by side.

A list is read a page at a time so that one account with thousands of rows costs every page the
same small query; on SQLite, reads use a pool of connections so that one slow read never makes
another read (or a write) wait behind it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sneakerd import cli
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropStatus,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
)
from sneakerd.domain.outcome import Changes
from sneakerd.store import MAX_PAGE, Page, PageKey, Store, open_store
from sneakerd.store.sqlite import FOLD_FUNCTION, SQLiteStore

NOW = 1_795_510_800_123
MANY = 2_100
STATUSES = (ReservationStatus.EXPIRED, ReservationStatus.CANCELLED)


async def _drop(store: Store, stock: int = 10, **info: Any) -> Drop:
    fields: dict[str, Any] = {"name": "D", "price": Decimal("10"), **info}
    return await store.create_drop(DropInfo(**fields), stock, NOW)


async def _commit(store: Store, drop: Drop, **changes: Any) -> Drop:
    """One batch on `drop` (its counts as given), through the store's own commit."""
    counts = {k: changes.pop(k) for k in ("stock", "reserved", "sold") if k in changes}
    after = Drop(
        drop.id,
        drop.info,
        drop.initial_stock,
        counts.get("stock", drop.stock),
        counts.get("reserved", drop.reserved),
        counts.get("sold", drop.sold),
        drop.version + 1,
        drop.created_at,
        NOW,
    )
    rows: dict[str, Any] = {"new_reservations": (), "status_changes": (), "new_purchases": ()}
    await store.commit(Changes(drop=after, expected_version=drop.version, **{**rows, **changes}))
    return after


async def _read_all(read: Any, limit: int) -> list[list[Any]]:
    """Every page of a paged read, following `next` until it is None."""
    pages: list[list[Any]] = []
    after: PageKey | None = None
    while True:
        page: Page[Any] = await read(limit=limit, after=after)
        assert len(page.items) <= limit
        pages.append(page.items)
        if page.next is None:
            return pages
        assert len(pages) < 1000, "paging does not end"
        after = page.next


async def test_thousands_of_reservations_are_read_page_by_page_newest_first(
    store: Store,
) -> None:
    user = await store.create_user("many", "many@example.com", "h", Role.CUSTOMER, NOW)
    other = await store.create_user("other", "other@example.com", "h", Role.CUSTOMER, NOW)
    drop = await _drop(store)
    first = await store.allocate_ids("reservations", MANY + 1)
    # Ten rows share each creation time, so the id must break ties for the pages to be exact.
    made = [
        ReservationRecord(
            first + i, drop.id, user.id, STATUSES[i % 2], NOW + i // 10 + 60_000, NOW + i // 10
        )
        for i in range(MANY)
    ]
    theirs = ReservationRecord(
        first + MANY, drop.id, other.id, ReservationStatus.EXPIRED, NOW + 60_000, NOW
    )
    await _commit(store, drop, new_reservations=(*made, theirs))

    async def mine(**kw: Any) -> Page[ReservationRecord]:
        return await store.user_reservations(user.id, **kw)

    pages = await _read_all(mine, 200)
    assert [len(p) for p in pages] == [200] * 10 + [100]
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    assert [r for page in pages for r in page] == newest_first

    cancelled = await _read_all(
        lambda **kw: store.user_reservations(user.id, status=ReservationStatus.CANCELLED, **kw),
        300,
    )
    assert [r for page in cancelled for r in page] == [
        r for r in newest_first if r.status is ReservationStatus.CANCELLED
    ]
    default = await store.user_reservations(user.id)
    assert default.items == newest_first[:50] and default.next is not None


async def test_an_exact_last_page_says_there_is_no_next(store: Store) -> None:
    user = await store.create_user("exact", "exact@example.com", "h", Role.CUSTOMER, NOW)
    drop = await _drop(store)
    first = await store.allocate_ids("reservations", 4)
    made = tuple(
        ReservationRecord(first + i, drop.id, user.id, ReservationStatus.EXPIRED, NOW, NOW + i)
        for i in range(4)
    )
    await _commit(store, drop, new_reservations=made)
    one = await store.user_reservations(user.id, limit=2)
    two = await store.user_reservations(user.id, limit=2, after=one.next)
    assert [r.id for r in one.items + two.items] == [first + 3, first + 2, first + 1, first]
    assert two.next is None
    assert (await store.user_reservations(user.id, limit=4)).next is None
    assert (await store.user_reservations(user.id, limit=5)).next is None


async def test_purchases_of_a_user_and_of_a_drop_are_paged(store: Store) -> None:
    buyer = await store.create_user("buyer", "buyer@example.com", "h", Role.CUSTOMER, NOW)
    count = 250
    drop = await _drop(store, stock=300)
    rid = await store.allocate_ids("reservations", count)
    pid = await store.allocate_ids("purchases", count)
    holds = tuple(
        ReservationRecord(rid + i, drop.id, buyer.id, ReservationStatus.COMPLETED, NOW, NOW)
        for i in range(count)
    )
    bought = tuple(
        PurchaseRecord(pid + i, drop.id, buyer.id, rid + i, Decimal("10.00"), NOW + i % 7)
        for i in range(count)
    )
    await _commit(
        store, drop, stock=300 - count, sold=count, new_reservations=holds, new_purchases=bought
    )
    newest_first = sorted(bought, key=lambda p: (p.created_at, p.id), reverse=True)

    mine = await _read_all(lambda **kw: store.user_purchases(buyer.id, **kw), 100)
    assert [len(p) for p in mine] == [100, 100, 50]
    assert [p for page in mine for p in page] == newest_first

    public = await _read_all(lambda **kw: store.drop_purchases(drop.id, **kw), 120)
    assert [len(p) for p in public] == [120, 120, 10]
    flat = [p for page in public for p in page]
    assert [p.id for p in flat] == [p.id for p in newest_first]
    assert {p.purchaser for p in flat} == {"buyer"}
    assert await store.check(NOW + 10) == []


async def test_drops_are_paged_newest_first(store: Store) -> None:
    made = [await _drop(store, name=f"D{i}") for i in range(7)]  # equal created_at: id decides
    pages = await _read_all(lambda **kw: store.list_drops(now=NOW, **kw), 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d.id for page in pages for d in page] == [d.id for d in reversed(made)]


async def test_drops_filter_by_status_as_drop_status_tells_it(store: Store) -> None:
    live = await _drop(store, name="live", starts_at=NOW - 10)
    upcoming = await _drop(store, name="upcoming", starts_at=NOW + 10)
    ended = await _drop(store, name="ended", starts_at=NOW - 20, ends_at=NOW)
    ends_later = await _drop(store, name="ends later", starts_at=NOW - 20, ends_at=NOW + 1)
    sold_out = await _drop(store, stock=0, name="sold out", starts_at=NOW - 10)
    emptied = await _drop(store, stock=1, name="emptied", starts_at=NOW - 10)
    emptied = await _commit(store, emptied, stock=0, reserved=1)
    every = (live, upcoming, ended, ends_later, sold_out, emptied)
    for status in DropStatus:
        page = await store.list_drops(now=NOW, status=status)
        expected = [d.id for d in reversed(every) if d.status(NOW) is status]
        assert [d.id for d in page.items] == expected, status
        assert expected, status
    assert ended.status(NOW) is DropStatus.ENDED and ends_later.status(NOW) is DropStatus.LIVE


async def test_drops_filter_by_a_case_insensitive_substring_of_name_or_brand(
    store: Store,
) -> None:
    jordan = await _drop(store, name="Air Jordan 1 Chicago", brand="Nike")
    dunk = await _drop(store, name="Dunk Low", brand="NIKE SB")
    samba = await _drop(store, name="Samba OG", brand="adidas")
    eszett = await _drop(store, name="Straßenschuh Ünique", brand=None)
    percent = await _drop(store, name="50% off_day", brand=None)
    await _drop(store, name="500 offXday", brand=None)

    async def ids(q: str) -> list[int]:
        return [d.id for d in (await store.list_drops(now=NOW, q=q)).items]

    assert await ids("nike") == [dunk.id, jordan.id]
    assert await ids("JORDAN") == [jordan.id]
    assert await ids("dAs") == [samba.id]
    assert await ids("üNIQUE") == [eszett.id]
    assert await ids("50% off_") == [percent.id]  # LIKE's wildcards are plain characters here
    assert await ids("%") == [percent.id]
    assert await ids("_") == [percent.id]
    assert await ids("!") == []
    assert await ids("nothing like it") == []
    both = await store.list_drops(now=NOW, q="nike", status=DropStatus.LIVE, limit=1)
    assert [d.id for d in both.items] == [dunk.id] and both.next is not None
    rest = await store.list_drops(now=NOW, q="nike", status=DropStatus.LIVE, after=both.next)
    assert [d.id for d in rest.items] == [jordan.id] and rest.next is None


async def test_a_slow_sqlite_read_blocks_neither_other_reads_nor_writes(tmp_path: Path) -> None:
    store = await SQLiteStore.open(f"sqlite:///{tmp_path / 'reads.db'}")
    entered, release = threading.Event(), threading.Event()
    slow: asyncio.Task[Page[Drop]] | None = None
    try:
        await store.init_schema()
        drop = await _drop(store, name="Slow")
        readers = store.read_connections
        assert len(readers) >= 2

        def stuck(value: str | None) -> str | None:
            # Runs inside SQLite on the reader's own thread: that reader is busy until released.
            entered.set()
            release.wait(30)
            return None if value is None else value.casefold()

        for conn in readers:
            await conn.create_function(FOLD_FUNCTION, 1, stuck)
        slow = asyncio.create_task(store.list_drops(now=NOW, q="slow"))
        assert await asyncio.to_thread(entered.wait, 10)
        async with asyncio.timeout(10):  # only a failure waits: the reads below answer at once
            assert await store.get_drop(drop.id) == drop
            assert (await store.user_reservations(1)).items == []
            user = await store.create_user("w", "w@example.com", "h", Role.CUSTOMER, NOW)
            assert await store.user_by_id(user.id) == user
        assert not slow.done()
    finally:
        release.set()
        try:
            if slow is not None:
                assert [d.id for d in (await slow).items] == [drop.id]
        finally:
            await store.close()


def test_the_cli_lists_every_drop_however_many_pages(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sneakerd drops list` pages through the store: more than a page of drops, all shown."""
    count = MAX_PAGE + 3

    async def make() -> list[int]:
        store = await open_store(store_url)
        try:
            await store.init_schema()
            return [(await _drop(store, name=f"Cli {i}")).id for i in range(count)]
        finally:
            await store.close()

    made = asyncio.run(make())
    assert cli.main(["drops", "list", "--db", store_url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(listed) == {"drops"}
    assert [d["id"] for d in listed["drops"]] == list(reversed(made))
    assert cli.main(["drops", "list", "--db", store_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == count + 2 and all(f"Cli {i}" in "\n".join(table) for i in range(count))
