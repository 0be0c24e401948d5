"""The audit log's entries: who changed a drop (or a webhook, or an account), how, and the
thing before and after.

An operator who finds a drop paused, restocked or gone must be able to tell who did it and
what it was before. Every admin write through the API and every write of the operator CLI
leaves one `AuditEntry`. Writes that the drop's actor decides (update, pause, restock,
delete) carry theirs in the batch's own commit (`Changes.audit`), so an entry exists exactly
when its write does; a new drop's entry is written in the transaction that creates the row.

`snapshot` is the drop as the entry keeps it: plain JSON values (camelCase keys, ISO times,
string money), so the log reads like the API's drop object and stays readable after the
drop itself is gone. Nothing here does I/O.

The writes that are not about a drop (a webhook added or removed, an admin made or promoted
by the CLI) have entries too, with no drop (`drop_id` None) and the webhook or the account as
their snapshots; a webhook's secret and an account's password hash are never in them. Each is
written in the transaction of its write, as a drop's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sneakerd.clock import iso
from sneakerd.domain.model import Drop, User
from sneakerd.domain.webhook_events import EVENT_TYPES

CLI_ACTOR = "cli"
"""The actor of every write the operator CLI makes."""

Snapshot = dict[str, Any]


def user_actor(user_id: int) -> str:
    """The actor of a write an admin made through the API."""
    return f"user:{user_id}"


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    DELETE = "delete"
    RESTOCK = "restock"
    ADD_WEBHOOK = "add_webhook"
    REMOVE_WEBHOOK = "remove_webhook"
    CREATE_USER = "create_user"
    SET_ROLE = "set_role"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int
    actor: str
    action: AuditAction
    drop_id: int | None
    """None for a write that is not about a drop."""
    before: Snapshot | None
    """The drop (webhook, account) before the write; None for a create."""
    after: Snapshot | None
    """The drop (webhook, account) as the write left it; None for a delete."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as stored, with its id (entries are listed newest first by (at, id))."""

    id: int
    entry: AuditEntry


def snapshot(drop: Drop) -> Snapshot:
    """What an entry keeps of a drop: everything an admin sets, and its unit counts then."""
    info = drop.info
    return {
        "name": info.name,
        "brand": info.brand,
        "description": info.description,
        "price": f"{info.price:.2f}",
        "imageUrl": info.image_url,
        "initialStock": drop.initial_stock,
        "stock": drop.stock,
        "reserved": drop.reserved,
        "sold": drop.sold,
        "perUserLimit": info.per_user_limit,
        "holdsPerUser": info.holds_per_user,
        "startsAt": iso(info.starts_at),
        "endsAt": None if info.ends_at is None else iso(info.ends_at),
        "paused": info.paused,
    }


def webhook_snapshot(webhook_id: int, url: str, events: tuple[str, ...], enabled: bool) -> Snapshot:
    """What an entry keeps of a webhook: where it sends and what (never its secret), the
    events as the webhook's own view shows them (no filter: every type, `allEvents`)."""
    return {
        "id": webhook_id,
        "url": url,
        "events": list(events) or list(EVENT_TYPES),
        "allEvents": not events,
        "enabled": enabled,
    }


def user_snapshot(user: User) -> Snapshot:
    """What an entry keeps of an account: who it is and its role (never its password)."""
    return {"id": user.id, "username": user.username, "email": user.email, "role": user.role.value}


def action_of(before: Drop, after: Drop) -> AuditAction:
    """The one action a change of a drop is logged as: a flip of `paused` names it first
    (pausing is what an operator looks for in a hurry), then a rise of `initialStock`
    (a restock), and anything else is an update. The snapshots say everything it changed."""
    if before.info.paused != after.info.paused:
        return AuditAction.PAUSE if after.info.paused else AuditAction.UNPAUSE
    if after.initial_stock > before.initial_stock:
        return AuditAction.RESTOCK
    return AuditAction.UPDATE


def entry_for_change(at: int, actor: str, before: Drop, after: Drop) -> AuditEntry:
    """The entry of a change the actor decided: `before` and `after` as that one write left them."""
    action = action_of(before, after)
    return AuditEntry(at, actor, action, before.id, snapshot(before), snapshot(after))


def entry_for_delete(at: int, actor: str, before: Drop) -> AuditEntry:
    return AuditEntry(at, actor, AuditAction.DELETE, before.id, snapshot(before), None)
