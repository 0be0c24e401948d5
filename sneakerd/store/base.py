"""The store interface every database adapter implements, and the values it returns.

Two adapters implement `Store`: `MySQLStore` (production) and `SQLiteStore` (the embedded default).
The same contract tests in `tests/store` run against both. Every driver failure surfaces as
`errors.Unavailable`, so callers never see a driver's exception type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from sneakerd.domain.audit import AuditRecord
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    DropStatus,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
    User,
)
from sneakerd.domain.outcome import Changes
from sneakerd.domain.raffle import EntryRecord
from sneakerd.store.leases import Lease, Node
from sneakerd.store.numbered import BuyerPurchase, Numbered

if TYPE_CHECKING:
    from sneakerd.store.webhook_rows import WebhookRows

SCHEMA_VERSION = 7

DEFAULT_PAGE = 50
MAX_PAGE = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageKey:
    """A position in a newest-first list: the (created_at, id) of the last row a page held.

    The next page starts strictly after it (keyset paging, never OFFSET), so every page costs
    one index range however deep it is, and rows added meanwhile neither repeat nor vanish."""

    created_at: int
    id: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Up to `limit` rows, newest first; `next` is where the following page starts, None when
    this is the last one."""

    items: list[T]
    next: PageKey | None


@dataclass(frozen=True, slots=True)
class DropPurchase:
    """A purchase as the public sees it: who bought (by username), never an email or id."""

    id: int
    purchaser: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Buyer:
    """A purchase as the drop's operator sees it: with who bought it and how to reach them."""

    purchase: PurchaseRecord
    user_id: int
    username: str
    email: str


@dataclass(frozen=True, slots=True)
class DropStats:
    drop: Drop
    expiring_soon: int
    """Active holds whose deadline falls within the next minute (its last instant included,
    so a hold made this very millisecond, due in exactly one minute, counts)."""
    sold_out_at: int | None = None
    """When the last unit was sold (the last purchase's time) if every unit is sold."""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first answer given to a request with an Idempotency-Key."""

    request: str
    status: int | None
    """The HTTP status of a saved answer; None for a success recorded with its act, which the
    web layer answers as the creation it was (the store knows no HTTP)."""
    body: str
    ref_id: int | None = None
    """Set for a success recorded with its act (see `RequestKey`); the body is then empty
    and the answer is rebuilt from the reservation (or, for a purchase, the reservation it
    bought)."""
    fingerprint: str = ""
    """The digest of the request that got this answer (see `RequestKey.fingerprint`)."""
    created_at: int = 0


class Store(Protocol):
    """Persistence for users, drops, reservations and purchases."""

    async def init_schema(self) -> None:
        """Create every table if missing; safe to run again and again."""

    async def schema_version(self) -> int | None: ...

    async def ping(self) -> None:
        """Raise `Unavailable` unless the database answers now."""

    @property
    def webhooks(self) -> WebhookRows:
        """Webhook registrations, the outbox and its deliveries (`webhook_rows`)."""
        ...

    async def close(self) -> None: ...

    # users
    async def create_user(
        self,
        username: str,
        email: str,
        password_hash: str,
        role: Role,
        now: int,
        actor: str | None = None,
    ) -> User:
        """With `actor` (an operator's write, not a sign-up), the audit entry goes in the same
        transaction. Keep `email` as its identity (`domain.accounts.normalize_email`, which raises
        `InvalidEmail`); raise `EmailTaken` for a taken identity or `UsernameTaken` for a
        taken username (case-insensitively)."""

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def update_user(
        self, user_id: int, *, username: str | None = None, password_hash: str | None = None
    ) -> User | None:
        """Change what is given; None if the user does not exist. Raise `UsernameTaken` when
        another user has the name (case-insensitively)."""

    async def replace_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Swap the hash only if it is still `old_hash` (a re-hash on login must not undo a
        password change that committed in between); True if it was swapped."""

    async def usernames_by_ids(self, user_ids: Sequence[int]) -> dict[int, str]:
        """The names of those of the given users that exist, by id: one query for a crowd's
        first requests, reading only the two columns the hot path's user check needs."""

    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user whose identity `email` names, and their password hash; None for an email
        that names nobody (also one that cannot be an identity)."""

    async def set_role(
        self, email: str, role: Role, actor: str | None = None, now: int = 0
    ) -> User | None:
        """The user `email` names, now with `role`; None if it names nobody. With `actor`,
        the audit entry goes in the same transaction (none when the user had `role` already)."""

    # drops
    async def create_drop(
        self, info: DropInfo, initial_stock: int, now: int, actor: str = ""
    ) -> Drop:
        """A new drop; with an `actor`, its audit entry (`create`) in the same transaction."""

    async def get_drop(self, drop_id: int) -> Drop | None:
        """A drop that has not been deleted."""

    async def list_drops(
        self,
        *,
        now: int,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
        q: str | None = None,
        status: DropStatus | None = None,
    ) -> Page[Drop]:
        """Drops that have not been deleted, newest first. `q`: a case-insensitive substring
        of the name or the brand (no wildcards); `status`: the drop's status at `now`."""

    async def drops_to_recover(self, now: int) -> list[int]:
        """Drops whose actor should start with the server: not deleted, and not ended or still
        holding active reservations that must be expired on time."""

    async def load_state(self, drop_id: int) -> DropState | None:
        """The drop with its active holds and per-user counts, read from one snapshot."""

    async def entry_ids(self, drop_id: int) -> list[int]:
        """A raffle drop's entry ids, ascending (as its digest covers them)."""

    async def entry_of(self, drop_id: int, user_id: int) -> EntryRecord | None:
        """A user's entry into a raffle drop, if any."""

    async def commit(self, changes: Changes) -> None:
        """Write one batch in one transaction; raise `VersionConflict` if the drop's version is
        not `changes.expected_version` (and then write nothing)."""

    async def allocate_ids(self, kind: str, count: int) -> int:
        """Reserve `count` consecutive ids of `kind` ("reservations" or "purchases") and return
        the first. Durable: no id is ever handed out twice, even across nodes."""

    # reservations and purchases
    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None: ...

    async def user_reservations(
        self,
        user_id: int,
        *,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
        status: ReservationStatus | None = None,
    ) -> Page[ReservationRecord]:
        """Newest first."""

    async def purchase_for_reservation(self, reservation_id: int) -> PurchaseRecord | None: ...

    async def get_purchase(self, purchase_id: int) -> PurchaseRecord | None: ...

    async def user_purchases(
        self, user_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[PurchaseRecord]:
        """Newest first."""

    async def drop_purchases(
        self, drop_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[DropPurchase]:
        """Newest first."""

    async def drop_buyers(
        self, drop_id: int, *, limit: int = DEFAULT_PAGE, after: PageKey | None = None
    ) -> Page[Buyer]:
        """Newest first: each purchase with its buyer's id, username and email (operators)."""

    async def audit_entries(
        self,
        *,
        drop_id: int | None = None,
        limit: int = DEFAULT_PAGE,
        after: PageKey | None = None,
    ) -> Page[AuditRecord]:
        """The audit log, newest first; only one drop's entries when `drop_id` is given."""

    async def expiring_holds(self, drop_id: int, by: int) -> int:
        """How many of the drop's active holds have their deadline at or before `by`."""

    async def last_purchase_at(self, drop_id: int) -> int | None:
        """The time of the drop's latest purchase; None before its first."""

    # numbered pages and batched lookups (the /compat mount's; see `numbered`)
    async def drops_numbered(
        self, *, offset: int, limit: int, q: str | None = None
    ) -> Numbered[Drop]:
        """Drops not deleted, newest first, `q` as in `list_drops`: a page and the total."""

    async def user_reservations_numbered(
        self,
        user_id: int,
        *,
        offset: int,
        limit: int,
        statuses: Sequence[ReservationStatus] = (),
    ) -> Numbered[ReservationRecord]:
        """Newest first, of any of `statuses` (all when empty): a page and the total."""

    async def user_purchases_numbered(
        self, user_id: int, *, offset: int, limit: int
    ) -> Numbered[PurchaseRecord]:
        """Newest first: a page and the total."""

    async def drops_by_ids(self, drop_ids: Sequence[int]) -> dict[int, Drop]:
        """The drops named that exist, deleted ones included, by id."""

    async def latest_purchases(
        self, drop_ids: Sequence[int], per_drop: int
    ) -> dict[int, list[BuyerPurchase]]:
        """Each named drop's `per_drop` newest purchases with their buyers' names."""

    # idempotency keys
    async def idempotent_answer(self, user_id: int, key: str) -> StoredAnswer | None:
        """The answer kept for this user's key, compared byte for byte. One key names one
        attempt: its `request` and `fingerprint` say which, so a reuse can be refused."""

    async def save_idempotent_answer(
        self, user_id: int, key: str, answer: StoredAnswer, now: int
    ) -> StoredAnswer:
        """Keep the first answer for (user, key); if one is already kept, return that one."""

    async def forget_idempotent_answer(self, user_id: int, key: str, before: int) -> None:
        """Drop this key's answer if it was kept before `before` (its time to live is over)."""

    async def forget_idempotent_answers(self, before: int) -> int:
        """Drop every answer kept before `before`; return how many."""

    # nodes and leases (several nodes; see `leases`)
    async def heartbeat(self, node_id: str, url: str, now: int) -> None: ...

    async def nodes(self) -> list[Node]: ...

    async def leave(self, node_id: str) -> None: ...

    async def acquire_lease(self, drop_id: int, node_id: str, now: int, ttl: int) -> int | None:
        """The new epoch if this node took the drop's lease, else None (see `leases.acquire`)."""

    async def renew_leases(
        self, node_id: str, held: dict[int, int], now: int, ttl: int
    ) -> set[int]: ...

    async def release_lease(self, drop_id: int, node_id: str, epoch: int) -> None: ...

    async def lease_of(self, drop_id: int) -> Lease | None: ...

    async def leases(self) -> list[Lease]: ...

    # operations
    async def check(self, now: int, grace_ms: int = 5_000) -> list[str]:
        """Every breach of the invariants, one human sentence each; empty when healthy."""

    async def stats(self, now: int) -> list[DropStats]: ...
