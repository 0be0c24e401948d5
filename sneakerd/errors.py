"""Every failure sneakerd names, in one place.

The hierarchy::

    SneakerdError
    ├── DomainError            a request the rules refuse; carries a docs/API.md error code
    │   ├── NotFound               (not_found)
    │   ├── OutOfStock             (out_of_stock)
    │   ├── LimitReached           (limit_reached)
    │   ├── DropNotLive            (drop_not_live)
    │   ├── DropEnded              (drop_ended)
    │   ├── ReservationNotActive   (reservation_not_active)
    │   ├── ReservationExpired     (reservation_expired)
    │   ├── EmailTaken             (email_taken)
    │   ├── UsernameTaken          (username_taken)
    │   ├── DropHasSales           (drop_has_sales)
    │   ├── StockBelowCommitted    (stock_below_committed)
    │   ├── DropPaused             (drop_paused: an operator paused the drop's sales)
    │   ├── InvalidDrop            (validation_error: a drop the rules cannot accept)
    │   ├── RequestInProgress      (request_in_progress: one Idempotency-Key twice in a batch)
    │   ├── RaffleOnly             (raffle_only: reserve on a raffle drop)
    │   ├── NotARaffle             (not_a_raffle: an entry on a drop that is not a raffle)
    │   ├── AlreadyEntered         (already_entered)
    │   ├── EntriesNotOpen         (entries_not_open)
    │   ├── EntriesClosed          (entries_closed)
    │   └── NotAdmitted            (not_admitted: a queued drop's reserve without a live admission)
    ├── Unavailable            the database could not be reached or the outcome is unknown
    │   ├── LeaseLost              another node took the drop's lease; this node may not write it
    │   ├── OutcomeUnknown         the deciding node did not answer: maybe done (retry with the key)
    │   └── ActorStopped           the drop's actor is shutting down or has stopped
    ├── VersionConflict        another writer changed a drop row; the actor reloads, decides again
    ├── RowConflict            a constraint refused a row of a batch; the actor serves it in halves
    └── ConfigError            settings that cannot work; the CLI prints it and exits non-zero

Domain errors are raised by the service layer from the actor's replies (the actor itself returns
`Rejection` values, never raises, so one caller's refusal cannot disturb a batch). The HTTP edge
turns each into its answer in one function, `sneakerd.web.problems.problem`.
"""

from __future__ import annotations

from typing import ClassVar


class SneakerdError(Exception):
    """Base of every error sneakerd raises on purpose."""


class DomainError(SneakerdError):
    """A request refused by the rules of a drop; `code` is the docs/API.md error code."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message())

    @classmethod
    def default_message(cls) -> str:
        return cls.code.replace("_", " ").capitalize()

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(DomainError):
    code = "not_found"


class OutOfStock(DomainError):
    code = "out_of_stock"


class LimitReached(DomainError):
    code = "limit_reached"


class DropNotLive(DomainError):
    code = "drop_not_live"


class DropEnded(DomainError):
    code = "drop_ended"


class ReservationNotActive(DomainError):
    code = "reservation_not_active"


class ReservationExpired(DomainError):
    code = "reservation_expired"


class EmailTaken(DomainError):
    code = "email_taken"


class UsernameTaken(DomainError):
    code = "username_taken"


class DropHasSales(DomainError):
    code = "drop_has_sales"


class StockBelowCommitted(DomainError):
    code = "stock_below_committed"


class DropPaused(DomainError):
    code = "drop_paused"


class InvalidDrop(DomainError):
    """A drop that cannot be (an end before its start, ...), found by its actor against the
    state it was about to change. `field` names the API field at fault."""

    code = "validation_error"

    def __init__(self, message: str | None = None, field: str = "_schema") -> None:
        super().__init__(message)
        self.field = field


class RequestInProgress(DomainError):
    code = "request_in_progress"


class RaffleOnly(DomainError):
    code = "raffle_only"


class NotARaffle(DomainError):
    code = "not_a_raffle"


class AlreadyEntered(DomainError):
    code = "already_entered"


class EntriesNotOpen(DomainError):
    code = "entries_not_open"


class EntriesClosed(DomainError):
    code = "entries_closed"


class NotAdmitted(DomainError):
    """A reserve on a drop with a waiting room without a valid, live admission."""

    code = "not_admitted"


DOMAIN_ERRORS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        OutOfStock,
        LimitReached,
        DropNotLive,
        DropEnded,
        ReservationNotActive,
        ReservationExpired,
        EmailTaken,
        UsernameTaken,
        DropHasSales,
        StockBelowCommitted,
        DropPaused,
        InvalidDrop,
        RequestInProgress,
        RaffleOnly,
        NotARaffle,
        AlreadyEntered,
        EntriesNotOpen,
        EntriesClosed,
        NotAdmitted,
    )
}
"""Each refusal's class by its code: how a refusal made on another node is raised again here
(`cluster.wire`)."""


class Unavailable(SneakerdError):
    """The store failed or could not be reached; nothing the caller asked for was done.

    When a COMMIT itself fails the outcome is unknown to us, but the actor keeps its memory as
    before the batch and reloads from the database before deciding again, so the caller's
    retry is decided against what really committed.
    """

    code: ClassVar[str] = "unavailable"


class LeaseLost(Unavailable):
    """This node no longer owns the drop (another node took its lease): nothing was done here;
    a retry reaches the new owner."""


class DatabaseMissing(SneakerdError):
    """The server is there but has no database by the name asked for, and the caller may not
    make one (every CLI command but `db init` and `serve`)."""


class PeerUnreachable(Unavailable):
    """The node that decides the request could not be reached, so the request was never sent:
    nothing was done. Unlike an `Unavailable` that node answered itself, it says the node may
    be gone (`cluster/ownership.py` leaves it out of routing until it is heard from)."""


class OutcomeUnknown(Unavailable):
    """The request reached the node that decides it, which did not answer: it may have been
    done. A retry with the same Idempotency-Key returns what really happened."""


class ActorStopped(Unavailable):
    """The drop's actor stopped before it could answer (shutdown, or the drop was deleted)."""


class RowRefused(Unavailable):
    """A constraint refused this caller's own row, found alone after its batch was split in
    halves: nothing was done. Under an Idempotency-Key the row is most often the key's, which
    a twin of the request (sent again through another node while the first was still on its
    way) committed first; the caller then looks the key up again (`web/idempotency.py`)."""


class VersionConflict(SneakerdError):
    """The drop row's version was not the one the actor expected: someone else wrote it."""


class RowConflict(SneakerdError):
    """A constraint refused a row of a batch (a duplicate key, a missing parent row): nothing of
    the batch was written. It is one caller's row, so the actor decides the batch again in
    halves until the caller whose row it is stands alone, and only that caller is refused."""


class SchemaTooNew(SneakerdError):
    """The database was made or migrated by a newer sneakerd than this one: its tables may
    hold what this code does not know, so it neither migrates nor serves it."""


class ConfigError(SneakerdError):
    """A setting that cannot work (a short JWT secret, an unknown database URL, ...)."""
