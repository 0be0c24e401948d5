"""Messages a drop's actor decides: imperative, immutable, one per caller request.

Reservation ids used by `Cancel` and `Purchase` were looked up by the service layer, which
has already checked that the reservation belongs to this drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A client's Idempotency-Key for one endpoint (`scope`, e.g. "POST /api/reservations").

    A command that carries one has its success recorded under that key in the same commit as
    the hold or sale it made, so a crash can never leave a done act without its key (a retry
    would then act twice) nor a key without its act."""

    scope: str
    key: str
    fingerprint: str = ""
    """A digest of the request (endpoint and body): the same key with another request is
    refused rather than answered with the first one's answer."""


@dataclass(frozen=True, slots=True)
class Reserve:
    user_id: int
    key: RequestKey | None = None
    admitted: bool = False
    """The caller showed a valid admission token of this user and drop (the edge checked its
    signature); on a drop with a waiting room the actor also checks the admission is live."""


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """Take a place in the drop's waiting room (again: the same place); with `join` False,
    only read the user's ticket (a node that does not own the drop asks its owner so)."""

    user_id: int
    join: bool = True


@dataclass(frozen=True, slots=True)
class Cancel:
    user_id: int
    reservation_id: int


@dataclass(frozen=True, slots=True)
class Purchase:
    user_id: int
    reservation_id: int
    username: str
    key: RequestKey | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """Expire these holds if they are due; the actor's timer sends the ids that came due."""

    reservation_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UpdateDrop:
    """An admin's change. A field left as None is not changed; the optional fields named in
    `clear` (brand, description, image_url, ends_at) are set to None."""

    name: str | None = None
    price: Decimal | None = None
    brand: str | None = None
    description: str | None = None
    image_url: str | None = None
    per_user_limit: int | None = None
    holds_per_user: int | None = None
    starts_at: int | None = None
    ends_at: int | None = None
    clear: frozenset[str] = frozenset()
    initial_stock: int | None = None
    queue: bool | None = None


@dataclass(frozen=True, slots=True)
class DeleteDrop:
    pass


Command = Reserve | Cancel | Purchase | Expire | UpdateDrop | DeleteDrop | JoinQueue
