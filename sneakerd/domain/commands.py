"""Messages a drop's actor decides: imperative, immutable, one per caller request.

Reservation ids used by `Cancel` and `Purchase` were looked up by the service layer, which
has already checked that the reservation belongs to this drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sneakerd.domain.raffle import DropMode


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
class Enter:
    """One user's entry into a raffle drop's draw."""

    user_id: int


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
    paused: bool | None = None
    actor: str = ""
    """Who asks (`audit.user_actor`, `audit.CLI_ACTOR`): a change that commits is logged in
    its own commit under this name. Empty: not logged (the actor's own tests)."""
    available: int | None = None
    """The units to have available now (the original API's `stock` on an edit): the drop's
    total becomes this plus what is on hold or sold, counted by the book against the state it
    changes, never by a caller reading first. `initial_stock`, when given too, wins."""
    mode: DropMode | None = None
    entries_open_at: int | None = None
    entries_close_at: int | None = None
    claim_seconds: int | None = None
    seed: bytes | None = None
    """A fresh secret seed (made at the edge with `secrets`), used only if this change makes
    the drop a raffle: deciding stays deterministic."""
    queue: bool | None = None


@dataclass(frozen=True, slots=True)
class DeleteDrop:
    actor: str = ""
    """As `UpdateDrop.actor`."""


Command = Reserve | Enter | Cancel | Purchase | Expire | UpdateDrop | DeleteDrop | JoinQueue
