"""The rules of a raffle drop, as the drop's book decides them: entering, closing the entries,
the draw, and passing an unclaimed win down.

`RaffleRules` is a part of `DropBook` (`domain.book`), kept in its own module because it owns
one concept: it works on the same batch state (the overlays of holds and counts, the unit
counts, the rows to write) and so is decided in the same single-writer step as every reserve,
purchase and expiry, and committed in the same transaction. The pure functions of the draw
itself are `domain.raffle`'s.

The order of a raffle's life, each step its own commit so that each is durable before the next:
entries (until `entriesCloseAt`), the digest (at `entriesCloseAt`), the draw (at the close plus
the actor's draw delay, 0 by default): winners' holds and the seed published together. A
restart anywhere in between decides the same: the seed and the digest are stored, the draw
order is a function of them and the stored entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sneakerd import errors
from sneakerd.domain.commands import UpdateDrop
from sneakerd.domain.events import DropEvent, DropUpdated
from sneakerd.domain.holds import Overlay
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    Hold,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.raffle import (
    MAX_CLAIM_SECONDS,
    DropMode,
    EntryRecord,
    Raffle,
    entries_digest,
)
from sneakerd.domain.rules import Rejection


def raffle_window_refusal(info: DropInfo) -> Rejection | None:
    """A raffle needs an entry window that opens before it closes, and closes no later than
    the drop ends (the winners' holds come after the close)."""
    if info.mode is not DropMode.RAFFLE:
        return None
    if info.queue:  # winners are drawn, not admitted: a line's tokens could reserve nothing
        return Rejection(errors.InvalidDrop, "A raffle cannot have a waiting room", "queue")
    opens, closes = info.entries_open_at, info.entries_close_at
    if opens is None:
        return Rejection(errors.InvalidDrop, "A raffle needs entriesOpenAt", "entriesOpenAt")
    if closes is None:
        return Rejection(errors.InvalidDrop, "A raffle needs entriesCloseAt", "entriesCloseAt")
    if closes <= opens:
        return Rejection(
            errors.InvalidDrop, "entriesCloseAt must be after entriesOpenAt", "entriesCloseAt"
        )
    if info.ends_at is not None and closes > info.ends_at:
        return Rejection(
            errors.InvalidDrop, "entriesCloseAt must not be after endsAt", "entriesCloseAt"
        )
    if not 1 <= info.claim_seconds <= MAX_CLAIM_SECONDS:
        return Rejection(
            errors.InvalidDrop,
            f"claimSeconds must be between 1 and {MAX_CLAIM_SECONDS}",
            "claimSeconds",
        )
    return None


def raffle_creation_refusal(info: DropInfo, now: int) -> Rejection | None:
    """`raffle_window_refusal`, and for a new raffle entries that close after `now`: one whose
    entries have closed already would draw at once with no entry, and its units could never
    be sold (a reserve on a raffle is `raffle_only`)."""
    refused = raffle_window_refusal(info)
    if refused is not None or info.mode is not DropMode.RAFFLE:
        return refused
    if info.entries_close_at is not None and info.entries_close_at <= now:
        return Rejection(
            errors.InvalidDrop,
            "entriesCloseAt must be in the future for a new raffle",
            "entriesCloseAt",
        )
    return None


def raffle_change_refusal(before: Drop, after: DropInfo) -> Rejection | None:
    """What an admin may not change about a raffle: its mode once units are held or sold or
    anyone entered, its opening once anyone entered, and its window or claim time once the
    entries are closed (the draw's inputs are fixed by then)."""
    raffle, info = before.raffle, before.info
    if after.mode is not info.mode:
        if before.reserved or before.sold:
            return Rejection(
                errors.InvalidDrop, "mode cannot change once units are held or sold", "mode"
            )
        if raffle is not None and raffle.entries:
            return Rejection(
                errors.InvalidDrop, "mode cannot change once the raffle has entries", "mode"
            )
    if raffle is not None and raffle.entries and after.entries_open_at != info.entries_open_at:
        # An entry taken before a later opening would predate its own window, and the seed's
        # commitment, shown from the opening, would be withdrawn.
        return Rejection(
            errors.InvalidDrop,
            "entriesOpenAt cannot change once someone has entered",
            "entriesOpenAt",
        )
    if raffle is not None and raffle.digest is not None:
        for name, key in (
            ("entries_open_at", "entriesOpenAt"),
            ("entries_close_at", "entriesCloseAt"),
            ("claim_seconds", "claimSeconds"),
        ):
            if getattr(after, name) != getattr(info, name):
                return Rejection(
                    errors.InvalidDrop, f"{key} cannot change once the entries are closed", key
                )
    return raffle_window_refusal(after)


def entry_refusal(drop: Drop, now: int, entered: bool) -> Rejection | None:
    """Why a user's entry into `drop` would be refused at `now`; None if it would be taken."""
    if drop.deleted:
        return Rejection(errors.NotFound, "No such drop")
    raffle, info = drop.raffle, drop.info
    if info.mode is not DropMode.RAFFLE or raffle is None:
        return Rejection(errors.NotARaffle, "This drop is not a raffle")
    if entered:
        return Rejection(errors.AlreadyEntered, "You have already entered this draw")
    if info.entries_open_at is not None and now < info.entries_open_at:
        return Rejection(errors.EntriesNotOpen, "Entries to this draw are not open yet")
    if raffle.digest is not None or (
        info.entries_close_at is not None and now >= info.entries_close_at
    ):
        return Rejection(errors.EntriesClosed, "Entries to this draw are closed")
    return None


def raffle_due_at(drop: Drop, draw_delay_ms: int) -> int | None:
    """When the drop's actor must next act on its own for the raffle: the close, then the
    draw; None once drawn (pass-downs follow the holds' own deadlines). The draw gives the
    winners their holds, and holds are granted from `startsAt` only: entries that close
    before the drop starts are digested at the close and drawn at the start."""
    raffle, closes = drop.raffle, drop.info.entries_close_at
    if raffle is None or drop.deleted or closes is None or raffle.drawn:
        return None
    if drop.info.mode is not DropMode.RAFFLE:
        return None
    if raffle.digest is None:
        return closes
    return max(closes + draw_delay_ms, drop.info.starts_at)


def next_due(deadline: int | None, drop: Drop, draw_delay_ms: int) -> int | None:
    """The earlier of a hold's `deadline` and the raffle's next step: when the actor's one
    timer must fire."""
    due = raffle_due_at(drop, draw_delay_ms)
    return deadline if due is None or (deadline is not None and deadline <= due) else due


def raffle_ids_for(drop: Drop, now: int, draw_delay_ms: int, messages: Iterable[object]) -> int:
    """`raffle_ids_needed` for a batch of `messages` (a restock among them may free more
    units for winners)."""
    restock = max((m.initial_stock or 0 for m in messages if isinstance(m, UpdateDrop)), default=0)
    return raffle_ids_needed(drop, now, draw_delay_ms, restock)


def raffle_ids_needed(drop: Drop, now: int, draw_delay_ms: int, top_stock: int) -> int:
    """At most how many holds a batch may give winners (reservation ids to have at hand):
    none before the draw, then up to the units not sold, never more than the entries left.
    `top_stock` is the highest `initialStock` a change in the batch asks for."""
    raffle = drop.raffle
    if raffle is None or drop.deleted:
        return 0
    left = raffle.entries - raffle.winners
    if left <= 0:
        return 0
    due = raffle_due_at(drop, draw_delay_ms)
    if not raffle.drawn and (raffle.digest is None or due is None or now < due):
        return 0
    return max(0, min(left, max(drop.initial_stock, top_stock) - drop.sold))


class RaffleRules:
    """The raffle's part of `DropBook`: the attributes below are the book's batch state."""

    _start: DropState
    _drop: Drop
    _now: int
    _stock: int
    _reserved: int
    _dirty: bool
    _holds: Overlay[int, Hold]
    _counts: Overlay[int, int]
    _made: Overlay[int, int]
    _new_reservations: list[ReservationRecord]
    _new_entries: list[EntryRecord]
    _entered: set[int]
    _events: list[DropEvent]

    def _current(self) -> Drop:
        raise NotImplementedError

    def _tell_hold(self, record: ReservationRecord) -> None:
        raise NotImplementedError

    def _new_reservation_id(self) -> int:
        raise NotImplementedError

    def _new_entry_id(self) -> int:
        raise NotImplementedError

    def _set_raffle(self, raffle: Raffle) -> None:
        self._drop = dataclasses.replace(self._current(), raffle=raffle)
        self._dirty = True

    def enter(self, user_id: int) -> EntryRecord | Rejection:
        drop, now = self._drop, self._now
        entered = user_id in self._entered or user_id in self._start.entries.by_user
        refused = entry_refusal(drop, now, entered)
        if refused is not None:
            return refused
        assert drop.raffle is not None
        record = EntryRecord(self._new_entry_id(), drop.id, user_id, now)
        self._new_entries.append(record)
        self._entered.add(user_id)
        self._set_raffle(dataclasses.replace(drop.raffle, entries=drop.raffle.entries + 1))
        return record

    def raffle_step(self, draw_delay_ms: int) -> None:
        """The raffle's own step, if one is due: commit the entries' digest at the close, or
        (in a later batch, once the digest is durable) draw."""
        drop = self._drop
        raffle, due = drop.raffle, raffle_due_at(drop, draw_delay_ms)
        if raffle is None or due is None or self._now < due:
            return
        if raffle.digest is None:
            self._set_raffle(
                dataclasses.replace(raffle, digest=entries_digest(self._start.entries.users))
            )
        else:
            self._set_raffle(dataclasses.replace(raffle, drawn_at=self._now))
            self.pass_down()
        self._events.append(DropUpdated(drop.id, 0, self._drop))

    def pass_down(self) -> None:
        """Give each unit that no hold or sale takes to the next entry in draw order (the
        draw's first winners, then whoever a lapsed or cancelled win passes to)."""
        raffle, ends_at = self._drop.raffle, self._drop.info.ends_at
        if raffle is None or not raffle.drawn or self._drop.deleted or self._stock <= 0:
            return
        if ends_at is not None and self._now >= ends_at:
            return  # holds are granted until `endsAt`: a win lapsing after it goes to no one
        order = self._start.entries.order(raffle.seed)
        users = self._start.entries.users
        winners = raffle.winners
        hold_ms = self._drop.info.claim_seconds * 1000
        while self._stock > 0 and winners < len(order):
            self._offer(users[order[winners]], hold_ms)
            winners += 1
        if winners != raffle.winners:
            self._set_raffle(dataclasses.replace(raffle, winners=winners))

    def _offer(self, user_id: int, hold_ms: int) -> None:
        """A winner's hold: a reservation like any other, so the purchase path buys it."""
        now = self._now
        reservation_id = self._new_reservation_id()
        expires_at = now + hold_ms
        self._holds[reservation_id] = Hold(user_id, expires_at, now)
        self._counts[user_id] = self._counts.get(user_id, 0) + 1
        self._made[user_id] = self._made.get(user_id, 0) + 1
        self._stock -= 1
        self._reserved += 1
        self._dirty = True
        record = ReservationRecord(
            reservation_id, self._drop.id, user_id, ReservationStatus.ACTIVE, expires_at, now
        )
        self._new_reservations.append(record)
        self._tell_hold(record)  # as a shopper's hold is told
