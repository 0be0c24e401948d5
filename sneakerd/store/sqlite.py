"""The embedded store: one SQLite file, so `sneakerd serve` needs no database server.

SQLite allows one writer at a time, so writes go through one connection behind an asyncio lock
(a transaction's statements can never interleave with another's). Reads use a pool of further
connections: in WAL mode each sees only committed data and never waits for the writer, and
each runs on a thread of its own, so a slow read (a long list) holds one reader while the others
keep answering every other read.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

from sneakerd import errors
from sneakerd.store import migrations, schema
from sneakerd.store.sql import SqlStore
from sneakerd.store.tx import DuplicateKey, MissingParent, Row, Statement

FOLD_FUNCTION = "sneakerd_fold"
"""A SQL function of one argument: the text case-folded (Unicode), NULL for NULL. SQLite's own
LIKE and lower() fold ASCII only, so a search for "ü" would miss "Ü"."""

READ_CONNECTIONS = 4

CLOSED_MESSAGES = frozenset({"no active connection", "Connection closed"})
"""What aiosqlite's `ValueError` says when the connection is closed (its `Connection._conn` and
`Connection._execute`): the one `ValueError` that means "no database" rather than a bug."""


def _lost(exc: BaseException) -> bool:
    """True for a failure of the database (a driver error or a closed connection); anything
    else is a bug of ours, which must surface as itself and not as `Unavailable`."""
    return isinstance(exc, sqlite3.Error) or (
        isinstance(exc, ValueError) and str(exc) in CLOSED_MESSAGES
    )


def _fold(value: object) -> str | None:
    return None if value is None else str(value).casefold()


@lru_cache(maxsize=256)
def _q(sql: str) -> str:
    return sql.replace("%s", "?")


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute/path.db` to a path."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise errors.ConfigError(f"not a sqlite:///PATH URL: {url!r}")
    return Path(url[len(prefix) :])


def _create_private(path: Path) -> None:
    """Create the database file owner-only (0600) if it is not there yet.

    It holds password hashes. SQLite would make it 0644 less the umask, and it gives the -wal and
    -shm files the mode of the database file, so creating this one empty (a valid new database)
    with 0600 covers all three. An existing file keeps the mode its operator gave it.
    """
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class _Tx:
    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(_q(sql), params)
        rowcount = cursor.rowcount
        await cursor.close()
        return rowcount

    async def execute_script(self, script: Sequence[Statement]) -> list[int]:
        # No network here: one statement at a time costs nothing extra.
        return [await self.execute(sql, params) for sql, params in script]

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(_q(sql), params))


class SQLiteStore(SqlStore):
    LAST_ID = "last_insert_rowid()"
    MIGRATIONS = migrations.SQLITE

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, readers: Sequence[aiosqlite.Connection]
    ) -> None:
        if not readers:
            raise ValueError("a SQLite store needs at least one read connection")
        self.path = path
        self._writer = writer
        self._readers = tuple(readers)
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for reader in self._readers:
            self._idle.put_nowait(reader)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, url: str, *, busy_timeout_ms: int = 5_000, read_connections: int = READ_CONNECTIONS
    ) -> SQLiteStore:
        path = sqlite_path(url)
        opened: list[aiosqlite.Connection] = []
        try:
            if path.parent != Path():
                path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
            writer = await cls._connect(path, busy_timeout_ms)
            opened.append(writer)
            await writer.execute_fetchall("PRAGMA journal_mode = WAL")
            for _ in range(max(1, read_connections)):
                opened.append(await cls._connect(path, busy_timeout_ms))
        except (sqlite3.Error, OSError) as exc:
            for conn in opened:
                await conn.close()
            raise errors.Unavailable(f"cannot open SQLite database {path}: {exc}") from exc
        return cls(path, writer, opened[1:])

    @property
    def read_connections(self) -> tuple[aiosqlite.Connection, ...]:
        """The pooled read connections (each read takes whichever is idle)."""
        return self._readers

    @staticmethod
    async def _connect(path: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            for pragma in (
                f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
            ):
                await conn.execute_fetchall(pragma)
            await conn.create_function(FOLD_FUNCTION, 1, _fold, deterministic=True)
        except BaseException:
            # Its thread would keep the process alive after the error was told (a file that
            # is no database: the CLI said so and never exited).
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        await self._writer.close()

    def _schema_statements(self) -> Iterable[str]:
        return schema.statements("sqlite.sql")

    def _time(self, ms: int) -> int:
        return ms

    def _ms(self, value: Any) -> int:
        return int(value)

    def _price(self, price: Decimal) -> str:
        return str(price)

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        reader = await self._idle.get()
        try:
            return list(await reader.execute_fetchall(_q(sql), params))
        except Exception as exc:
            if not _lost(exc):
                raise
            raise errors.Unavailable("the database did not answer") from exc
        finally:
            # Back even if this read was cancelled: the connection then finishes the statement
            # on its own thread before it starts the next one it is given.
            self._idle.put_nowait(reader)

    def _contains(self, columns: Sequence[str], text: str) -> Statement:
        folded = text.casefold()
        sql = " OR ".join(f"instr({FOLD_FUNCTION}({c}), %s) > 0" for c in columns)
        return f"({sql})", [folded] * len(columns)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Tx]:
        async with self._lock:
            conn = self._writer
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except Exception as exc:
                if not _lost(exc):
                    raise
                raise errors.Unavailable("the database is locked or unreachable") from exc
            try:
                yield _Tx(conn)
                await conn.execute("COMMIT")
            except BaseException as exc:
                await self._rollback(conn)
                if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
                    column = (
                        "email"
                        if "users.email" in str(exc)
                        else ("username" if "users.username" in str(exc) else "key")
                    )
                    raise DuplicateKey(column) from exc
                if isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc):
                    raise MissingParent("a row's parent is not there") from exc
                if _lost(exc):
                    raise errors.Unavailable("the database failed during a transaction") from exc
                raise

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        try:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
        except Exception as exc:
            # The error that made us roll back is the one to report; a failed rollback of a
            # lost connection adds nothing.
            if not _lost(exc):
                raise
