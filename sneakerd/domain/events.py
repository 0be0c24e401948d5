"""What a committed batch tells the world, in the order it happened.

Each event carries `seq`: the drop's version right after that event. A batch that produces k
events moves the version from v to v + k, so seqs rise strictly and densely within a drop and
the last one equals the committed version (what a `snapshot` shows). Events exist only for
batches that committed: the actor publishes them after the COMMIT returns.

Three kinds ride along without a version of their own (`SIDE_EVENTS`): a hold made, a hold
cancelled, a drop created. The native WebSocket never needed them (its `stockUpdate` says all a
watcher must know), but the original's Socket.IO clients hear them, and giving them versions
would put holes in the seq that native watchers read as lost messages. So a side event's `seq`
is the version its batch commits (that of the batch's last numbered event; a new drop's first
version), it comes after the batch's numbered events, and it never moves the version.
"""

from __future__ import annotations

from dataclasses import dataclass

from sneakerd.domain.model import Drop


@dataclass(frozen=True, slots=True)
class StockChanged:
    drop_id: int
    seq: int
    stock: int
    reserved: int
    sold: int


@dataclass(frozen=True, slots=True)
class Expired:
    drop_id: int
    seq: int
    reservation_id: int


@dataclass(frozen=True, slots=True)
class Purchased:
    drop_id: int
    seq: int
    purchase_id: int
    purchaser: str
    user_id: int = 0
    """The purchaser's id (Socket.IO's `purchaser: {id, username}`). Defaulted only so that
    code built before it existed keeps constructing the event; the book always sets it."""


@dataclass(frozen=True, slots=True)
class DropUpdated:
    drop_id: int
    seq: int
    drop: Drop


@dataclass(frozen=True, slots=True)
class DropDeleted:
    drop_id: int
    seq: int


@dataclass(frozen=True, slots=True)
class Reserved:
    """A hold was made (a side event: see the module)."""

    drop_id: int
    seq: int
    reservation_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class Cancelled:
    """Its owner cancelled a hold (a side event; the holds a deleted drop lets go are said by
    `DropDeleted`, not one by one)."""

    drop_id: int
    seq: int
    reservation_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class DropCreated:
    """An admin created a drop (a side event). No actor decides a creation: the service
    announces it once the store has committed the row, through the actors' sink."""

    drop_id: int
    seq: int
    drop: Drop


DropEvent = (
    StockChanged
    | Expired
    | Purchased
    | DropUpdated
    | DropDeleted
    | Reserved
    | Cancelled
    | DropCreated
)

SIDE_EVENTS = (Reserved, Cancelled, DropCreated)
"""The kinds that share their batch's seq instead of taking one (see the module)."""


def is_side(event: DropEvent) -> bool:
    return isinstance(event, SIDE_EVENTS)
