"""What each database adapter supplies to the shared SQL: reads, transactions, its schema
file and its upgrades, besides the value conversions of `Codec`.

The shared code (`sql`, `schema`, `batch`, `idempotency_rows`, `check`, ...) is written against
this class only; `MySQLStore` and `SQLiteStore` fill it in through `SqlStore`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sneakerd import errors
from sneakerd.store.filters import like_any
from sneakerd.store.migrations import Step
from sneakerd.store.rows import Codec
from sneakerd.store.tx import Row, Statement, Tx


class Adapter(Codec):
    """The abstract half of `SqlStore`: the few things the shared SQL cannot say itself."""

    LAST_ID: str
    """The SQL expression for the id the last INSERT on this connection generated."""

    MIGRATIONS: tuple[Step, ...] = ()
    """This dialect's upgrades of older databases (see `migrations`)."""

    @abc.abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read outside any transaction (it sees only committed data)."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that commits when the block ends and rolls back if it raises."""

    @abc.abstractmethod
    def _schema_statements(self) -> Iterable[str]:
        """The statements that create this dialect's schema (see `schema.statements`)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def _contains(self, columns: Sequence[str], text: str) -> Statement:
        """SQL true when any of `columns` contains `text`, ignoring case. This default relies
        on a case-insensitive collation (MySQL's utf8mb4_unicode_ci); adapters without one
        override it."""
        return like_any(columns, text)

    async def _commit_script(self, script: list[Statement], stale: str) -> None:
        """Run a batch's script, whose first statement is the version-checked UPDATE, and
        commit it; raise `VersionConflict(stale)`, having written nothing, if that UPDATE
        matched no row. Adapters that can do this in fewer round trips override it."""
        async with self._transaction() as tx:
            counts = await tx.execute_script(script)
            if counts[0] != 1:
                raise errors.VersionConflict(stale)
