"""Keyset paging: one newest-first page of any list, and where the next one starts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sneakerd.store.adapter import Adapter
from sneakerd.store.base import Page, PageKey
from sneakerd.store.tx import Row

T = TypeVar("T")


async def page(
    db: Adapter,
    select: str,
    params: Sequence[Any],
    order: tuple[str, str],
    limit: int,
    after: PageKey | None,
    convert: Callable[[Row], T],
    key: Callable[[T], PageKey],
) -> Page[T]:
    """One newest-first page of `select` (which ends in its WHERE clause), ordered by
    `order` = (time column, id column): the rows strictly after `after`, and one more to
    tell whether another page follows."""
    created, ident = order
    args = list(params)
    if after is not None:
        t = db._time(after.created_at)
        select += f" AND ({created} < %s OR ({created} = %s AND {ident} < %s))"
        args += [t, t, after.id]
    rows = await db._read(
        f"{select} ORDER BY {created} DESC, {ident} DESC LIMIT %s", (*args, limit + 1)
    )
    items = [convert(r) for r in rows[:limit]]
    return Page(items, key(items[-1]) if len(rows) > limit else None)
