"""The values of the domain: a drop, its live state, the records it produces, and a user.

Every value is immutable except `DropState`, the live state a drop's actor decides against: it
changes only through `DropState.apply`, with the `Delta` of a batch that committed, and keeps
its tables out of the garbage collector's sight (`holds`).

Times are epoch milliseconds (see `sneakerd.clock`). Nothing here does I/O or knows about the
database or the web: the stores map these values to rows (`sneakerd.store.rows`) and
`sneakerd.views` writes them as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from sneakerd.domain.holds import Delta, HoldTable, apply_counts
from sneakerd.domain.holds import Hold as Hold
from sneakerd.domain.queue import WaitingRoom
from sneakerd.domain.raffle import DEFAULT_CLAIM_SECONDS, Raffle, RaffleEntries
from sneakerd.domain.raffle import DropMode as DropMode


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
    mode: DropMode = DropMode.FCFS
    """`raffle`: sold by a verifiable draw among entries (`domain.raffle`), not by reserve."""
    entries_open_at: int | None = None
    entries_close_at: int | None = None
    claim_seconds: int = DEFAULT_CLAIM_SECONDS
    paused: bool = False
    """An operator stopped the sale for now: reserve and purchase are refused (`drop_paused`),
    while holds keep their deadlines and still expire."""
    queue: bool = False
    """A waiting room: shoppers join a line and reserve only once admitted (`queue`)."""


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
    raffle: Raffle | None = None
    """A raffle drop's draw (seed, digest, winners so far); None for first come, first served."""

    def status(self, now: int) -> DropStatus:
        """The status a shopper sees at `now`: the sale window first, then the stock."""
        if self.info.ends_at is not None and now >= self.info.ends_at:
            return DropStatus.ENDED
        if now < self.info.starts_at:
            return DropStatus.UPCOMING
        if self.stock <= 0:
            return DropStatus.SOLD_OUT
        return DropStatus.LIVE


@dataclass(slots=True)
class DropState:
    """Everything the actor needs to decide a message about one drop.

    `holds` maps each active reservation id to its hold; `user_counts` maps a user id to the
    number of that user's active holds plus purchases in this drop (the per-user limit counts
    both); `user_holds` maps a user id to the holds that user ever made here (for
    `holds_per_user`). Users with nothing are absent from `user_counts`. All three are kept out
    of the garbage collector's sight (see `holds`), and change only through `apply`, which the
    actor calls after a commit: the decision code reads them and never writes them.
    """

    drop: Drop
    holds: HoldTable = field(default_factory=HoldTable)
    user_counts: dict[int, int] = field(default_factory=dict)
    user_holds: dict[int, int] = field(default_factory=dict)
    entries: RaffleEntries = field(default_factory=RaffleEntries)
    """A raffle drop's entries (empty for any other drop)."""
    queue: WaitingRoom = field(default_factory=WaitingRoom)
    """The drop's waiting room (empty unless `DropInfo.queue`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.holds, HoldTable):
            self.holds = HoldTable(self.holds)
        self.user_counts = {int(k): int(v) for k, v in self.user_counts.items()}
        self.user_holds = {int(k): int(v) for k, v in self.user_holds.items()}

    def apply(self, drop: Drop, delta: Delta) -> None:
        """Move to the state a committed batch produced."""
        self.drop = drop
        self.holds.apply(delta.added, delta.removed)
        apply_counts(self.user_counts, delta.counts)
        apply_counts(self.user_holds, delta.made)
        if delta.entries:
            self.entries.add(delta.entries)

    def copy(self) -> DropState:
        return DropState(
            self.drop,
            self.holds.copy(),
            dict(self.user_counts),
            dict(self.user_holds),
            self.entries.copy(),
            self.queue.copy(),
        )


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
