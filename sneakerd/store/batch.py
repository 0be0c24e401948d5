"""A batch's commit: the version-checked drop UPDATE and every row the batch made, written as
one script that commits or leaves nothing behind.

All of it goes to the database as one script with its COMMIT (one round trip on MySQL, see
`MySQLStore._commit_script`): each round trip is a wait on a loop that is busy with HTTP. If
another writer moved the version, the rows written after the UPDATE are rolled back with it.
"""

from __future__ import annotations

from sneakerd import errors
from sneakerd.domain.model import ReservationStatus
from sneakerd.domain.outcome import Changes
from sneakerd.store import audit_rows, idempotency_rows, outbox_rows, queue_rows
from sneakerd.store.adapter import Adapter
from sneakerd.store.rows import (
    CHUNK,
    ENTRY_COLUMNS,
    PURCHASE_COLUMNS,
    RESERVATION_COLUMNS,
    marks,
    multi_row_inserts,
)
from sneakerd.store.tx import DuplicateKey, MissingParent, Statement


async def commit(db: Adapter, changes: Changes) -> None:
    """Write one batch; raise `VersionConflict` (having written nothing) if the drop is no
    longer at `changes.expected_version`, or `RowConflict` if a row of it is refused."""
    drop = changes.drop
    try:
        await db._commit_script(
            script(db, changes),
            f"drop {drop.id} is no longer at version {changes.expected_version}",
        )
    except (DuplicateKey, MissingParent) as exc:
        raise errors.RowConflict(f"a row of drop {drop.id}'s batch: {exc}") from exc


def script(db: Adapter, changes: Changes) -> list[Statement]:
    """The batch's statements, the version-checked UPDATE first (`_commit_script` relies on
    its place), then the new holds, the status changes, the sales, the recorded keys and the
    webhook events (the outbox)."""
    t = db._time(changes.drop.updated_at)
    statements = [_drop_update(db, changes)]
    statements += multi_row_inserts(
        f"INSERT INTO reservations ({RESERVATION_COLUMNS})",
        [db._reservation_row(r) for r in changes.new_reservations],
    )
    by_status: dict[ReservationStatus, list[int]] = {}
    for reservation_id, status in changes.status_changes:
        by_status.setdefault(status, []).append(reservation_id)
    for status, ids in by_status.items():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            statements.append(
                (
                    f"UPDATE reservations SET status = %s, ended_at = %s "
                    f"WHERE status = 'active' AND id IN ({marks(len(chunk))})",
                    (status.value, t, *chunk),
                )
            )
    statements += multi_row_inserts(
        f"INSERT INTO purchases ({PURCHASE_COLUMNS})",
        [db._purchase_row(p) for p in changes.new_purchases],
    )
    statements += idempotency_rows.recorded(db, changes.keyed)
    statements += multi_row_inserts(
        f"INSERT INTO raffle_entries ({ENTRY_COLUMNS})",
        [db._entry_row(e) for e in changes.new_entries],
    )
    statements += [audit_rows.insert(db, entry) for entry in changes.audit]
    if changes.queue is not None:
        statements += queue_rows.statements(db, changes.drop.id, changes.queue)
    statements += outbox_rows.inserts(db, changes)
    return statements


FENCE = " AND EXISTS (SELECT 1 FROM drop_leases WHERE drop_id = %s AND epoch = %s)"
"""Where drops are owned by leases: the UPDATE matches only while the lease has the epoch the
batch was decided under. The database is the fence, not the clock."""


def _drop_update(db: Adapter, changes: Changes) -> Statement:
    """The drop's whole row, only if it is still at the version the batch was decided on."""
    drop, info = changes.drop, changes.drop.info
    t = db._time(drop.updated_at)
    fence = () if changes.epoch is None else (drop.id, changes.epoch)
    return (
        "UPDATE drops SET name = %s, brand = %s, description = %s, price = %s, "
        "image_url = %s, initial_stock = %s, stock = %s, reserved = %s, sold = %s, "
        "per_user_limit = %s, holds_per_user = %s, paused = %s, starts_at = %s, ends_at = %s, "
        "queue = %s, version = %s, updated_at = %s, deleted_at = %s, mode = %s, "
        "entries_open_at = %s, entries_close_at = %s, claim_seconds = %s, raffle_seed = %s, "
        "entries_digest = %s, "
        "raffle_drawn_at = %s, raffle_winners = %s, raffle_entries = %s "
        "WHERE id = %s AND version = %s"
        # A raffle's entries are taken only while its digest is not committed: whatever the
        # batch believed, the row does not match once the entries closed.
        + " AND entries_digest IS NULL" * bool(changes.new_entries)
        + FENCE * bool(fence),
        (
            info.name,
            info.brand,
            info.description,
            db._price(info.price),
            info.image_url,
            drop.initial_stock,
            drop.stock,
            drop.reserved,
            drop.sold,
            info.per_user_limit,
            info.holds_per_user,
            int(info.paused),
            db._time(info.starts_at),
            db._opt_time(info.ends_at),
            int(info.queue),
            drop.version,
            t,
            t if drop.deleted else None,
            *db._raffle_values(drop),
            drop.id,
            changes.expected_version,
            *fence,
        ),
    )
