"""Test-only helpers that reach under the store's interface, as an operator with SQL would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sneakerd.store import Store
from sneakerd.store.sql import SqlStore


async def sql(store: Store, statement: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run one statement in its own transaction, as a second writer would."""
    assert isinstance(store, SqlStore)
    async with store._transaction() as tx:
        if statement.lstrip().upper().startswith("SELECT"):
            return await tx.fetchall(statement, params)
        await tx.execute(statement, params)
        return []


def ms(store: Store, value: int) -> Any:
    assert isinstance(store, SqlStore)
    return store._time(value)
