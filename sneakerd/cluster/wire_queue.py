"""A waiting-room ticket as JSON between nodes (the `wire` codec's part for the queue): a join
forwarded to the drop's owner comes back as exactly the ticket a local ask would give."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sneakerd.domain.queue import QueueTicket

if TYPE_CHECKING:
    from sneakerd.cluster.wire import Obj


def ticket_to_json(ticket: QueueTicket) -> dict[str, Any]:
    return {
        "t": "ticket",
        "drop_id": ticket.drop_id,
        "user_id": ticket.user_id,
        "position": ticket.position,
        "joined_at": ticket.joined_at,
        "admitted": ticket.admitted,
        "admission_expires_at": ticket.admission_expires_at,
        "done": ticket.done,
        "estimated_wait_seconds": ticket.estimated_wait_seconds,
    }


def ticket_from_json(obj: Obj) -> QueueTicket:
    return QueueTicket(
        drop_id=obj.integer("drop_id"),
        user_id=obj.integer("user_id"),
        position=obj.opt_integer("position"),
        joined_at=obj.integer("joined_at"),
        admitted=obj.flag("admitted"),
        admission_expires_at=obj.opt_integer("admission_expires_at"),
        done=obj.flag("done"),
        estimated_wait_seconds=obj.opt_integer("estimated_wait_seconds"),
    )
