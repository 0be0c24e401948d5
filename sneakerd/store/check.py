"""What the operator's commands read: the invariant check (`sneakerd db check`) and the drops'
report (`stats`). Both read committed data only and change nothing."""

from __future__ import annotations

from collections.abc import Callable

from sneakerd.domain.model import Drop
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import SCHEMA_VERSION, DropStats
from sneakerd.store.rows import DROP_COLUMNS, counts
from sneakerd.store.schema import schema_version

SHOWN = 20
"""Rows of each kind of breach listed at most: the first ones tell the operator where to look."""

BIG_TABLE_ROWS = 100_000
"""Reservations (by the highest id) from which the passes are long enough to report progress."""


Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    """No progress lines (the server's own callers)."""


async def breaches(
    db: Adapter, now: int, grace_ms: int, *, progress: Progress = _quiet
) -> list[str]:
    """Every breach of the invariants, one sentence each; a schema of another version is the
    only one reported, as the rest would be read through the wrong columns. `progress` is told
    of each pass as it starts: on big tables each is a scan an operator may wait for."""
    version = await schema_version(db)
    if version != SCHEMA_VERSION:
        return [f"schema version is {version}, expected {SCHEMA_VERSION}"]
    if progress is not _quiet and not await _big(db):
        progress = _quiet  # a small database is checked at once: nothing to wait for
    progress("check: each drop's unit counts against its holds and purchases")
    found = await _unit_counts(db)
    progress("check: holds active past their deadline")
    found += await _overdue_holds(db, now, grace_ms)
    progress("check: purchases against their completed reservations")
    found += await _unmatched_sales(db)
    progress(f"check: done, {len(found)} breaches")
    return found


async def _big(db: Adapter) -> bool:
    rows = await db._read("SELECT MAX(id) FROM reservations")
    return bool(rows and rows[0][0] is not None and int(rows[0][0]) >= BIG_TABLE_ROWS)


async def _unit_counts(db: Adapter) -> list[str]:
    """Each drop's counts against themselves and against its reservation and purchase rows."""
    found: list[str] = []
    drops = await db._read(f"SELECT {DROP_COLUMNS} FROM drops ORDER BY id")
    active = counts(
        await db._read(
            "SELECT drop_id, COUNT(*) FROM reservations WHERE status = 'active' GROUP BY drop_id"
        )
    )
    bought = counts(await db._read("SELECT drop_id, COUNT(*) FROM purchases GROUP BY drop_id"))
    for row in drops:
        try:
            drop = db._drop(row)
        except (ArithmeticError, ValueError, TypeError) as exc:
            # A row written by hand that no part of sneakerd can read (a price of 'abc'): a
            # breach to name, not a crash that hides every other breach.
            found.append(f"drop {row[0]}: a row that cannot be read ({type(exc).__name__})")
            continue
        name = f"drop {drop.id} ({drop.info.name})"
        if min(drop.stock, drop.reserved, drop.sold, drop.initial_stock) < 0:
            found.append(f"{name}: a negative unit count")
        if drop.stock + drop.reserved + drop.sold != drop.initial_stock:
            found.append(
                f"{name}: stock {drop.stock} + reserved {drop.reserved} + sold {drop.sold} "
                f"!= initialStock {drop.initial_stock}"
            )
        holds = active.get(drop.id, 0)
        if drop.reserved != holds:
            found.append(f"{name}: reserved is {drop.reserved} but {holds} holds are active")
        sales = bought.get(drop.id, 0)
        if drop.sold != sales:
            found.append(f"{name}: sold is {drop.sold} but it has {sales} purchases")
    return found


async def _overdue_holds(db: Adapter, now: int, grace_ms: int) -> list[str]:
    """Holds still active `grace_ms` after their deadline: their drop's actor is not expiring."""
    overdue = await db._read(
        "SELECT id, drop_id, expires_at FROM reservations "
        "WHERE status = 'active' AND expires_at < %s ORDER BY expires_at LIMIT %s",
        (db._time(now - grace_ms), SHOWN),
    )
    return [
        f"reservation {rid} (drop {drop_id}) is still active "
        f"{(now - db._ms(expires_at)) / 1000:.1f} s after its deadline"
        for rid, drop_id, expires_at in overdue
    ]


async def _unmatched_sales(db: Adapter) -> list[str]:
    """Purchases without their completed reservation, and completed reservations without their
    purchase: each sale is exactly one of each."""
    orphans = await db._read(
        "SELECT p.id, p.reservation_id, r.status FROM purchases p "
        "LEFT JOIN reservations r ON r.id = p.reservation_id "
        "WHERE r.id IS NULL OR r.status <> 'completed' OR r.drop_id <> p.drop_id "
        "OR r.user_id <> p.user_id ORDER BY p.id LIMIT %s",
        (SHOWN,),
    )
    found = [
        f"purchase {pid}: its reservation {rid} is {status or 'missing'}, not completed"
        for pid, rid, status in orphans
    ]
    unpaid = await db._read(
        "SELECT r.id FROM reservations r LEFT JOIN purchases p ON p.reservation_id = r.id "
        "WHERE r.status = 'completed' AND p.id IS NULL ORDER BY r.id LIMIT %s",
        (SHOWN,),
    )
    found += [f"reservation {rid} is completed but has no purchase" for (rid,) in unpaid]
    return found


async def drop_stats(db: Adapter, now: int) -> list[DropStats]:
    """Every drop that is not deleted, in the order of their start, with its holds that expire
    within the next minute."""
    drops = await _all_drops(db)
    soon = counts(
        await db._read(
            "SELECT drop_id, COUNT(*) FROM reservations WHERE status = 'active' "
            "AND expires_at <= %s GROUP BY drop_id",
            (db._time(now + 60_000),),
        )
    )
    return [DropStats(d, soon.get(d.id, 0)) for d in drops]


async def _all_drops(db: Adapter) -> list[Drop]:
    rows = await db._read(
        f"SELECT {DROP_COLUMNS} FROM drops WHERE deleted_at IS NULL ORDER BY starts_at, id"
    )
    return [db._drop(r) for r in rows]
