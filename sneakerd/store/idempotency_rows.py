"""Idempotency-key rows: the first answer kept for a (user, key), and the rows a batch writes
for the successes it records with their act.

The store knows no HTTP: a saved answer carries the status the web layer gave it, and a success
recorded with its act carries none (`status_code` NULL) and names its record in `ref_id`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sneakerd import errors
from sneakerd.domain.outcome import KeyedSuccess
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import StoredAnswer
from sneakerd.store.rows import multi_row_inserts
from sneakerd.store.tx import DuplicateKey, Statement


def recorded(db: Adapter, keyed: Sequence[KeyedSuccess]) -> list[Statement]:
    """The INSERTs of a batch's keyed successes, to commit with the rows they made."""
    return multi_row_inserts(
        "INSERT INTO idempotency_keys "
        "(user_id, idem_key, request, fingerprint, status_code, body, ref_id, created_at)",
        [
            (
                k.user_id,
                k.key.key,
                k.key.scope,
                k.key.fingerprint,
                None,  # no status: the web layer answers a recorded success as the creation
                "",
                k.ref_id,
                db._time(k.at),
            )
            for k in keyed
        ],
    )


async def answer(db: Adapter, user_id: int, key: str) -> StoredAnswer | None:
    rows = await db._read(
        "SELECT request, status_code, body, ref_id, fingerprint, created_at "
        "FROM idempotency_keys WHERE user_id = %s AND idem_key = %s",
        (user_id, key),
    )
    if not rows:
        return None
    request_line, status, body, ref_id, fingerprint, created_at = rows[0]
    return StoredAnswer(
        request_line,
        None if status is None else int(status),
        body,
        None if ref_id is None else int(ref_id),
        fingerprint,
        db._ms(created_at),
    )


async def save(db: Adapter, user_id: int, key: str, kept: StoredAnswer, now: int) -> StoredAnswer:
    """Keep `kept` unless the key already has an answer; return the one that is kept."""
    try:
        async with db._transaction() as tx:
            await tx.execute(
                "INSERT INTO idempotency_keys (user_id, idem_key, request, fingerprint, "
                "status_code, body, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    user_id,
                    key,
                    kept.request,
                    kept.fingerprint,
                    kept.status,
                    kept.body,
                    db._time(now),
                ),
            )
    except DuplicateKey:
        first = await answer(db, user_id, key)
        if first is not None:
            return first
        raise errors.Unavailable("idempotency key vanished") from None
    return kept


async def forget(db: Adapter, user_id: int, key: str, before: int) -> None:
    async with db._transaction() as tx:
        await tx.execute(
            "DELETE FROM idempotency_keys WHERE user_id = %s AND idem_key = %s AND created_at < %s",
            (user_id, key, db._time(before)),
        )


async def forget_all(db: Adapter, before: int) -> int:
    async with db._transaction() as tx:
        return await tx.execute(
            "DELETE FROM idempotency_keys WHERE created_at < %s", (db._time(before),)
        )
