"""The original backend's Socket.IO events, made from sneakerd's committed events.

Pure code (no I/O, no awaiting): `Outbox` gathers the committed batches that arrive between two
flushes and `take` turns them into what one flush emits, in order. Stock is coalesced the way
the native hub does it: per flush, only each drop's latest `stockUpdate` goes out (the latest
value wins), and none for a drop deleted in the meantime. That update says
`reason: "reservation_expired"` when the batch that set it expired a hold, and `reservedBy`
when that batch made one (the last maker in it), as the original did.

Every other event goes out once, in commit order. Ids are JSON numbers and times ISO 8601, as
docs/compat.md lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sneakerd.clock import iso
from sneakerd.domain.events import (
    Cancelled,
    DropCreated,
    DropDeleted,
    DropEvent,
    DropUpdated,
    Expired,
    Purchased,
    Reserved,
    StockChanged,
)
from sneakerd.domain.model import Drop

Payload = dict[str, Any]


def room_of(drop_id: int) -> str:
    """The room a client joins with `joinDrop` (the original's name for it)."""
    return f"drop_{drop_id}"


@dataclass(frozen=True, slots=True)
class Emission:
    """One event of one flush. `room` set: the room's members get it first, then everyone
    (the original sent stock to the drop's room and to all, so a member hears it twice)."""

    name: str
    payload: Payload
    room: str | None = None


def compat_drop(drop: Drop, *, purchases: bool) -> Payload:
    """A drop in the original's shape (snake_case, price a number). A new drop has no
    purchases yet; an edited drop's latest purchases are not in the event (they are in
    `GET /compat/api/drops/:id`), so the key is left out rather than shown empty."""
    info = drop.info
    view: Payload = {
        "id": drop.id,
        "name": info.name,
        "description": info.description,
        "price": float(info.price),
        "stock": drop.stock,
        "initial_stock": drop.initial_stock,
        "image_url": info.image_url,
        "drop_start_time": iso(info.starts_at),
        "created_at": iso(drop.created_at),
        "updated_at": iso(drop.updated_at),
    }
    if purchases:
        view["purchases"] = []
    return view


def stock_payload(
    drop_id: int, stock: int, now: int, *, reason: str | None = None, by: int | None = None
) -> Payload:
    payload: Payload = {"dropId": drop_id, "newStock": stock}
    if by is not None:
        payload["reservedBy"] = by
    if reason is not None:
        payload["reason"] = reason
    payload["timestamp"] = iso(now)
    return payload


def event_emission(event: DropEvent, now: int) -> Emission | None:
    """The one emission of a non-stock event (None for a stock change: see `Outbox`)."""
    at = iso(now)
    match event:
        case Reserved():
            return Emission(
                "reservationCreated",
                {
                    "reservationId": event.reservation_id,
                    "dropId": event.drop_id,
                    "userId": event.user_id,
                    "timestamp": at,
                },
            )
        case Cancelled():
            return Emission(
                "reservationCancelled",
                {"reservationId": event.reservation_id, "dropId": event.drop_id, "timestamp": at},
            )
        case Expired():
            return Emission(
                "reservationExpired",
                {
                    "reservationId": event.reservation_id,
                    "dropId": event.drop_id,
                    "stockReturned": 1,
                    "timestamp": at,
                },
            )
        case Purchased():
            return Emission(
                "purchaseCompleted",
                {
                    "dropId": event.drop_id,
                    "purchaseId": event.purchase_id,
                    "purchaser": {"id": event.user_id, "username": event.purchaser},
                    "timestamp": at,
                },
            )
        case DropCreated():
            drop = compat_drop(event.drop, purchases=True)
            return Emission("newDrop", {"drop": drop, "timestamp": at})
        case DropUpdated():
            return Emission(
                "dropUpdated", {"drop": compat_drop(event.drop, purchases=False), "timestamp": at}
            )
        case DropDeleted():
            return Emission("dropDeleted", {"dropId": event.drop_id, "timestamp": at})
        case StockChanged():
            return None


@dataclass(slots=True)
class _Stock:
    stock: int
    reason: str | None
    by: int | None


class Outbox:
    """What the next flush emits: every event in order, and each drop's latest stock."""

    __slots__ = ("_events", "_stock")

    def __init__(self) -> None:
        self._events: list[DropEvent] = []
        self._stock: dict[int, _Stock] = {}

    def __bool__(self) -> bool:
        return bool(self._events or self._stock)

    def add(self, batch: Sequence[DropEvent]) -> None:
        """One committed batch (one drop's, as the actors and the bus hand them over)."""
        expired: set[int] = set()
        makers: dict[int, int] = {}
        for event in batch:
            if isinstance(event, Expired):
                expired.add(event.drop_id)
            elif isinstance(event, Reserved):
                makers[event.drop_id] = event.user_id
        for event in batch:
            if isinstance(event, StockChanged):
                reason = "reservation_expired" if event.drop_id in expired else None
                self._stock[event.drop_id] = _Stock(event.stock, reason, makers.get(event.drop_id))
            else:
                if isinstance(event, DropDeleted):
                    self._stock.pop(event.drop_id, None)
                self._events.append(event)

    def take(self, now: int) -> list[Emission]:
        """Empty the outbox into the emissions of one flush at `now`."""
        events, self._events = self._events, []
        stock, self._stock = self._stock, {}
        out = [e for e in (event_emission(event, now) for event in events) if e is not None]
        for drop_id, latest in stock.items():
            payload = stock_payload(drop_id, latest.stock, now, reason=latest.reason, by=latest.by)
            out.append(Emission("stockUpdate", payload, room_of(drop_id)))
        return out
