from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sneakerd.clock import iso, parse_iso
from sneakerd.domain.model import Drop, DropInfo, DropStatus
from sneakerd.views import drop_view


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_iso_round_trips_every_millisecond(ms: int) -> None:
    text = iso(ms)
    assert text.endswith("Z") and len(text) == 24
    assert parse_iso(text) == ms


def test_offsets_are_converted_to_utc() -> None:
    assert iso(parse_iso("2026-11-24T10:00:00+01:00")) == "2026-11-24T09:00:00.000Z"
    assert iso(parse_iso("2026-11-24T10:00:00")) == "2026-11-24T10:00:00.000Z"


def test_drop_status_follows_the_window_then_the_stock() -> None:
    info = DropInfo(name="x", price=Decimal("1"), starts_at=100, ends_at=200)
    drop = Drop(1, info, 1, 1, 0, 0, 1, 0, 0)
    assert drop.status(99) is DropStatus.UPCOMING
    assert drop.status(100) is DropStatus.LIVE
    assert drop.status(200) is DropStatus.ENDED
    sold_out = Drop(1, info, 1, 0, 1, 0, 1, 0, 0)
    assert sold_out.status(150) is DropStatus.SOLD_OUT


def test_drop_view_uses_api_md_names_and_formats() -> None:
    info = DropInfo(name="x", price=Decimal("5"), per_user_limit=2, starts_at=0)
    view = drop_view(Drop(3, info, 10, 7, 2, 1, 4, 0, 1), now=5)
    assert view["price"] == "5.00" and view["endsAt"] is None
    assert view["startsAt"] == "1970-01-01T00:00:00.000Z"
    assert view["stock"] + view["reserved"] + view["sold"] == view["initialStock"]
    assert set(view) == {
        "id",
        "name",
        "brand",
        "description",
        "price",
        "imageUrl",
        "initialStock",
        "stock",
        "reserved",
        "sold",
        "perUserLimit",
        "holdsPerUser",
        "paused",
        "queue",
        "startsAt",
        "endsAt",
        "status",
        "version",
        "createdAt",
        "updatedAt",
        "mode",
        "entriesOpenAt",
        "entriesCloseAt",
        "claimSeconds",
        "raffle",
    }
    assert view["mode"] == "fcfs" and view["raffle"] is None
