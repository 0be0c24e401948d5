"""Domain values as docs/API.md's JSON objects: camelCase keys, ISO 8601 times, string money.

Every user, drop, reservation, purchase and drop-stats object a client reads is written here:
the REST routes, the WebSocket (its snapshots, and the hub's `dropUpdated` frames through the
`drop_view` the app hands it) and the CLI's `--json` all call these functions, so they can never
disagree. What wraps these objects is its sender's: a frame's `type` and `seq` are the hub's and
the live route's, the error envelope is `web.problems`'.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sneakerd.clock import iso
from sneakerd.domain.audit import AuditRecord
from sneakerd.domain.model import Drop, PurchaseRecord, ReservationRecord, User
from sneakerd.domain.queue import QueueTicket
from sneakerd.raffle_views import raffle_fields
from sneakerd.store import Buyer, DropPurchase, DropStats

Json = dict[str, Any]


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def user_view(user: User) -> Json:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "role": user.role.value,
        "createdAt": iso(user.created_at),
    }


def drop_view(drop: Drop, now: int) -> Json:
    info = drop.info
    return {
        "id": drop.id,
        "name": info.name,
        "brand": info.brand,
        "description": info.description,
        "price": money(info.price),
        "imageUrl": info.image_url,
        "initialStock": drop.initial_stock,
        "stock": drop.stock,
        "reserved": drop.reserved,
        "sold": drop.sold,
        "perUserLimit": info.per_user_limit,
        "holdsPerUser": info.holds_per_user,
        "paused": info.paused,
        "queue": info.queue,
        "startsAt": iso(info.starts_at),
        "endsAt": None if info.ends_at is None else iso(info.ends_at),
        "status": drop.status(now).value,
        "version": drop.version,
        "createdAt": iso(drop.created_at),
        "updatedAt": iso(drop.updated_at),
        **raffle_fields(drop, now),
    }


def reservation_view(reservation: ReservationRecord) -> Json:
    return {
        "id": reservation.id,
        "dropId": reservation.drop_id,
        "userId": reservation.user_id,
        "status": reservation.status.value,
        "expiresAt": iso(reservation.expires_at),
        "createdAt": iso(reservation.created_at),
    }


def purchase_view(purchase: PurchaseRecord) -> Json:
    return {
        "id": purchase.id,
        "dropId": purchase.drop_id,
        "userId": purchase.user_id,
        "reservationId": purchase.reservation_id,
        "price": money(purchase.price),
        "createdAt": iso(purchase.created_at),
    }


def drop_purchase_view(purchase: DropPurchase) -> Json:
    return {
        "id": purchase.id,
        "purchaser": purchase.purchaser,
        "createdAt": iso(purchase.created_at),
    }


def drop_stats_view(stats: DropStats) -> Json:
    drop = stats.drop
    return {
        "dropId": drop.id,
        "initialStock": drop.initial_stock,
        "stock": drop.stock,
        "reserved": drop.reserved,
        "sold": drop.sold,
        "holdsExpiringNextMinute": stats.expiring_soon,
        "soldOutAt": None if stats.sold_out_at is None else iso(stats.sold_out_at),
    }


def buyer_view(buyer: Buyer) -> Json:
    """A purchase as the drop's operator sees it (admins only: it shows the buyer's email)."""
    purchase = buyer.purchase
    return {
        "id": purchase.id,
        "reservationId": purchase.reservation_id,
        "price": money(purchase.price),
        "createdAt": iso(purchase.created_at),
        "user": {"id": buyer.user_id, "username": buyer.username, "email": buyer.email},
    }


def audit_view(record: AuditRecord) -> Json:
    entry = record.entry
    return {
        "id": record.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action.value,
        "dropId": entry.drop_id,
        "before": entry.before,
        "after": entry.after,
    }


def ticket_view(ticket: QueueTicket, admission_token: str | None) -> Json:
    """A waiting-room ticket; `admissionToken` only while the admission is live."""
    view: Json = {
        "position": ticket.position,
        "joinedAt": iso(ticket.joined_at),
        "admitted": ticket.admitted,
        "admissionExpiresAt": None
        if ticket.admission_expires_at is None
        else iso(ticket.admission_expires_at),
        "done": ticket.done,
        "estimatedWaitSeconds": ticket.estimated_wait_seconds,
    }
    if admission_token is not None:
        view["admissionToken"] = admission_token
    return view
