"""`Unavailable` (a 503) means the database is not there: a driver's error or a closed
connection. Any other exception is a bug of ours and must surface as itself (a logged 500),
never be disguised as an outage that a client would retry for ever."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sneakerd import errors
from sneakerd.domain.model import DropInfo
from sneakerd.store import Store, open_store
from sneakerd.store.sql import SqlStore
from tests.store.helpers import sql


@pytest.mark.parametrize("bug", [ValueError, RuntimeError])
async def test_a_bug_inside_a_transaction_surfaces_as_itself(
    store: Store, bug: type[Exception]
) -> None:
    assert isinstance(store, SqlStore)
    with pytest.raises(bug, match="a bug of ours"):
        async with store._transaction() as tx:
            await tx.execute("UPDATE id_blocks SET next_id = 99 WHERE name = 'reservations'")
            raise bug("a bug of ours")
    # Rolled back, and the store still serves.
    rows = await sql(store, "SELECT next_id FROM id_blocks WHERE name = 'reservations'")
    assert [tuple(row) for row in rows] == [(1,)]
    await store.ping()


async def test_a_row_the_mapping_cannot_read_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    """Text in an integer column (SQLite's type affinity keeps it; MySQL's strict mode would
    refuse it) makes the row mapping raise inside `load_state`'s transaction."""
    store = await open_store(f"sqlite:///{tmp_path / 'corrupt.db'}")
    try:
        await store.init_schema()
        drop = await store.create_drop(DropInfo(name="Dunk", price=Decimal("100.00")), 5, 1_000)
        await sql(store, "UPDATE drops SET per_user_limit = 'many' WHERE id = %s", (drop.id,))
        with pytest.raises(ValueError, match="many"):
            await store.load_state(drop.id)
        await store.ping()
    finally:
        await store.close()


async def test_a_closed_store_is_unavailable(store_url: str) -> None:
    closed = await open_store(store_url)
    await closed.init_schema()
    await closed.close()
    with pytest.raises(errors.Unavailable):
        await closed.ping()
    with pytest.raises(errors.Unavailable):
        await closed.allocate_ids("reservations", 1)
