"""The decision code of a drop: reserve, cancel, purchase, expire, update, delete.

A `DropBook` is a working copy of one `DropState` for one batch of messages. Each method decides
one message against the copy and returns the caller's reply; `finish()` returns the new state,
the rows to write and the events to publish. Nothing here awaits or does I/O, so the rules can be
tested exhaustively, and a batch whose COMMIT fails is undone by simply dropping the book: the
`DropState` it started from was never touched.

Refusals are returned as `Rejection` values rather than raised (see `rules`), so one caller's
refusal is just another reply in the batch.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import Protocol, TypeVar, assert_never

from sneakerd import errors
from sneakerd.domain import listing
from sneakerd.domain.audit import AuditEntry, entry_for_change, entry_for_delete
from sneakerd.domain.commands import (
    Cancel,
    Command,
    DeleteDrop,
    Enter,
    Expire,
    JoinQueue,
    Purchase,
    RequestKey,
    Reserve,
    UpdateDrop,
)
from sneakerd.domain.events import (
    Cancelled,
    DropDeleted,
    DropEvent,
    DropUpdated,
    Expired,
    Purchased,
    Reserved,
    StockChanged,
)
from sneakerd.domain.holds import Delta, Overlay
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropMode,
    DropState,
    Hold,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.outcome import Changes, KeyedSuccess, Outcome
from sneakerd.domain.queue import QueueBook, QueueTicket, TicketRef
from sneakerd.domain.raffle import EntryRecord, Raffle
from sneakerd.domain.raffle_book import RaffleRules, raffle_change_refusal
from sneakerd.domain.rules import PAUSED, Rejection, reserve_refusal, window_refusal
from sneakerd.domain.webhook_events import EventType, OutboxNotes

K = TypeVar("K")
V = TypeVar("V")

Reply = (
    ReservationRecord
    | PurchaseRecord
    | EntryRecord
    | Drop
    | Rejection
    | TicketRef
    | QueueTicket
    | None
)


def secure_draw_key() -> int:
    """A waiting room's random key for a ticket taken before the draw (see `queue`)."""
    return secrets.randbits(62)


class Ids(Protocol):
    """Hands out fresh ids; the actor fills it before a batch so that deciding never waits."""

    def reservation(self) -> int: ...

    def purchase(self) -> int: ...

    def entry(self) -> int: ...


def _counts(overlay: Overlay[int, int]) -> dict[int, int]:
    """The users whose count the batch changed, with the new count (0: none left)."""
    counts = dict(overlay.changed)
    for user_id in overlay.removed:
        counts[user_id] = 0
    return counts


class DropBook(RaffleRules):
    """Decides a batch of messages for one drop at one instant `now` (a raffle drop's own
    rules are `RaffleRules`')."""

    def __init__(
        self,
        state: DropState,
        *,
        now: int,
        hold_ms: int,
        ids: Ids,
        draw_key: Callable[[], int] = secure_draw_key,
        outbox: bool = False,
    ) -> None:
        self._start = state
        self._drop = state.drop
        # The counts move with every message; the frozen Drop is rebuilt from them only when
        # someone needs it (an edit, the batch's end), not once per reservation.
        self._stock = state.drop.stock
        self._reserved = state.drop.reserved
        self._sold = state.drop.sold
        # Overlays: a batch costs O(its changes), never a copy of every live hold, and the
        # state below is never written (see `holds`).
        self._holds: Overlay[int, Hold] = Overlay(state.holds)
        self._counts: Overlay[int, int] = Overlay(state.user_counts)
        self._made: Overlay[int, int] = Overlay(state.user_holds)
        self._keys_seen: set[tuple[int, str]] = set()
        self._now = now
        self._hold_ms = hold_ms
        self._ids = ids
        self._new_reservations: list[ReservationRecord] = []
        self._status_changes: list[tuple[int, ReservationStatus]] = []
        self._new_purchases: list[PurchaseRecord] = []
        self._keyed: list[KeyedSuccess] = []
        self._audit: list[AuditEntry] = []
        self._events: list[DropEvent] = []
        self._new_entries: list[EntryRecord] = []
        self._entered: set[int] = set()
        self._side: list[Reserved | Cancelled] = []
        """Side events (`events` module): numbered by `finish` with the batch's last seq."""
        self._dirty = False
        self._draw_key = draw_key
        self._queue = QueueBook(
            state.queue, now=now, admission_ms=hold_ms, started=now >= state.drop.info.starts_at
        )
        self._queue.lapse()
        self._outbox = OutboxNotes(outbox)
        """The batch's webhook events (`webhook_events`); notes nothing unless `outbox`."""

    def decide(self, command: Command) -> Reply:
        """Decide one message of any kind; a command without a rule is a type error."""
        match command:
            case Reserve():
                return self.reserve(command)
            case Enter():
                return self.enter(command.user_id)
            case Cancel():
                return self.cancel(command)
            case Purchase():
                return self.purchase(command)
            case Expire():
                return self.expire(command)
            case UpdateDrop():
                return self.update(command)
            case DeleteDrop():
                return self.delete(command)
            case JoinQueue():
                return self.join(command)
            case _:
                assert_never(command)

    # -- the rules ---------------------------------------------------------------------------

    def reserve(self, cmd: Reserve) -> Reply:
        drop, now = self._drop, self._now
        count = self._counts.get(cmd.user_id, 0)
        made = self._made.get(cmd.user_id, 0)
        refused = (
            self._twin(cmd.user_id, cmd.key)
            or reserve_refusal(drop, self._stock, count, now, made)
            or self._admission_refusal(cmd)
        )
        if refused is not None:
            return refused
        if drop.info.queue:
            self._queue.reserved(cmd.user_id)
        reservation_id = self._ids.reservation()
        expires_at = now + self._hold_ms
        self._holds[reservation_id] = Hold(cmd.user_id, expires_at, now)
        self._counts[cmd.user_id] = count + 1
        self._made[cmd.user_id] = made + 1
        self._stock -= 1
        self._reserved += 1
        self._dirty = True
        record = ReservationRecord(
            reservation_id, drop.id, cmd.user_id, ReservationStatus.ACTIVE, expires_at, now
        )
        self._new_reservations.append(record)
        if cmd.key is not None:
            self._keyed.append(KeyedSuccess(cmd.user_id, cmd.key, reservation_id, now))
        self._tell_hold(record)
        return record

    def cancel(self, cmd: Cancel) -> Reply:
        hold = self._holds.get(cmd.reservation_id)
        if hold is None:
            return Rejection(errors.ReservationNotActive, "This reservation is no longer active")
        if hold.user_id != cmd.user_id:
            return Rejection(errors.NotFound, "No such reservation")
        if self._now >= hold.expires_at:
            self._expire(cmd.reservation_id, hold)
            return Rejection(errors.ReservationExpired, "This reservation has expired")
        self._release(cmd.reservation_id, hold, ReservationStatus.CANCELLED)
        self._side.append(Cancelled(self._drop.id, 0, cmd.reservation_id, hold.user_id))
        record = ReservationRecord(
            cmd.reservation_id,
            self._drop.id,
            hold.user_id,
            ReservationStatus.CANCELLED,
            hold.expires_at,
            hold.created_at,
        )
        self._outbox.reservation(record, self._now)
        return record

    def purchase(self, cmd: Purchase) -> Reply:
        twin = self._twin(cmd.user_id, cmd.key)
        if twin is not None:
            return twin
        hold = self._holds.get(cmd.reservation_id)
        if hold is None:
            return Rejection(errors.ReservationNotActive, "This reservation is no longer active")
        if hold.user_id != cmd.user_id:
            return Rejection(errors.NotFound, "No such reservation")
        if self._now >= hold.expires_at:
            self._expire(cmd.reservation_id, hold)
            return Rejection(errors.ReservationExpired, "This reservation has expired")
        drop = self._drop
        if drop.info.paused:  # the hold stays as it is, its deadline running
            return PAUSED
        del self._holds[cmd.reservation_id]
        self._queue.hold_ended(cmd.user_id)
        # The unit moves from held to sold: the user's count (holds + purchases) is unchanged.
        self._reserved -= 1
        self._sold += 1
        self._dirty = True
        self._status_changes.append((cmd.reservation_id, ReservationStatus.COMPLETED))
        record = PurchaseRecord(
            self._ids.purchase(),
            drop.id,
            cmd.user_id,
            cmd.reservation_id,
            drop.info.price,
            self._now,
        )
        self._new_purchases.append(record)
        self._outbox.purchase(record, self._now)
        if cmd.key is not None:
            self._keyed.append(KeyedSuccess(cmd.user_id, cmd.key, cmd.reservation_id, self._now))
        self._events.append(Purchased(drop.id, 0, record.id, cmd.username, cmd.user_id))
        return record

    def expire(self, cmd: Expire) -> Reply:
        for reservation_id in cmd.reservation_ids:
            hold = self._holds.get(reservation_id)
            if hold is not None and self._now >= hold.expires_at:
                self._expire(reservation_id, hold)
        return None

    def update(self, cmd: UpdateDrop) -> Reply:
        drop = self._current()
        if drop.deleted:
            return Rejection(errors.NotFound, "No such drop")
        info_changes = {
            name: value
            for name in (
                "name",
                "price",
                "brand",
                "description",
                "image_url",
                "per_user_limit",
                "holds_per_user",
                "starts_at",
                "ends_at",
                "mode",
                "entries_open_at",
                "entries_close_at",
                "claim_seconds",
                "paused",
                "queue",
            )
            if (value := getattr(cmd, name)) is not None
        }
        info = dataclasses.replace(drop.info, **info_changes)
        if cmd.clear:
            info = dataclasses.replace(
                info,
                brand=None if "brand" in cmd.clear else info.brand,
                description=None if "description" in cmd.clear else info.description,
                image_url=None if "image_url" in cmd.clear else info.image_url,
                ends_at=None if "ends_at" in cmd.clear else info.ends_at,
            )
        refused = (
            window_refusal(info.starts_at, info.ends_at)
            or raffle_change_refusal(drop, info)
            or _reopening_refusal(drop, info, self._now)
        )
        if refused is not None:
            return refused
        raffle = drop.raffle
        if info.mode is not drop.info.mode:
            raffle = None if cmd.seed is None or info.mode is DropMode.FCFS else Raffle(cmd.seed)
            if raffle is None and info.mode is DropMode.RAFFLE:
                raise ValueError("a change that makes a drop a raffle must carry a fresh seed")
        initial, stock = drop.initial_stock, drop.stock
        committed = drop.reserved + drop.sold
        target = cmd.initial_stock
        if target is None and cmd.available is not None:
            target = cmd.available + committed
            if target > listing.STOCK.high:
                return Rejection(
                    errors.InvalidDrop,
                    f"stock + reserved + sold cannot exceed {listing.STOCK.high}",
                    "stock",
                )
        if target is not None:
            if target < committed:
                return Rejection(
                    errors.StockBelowCommitted,
                    f"initialStock cannot fall below reserved + sold ({committed})",
                )
            initial, stock = target, target - committed
        if info == drop.info and initial == drop.initial_stock and raffle == drop.raffle:
            # Nothing changes (an empty PUT, the values it has): no version, no event, no
            # webhook, no audit entry.
            return drop
        self._drop = dataclasses.replace(
            drop, info=info, initial_stock=initial, stock=stock, updated_at=self._now, raffle=raffle
        )
        self._stock = stock
        self._dirty = True
        self._events.append(DropUpdated(drop.id, 0, self._drop))
        if cmd.actor:
            self._audit.append(entry_for_change(self._now, cmd.actor, drop, self._drop))
        self._outbox.drop(EventType.DROP_UPDATED, drop.id, self._now)
        if stock == 0 < drop.stock:
            self._outbox.drop(EventType.DROP_SOLD_OUT, drop.id, self._now)
        return self._drop

    def delete(self, cmd: DeleteDrop) -> Reply:
        drop = self._current()
        if drop.deleted:
            return Rejection(errors.NotFound, "No such drop")
        if drop.sold > 0:
            return Rejection(
                errors.DropHasSales, f"This drop has {drop.sold} purchases and cannot be deleted"
            )
        for reservation_id, hold in self._holds.items():
            self._release(reservation_id, hold, ReservationStatus.CANCELLED)
            self._outbox.reservation(
                ReservationRecord(
                    reservation_id,
                    drop.id,
                    hold.user_id,
                    ReservationStatus.CANCELLED,
                    hold.expires_at,
                    hold.created_at,
                ),
                self._now,
            )
        self._drop = dataclasses.replace(self._current(), deleted=True, updated_at=self._now)
        if cmd.actor:
            self._audit.append(entry_for_delete(self._now, cmd.actor, drop))
        self._dirty = True
        self._events.append(DropDeleted(drop.id, 0))
        return None

    def join(self, cmd: JoinQueue) -> Reply:
        """A place in the waiting room; a user who has one keeps it (one account, one place)."""
        drop = self._drop
        if drop.deleted or not drop.info.queue:
            return Rejection(errors.NotFound, "This drop has no waiting room")
        ended = drop.info.ends_at is not None and self._now >= drop.info.ends_at
        if ended and cmd.join and not self._queue.has(cmd.user_id):
            return Rejection(errors.DropEnded, "This drop has ended")
        if not self._queue.has(cmd.user_id):
            if not cmd.join:
                return Rejection(errors.NotFound, "You are not in this drop's queue")
            self._queue.join(cmd.user_id, self._draw_key)
        return TicketRef(cmd.user_id)

    # -- bookkeeping -------------------------------------------------------------------------

    def _admission_refusal(self, cmd: Reserve) -> Rejection | None:
        """On a drop with a waiting room, only a user the room admitted, whose admission is
        live, and who showed its token may reserve."""
        if not self._drop.info.queue:
            return None
        if cmd.admitted and self._queue.may_reserve(cmd.user_id):
            return None
        return Rejection(
            errors.NotAdmitted, "Join the queue and reserve with your admission token once admitted"
        )

    def _twin(self, user_id: int, key: RequestKey | None) -> Rejection | None:
        """A second command of one user with one Idempotency-Key in one batch is refused here,
        before the commit: its key row would collide with the first's, and one caller's
        collision must never fail the batch that carries everyone else's requests."""
        if key is None:
            return None
        slot = (user_id, key.key)
        if slot in self._keys_seen:
            return Rejection(
                errors.RequestInProgress, "A request with this Idempotency-Key is in progress"
            )
        self._keys_seen.add(slot)
        return None

    def _expire(self, reservation_id: int, hold: Hold) -> None:
        self._release(reservation_id, hold, ReservationStatus.EXPIRED)
        self._events.append(Expired(self._drop.id, 0, reservation_id))
        self._outbox.reservation(
            ReservationRecord(
                reservation_id,
                self._drop.id,
                hold.user_id,
                ReservationStatus.EXPIRED,
                hold.expires_at,
                hold.created_at,
            ),
            self._now,
        )

    def _release(self, reservation_id: int, hold: Hold, status: ReservationStatus) -> None:
        """End a hold without a sale: its unit goes back to stock, the user's count drops."""
        del self._holds[reservation_id]
        self._queue.hold_ended(hold.user_id)
        left = self._counts.get(hold.user_id, 0) - 1
        if left:
            self._counts[hold.user_id] = left
        else:
            del self._counts[hold.user_id]
        self._stock += 1
        self._reserved -= 1
        self._dirty = True
        self._status_changes.append((reservation_id, status))

    def _tell_hold(self, record: ReservationRecord) -> None:
        """A hold just made, however it was (a reserve, a raffle win): Socket.IO's
        reservationCreated, its webhook, and the sold-out moment if it took the last unit."""
        self._side.append(Reserved(record.drop_id, 0, record.id, record.user_id))
        self._outbox.reservation(record, record.created_at)
        if self._stock == 0:
            self._outbox.drop(EventType.DROP_SOLD_OUT, record.drop_id, record.created_at)

    def _new_reservation_id(self) -> int:
        return self._ids.reservation()

    def _new_entry_id(self) -> int:
        return self._ids.entry()

    def _current(self) -> Drop:
        drop = self._drop
        if (drop.stock, drop.reserved, drop.sold) != (self._stock, self._reserved, self._sold):
            drop = self._drop = dataclasses.replace(
                drop, stock=self._stock, reserved=self._reserved, sold=self._sold
            )
        return drop

    def _admit(self) -> None:
        """The waiting room admits as stock allows, once the batch's other changes are in."""
        drop = self._current()
        ended = drop.info.ends_at is not None and self._now >= drop.info.ends_at
        if drop.info.queue and not drop.deleted and not ended:
            self._queue.admit(self._stock + self._reserved)
        if self._queue.dirty:
            self._dirty = True

    def finish(self) -> Outcome:
        """The batch's result: new state, rows to write, and events numbered by version."""
        self.pass_down()
        self._admit()
        if not self._dirty:
            return Outcome(self._start.drop, Delta(), None, ())
        start = self._start.drop
        queue_changes, queue_delta = self._queue.finish()
        pending = list(self._events)
        if not self._current().deleted:
            pending.append(StockChanged(start.id, 0, 0, 0, 0))
        version = start.version + len(pending)
        final = dataclasses.replace(self._current(), version=version, updated_at=self._now)
        events: list[DropEvent] = []
        for offset, event in enumerate(pending, start=1):
            seq = start.version + offset
            if isinstance(event, StockChanged):
                event = StockChanged(start.id, seq, final.stock, final.reserved, final.sold)
            elif isinstance(event, DropUpdated):
                event = DropUpdated(start.id, seq, final)
            else:
                event = dataclasses.replace(event, seq=seq)
            events.append(event)
        if not final.deleted:  # the holds a deletion let go are said by its DropDeleted
            events.extend(dataclasses.replace(event, seq=version) for event in self._side)
        changes = Changes(
            drop=final,
            expected_version=start.version,
            new_reservations=tuple(self._new_reservations),
            status_changes=tuple(self._status_changes),
            new_purchases=tuple(self._new_purchases),
            keyed=tuple(self._keyed),
            new_entries=tuple(self._new_entries),
            audit=tuple(self._audit),
            queue=queue_changes if queue_changes else None,
            outbox=self._outbox.finish(final),
        )
        added = self._holds.changed
        new_holds = tuple((r.expires_at, r.id) for r in self._new_reservations if r.id in added)
        delta = Delta(
            added=dict(added),
            removed=self._holds.removed,
            counts=_counts(self._counts),
            made=_counts(self._made),
            entries=tuple((e.id, e.user_id) for e in self._new_entries),
        )
        return Outcome(final, delta, changes, tuple(events), new_holds, queue_delta)


def _reopening_refusal(before: Drop, after: DropInfo, now: int) -> Rejection | None:
    """A waiting room that has opened keeps its start: moved into the future, everyone who
    joins before the new start would be placed at it, ahead of the people already in line,
    and those admitted would lose their turn. (Pause the drop to stop sales for a while.)"""
    opened = before.info.queue and now >= before.info.starts_at
    if opened and after.queue and after.starts_at > now:
        return Rejection(
            errors.InvalidDrop,
            "startsAt cannot move into the future once the waiting room has opened",
            "startsAt",
        )
    return None
