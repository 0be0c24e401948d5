"""Numbered pages (a count and an OFFSET read) and the batched lookups that the `/compat`
mount's answers need, on both databases.

The native lists page by keyset (`keyset`): every page costs one index range however deep it
is. The original Node.js API, which `/compat` speaks for its existing front-end, pages by
number and answers a `total` and `totalPages`, so these reads count the rows a filter matches
and read the page at `OFFSET (page - 1) * limit`, newest first with the id breaking ties (the
same order as the keyset lists). A deep page costs the rows it skips; the original's clients
page through tens of rows, not thousands. The count and the page are two reads of committed
data, so a row committed between them can make `total` one off for that answer: a list, not a
ledger.

`drops_by_ids` and `latest_purchases` answer a whole page in one query each (the drops a page
of holds or purchases names; each drop's newest purchases with their buyers' names), rather
than one query per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sneakerd.domain.model import Drop, PurchaseRecord, ReservationRecord, ReservationStatus
from sneakerd.store.adapter import Adapter
from sneakerd.store.rows import CHUNK, DROP_COLUMNS, PURCHASE_COLUMNS, RESERVATION_COLUMNS, marks
from sneakerd.store.tx import Row

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Numbered(Generic[T]):
    """One numbered page, newest first, and how many rows the whole list has."""

    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class BuyerPurchase:
    """A purchase with its buyer's username (what the original showed beside a drop)."""

    purchase: PurchaseRecord
    username: str


async def numbered(
    db: Adapter,
    columns: str,
    source: str,
    params: Sequence[Any],
    order: tuple[str, str],
    offset: int,
    limit: int,
    convert: Callable[[Row], T],
) -> Numbered[T]:
    """`SELECT columns source` (source: `FROM ... WHERE ...`) counted, and the page of `limit`
    rows after the first `offset`, ordered by `order` = (time column, id column), newest
    first."""
    counted = await db._read(f"SELECT COUNT(*) {source}", params)
    total = int(counted[0][0]) if counted else 0
    if offset >= total:  # past the end: no second read
        return Numbered([], total)
    created, ident = order
    rows = await db._read(
        f"SELECT {columns} {source} ORDER BY {created} DESC, {ident} DESC LIMIT %s OFFSET %s",
        (*params, limit, offset),
    )
    return Numbered([convert(r) for r in rows], total)


async def drops(db: Adapter, *, offset: int, limit: int, q: str | None) -> Numbered[Drop]:
    where = "deleted_at IS NULL"
    params: list[Any] = []
    if q:
        sql, values = db._contains(("name", "brand"), q)
        where += f" AND {sql}"
        params += values
    return await numbered(
        db,
        DROP_COLUMNS,
        f"FROM drops WHERE {where}",
        params,
        ("created_at", "id"),
        offset,
        limit,
        db._drop,
    )


async def user_reservations(
    db: Adapter,
    user_id: int,
    *,
    offset: int,
    limit: int,
    statuses: Sequence[ReservationStatus] = (),
) -> Numbered[ReservationRecord]:
    where = "user_id = %s"
    params: list[Any] = [user_id]
    if statuses:
        where += f" AND status IN ({marks(len(statuses))})"
        params += [s.value for s in statuses]
    return await numbered(
        db,
        RESERVATION_COLUMNS,
        f"FROM reservations WHERE {where}",
        params,
        ("created_at", "id"),
        offset,
        limit,
        db._reservation,
    )


async def user_purchases(
    db: Adapter, user_id: int, *, offset: int, limit: int
) -> Numbered[PurchaseRecord]:
    return await numbered(
        db,
        PURCHASE_COLUMNS,
        "FROM purchases WHERE user_id = %s",
        (user_id,),
        ("created_at", "id"),
        offset,
        limit,
        db._purchase,
    )


async def drops_by_ids(db: Adapter, drop_ids: Sequence[int]) -> dict[int, Drop]:
    """The drops named, deleted ones included (a hold or a purchase still names its drop)."""
    found: dict[int, Drop] = {}
    wanted = sorted(set(drop_ids))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = await db._read(
            f"SELECT {DROP_COLUMNS} FROM drops WHERE id IN ({marks(len(chunk))})", chunk
        )
        for row in rows:
            drop = db._drop(row)
            found[drop.id] = drop
    return found


_PREFIXED = ", ".join(f"p.{c.strip()}" for c in PURCHASE_COLUMNS.split(","))


async def latest_purchases(
    db: Adapter, drop_ids: Sequence[int], per_drop: int
) -> dict[int, list[BuyerPurchase]]:
    """Each drop's `per_drop` newest purchases (newest first, the id breaking ties) with the
    buyers' usernames, for every drop named, in one query per chunk of drops (a window
    function: MySQL 8, MariaDB 10.2 and SQLite 3.25 have it)."""
    found: dict[int, list[BuyerPurchase]] = {d: [] for d in drop_ids}
    wanted = sorted(set(drop_ids))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = await db._read(
            f"SELECT * FROM (SELECT {_PREFIXED}, u.username, ROW_NUMBER() OVER "
            "(PARTITION BY p.drop_id ORDER BY p.created_at DESC, p.id DESC) AS nth "
            "FROM purchases p JOIN users u ON u.id = p.user_id "
            f"WHERE p.drop_id IN ({marks(len(chunk))})) AS ranked "
            "WHERE nth <= %s ORDER BY drop_id, nth",
            (*chunk, per_drop),
        )
        for row in rows:
            bought = db._purchase(row)
            found[bought.drop_id].append(BuyerPurchase(bought, str(row[6])))
    return found
