"""Which webhook events a batch makes, in the order its decisions made them (the outbox).

A webhook event is a fact about one committed act: a hold made, cancelled or expired, a sale,
an admin's edit, the drop's available stock reaching 0. `DropBook` tells an `OutboxNotes` of
each act as it decides it; `finish` hands the list to the batch's `Changes`, and the store writes
it in the same transaction as the act, so an event exists exactly when its act committed.

Notes are taken only when at least one webhook is registered (the actor decides that per
batch): otherwise `OutboxNotes.off()` drops every note and a batch costs what it did before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from sneakerd.domain.model import Drop, PurchaseRecord, ReservationRecord, ReservationStatus


class EventType(StrEnum):
    RESERVATION_CREATED = "reservation.created"
    RESERVATION_CANCELLED = "reservation.cancelled"
    RESERVATION_EXPIRED = "reservation.expired"
    PURCHASE_COMPLETED = "purchase.completed"
    DROP_SOLD_OUT = "drop.sold_out"
    DROP_UPDATED = "drop.updated"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

Subject = ReservationRecord | PurchaseRecord | Drop | None
"""What the event's `data` shows. None for a drop event until the batch ends: a drop event
shows the drop as the batch commits it (its final version)."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    type: EventType
    drop_id: int
    at: int
    subject: Subject


class OutboxNotes:
    """The events of one batch, in decision order."""

    __slots__ = ("_events", "_on")

    def __init__(self, on: bool = True) -> None:
        self._on = on
        self._events: list[OutboxEvent] = []

    @classmethod
    def off(cls) -> OutboxNotes:
        return cls(False)

    def reservation(self, record: ReservationRecord, at: int) -> None:
        """A hold made, cancelled or expired: its record says which."""
        if not self._on:
            return
        kind = _RESERVATION_EVENTS[record.status]
        self._events.append(OutboxEvent(kind, record.drop_id, at, record))

    def purchase(self, record: PurchaseRecord, at: int) -> None:
        if self._on:
            self._events.append(
                OutboxEvent(EventType.PURCHASE_COMPLETED, record.drop_id, at, record)
            )

    def drop(self, kind: EventType, drop_id: int, at: int) -> None:
        """`drop.updated` or `drop.sold_out`; the drop itself is filled in by `finish`."""
        if self._on:
            self._events.append(OutboxEvent(kind, drop_id, at, None))

    def finish(self, final: Drop) -> tuple[OutboxEvent, ...]:
        return tuple(
            dataclasses.replace(e, subject=final) if e.subject is None else e for e in self._events
        )


_RESERVATION_EVENTS = {
    ReservationStatus.ACTIVE: EventType.RESERVATION_CREATED,
    ReservationStatus.CANCELLED: EventType.RESERVATION_CANCELLED,
    ReservationStatus.EXPIRED: EventType.RESERVATION_EXPIRED,
}
