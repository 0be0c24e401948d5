"""A waiting room's rows: the tickets a batch takes, admits and finishes, written in that
batch's transaction (`batch.script`), and the tickets an actor reloads, in line order.

One row per (drop, user): the primary key is what makes "one account, one place" hold in the
database too. `position_key` is the ticket's key (random before `startsAt`, in arrival order
after: see `sneakerd.domain.queue`), so `ORDER BY position_key` is the line.
"""

from __future__ import annotations

from sneakerd.domain.queue import QueueChanges, TicketRow
from sneakerd.store.adapter import Adapter
from sneakerd.store.rows import CHUNK, marks, multi_row_inserts
from sneakerd.store.tx import Statement, Tx

TICKET_COLUMNS = (
    "drop_id, user_id, position_key, joined_at, admitted_at, admission_expires_at, done_at"
)


def statements(db: Adapter, drop_id: int, changes: QueueChanges) -> list[Statement]:
    """The batch's ticket rows: new tickets, then admissions, then tickets done."""
    out = multi_row_inserts(
        f"INSERT INTO queue_tickets ({TICKET_COLUMNS})",
        [
            (drop_id, t.user_id, t.key, db._time(t.joined_at), None, None, None)
            for t in changes.joined
        ],
    )
    admitted_at, expires_at = db._time(changes.admitted_at), db._time(changes.admission_expires_at)
    for chunk in _chunks(changes.admitted):
        out.append(
            (
                "UPDATE queue_tickets SET admitted_at = %s, admission_expires_at = %s "
                f"WHERE drop_id = %s AND user_id IN ({marks(len(chunk))})",
                (admitted_at, expires_at, drop_id, *chunk),
            )
        )
    done_at = db._time(changes.done_at)
    for chunk in _chunks(changes.done):
        out.append(
            (
                "UPDATE queue_tickets SET done_at = %s "
                f"WHERE drop_id = %s AND done_at IS NULL AND user_id IN ({marks(len(chunk))})",
                (done_at, drop_id, *chunk),
            )
        )
    return out


def _chunks(ids: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)]


async def load(db: Adapter, tx: Tx, drop_id: int) -> list[TicketRow]:
    """Every ticket of the drop, in line order."""
    rows = await tx.fetchall(
        "SELECT user_id, position_key, joined_at, admitted_at, admission_expires_at, done_at "
        "FROM queue_tickets WHERE drop_id = %s ORDER BY position_key, user_id",
        (drop_id,),
    )
    return [
        TicketRow(
            int(r[0]),
            int(r[1]),
            db._ms(r[2]),
            db._opt_ms(r[3]),
            db._opt_ms(r[4]),
            db._opt_ms(r[5]),
        )
        for r in rows
    ]
