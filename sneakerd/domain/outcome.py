"""What deciding a batch produces: the rows to write and the outcome to deliver.

The decision code (`DropBook`) makes these; the store writes `Changes` in one transaction and
the actor delivers the `Outcome` once that commit returned. Plain values, shared by both sides,
so the store depends on the domain's values and not on its decision code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sneakerd.domain.audit import AuditEntry
from sneakerd.domain.commands import RequestKey
from sneakerd.domain.events import DropEvent
from sneakerd.domain.holds import Delta
from sneakerd.domain.model import (
    Drop,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.queue import QueueChanges, QueueDelta
from sneakerd.domain.raffle import EntryRecord
from sneakerd.domain.webhook_events import OutboxEvent


@dataclass(frozen=True, slots=True)
class Changes:
    """The rows one batch writes, in one transaction, guarded by `expected_version`."""

    drop: Drop
    expected_version: int
    new_reservations: tuple[ReservationRecord, ...]
    status_changes: tuple[tuple[int, ReservationStatus], ...]
    new_purchases: tuple[PurchaseRecord, ...]
    keyed: tuple[KeyedSuccess, ...] = ()
    """Successes made under an Idempotency-Key, to record with the rows they made."""
    new_entries: tuple[EntryRecord, ...] = ()
    """A raffle's new entries: written only while the drop's entries digest is not committed
    (the store refuses them after it, whatever the batch believed)."""
    audit: tuple[AuditEntry, ...] = ()
    """The audit log's entries of the admin writes in this batch, written in its commit."""
    epoch: int | None = None
    """The owner's lease epoch where drops are owned by leases (several nodes): the batch is
    written only while the drop's lease still carries it, so a node that lost its lease (paused,
    partitioned, slow) can never commit again. None on a single node."""
    queue: QueueChanges | None = None
    """The waiting room's rows: tickets taken, admitted, done."""
    outbox: tuple[OutboxEvent, ...] = ()
    """The webhook events the batch makes, in decision order (`webhook_events`), written
    with its rows so that an event exists exactly when its act committed."""


@dataclass(frozen=True, slots=True)
class KeyedSuccess:
    """`ref_id` is the reservation made (reserve) or bought (purchase): the first answer is
    rebuilt from it, as both records are immutable in what that answer shows."""

    user_id: int
    key: RequestKey
    ref_id: int
    at: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished batch produced. `changes` is None when the batch wrote nothing."""

    drop: Drop
    """The drop as the batch leaves it (its last version)."""
    delta: Delta
    """What the batch changes in the live state (`DropState.apply`)."""
    changes: Changes | None
    events: tuple[DropEvent, ...]
    new_holds: tuple[tuple[int, int], ...] = field(default=())
    """(expires_at, reservation_id) of every hold created, for the actor's timer queue."""
    queue: QueueDelta | None = None
    """What the batch changes in the waiting room."""
