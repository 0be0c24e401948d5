"""Reservation and purchase ids, handed out by the application in blocks (`id_blocks`): a
batch knows its rows' ids before it commits, and nothing depends on the database's
auto-increment settings."""

from __future__ import annotations

from sneakerd.store.adapter import Adapter

KINDS = ("reservations", "purchases", "raffle_entries")


async def allocate(db: Adapter, kind: str, count: int) -> int:
    """Reserve `count` consecutive ids of `kind` and return the first; the row lock of the
    UPDATE makes two callers' blocks disjoint, across nodes too."""
    if kind not in KINDS or count < 1:
        raise ValueError(f"cannot allocate {count} {kind!r} ids")
    async with db._transaction() as tx:
        await tx.execute(
            "UPDATE id_blocks SET next_id = next_id + %s WHERE name = %s", (count, kind)
        )
        rows = await tx.fetchall("SELECT next_id FROM id_blocks WHERE name = %s", (kind,))
    return int(rows[0][0]) - count
