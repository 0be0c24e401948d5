"""The audit log's rows: writing an entry (inside the transaction of the write it records)
and listing entries newest first, optionally of one drop.

Snapshots are kept as JSON text (`before_json`, `after_json`; `before` is a reserved word in
MySQL), so the log needs no table change when a drop gains a field.
"""

from __future__ import annotations

from typing import Any

import orjson

from sneakerd.domain.audit import AuditAction, AuditEntry, AuditRecord, snapshot
from sneakerd.domain.model import Drop
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import DEFAULT_PAGE, Page, PageKey
from sneakerd.store.keyset import page
from sneakerd.store.tx import Row, Statement

COLUMNS = "id, at, actor, action, drop_id, before_json, after_json"
NO_DROP = 0
"""`drop_id` of an entry that is not about a drop: the column predates such entries and is NOT
NULL, and no drop has id 0."""


def created(drop: Drop, actor: str) -> AuditEntry:
    """The entry of a new drop: nothing before, the drop as created after."""
    return AuditEntry(drop.created_at, actor, AuditAction.CREATE, drop.id, None, snapshot(drop))


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _unjson(text: str | bytes | None) -> dict[str, Any] | None:
    return None if text is None else orjson.loads(text)


def insert(db: Adapter, entry: AuditEntry) -> Statement:
    return (
        "INSERT INTO audit_log (at, actor, action, drop_id, before_json, after_json) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (
            db._time(entry.at),
            entry.actor,
            entry.action.value,
            NO_DROP if entry.drop_id is None else entry.drop_id,
            _json(entry.before),
            _json(entry.after),
        ),
    )


def _record(db: Adapter, row: Row) -> AuditRecord:
    entry = AuditEntry(
        db._ms(row[1]),
        row[2],
        AuditAction(row[3]),
        int(row[4]) or None,
        _unjson(row[5]),
        _unjson(row[6]),
    )
    return AuditRecord(int(row[0]), entry)


async def entries(
    db: Adapter,
    *,
    drop_id: int | None = None,
    limit: int = DEFAULT_PAGE,
    after: PageKey | None = None,
) -> Page[AuditRecord]:
    """Newest first, by (at, id)."""
    where, params = ("drop_id = %s", [drop_id]) if drop_id is not None else ("1 = 1", [])
    return await page(
        db,
        f"SELECT {COLUMNS} FROM audit_log WHERE {where}",
        params,
        ("at", "id"),
        limit,
        after,
        lambda row: _record(db, row),
        lambda r: PageKey(r.entry.at, r.id),
    )
