"""sneakerd's values as the original API's JSON objects: snake_case keys, ISO 8601 times with
`Z`, prices as JSON numbers, and the nested objects its front-end reads.

What differs from the native views (`sneakerd.views`) and why:
- a cancelled hold reads `expired`: the original had no `cancelled` status, and its
  front-end knows three (`active`, `expired`, `completed`);
- a hold carries `is_active`, `is_expired` and `remaining_seconds`, worked out at `now`;
- a drop carries its latest purchases with the buyers' user ids and names, as the original
  showed them (the native API shows usernames only).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from sneakerd.clock import iso
from sneakerd.domain.model import (
    Drop,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    User,
)
from sneakerd.store import BuyerPurchase, DropStats

Json = dict[str, Any]

ORIGINAL_STATUS = {
    ReservationStatus.ACTIVE: "active",
    ReservationStatus.EXPIRED: "expired",
    ReservationStatus.CANCELLED: "expired",
    ReservationStatus.COMPLETED: "completed",
}
"""A hold's status as the original named it."""

STATUSES_READ_AS = {
    "active": (ReservationStatus.ACTIVE,),
    "expired": (ReservationStatus.EXPIRED, ReservationStatus.CANCELLED),
    "completed": (ReservationStatus.COMPLETED,),
}
"""What a `status` filter of the original names, in sneakerd's statuses."""


def number(price: Decimal) -> float:
    """A price as the JSON number the original sent (two places, so a float is exact enough
    to print back as the same decimal)."""
    return float(price.quantize(Decimal("0.01")))


def user_view(user: User) -> Json:
    created = iso(user.created_at)
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role.value,
        "created_at": created,
        "createdAt": created,
    }


def buyer_purchase_view(bought: BuyerPurchase) -> Json:
    purchase = bought.purchase
    return {
        "id": purchase.id,
        "user_id": purchase.user_id,
        "drop_id": purchase.drop_id,
        "price": number(purchase.price),
        "purchased_at": iso(purchase.created_at),
        "user": {"id": purchase.user_id, "username": bought.username},
    }


def drop_view(drop: Drop, now: int, latest: list[BuyerPurchase]) -> Json:
    info = drop.info
    return {
        "id": drop.id,
        "name": info.name,
        "brand": info.brand,
        "description": info.description,
        "price": number(info.price),
        "stock": drop.stock,
        "initial_stock": drop.initial_stock,
        "reserved": drop.reserved,
        "sold": drop.sold,
        "image_url": info.image_url,
        "drop_start_time": iso(info.starts_at),
        "drop_end_time": None if info.ends_at is None else iso(info.ends_at),
        "per_user_limit": info.per_user_limit,
        "holds_per_user": info.holds_per_user,
        "status": drop.status(now).value,
        "created_at": iso(drop.created_at),
        "updated_at": iso(drop.updated_at),
        "purchases": [buyer_purchase_view(b) for b in latest],
    }


def drop_brief(drop: Drop) -> Json:
    """The drop beside a hold or a purchase just made: what the front-end updates."""
    return {"id": drop.id, "name": drop.info.name, "stock": drop.stock}


def stats_view(stats: DropStats, now: int) -> Json:
    drop = stats.drop
    total, remaining = drop.initial_stock, drop.stock
    return {
        "id": drop.id,
        "name": drop.info.name,
        "total_stock": total,
        "remaining_stock": remaining,
        "sold": total - remaining,  # holds included, as the original counted
        "total_purchases": drop.sold,
        "stock_percentage": round(remaining * 100 / total) if total else 0,
        "is_available": drop.status(now).value == "live",
        "has_started": now >= drop.info.starts_at,
    }


def remaining_seconds(hold: ReservationRecord, now: int) -> int:
    if hold.status is not ReservationStatus.ACTIVE:
        return 0
    return max(0, math.ceil((hold.expires_at - now) / 1000))


def reservation_view(hold: ReservationRecord, now: int, drop: Drop | None) -> Json:
    active = hold.status is ReservationStatus.ACTIVE and now < hold.expires_at
    view: Json = {
        "id": hold.id,
        "user_id": hold.user_id,
        "drop_id": hold.drop_id,
        "status": ORIGINAL_STATUS[hold.status],
        "expires_at": iso(hold.expires_at),
        "created_at": iso(hold.created_at),
        "is_active": active,
        "is_expired": not active and hold.status is not ReservationStatus.COMPLETED,
        "remaining_seconds": remaining_seconds(hold, now),
    }
    if drop is not None:
        view["drop"] = {
            "id": drop.id,
            "name": drop.info.name,
            "price": number(drop.info.price),
            "image_url": drop.info.image_url,
        }
    return view


def new_reservation_view(hold: ReservationRecord, now: int) -> Json:
    """A hold just made, in the short form the original answered its creation with."""
    return {
        "id": hold.id,
        "drop_id": hold.drop_id,
        "status": ORIGINAL_STATUS[hold.status],
        "expires_at": iso(hold.expires_at),
        "remaining_seconds": remaining_seconds(hold, now),
    }


def purchase_view(purchase: PurchaseRecord, drop: Drop | None) -> Json:
    view: Json = {
        "id": purchase.id,
        "user_id": purchase.user_id,
        "drop_id": purchase.drop_id,
        "reservation_id": purchase.reservation_id,
        "price": number(purchase.price),
        "purchased_at": iso(purchase.created_at),
    }
    if drop is not None:
        view["drop"] = {"id": drop.id, "name": drop.info.name, "image_url": drop.info.image_url}
    return view
