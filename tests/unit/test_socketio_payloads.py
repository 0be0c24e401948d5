"""What one Socket.IO flush emits for the committed batches it gathered (no I/O)."""

from __future__ import annotations

import json
from decimal import Decimal

from sneakerd.clock import iso
from sneakerd.domain.events import (
    Cancelled,
    DropCreated,
    DropDeleted,
    Expired,
    Purchased,
    Reserved,
    StockChanged,
)
from sneakerd.domain.model import Drop, DropInfo
from sneakerd.web.socketio.feed import encode
from sneakerd.web.socketio.payloads import Emission, Outbox, compat_drop
from sneakerd.web.socketio.server import drop_id_of

NOW = 1_764_000_000_000
AT = iso(NOW)


def stock(drop_id: int, seq: int, left: int) -> StockChanged:
    return StockChanged(drop_id, seq, left, 10 - left, 0)


def test_stock_is_coalesced_per_drop_and_the_latest_value_wins() -> None:
    outbox = Outbox()
    outbox.add([stock(7, 1, 9), Reserved(7, 1, 100, 3)])
    outbox.add([stock(8, 4, 2)])
    outbox.add([stock(7, 2, 8), Reserved(7, 2, 101, 5)])
    emitted = outbox.take(NOW)
    assert emitted == [
        Emission(
            "reservationCreated",
            {"reservationId": 100, "dropId": 7, "userId": 3, "timestamp": AT},
        ),
        Emission(
            "reservationCreated",
            {"reservationId": 101, "dropId": 7, "userId": 5, "timestamp": AT},
        ),
        Emission(
            "stockUpdate",
            {"dropId": 7, "newStock": 8, "reservedBy": 5, "timestamp": AT},
            "drop_7",
        ),
        Emission("stockUpdate", {"dropId": 8, "newStock": 2, "timestamp": AT}, "drop_8"),
    ]
    assert not outbox and outbox.take(NOW) == []


def test_an_expiry_gives_its_stock_the_reason_until_a_later_change_replaces_it() -> None:
    outbox = Outbox()
    outbox.add([Expired(7, 3, 100), stock(7, 4, 10)])
    first = outbox.take(NOW)
    assert first[0] == Emission(
        "reservationExpired",
        {"reservationId": 100, "dropId": 7, "stockReturned": 1, "timestamp": AT},
    )
    assert first[1].payload == {
        "dropId": 7,
        "newStock": 10,
        "reason": "reservation_expired",
        "timestamp": AT,
    }
    outbox.add([Expired(7, 5, 101), stock(7, 6, 10)])
    outbox.add([stock(7, 7, 9), Cancelled(7, 7, 102, 4)])  # not an expiry: the latest wins
    later = outbox.take(NOW)
    assert [e.name for e in later] == ["reservationExpired", "reservationCancelled", "stockUpdate"]
    assert "reason" not in later[-1].payload and later[-1].payload["newStock"] == 9


def test_a_purchase_names_its_buyer_and_a_deleted_drop_gets_no_stock() -> None:
    outbox = Outbox()
    outbox.add([Purchased(7, 2, 55, "ana", 3), stock(7, 3, 8)])
    outbox.add([DropDeleted(7, 4)])
    assert outbox.take(NOW) == [
        Emission(
            "purchaseCompleted",
            {
                "dropId": 7,
                "purchaseId": 55,
                "purchaser": {"id": 3, "username": "ana"},
                "timestamp": AT,
            },
        ),
        Emission("dropDeleted", {"dropId": 7, "timestamp": AT}),
    ]


def test_a_new_drop_is_shown_in_the_original_shape_and_encoded_once_as_a_packet() -> None:
    drop = Drop(
        id=9,
        info=DropInfo(name="Dunk", price=Decimal("199.99"), image_url="https://x/d.png"),
        initial_stock=4,
        stock=4,
        reserved=0,
        sold=0,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    outbox = Outbox()
    outbox.add([DropCreated(9, 1, drop)])
    [new] = outbox.take(NOW)
    assert new == Emission("newDrop", {"drop": compat_drop(drop, purchases=True), "timestamp": AT})
    assert new.payload["drop"] == {
        "id": 9,
        "name": "Dunk",
        "description": None,
        "price": 199.99,
        "stock": 4,
        "initial_stock": 4,
        "image_url": "https://x/d.png",
        "drop_start_time": iso(0),
        "created_at": AT,
        "updated_at": AT,
        "purchases": [],
    }
    text = encode(new)
    assert text.startswith('2["newDrop",')
    assert json.loads(text[1:]) == ["newDrop", new.payload]


def test_a_drop_id_is_a_positive_number_or_a_string_of_digits() -> None:
    assert drop_id_of((5,)) == 5
    assert drop_id_of(("12",)) == 12
    for bad in ((), (0,), (-3,), (True,), ("1e3",), ("٣",), (2.5,), (None,), ("9" * 40,)):
        assert drop_id_of(bad) is None, bad
