"""Webhook registrations and the delivery state of each (event, webhook): the deliverer's and
the operator's queries, kept out of the drop actor's path.

Three tables (`mysql.sql`): `webhooks` (who is told), `webhook_events` (the outbox the actors
write in their batches) and `webhook_deliveries` (one row per event and webhook: pending,
delivered or dead, with its attempts). An event is turned into deliveries ("fanned out") by
the deliverer, for the webhooks registered and subscribed to its type at that moment.

`live` is what the actors read at batch time to decide whether a batch writes its events at
all: True while at least one webhook is enabled. It is refreshed by `refresh()` (the deliverer
calls it every second) and at once by `add`/`remove` in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sneakerd.domain.audit import AuditAction, AuditEntry, webhook_snapshot
from sneakerd.store import audit_rows
from sneakerd.store.adapter import Adapter
from sneakerd.store.base import Page, PageKey
from sneakerd.store.keyset import page
from sneakerd.store.rows import CHUNK, marks, multi_row_inserts
from sneakerd.store.tx import DuplicateKey, Row

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    events: tuple[str, ...]
    """The event types it receives; empty: every type."""
    enabled: bool
    created_at: int

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one webhook, as operators see it."""

    id: int
    event_id: int
    event_type: str
    webhook_id: int
    drop_id: int
    state: str
    attempts: int
    next_attempt_at: int
    last_status: int | None
    last_error: str | None
    delivered_at: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What one attempt needs: the event as stored and the webhook's address and secret."""

    id: int
    webhook_id: int
    drop_id: int
    attempts: int
    since: int | None
    """When its retry window opened: its first attempt since the last replay (None: none)."""
    due_at: int
    """Its next attempt's time."""
    url: str
    secret: str
    event_id: int
    event_type: str
    event_at: int
    data: str


_WEBHOOK_COLUMNS = "id, url, events, enabled, created_at"
_DUE_COLUMNS = (
    "d.id, d.webhook_id, d.drop_id, d.attempts, d.first_attempt_at, w.url, w.secret, "
    "e.id, e.type, e.created_at, e.data, d.next_attempt_at"
)
_DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.type, d.webhook_id, d.drop_id, d.state, d.attempts, d.next_attempt_at, "
    "d.last_status, d.last_error, d.delivered_at, d.created_at"
)


class WebhookRows:
    """The webhook tables of one store."""

    def __init__(self, db: Adapter) -> None:
        self._db = db
        self.live = False

    # -- registrations -----------------------------------------------------------------------

    async def add(
        self, url: str, secret: str, events: Sequence[str], now: int, actor: str | None = None
    ) -> Webhook:
        """Register a webhook; with `actor`, its audit entry goes in the same transaction."""
        db = self._db
        async with db._transaction() as tx:
            await tx.execute(
                "INSERT INTO webhooks (url, secret, events, enabled, created_at) "
                "VALUES (%s, %s, %s, 1, %s)",
                (url, secret, ",".join(events), db._time(now)),
            )
            rows = await tx.fetchall(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = {db.LAST_ID}"
            )
            webhook = self._webhook(rows[0])
            if actor is not None:
                after = _snapshot(webhook)
                entry = AuditEntry(now, actor, AuditAction.ADD_WEBHOOK, None, None, after)
                await tx.execute(*audit_rows.insert(db, entry))
        self.live = True
        return webhook

    async def registered(self) -> list[Webhook]:
        rows = await self._db._read(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks ORDER BY id")
        return [self._webhook(r) for r in rows]

    async def get(self, webhook_id: int) -> Webhook | None:
        rows = await self._db._read(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = %s", (webhook_id,)
        )
        return self._webhook(rows[0]) if rows else None

    async def remove(self, webhook_id: int, actor: str | None = None, now: int = 0) -> bool:
        """Forget a webhook and its deliveries; False when there was no such webhook. With
        `actor`, its audit entry goes in the same transaction."""
        db = self._db
        async with db._transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = %s", (webhook_id,)
            )
            await tx.execute("DELETE FROM webhook_deliveries WHERE webhook_id = %s", (webhook_id,))
            removed = await tx.execute("DELETE FROM webhooks WHERE id = %s", (webhook_id,))
            if removed == 1 and rows and actor is not None:
                before = _snapshot(self._webhook(rows[0]))
                entry = AuditEntry(now, actor, AuditAction.REMOVE_WEBHOOK, None, before, None)
                await tx.execute(*audit_rows.insert(db, entry))
        await self.refresh()
        return removed == 1

    async def refresh(self) -> bool:
        """Read whether any webhook is enabled into `live`; return it."""
        rows = await self._db._read("SELECT COUNT(*) FROM webhooks WHERE enabled = 1")
        self.live = bool(rows and int(rows[0][0]))
        return self.live

    # -- the deliverer's queries -------------------------------------------------------------

    async def fan_out(self, drop_ids: Sequence[int] | None, now: int, limit: int = CHUNK) -> int:
        """Make the deliveries of up to `limit` events not fanned out yet (of `drop_ids`, or of
        every drop when None), for each enabled webhook that wants the event's type, and mark
        the events done, in one transaction. Returns how many events it took."""
        db = self._db
        where, params = _drops_clause("drop_id", drop_ids)
        events = await db._read(
            f"SELECT id, drop_id, type FROM webhook_events WHERE fanned_out = 0{where} "
            "ORDER BY id LIMIT %s",
            (*params, limit),
        )
        if not events:
            return 0
        hooks = [w for w in await self.registered() if w.enabled]
        t = db._time(now)
        rows = [
            (int(event_id), hook.id, int(drop_id), PENDING, 0, t, t)
            for event_id, drop_id, kind in events
            for hook in hooks
            if hook.wants(str(kind))
        ]
        ids = [int(r[0]) for r in events]
        try:
            async with db._transaction() as tx:
                if rows:
                    await tx.execute_script(
                        multi_row_inserts(
                            "INSERT INTO webhook_deliveries (event_id, webhook_id, drop_id, "
                            "state, attempts, next_attempt_at, created_at)",
                            rows,
                        )
                    )
                for start in range(0, len(ids), CHUNK):
                    chunk = ids[start : start + CHUNK]
                    await tx.execute(
                        "UPDATE webhook_events SET fanned_out = 1 "
                        f"WHERE id IN ({marks(len(chunk))})",
                        chunk,
                    )
        except DuplicateKey:
            return 0  # another node fanned these out meanwhile (an owner change): theirs stand
        return len(ids)

    async def head(self, drop_ids: Sequence[int] | None) -> int:
        """The newest event id of the outbox (of `drop_ids`, or of every drop when None), 0
        when it is empty: how fast it rises tells the deliverer a burst is on (`pacing`)."""
        where, params = _drops_clause("drop_id", drop_ids)
        rows = await self._db._read(
            f"SELECT MAX(id) FROM webhook_events WHERE 1 = 1{where}", params
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    async def due(
        self, drop_ids: Sequence[int] | None, now: int, limit: int = 256
    ) -> list[DueDelivery]:
        """The first pending delivery of each (webhook, drop), if its next attempt is due:
        a drop's later event waits until the one before it is delivered or dead."""
        db = self._db
        where, params = _drops_clause("drop_id", drop_ids)
        rows = await db._read(
            f"SELECT {_DUE_COLUMNS} "
            "FROM (SELECT webhook_id, drop_id, MIN(event_id) AS event_id "
            f"FROM webhook_deliveries WHERE state = 'pending'{where} "
            "GROUP BY webhook_id, drop_id) h "
            "JOIN webhook_deliveries d ON d.webhook_id = h.webhook_id AND d.event_id = h.event_id "
            "JOIN webhooks w ON w.id = d.webhook_id "
            "JOIN webhook_events e ON e.id = d.event_id "
            "WHERE d.next_attempt_at <= %s ORDER BY d.next_attempt_at LIMIT %s",
            (*params, db._time(now), limit),
        )
        return [self._due(r) for r in rows]

    async def following(
        self, webhook_id: int, drop_id: int, after_event: int, limit: int
    ) -> list[DueDelivery]:
        """The (webhook, drop)'s pending deliveries after `after_event`, in event order (due or
        not: the caller stops at the first that is not due, to keep the order)."""
        db = self._db
        rows = await db._read(
            f"SELECT {_DUE_COLUMNS} FROM webhook_deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id "
            "JOIN webhook_events e ON e.id = d.event_id "
            "WHERE d.state = 'pending' AND d.webhook_id = %s AND d.drop_id = %s "
            "AND d.event_id > %s ORDER BY d.event_id LIMIT %s",
            (webhook_id, drop_id, after_event, limit),
        )
        return [self._due(r) for r in rows]

    def _due(self, r: Row) -> DueDelivery:
        db = self._db
        return DueDelivery(
            id=int(r[0]),
            webhook_id=int(r[1]),
            drop_id=int(r[2]),
            attempts=int(r[3]),
            since=db._opt_ms(r[4]),
            due_at=db._ms(r[11]),
            url=str(r[5]),
            secret=str(r[6]),
            event_id=int(r[7]),
            event_type=str(r[8]),
            event_at=db._ms(r[9]),
            data=str(r[10]),
        )

    async def record_delivered(
        self, sent: Sequence[tuple[int, int]], *, started: int, now: int
    ) -> None:
        """A run of successful attempts: (delivery id, the receiver's status) each."""
        db = self._db
        by_status: dict[int, list[int]] = {}
        for delivery_id, status in sent:
            by_status.setdefault(status, []).append(delivery_id)
        async with db._transaction() as tx:
            for status, ids in by_status.items():
                for start in range(0, len(ids), CHUNK):
                    chunk = ids[start : start + CHUNK]
                    await tx.execute(
                        "UPDATE webhook_deliveries SET state = 'delivered', "
                        "attempts = attempts + 1, "
                        "first_attempt_at = COALESCE(first_attempt_at, %s), last_status = %s, "
                        "last_error = NULL, delivered_at = %s "
                        f"WHERE state = 'pending' AND id IN ({marks(len(chunk))})",
                        (db._time(started), status, db._time(now), *chunk),
                    )

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        state: str,
        now: int,
        started: int,
        next_attempt_at: int,
        status: int | None,
        error: str | None,
    ) -> None:
        """One attempt's result: delivered, pending again (with its next attempt) or dead."""
        db = self._db
        async with db._transaction() as tx:
            await tx.execute(
                "UPDATE webhook_deliveries SET state = %s, attempts = attempts + 1, "
                "first_attempt_at = COALESCE(first_attempt_at, %s), "
                "next_attempt_at = %s, last_status = %s, last_error = %s, delivered_at = %s "
                "WHERE id = %s AND state = 'pending'",
                (
                    state,
                    db._time(started),
                    db._time(next_attempt_at),
                    status,
                    None if error is None else error[:255],
                    db._time(now) if state == DELIVERED else None,
                    delivery_id,
                ),
            )

    # -- operators ---------------------------------------------------------------------------

    async def deliveries(
        self, *, state: str | None = None, limit: int = 50, after: PageKey | None = None
    ) -> Page[Delivery]:
        """Deliveries newest first (by when they were made), optionally of one state."""
        db = self._db
        select = (
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d "
            "JOIN webhook_events e ON e.id = d.event_id WHERE 1 = 1"
        )
        params: list[Any] = []
        if state is not None:
            select += " AND d.state = %s"
            params.append(state)
        return await page(
            db,
            select,
            params,
            ("d.created_at", "d.id"),
            limit,
            after,
            self._delivery,
            lambda d: PageKey(d.created_at, d.id),
        )

    async def replay(self, delivery_ids: Sequence[int] | None, now: int) -> int:
        """Send deliveries again from the start (a fresh retry window): the named ones, or
        every dead one when None. Returns how many were reset."""
        db = self._db
        sets = (
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = %s, "
            "first_attempt_at = NULL, delivered_at = NULL"
        )
        t = db._time(now)
        async with db._transaction() as tx:
            if delivery_ids is None:
                return await tx.execute(f"{sets} WHERE state = 'dead'", (t,))
            changed = 0
            for start in range(0, len(delivery_ids), CHUNK):
                chunk = list(delivery_ids[start : start + CHUNK])
                changed += await tx.execute(
                    f"{sets} WHERE id IN ({marks(len(chunk))})", (t, *chunk)
                )
            return changed

    # -- rows --------------------------------------------------------------------------------

    def _webhook(self, row: Row) -> Webhook:
        events = tuple(e for e in str(row[2]).split(",") if e)
        return Webhook(int(row[0]), str(row[1]), events, bool(row[3]), self._db._ms(row[4]))

    def _delivery(self, row: Row) -> Delivery:
        db = self._db
        return Delivery(
            id=int(row[0]),
            event_id=int(row[1]),
            event_type=str(row[2]),
            webhook_id=int(row[3]),
            drop_id=int(row[4]),
            state=str(row[5]),
            attempts=int(row[6]),
            next_attempt_at=db._ms(row[7]),
            last_status=None if row[8] is None else int(row[8]),
            last_error=None if row[9] is None else str(row[9]),
            delivered_at=db._opt_ms(row[10]),
            created_at=db._ms(row[11]),
        )


def _drops_clause(column: str, drop_ids: Sequence[int] | None) -> tuple[str, list[int]]:
    """` AND column IN (...)` for the drops a node delivers (None: every drop)."""
    if drop_ids is None:
        return "", []
    if not drop_ids:
        return " AND 1 = 0", []
    return f" AND {column} IN ({marks(len(drop_ids))})", list(drop_ids)


def _snapshot(webhook: Webhook) -> dict[str, Any]:
    return webhook_snapshot(webhook.id, webhook.url, webhook.events, webhook.enabled)
