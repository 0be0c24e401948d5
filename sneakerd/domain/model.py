"""The state of a drop and the records it produces, as plain immutable values.

Times are epoch milliseconds (see `sneakerd.clock`). Nothing here does I/O or knows about the
database or the web; the stores and the HTTP edge translate these values to rows and JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from immutables import Map


class DropStatus(StrEnum):
    UPCOMING = "upcoming"
    LIVE = "live"
    SOLD_OUT = "sold_out"
    ENDED = "ended"


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class Role(StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class DropInfo:
    """What an admin describes about a drop; none of it is touched by a reservation."""

    name: str
    price: Decimal
    brand: str | None = None
    description: str | None = None
    image_url: str | None = None
    per_user_limit: int = 1
    holds_per_user: int = 3
    """Holds one user may make on this drop in its lifetime (expired and cancelled count), so
    that cancelling and re-reserving cannot keep a unit out of the pool for ever."""
    starts_at: int = 0
    ends_at: int | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """One drop as stored: its description, its unit counts and its version.

    `stock + reserved + sold == initial_stock` holds for every Drop the decision code produces.
    """

    id: int
    info: DropInfo
    initial_stock: int
    stock: int
    reserved: int
    sold: int
    version: int
    created_at: int
    updated_at: int
    deleted: bool = False

    def status(self, now: int) -> DropStatus:
        """The status a shopper sees at `now`: the sale window first, then the stock."""
        if self.info.ends_at is not None and now >= self.info.ends_at:
            return DropStatus.ENDED
        if now < self.info.starts_at:
            return DropStatus.UPCOMING
        if self.stock <= 0:
            return DropStatus.SOLD_OUT
        return DropStatus.LIVE


class Hold(NamedTuple):
    """An active reservation as the actor keeps it: two or three ints, nothing GC-heavy."""

    user_id: int
    expires_at: int
    created_at: int


@dataclass(frozen=True, slots=True)
class DropState:
    """Everything the actor needs to decide a message about one drop.

    `holds` maps each active reservation id to its hold; `user_counts` maps a user id to the
    number of that user's active holds plus purchases in this drop (the per-user limit counts
    both). Users with no hold and no purchase are absent, so both maps stay bounded by the stock.
    `user_holds` maps a user id to the number of holds that user ever made on this drop (for
    `holds_per_user`); it grows with the users who reserved, at most one entry each.
    """

    drop: Drop
    holds: Mapping[int, Hold] = field(default_factory=Map)
    user_counts: Mapping[int, int] = field(default_factory=Map)
    user_holds: Mapping[int, int] = field(default_factory=Map)

    def __post_init__(self) -> None:
        # Persistent maps, whatever the caller passed: a batch then derives the next state in
        # O(its changes) instead of copying every live hold (see `DropBook`).
        if not isinstance(self.holds, Map):
            object.__setattr__(self, "holds", Map(self.holds))
        if not isinstance(self.user_counts, Map):
            object.__setattr__(self, "user_counts", Map(self.user_counts))
        if not isinstance(self.user_holds, Map):
            object.__setattr__(self, "user_holds", Map(self.user_holds))


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    id: int
    drop_id: int
    user_id: int
    status: ReservationStatus
    expires_at: int
    created_at: int


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    id: int
    drop_id: int
    user_id: int
    reservation_id: int
    price: Decimal
    created_at: int


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str
    role: Role
    created_at: int
