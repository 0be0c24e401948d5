"""`sneakerd db migrate` brings a database made with the version 1 schema up to this one, on
both stores, says from which version to which, prints its progress, and does nothing the
second time."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from sneakerd.clock import SystemClock
from sneakerd.store import SCHEMA_VERSION, open_store
from sneakerd.store.sql import SqlStore
from tests.store.helpers import ms, sql
from tests.store.test_migrations import _statements


async def _sneakerd(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sneakerd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_db_migrate_upgrades_a_version_1_database(store_url: str) -> None:
    kind = "sqlite" if store_url.startswith("sqlite") else "mysql"
    store = await open_store(store_url)
    try:
        assert isinstance(store, SqlStore)
        for statement in _statements(kind):
            await sql(store, statement)
        now = ms(store, SystemClock().now_ms())
        await sql(
            store,
            "INSERT INTO drops (name, price, initial_stock, stock, reserved, sold, "
            "per_user_limit, starts_at, version, created_at, updated_at) "
            "VALUES ('Dunk', 100, 5, 5, 0, 0, 1, %s, 1, %s, %s)",
            (now, now, now),
        )
        assert await store.schema_version() == 1
    finally:
        await store.close()

    code, out, err = await _sneakerd("db", "migrate", "--db", store_url, "--json")
    assert code == 0, out + err
    done = json.loads(out)
    assert done == {"ok": True, "from": 1, "to": SCHEMA_VERSION, "applied": done["applied"]}
    assert done["applied"] and done["applied"][-1] == SCHEMA_VERSION
    assert f"migrate: schema version 1 -> {SCHEMA_VERSION}" in err
    assert "altering tables" in err and "moving rows" in err

    code, out, err = await _sneakerd("db", "migrate", "--db", store_url)
    assert code == 0, out + err
    assert out.strip() == f"already at schema version {SCHEMA_VERSION}: nothing to do"

    code, out, err = await _sneakerd("db", "check", "--db", store_url)
    assert code == 0, out + err
    store = await open_store(store_url)
    try:
        drop = await store.get_drop(1)
        assert drop is not None and drop.info.name == "Dunk" and drop.info.holds_per_user == 3
    finally:
        await store.close()


async def test_db_migrate_refuses_a_database_without_a_schema(store_url: str) -> None:
    await (await open_store(store_url)).close()  # the database exists, with no table in it
    code, out, _ = await _sneakerd("db", "migrate", "--db", store_url, "--json")
    assert code == 1
    assert "run `sneakerd db init`" in json.loads(out)["error"]["message"]


async def test_a_database_newer_than_this_sneakerd_is_refused_by_init_and_serve(
    store_url: str,
) -> None:
    """A database a newer sneakerd made (after a downgrade of the code, say): `db init` said
    "schema ready (version 99)" and ran this version's DDL against it, and `serve` served it.
    Both now refuse in one line, as `db migrate` does, and change nothing."""
    store = await open_store(store_url)
    try:
        await store.init_schema()
        assert isinstance(store, SqlStore)
        async with store._transaction() as tx:
            await tx.execute("INSERT INTO schema_version (version) VALUES (%s)", (99,))
    finally:
        await store.close()
    code, out, _ = await _sneakerd("db", "init", "--db", store_url, "--json")
    assert code == 1, out
    assert "upgrade sneakerd" in json.loads(out)["error"]["message"], out
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sneakerd", "serve", "--port", "0", "--db", store_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**env, "JWT_SECRET": "x" * 40},
    )  # fmt: skip
    out_b, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, out_b.decode()
    assert "upgrade sneakerd" in out_b.decode() and "Traceback" not in out_b.decode()
    store = await open_store(store_url)
    try:
        assert await store.schema_version() == 99
        rows = await store._read("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == [SCHEMA_VERSION, 99]
    finally:
        await store.close()
