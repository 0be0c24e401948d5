"""Persistence: one `Store` interface, a MySQL/MariaDB adapter and an embedded SQLite one."""

from __future__ import annotations

from sneakerd import errors
from sneakerd.store.base import (
    DEFAULT_PAGE,
    MAX_PAGE,
    SCHEMA_VERSION,
    Buyer,
    DropPurchase,
    DropStats,
    Page,
    PageKey,
    Store,
    StoredAnswer,
)
from sneakerd.store.numbered import BuyerPurchase, Numbered

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "SCHEMA_VERSION",
    "Buyer",
    "BuyerPurchase",
    "DropPurchase",
    "DropStats",
    "Numbered",
    "Page",
    "PageKey",
    "Store",
    "StoredAnswer",
    "open_store",
]


async def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store a `DATABASE_URL` names: `sqlite:///PATH` or `mysql://USER:PASS@HOST/DB`.
    With `create` false, a MySQL database that is not there is `DatabaseMissing` rather than
    made (the CLI checks a SQLite file itself before it opens it)."""
    if url.startswith("sqlite:"):
        from sneakerd.store.sqlite import SQLiteStore

        return await SQLiteStore.open(url)
    if url.startswith(("mysql:", "mariadb:")):
        from sneakerd.store.mysql import MySQLStore

        return await MySQLStore.open(url, create=create)
    raise errors.ConfigError(f"DATABASE_URL must start with sqlite:/// or mysql://, not {url!r}")
