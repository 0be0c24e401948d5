"""The production store: MySQL 8 / MariaDB through aiomysql.

Two pools: actors write through their own small pool so that a burst of reads can never make a
commit wait for a connection. A connection that failed mid-transaction is closed, not reused:
after a failed COMMIT the outcome is unknown, and the actor's version check decides it later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql
from pymysql.constants import CLIENT

from sneakerd import errors
from sneakerd.clock import from_datetime, sql_datetime
from sneakerd.store import migrations, schema
from sneakerd.store.sql import SqlStore
from sneakerd.store.tx import DuplicateKey, MissingParent, Row, Statement

STALE_GUARD = (
    "SELECT (SELECT 1 FROM DUAL WHERE ROW_COUNT() = 0 "
    "UNION ALL SELECT 1 FROM DUAL WHERE ROW_COUNT() = 0) INTO @sneakerd_stale"
)
"""Fails (1242) exactly when the statement before it changed no row: see `_commit_script`."""
SUBQUERY_ROWS = 1242

STALE_SIGNAL = (
    "IF ROW_COUNT() = 0 THEN SIGNAL SQLSTATE '45000' "
    "SET MYSQL_ERRNO = 1644, MESSAGE_TEXT = 'sneakerd: stale version'; END IF"
)
"""The same guard inside a MariaDB compound statement: SIGNAL raises error 1644 there."""
SIGNALED = 1644

# Errors that mean "the database is not there or not answering", as opposed to a bug of ours
# (which must surface as itself, a logged 500, not as a 503 a client retries for ever).
DRIVER_ERRORS = (pymysql.err.MySQLError, OSError, asyncio.TimeoutError)

POOL_CLOSED = "Cannot acquire connection after closing pool"
"""What aiomysql's `RuntimeError` says when the pool is closed: the one `RuntimeError` that means
"no database" (the store was closed under a request), not a bug."""


@dataclass(frozen=True, slots=True)
class MySQLParams:
    host: str
    port: int
    user: str
    password: str
    db: str

    @classmethod
    def from_url(cls, url: str) -> MySQLParams:
        parts = urlsplit(url)
        db = parts.path.lstrip("/")
        if parts.scheme not in ("mysql", "mariadb") or not db:
            raise errors.ConfigError(f"not a mysql://USER:PASS@HOST:PORT/DB URL: {url!r}")
        try:
            port = parts.port  # raises for one that is not a number from 0 to 65535
        except ValueError:
            raise errors.ConfigError(  # not the URL itself: it may hold the password
                "the port of the database URL must be a number from 1 to 65535"
            ) from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            db=db,
        )


class _Tx:
    __slots__ = ("_cur",)

    def __init__(self, cur: aiomysql.Cursor) -> None:
        self._cur = cur

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(await self._cur.execute(sql, params or None))

    async def execute_script(self, script: Sequence[Statement]) -> list[int]:
        # One multi-statement query (the write pool's connections allow them; every value is
        # escaped by the driver's mogrify, exactly as a parameterised execute would).
        cur = self._cur
        await cur.execute(";\n".join(cur.mogrify(sql, params or None) for sql, params in script))
        counts = [int(cur.rowcount)]
        for _ in script[1:]:
            await cur.nextset()
            counts.append(int(cur.rowcount))
        return counts

    async def execute_block(self, script: Sequence[Statement]) -> None:
        """Run the statements as one MariaDB compound statement (`BEGIN NOT ATOMIC ... END`):
        the server answers the whole of it with one packet, where a multi-statement query
        answers each statement as it finishes, and each of those answers costs a busy loop a
        turn (the figures are in loadtest/README.md). Values are escaped as in
        `execute_script`."""
        cur = self._cur
        body = ";\n".join(cur.mogrify(sql, params or None) for sql, params in script)
        await cur.execute(f"BEGIN NOT ATOMIC\n{body};\nEND")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        await self._cur.execute(sql, params or None)
        return list(await self._cur.fetchall())


async def _is_mariadb(pool: Any) -> bool:
    """Whether the server is MariaDB (10.1 and later run compound statements anywhere)."""
    conn = await pool.acquire()
    try:
        return "mariadb" in str(conn.get_server_info()).lower()
    finally:
        pool.release(conn)


def _duplicate_column(exc: BaseException) -> str | None:
    if isinstance(exc, pymysql.err.IntegrityError) and exc.args and exc.args[0] == 1062:
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
        for column in ("email", "username"):
            if f"uq_users_{column}" in message:
                return column
        return "key"
    return None


class MySQLStore(SqlStore):
    LAST_ID = "LAST_INSERT_ID()"
    MIGRATIONS = migrations.MYSQL

    def __init__(
        self,
        params: MySQLParams,
        write_pool: Any,
        read_pool: Any,
        op_timeout: float = 5.0,
        *,
        compound: bool = False,
    ) -> None:
        self.params = params
        self._op_timeout = op_timeout
        self._write_pool = write_pool
        self._read_pool = read_pool
        self.compound = compound
        """Whether a batch commits as one compound statement (MariaDB) rather than as a
        multi-statement query (MySQL, which has no compound statements outside routines)."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        # Every drop's actor commits on its own schedule: with a handful of connections the
        # quiet drops' commits queue behind the others' (the numbers are in loadtest/README.md).
        write_connections: int = 16,
        read_connections: int = 16,
        connect_timeout: float = 5.0,
        op_timeout: float = 5.0,
        create: bool = True,
    ) -> MySQLStore:
        params = MySQLParams.from_url(url)
        common: dict[str, Any] = {
            "host": params.host,
            "port": params.port,
            "user": params.user,
            "password": params.password,
            "charset": "utf8mb4",
            "connect_timeout": connect_timeout,
            "init_command": "SET time_zone = '+00:00'",
            "pool_recycle": 3600,
        }
        try:
            await cls._create_database(params, common, create=create)
            # Only the writers may send multi-statement scripts (a batch's commit); readers,
            # which run the queries that carry user input most directly, may not.
            # Every writer connection is opened now, not on first use: otherwise a drop's
            # opening burst pays a dozen handshakes on the busy loop just as every actor
            # commits (the measurements are in loadtest/README.md).
            write_pool = await aiomysql.create_pool(
                minsize=write_connections,
                maxsize=write_connections,
                db=params.db,
                autocommit=False,
                client_flag=CLIENT.MULTI_STATEMENTS,
                **common,
            )
            read_pool = await aiomysql.create_pool(
                minsize=min(4, read_connections),
                maxsize=read_connections,
                db=params.db,
                autocommit=True,
                **common,
            )
            compound = await _is_mariadb(write_pool)
        except DRIVER_ERRORS as exc:
            raise errors.Unavailable(
                f"cannot reach MySQL at {params.host}:{params.port}: {exc}"
            ) from exc
        return cls(params, write_pool, read_pool, op_timeout, compound=compound)

    @staticmethod
    async def _create_database(
        params: MySQLParams, common: dict[str, Any], *, create: bool
    ) -> None:
        """Create the database if this user may (a missing right is not an error here); with
        `create` false, `DatabaseMissing` if it is not there."""
        conn = await aiomysql.connect(**{k: v for k, v in common.items() if k != "pool_recycle"})
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (params.db,),
                )
                if not await cur.fetchall():
                    if not create:
                        raise errors.DatabaseMissing(
                            f"no database {params.db!r} on {params.host}:{params.port} "
                            "(make one with `sneakerd db init`)"
                        )
                    name = params.db.replace("`", "``")
                    await cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{name}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
        except pymysql.err.MySQLError:
            pass
        finally:
            conn.close()

    async def close(self) -> None:
        for pool in (self._write_pool, self._read_pool):
            pool.close()
            await pool.wait_closed()

    def _schema_statements(self) -> Iterable[str]:
        # "Table already exists" notes are expected on every run after the first.
        return [
            "SET SESSION sql_notes = 0",
            *schema.statements("mysql.sql"),
            "SET SESSION sql_notes = 1",
        ]

    def _time(self, ms: int) -> str:
        # A literal string rather than a datetime that pymysql would format again.
        return sql_datetime(ms)

    def _ms(self, value: Any) -> int:
        return from_datetime(value)

    def _price(self, price: Decimal) -> Decimal:
        return price

    async def _acquire(self, pool: Any) -> Any:
        try:
            async with asyncio.timeout(self._op_timeout):
                return await pool.acquire()
        except DRIVER_ERRORS as exc:
            raise errors.Unavailable("the database is unreachable") from exc
        except RuntimeError as exc:
            if str(exc) != POOL_CLOSED:
                raise
            raise errors.Unavailable("the store is closed") from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        conn = await self._acquire(self._read_pool)
        try:
            async with asyncio.timeout(self._op_timeout), conn.cursor() as cur:
                await cur.execute(sql, params or None)
                return list(await cur.fetchall())
        except DRIVER_ERRORS as exc:
            conn.close()
            raise errors.Unavailable("the database did not answer") from exc
        finally:
            self._read_pool.release(conn)

    async def _commit_script(self, script: list[Statement], stale: str) -> None:
        """The whole batch in one round trip: the version-checked UPDATE, a guard that fails
        the script if that UPDATE matched no row, the batch's rows, then COMMIT.

        On MariaDB it is one compound statement with one answer, its guard a SIGNAL. On MySQL
        it is a multi-statement query, which MySQL runs until its first error, so a stale
        version stops the script before any row is written or the COMMIT runs; there the
        guard needs no privilege, schema object or sql_mode: a scalar subquery that returns
        two rows is an error (1242) wherever it runs, and it returns them only when
        ROW_COUNT(), the preceding UPDATE's, is 0. (`DO` would swallow the error: MariaDB
        turns errors in `DO` into warnings; `SELECT ... INTO` keeps it.) Either way the
        rollback ends a failed script.
        """
        async with self._transaction(commit=False) as tx:
            try:
                if self.compound:
                    await tx.execute_block(
                        [script[0], (STALE_SIGNAL, ()), *script[1:], ("COMMIT", ())]
                    )
                else:
                    await tx.execute_script(
                        [script[0], (STALE_GUARD, ()), *script[1:], ("COMMIT", ())]
                    )
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in (SUBQUERY_ROWS, SIGNALED):
                    raise errors.VersionConflict(stale) from exc
                raise

    @asynccontextmanager
    async def _transaction(self, *, commit: bool = True) -> AsyncIterator[_Tx]:
        """One transaction, bounded by `op_timeout` as a whole: a database that stops
        answering mid-way (a partition, not a refusal) costs callers seconds, never a hang.
        `commit=False`: the block sends its own COMMIT (a script that ends with one)."""
        conn = await self._acquire(self._write_pool)
        try:
            async with asyncio.timeout(self._op_timeout):
                try:
                    async with conn.cursor() as cur:
                        yield _Tx(cur)
                    if commit:
                        await conn.commit()
                except (errors.VersionConflict, errors.DomainError):
                    await self._rollback(conn)
                    raise
                except DRIVER_ERRORS as exc:
                    column = _duplicate_column(exc)
                    await self._rollback(conn)
                    if column is not None:
                        raise DuplicateKey(column) from exc
                    if isinstance(exc, pymysql.err.IntegrityError) and exc.args[:1] == (1452,):
                        raise MissingParent("a row's parent is not there") from exc
                    raise errors.Unavailable("the database failed during a transaction") from exc
                except BaseException:
                    conn.close()
                    raise
        except TimeoutError as exc:
            conn.close()
            raise errors.Unavailable("the database did not answer in time") from exc
        finally:
            self._write_pool.release(conn)

    @staticmethod
    async def _rollback(conn: Any) -> None:
        try:
            await conn.rollback()
        except DRIVER_ERRORS:
            conn.close()

    async def connection_ids(self) -> list[int]:
        """The server-side ids of the writer pool's idle connections (tests kill them)."""
        ids = []
        for conn in list(self._write_pool._free):
            async with conn.cursor() as cur:
                await cur.execute("SELECT CONNECTION_ID()")
                (row,) = await cur.fetchall()
                ids.append(int(row[0]))
            await conn.commit()
        return ids
