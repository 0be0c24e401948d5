"""A raffle drop's rows: its new seed, its entries, and the reads the raffle's readers need.

The drop row itself carries the draw (seed, digest, winners: `rows.Codec._raffle`), written by
the batch's version-checked UPDATE; the entries are rows of `raffle_entries`, written by the
same batch (`batch.script`), which commits them only while the drop's digest is NULL.
"""

from __future__ import annotations

import secrets

from sneakerd.domain.model import Drop, DropInfo, DropMode
from sneakerd.domain.raffle import SEED_BYTES, EntryRecord, Raffle, RaffleEntries
from sneakerd.store.adapter import Adapter
from sneakerd.store.rows import ENTRY_COLUMNS
from sneakerd.store.tx import Tx


def new_seed() -> bytes:
    """A raffle's secret seed: 32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def new_raffle(info: DropInfo) -> Raffle | None:
    """A new drop's draw: a fresh seed for a raffle, nothing for any other drop."""
    return Raffle(new_seed()) if info.mode is DropMode.RAFFLE else None


async def load(tx: Tx, drop: Drop) -> RaffleEntries:
    """The entries the drop's actor keeps (none for a drop that is not a raffle)."""
    if drop.raffle is None:
        return RaffleEntries()
    rows = await tx.fetchall(
        "SELECT id, user_id FROM raffle_entries WHERE drop_id = %s", (drop.id,)
    )
    return RaffleEntries.of((int(r[0]), int(r[1])) for r in rows)


async def entry_ids(db: Adapter, drop_id: int) -> list[int]:
    rows = await db._read(
        "SELECT id FROM raffle_entries WHERE drop_id = %s ORDER BY id", (drop_id,)
    )
    return [int(r[0]) for r in rows]


async def entry_of(db: Adapter, drop_id: int, user_id: int) -> EntryRecord | None:
    rows = await db._read(
        f"SELECT {ENTRY_COLUMNS} FROM raffle_entries WHERE drop_id = %s AND user_id = %s",
        (drop_id, user_id),
    )
    return db._entry(rows[0]) if rows else None
