"""The MySQL store's pools are ready before the first burst, not filled during it."""

from __future__ import annotations

import pytest

from sneakerd.store.mysql import MySQLStore

pytestmark = pytest.mark.mysql


async def test_every_writer_connection_is_open_when_the_store_is(mysql_url: str) -> None:
    store = await MySQLStore.open(mysql_url, write_connections=6, read_connections=8)
    try:
        # Connected and idle: the burst's first commits take them without a handshake.
        assert len(await store.connection_ids()) == 6
        assert store._read_pool.freesize == 4  # a few readers; the rest open on demand
    finally:
        await store.close()
