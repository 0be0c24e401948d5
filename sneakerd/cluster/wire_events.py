"""The events of a committed batch on the wire: how the bus carries them between nodes, in
the same strict codec as the forwarded commands (`wire`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import orjson

from sneakerd.cluster.wire import Json, Obj, WireError, drop_from_json, drop_to_json, loads
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


def event_to_json(event: DropEvent) -> dict[str, Json]:
    match event:
        case StockChanged():
            return {
                "t": "stock",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "stock": event.stock,
                "reserved": event.reserved,
                "sold": event.sold,
            }
        case Expired():
            return {
                "t": "expired",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "reservation_id": event.reservation_id,
            }
        case Purchased():
            return {
                "t": "purchased",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "purchase_id": event.purchase_id,
                "purchaser": event.purchaser,
                "user_id": event.user_id,
            }
        case DropUpdated():
            return {
                "t": "drop_updated",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "drop": drop_to_json(event.drop),
            }
        case DropDeleted():
            return {"t": "drop_deleted", "drop_id": event.drop_id, "seq": event.seq}
        case Reserved() | Cancelled():
            return {
                "t": "reserved" if isinstance(event, Reserved) else "cancelled",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "reservation_id": event.reservation_id,
                "user_id": event.user_id,
            }
        case DropCreated():
            return {
                "t": "drop_created",
                "drop_id": event.drop_id,
                "seq": event.seq,
                "drop": drop_to_json(event.drop),
            }
        case _:
            assert_never(event)


def event_from_json(value: Json) -> DropEvent:
    obj = Obj(value, "event")
    kind = obj.text("t")
    drop_id, seq = obj.integer("drop_id"), obj.integer("seq")
    if kind == "stock":
        stock, reserved = obj.integer("stock"), obj.integer("reserved")
        return StockChanged(drop_id, seq, stock, reserved, obj.integer("sold"))
    if kind == "expired":
        return Expired(drop_id, seq, obj.integer("reservation_id"))
    if kind == "purchased":
        purchase_id, purchaser = obj.integer("purchase_id"), obj.text("purchaser")
        return Purchased(drop_id, seq, purchase_id, purchaser, obj.integer("user_id"))
    if kind == "drop_updated":
        return DropUpdated(drop_id, seq, drop_from_json(obj.raw("drop")))
    if kind == "drop_deleted":
        return DropDeleted(drop_id, seq)
    if kind in ("reserved", "cancelled"):
        side = Reserved if kind == "reserved" else Cancelled
        return side(drop_id, seq, obj.integer("reservation_id"), obj.integer("user_id"))
    if kind == "drop_created":
        return DropCreated(drop_id, seq, drop_from_json(obj.raw("drop")))
    raise WireError(f"event: unknown kind {kind!r}")


def encode_events(events: Iterable[DropEvent]) -> bytes:
    """A committed batch's events as one message, in their order."""
    return orjson.dumps([event_to_json(event) for event in events])


def decode_events(data: bytes | str) -> list[DropEvent]:
    value = loads(data)
    if not isinstance(value, list):
        raise WireError("events: expected a list")
    return [event_from_json(item) for item in value]
