"""The rules of a drop that more than the book asks about: each is one pure function.

The book decides every message with them. The drop's actor also asks `reserve_refusal` about its
last committed state (`DropActor.refusal`), so that the web front can refuse a reserve without
queueing it, and a new drop's window meets `window_refusal` in the request schema, in
`DropService.create_drop` and in the CLI. A refusal is a `Rejection` value, not an exception, so
one caller's refusal is just another reply in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from sneakerd import errors
from sneakerd.domain.model import Drop, DropMode


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal: which `DomainError` the caller gets, and why in words."""

    error: type[errors.DomainError]
    message: str
    field: str | None = None
    """The API field at fault, for a refusal that is a validation error."""

    def to_error(self) -> errors.DomainError:
        if self.error is errors.InvalidDrop:
            return errors.InvalidDrop(self.message, self.field or "_schema")
        return self.error(self.message)


PAUSED = Rejection(errors.DropPaused, "Sales of this drop are paused for now; try again later")
"""The refusal of a reserve or a purchase while an operator has paused the drop. Nothing else
changes: holds keep their deadlines, and a hold that comes due while paused still expires."""


def window_refusal(starts_at: int, ends_at: int | None) -> Rejection | None:
    """A sale window must end after it starts. The actor checks every change of a drop with
    it against the state it is about to change; the edge asks it about a new drop."""
    if ends_at is not None and ends_at <= starts_at:
        return Rejection(errors.InvalidDrop, "endsAt must be after startsAt", "endsAt")
    return None


def reserve_refusal(
    drop: Drop, stock: int, count: int, now: int, made: int = 0
) -> Rejection | None:
    """Why one more hold for a user who has `count` (holds + purchases) and has made `made`
    holds on this drop in its lifetime would be refused, checked in this order; None if it
    would be granted.

    The book decides every reserve with it. The edge also asks it about the drop's last
    committed state to refuse without queueing: a refusal read from a committed state is a
    true answer as of that moment, and in a burst nearly every request is one.
    """
    if drop.deleted:
        return Rejection(errors.NotFound, "No such drop")
    if drop.info.mode is DropMode.RAFFLE:
        return Rejection(errors.RaffleOnly, "This drop is sold by a draw: enter it instead")
    if drop.info.ends_at is not None and now >= drop.info.ends_at:
        return Rejection(errors.DropEnded, "This drop has ended")
    if now < drop.info.starts_at:
        return Rejection(errors.DropNotLive, "This drop has not started yet")
    if drop.info.paused:
        return PAUSED
    if count >= drop.info.per_user_limit:
        return Rejection(
            errors.LimitReached,
            f"You already hold or bought {count} of this drop (limit {drop.info.per_user_limit})",
        )
    if made >= drop.info.holds_per_user:
        return Rejection(
            errors.LimitReached,
            f"You have made {made} holds on this drop (limit {drop.info.holds_per_user})",
        )
    if stock <= 0:
        return Rejection(errors.OutOfStock, "No units left right now")
    return None
