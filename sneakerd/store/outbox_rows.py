"""A batch's webhook events as rows of `webhook_events`, written in the batch's own script.

Each event's `data` is rendered here, once, as the REST API shows its object at that moment
(`sneakerd.views`), so a retry a day later sends exactly what was true when the act committed.
The rows are plain multi-row INSERTs in the batch's script: no extra round trip, and none at
all when the batch made no events (no webhook was registered when it was decided).
"""

from __future__ import annotations

from typing import Any

import orjson

from sneakerd.domain.model import Drop, PurchaseRecord, ReservationRecord
from sneakerd.domain.outcome import Changes
from sneakerd.domain.webhook_events import OutboxEvent
from sneakerd.store.adapter import Adapter
from sneakerd.store.rows import multi_row_inserts
from sneakerd.store.tx import Statement
from sneakerd.views import drop_view, purchase_view, reservation_view

EVENT_COLUMNS = "drop_id, drop_version, type, created_at, data"


def inserts(db: Adapter, changes: Changes) -> list[Statement]:
    """The batch's event rows, in decision order (their ids rise in that order, which is the
    order they are delivered in)."""
    if not changes.outbox:
        return []
    version = changes.drop.version
    rows = [
        (e.drop_id, version, e.type.value, db._time(e.at), render(e).decode())
        for e in changes.outbox
    ]
    return multi_row_inserts(f"INSERT INTO webhook_events ({EVENT_COLUMNS})", rows)


def render(event: OutboxEvent) -> bytes:
    """The event's `data`: `{reservation}`, `{purchase}` or `{drop}`."""
    subject = event.subject
    data: dict[str, Any]
    if isinstance(subject, ReservationRecord):
        data = {"reservation": reservation_view(subject)}
    elif isinstance(subject, PurchaseRecord):
        data = {"purchase": purchase_view(subject)}
    elif isinstance(subject, Drop):
        data = {"drop": drop_view(subject, event.at)}
    else:  # pragma: no cover - OutboxNotes.finish fills every drop event in
        raise ValueError(f"event {event.type} has no subject")
    return orjson.dumps(data)
