"""The top-level `schema.sql` is the MySQL/MariaDB schema the server creates, ready for the client.

`sneakerd/store/mysql.sql` is the one source (the server runs it at start-up); `schema.sql` is a
byte-for-byte copy for operators who create the database by hand (`mysql DB < schema.sql`).
After changing the source: `cp sneakerd/store/mysql.sql schema.sql`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sneakerd.store import open_store, schema
from sneakerd.store.mysql import MySQLParams
from tests.conftest import REQUIRE_MYSQL, _admin_connection

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO_ROOT / "schema.sql"
SOURCE = REPO_ROOT / "sneakerd" / "store" / "mysql.sql"
CORE_TABLES = {"users", "drops", "reservations", "purchases"}


def created_tables(sql: str) -> set[str]:
    return set(re.findall(r"CREATE TABLE(?: IF NOT EXISTS)?\s+`?(\w+)`?", sql, re.I))


def test_schema_sql_is_a_copy_of_the_servers_schema() -> None:
    assert SCHEMA_FILE.read_bytes() == SOURCE.read_bytes(), (
        "schema.sql differs from sneakerd/store/mysql.sql: cp sneakerd/store/mysql.sql schema.sql"
    )


def test_the_source_creates_the_core_tables() -> None:
    assert created_tables(SOURCE.read_text("utf-8")) >= CORE_TABLES


@pytest.mark.parametrize("filename", ["mysql.sql", "sqlite.sql"])
def test_each_schema_file_parses_into_whole_statements(filename: str) -> None:
    """One parser reads both files: every piece it yields is a statement, never a comment."""
    parsed = schema.statements(filename)
    assert parsed and all(s.startswith(("CREATE ", "INSERT ")) for s in parsed), parsed
    assert created_tables(";".join(parsed)) >= CORE_TABLES


def test_the_parser_drops_comment_lines_and_splits_at_semicolons() -> None:
    text = "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n\n  -- more\nINSERT 1;\n"
    assert schema.parse(text) == ["CREATE TABLE a (x INT)", "INSERT 1"]


def _mysql_client() -> str:
    client = shutil.which("mysql") or shutil.which("mariadb")
    if client is None:
        reason = "no mysql client (apt-get install mariadb-client)"
        if REQUIRE_MYSQL:
            pytest.fail(reason + " (SNEAKERD_REQUIRE_MYSQL=1)")
        pytest.skip(reason)
    return client


@pytest.mark.mysql
async def test_the_mysql_client_loads_schema_sql_into_a_fresh_database(mysql_url: str) -> None:
    params = MySQLParams.from_url(mysql_url)
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{params.db}`")
    finally:
        conn.close()
    command = [
        _mysql_client(),
        "--protocol=tcp",
        f"-h{params.host}",
        f"-P{params.port}",
        f"-u{params.user}",
        params.db,
    ]
    env = {**os.environ, "MYSQL_PWD": params.password}
    with SCHEMA_FILE.open("rb") as schema:
        loaded = await asyncio.to_thread(
            subprocess.run, command, stdin=schema, capture_output=True, timeout=60, env=env
        )
    assert loaded.returncode == 0, loaded.stderr.decode(errors="replace")

    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (params.db,),
            )
            found = {str(row[0]) for row in cur.fetchall()}
    finally:
        conn.close()
    assert found >= CORE_TABLES, found
    assert found == created_tables(SCHEMA_FILE.read_text("utf-8")), found

    # The operator's check accepts it as it is: every table, and the schema version's row.
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sneakerd", "db", "check", "--db", mysql_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "every invariant holds" in checked.stdout

    # The server accepts the hand-made database as its own: its idempotent start-up runs on it.
    store = await open_store(mysql_url)
    try:
        await store.init_schema()
    finally:
        await store.close()
