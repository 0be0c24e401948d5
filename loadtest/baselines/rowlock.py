"""The original Node backend's design, in Python: per request one transaction that locks the drop
row (SELECT ... FOR UPDATE), checks stock and the user's count, INSERTs the reservation, UPDATEs
the stock and COMMITs; aiomysql, a pool of 64 connections, a small schema of its own.

    python -m loadtest.baselines.rowlock --port P --db mysql://root@127.0.0.1:3306/loadtest_rowlock_x

`--init` creates the database and schema and exits. The harness adds drops by INSERT into
`drops (id, stock, per_user_limit)`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlparse

import aiomysql
import pymysql
from aiohttp import web

from loadtest.baselines.common import drop_id_of, iso, json, parser, problem, serve, user_id

HOLD = timedelta(seconds=60)
POOL = 64
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS drops (
      id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
      stock INT UNSIGNED NOT NULL,
      per_user_limit INT UNSIGNED NOT NULL DEFAULT 1
    ) ENGINE=InnoDB""",
    """CREATE TABLE IF NOT EXISTS reservations (
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      drop_id BIGINT UNSIGNED NOT NULL,
      user_id BIGINT UNSIGNED NOT NULL,
      status VARCHAR(16) NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      created_at DATETIME(3) NOT NULL,
      KEY idx_drop_user (drop_id, user_id, status)
    ) ENGINE=InnoDB""",
)


def params(url: str) -> dict[str, Any]:
    u = urlparse(url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 3306,
        "user": unquote(u.username or "root"),
        "password": unquote(u.password or ""),
        "db": u.path.lstrip("/"),
    }


def init(url: str) -> None:
    p = params(url)
    name = p.pop("db")
    conn = pymysql.connect(**p, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
            cur.execute(f"USE `{name}`")
            for statement in SCHEMA:
                cur.execute(statement)
    finally:
        conn.close()


def build(secret: str, url: str) -> web.Application:
    app = web.Application()
    pool_key = web.AppKey("pool", aiomysql.Pool)

    async def open_pool(app: web.Application) -> Any:
        app[pool_key] = await aiomysql.create_pool(
            minsize=POOL, maxsize=POOL, autocommit=False, **params(url)
        )
        yield
        app[pool_key].close()
        await app[pool_key].wait_closed()

    async def reserve(request: web.Request) -> web.Response:
        who = user_id(request, secret)
        if who is None:
            return problem(401, "unauthorized", "The token is invalid or has expired")
        drop_id = drop_id_of(await request.read())
        if drop_id is None:
            return problem(422, "validation_error", "dropId must be a positive integer")
        async with request.app[pool_key].acquire() as conn, conn.cursor() as cur:
            try:
                await conn.begin()
                await cur.execute(
                    "SELECT stock, per_user_limit FROM drops WHERE id = %s FOR UPDATE", (drop_id,)
                )
                row = await cur.fetchone()
                if row is None:
                    await conn.rollback()
                    return problem(404, "not_found", "No such drop")
                stock, limit = row
                if stock <= 0:
                    await conn.rollback()
                    return problem(409, "out_of_stock", "Sold out")
                await cur.execute(
                    "SELECT COUNT(*) FROM reservations WHERE drop_id = %s AND user_id = %s "
                    "AND status IN ('active', 'completed')",
                    (drop_id, who),
                )
                (count,) = await cur.fetchone()
                if count >= limit:
                    await conn.rollback()
                    return problem(409, "limit_reached", "Limit reached")
                now = datetime.now(UTC)
                expires = now + HOLD
                await cur.execute(
                    "INSERT INTO reservations (drop_id, user_id, status, expires_at, created_at) "
                    "VALUES (%s, %s, 'active', %s, %s)",
                    (drop_id, who, expires.replace(tzinfo=None), now.replace(tzinfo=None)),
                )
                reservation_id = cur.lastrowid
                await cur.execute("UPDATE drops SET stock = stock - 1 WHERE id = %s", (drop_id,))
                await conn.commit()
            except (pymysql.err.MySQLError, asyncio.CancelledError):
                await conn.rollback()
                raise
        reservation = {
            "id": reservation_id,
            "dropId": drop_id,
            "userId": who,
            "status": "active",
            "expiresAt": iso(expires),
            "createdAt": iso(now),
        }
        return json(201, {"reservation": reservation})

    app.cleanup_ctx.append(open_pool)
    app.router.add_post("/api/reservations", reserve)
    return app


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--db", required=True, help="mysql://USER:PASS@HOST:PORT/DB")
    p.add_argument("--init", action="store_true", help="create the database and schema, exit")
    args = p.parse_args()
    init(args.db)
    if not args.init:
        serve(build(args.secret, args.db), args.host, args.port)


if __name__ == "__main__":
    main()
