"""Users straight into the database (one shared bcrypt hash) and tokens minted locally.

`sneakerd db init` makes the schema first; then 20,000 rows go in with a few multi-row INSERTs.
Tokens are HS256 JWTs with docs/API.md's claims, signed with the server's JWT_SECRET.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bcrypt
import jwt

from loadtest.servers import JWT_SECRET, Database, mysql_admin

PASSWORD_HASH = bcrypt.hashpw(b"loadtest-password", bcrypt.gensalt(4)).decode()
CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class Population:
    customers: list[int]
    admin: int


def mint(user_id: int, role: str = "customer", ttl: int = 86_400, *, edition: int = 0) -> str:
    """`edition` shifts `exp` by that many seconds, so each edition is a different token for
    the same user: a server that caches verified tokens has to verify each edition afresh."""
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + ttl + edition}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def sql(db: Database, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement against the run's database (MySQL placeholders: %s)."""
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), timeout=30)
        try:
            cur = conn.execute(query.replace("%s", "?"), tuple(params))
            rows = cur.fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    mconn = mysql_admin(db.name)
    try:
        with mconn.cursor() as mcur:
            mcur.execute(query, tuple(params) or None)
            return list(mcur.fetchall())
    finally:
        mconn.close()


def insert_users(db: Database, count: int, prefix: str = "lt") -> Population:
    """`count` customers and one admin; returns their ids."""
    if db.kind == "sqlite":
        created: Any = int(time.time() * 1000)
    else:
        created = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    rows = [
        (f"{prefix}{i}", f"{prefix}{i}@load.test", PASSWORD_HASH, "customer", created)
        for i in range(count)
    ]
    rows.append((f"{prefix}admin", f"{prefix}admin@load.test", PASSWORD_HASH, "admin", created))
    statement = (
        "INSERT INTO users (username, email, password_hash, role, created_at) "
        "VALUES (%s, %s, %s, %s, %s)"
    )
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), timeout=30)
        try:
            conn.executemany(statement.replace("%s", "?"), rows)
            conn.commit()
        finally:
            conn.close()
    else:
        mconn = mysql_admin(db.name)
        try:
            with mconn.cursor() as cur:
                for start in range(0, len(rows), CHUNK):
                    cur.executemany(statement, rows[start : start + CHUNK])
        finally:
            mconn.close()
    got = sql(db, "SELECT id, role FROM users WHERE username LIKE %s ORDER BY id", (prefix + "%",))
    customers = [int(i) for i, role in got if role == "customer"]
    admin = next(int(i) for i, role in got if role == "admin")
    return Population(customers, admin)
