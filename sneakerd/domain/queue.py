"""A drop's waiting room: who is in line, in what order, and who may reserve now.

The order is fair and cannot be bought by arriving early: every ticket taken before the drop's
`startsAt` gets a random 62-bit key, drawn at join (by a secure source the actor injects) and
committed with the ticket, and at `startsAt` those tickets are placed in the order of their
keys. Tickets taken later get keys above `LATE`, in arrival order, so the whole line, at any
time and after any restart, is the tickets sorted by key: the permutation is in the database,
not in anyone's memory.

The room admits from the head of the line at the pace stock allows: admitted and not yet done
never exceeds `stock + holds due within the next hold period` (every hold lasts one hold period,
so that is `stock + reserved`). An admission lasts one hold period; a user who reserves within
it stays admitted until that hold ends (bought, expired or cancelled), one who does not is done
when it lapses. Done tickets stay: one account has one place, once.

Memory: a queue may hold a hundred thousand users, so no ticket is a Python object. A ticket is
one entry of an int-to-int dict (its key, its place in line and when it joined, packed into one
int), and the line is an `array('q')` of user ids. CPython does not track an int-to-int dict,
and an array is one object whatever its length, holding nothing the collector visits, so a
full collection costs the same with ten tickets or a million (see `holds`). What a batch
changes is kept in a `QueueBook` and applied with `WaitingRoom.apply` only after its commit, as
holds are.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sneakerd.domain.holds import Overlay, apply_counts

if TYPE_CHECKING:
    from sneakerd.domain.model import Drop

LATE = 1 << 62
"""Keys of tickets taken at or after `startsAt` start here, so they sort after the drawn ones."""

_JOINED_BITS = 47
_PLACE_BITS = 27  # 134 million places in one line
_JOINED_MASK = (1 << _JOINED_BITS) - 1
_PLACE_MASK = (1 << _PLACE_BITS) - 1
_KEY_SHIFT = _JOINED_BITS + _PLACE_BITS
UNPLACED = _PLACE_MASK
"""The place of a ticket taken before the draw: it has none until `startsAt`."""


def pack(key: int, place: int, joined_at: int) -> int:
    """One int for a ticket: its key above its place in line above when it joined."""
    return (key << _KEY_SHIFT) | (place << _JOINED_BITS) | joined_at


def unpack(packed: int) -> tuple[int, int, int]:
    """(key, place, joined_at) of a packed ticket."""
    return packed >> _KEY_SHIFT, (packed >> _JOINED_BITS) & _PLACE_MASK, packed & _JOINED_MASK


@dataclass(frozen=True, slots=True)
class TicketRow:
    """One ticket as stored (the store reads and writes these)."""

    user_id: int
    key: int
    joined_at: int
    admitted_at: int | None = None
    admission_expires_at: int | None = None
    done_at: int | None = None


@dataclass(frozen=True, slots=True)
class QueueTicket:
    """A user's ticket as they see it: made on demand from the room, never kept."""

    drop_id: int
    user_id: int
    position: int | None
    """1 + the users still waiting ahead (so 1 once admitted, or done); None before the draw."""
    joined_at: int
    admitted: bool
    """Admitted and not done: the user may reserve (until `admission_expires_at`)."""
    admission_expires_at: int | None
    done: bool
    estimated_wait_seconds: int | None
    """A rough guess (None: the room admits nobody while nothing can be sold)."""


@dataclass(frozen=True, slots=True)
class TicketRef:
    """A queue command's reply as decided: the ticket is read from the committed room when
    the actor answers, so the answer shows the admissions the same commit made."""

    user_id: int


@dataclass(frozen=True, slots=True)
class QueueChanges:
    """The ticket rows one batch writes, in the batch's transaction."""

    joined: tuple[TicketRow, ...] = ()
    admitted: tuple[int, ...] = ()
    admitted_at: int = 0
    admission_expires_at: int = 0
    done: tuple[int, ...] = ()
    done_at: int = 0

    def __bool__(self) -> bool:
        return bool(self.joined or self.admitted or self.done)


@dataclass(frozen=True, slots=True)
class QueueDelta:
    """What a batch changes in the live room, applied only after its commit."""

    joined: tuple[tuple[int, int], ...] = ()
    """(user id, key) of each new ticket, in the order taken."""
    joined_at: int = 0
    head: int = 0
    admitted: dict[int, int] = field(default_factory=dict)
    """user id -> admission deadline (0: no longer in the admitted table)."""
    holding: dict[int, int] = field(default_factory=dict)
    """user id -> admission deadline (0: no longer holding)."""
    late_next: int = LATE
    placed: bool = True
    """The batch ran after `startsAt`: its new tickets join the line at once."""


class WaitingRoom:
    """The live line of one drop (part of its `DropState`): read by the decision code, changed
    only by `apply` after a commit, and by `draw`, which derives the drawn order from committed
    keys and writes nothing."""

    __slots__ = ("_admitted", "_early", "_holding", "_order", "_tickets", "head", "late_next")

    def __init__(self) -> None:
        self._tickets: dict[int, int] = {}
        self._order = array("q")
        """User ids in line order (placed tickets); `head` of them have been admitted."""
        self._early = array("q")
        """User ids of tickets taken before the draw, not yet placed."""
        self._admitted: dict[int, int] = {}
        """Admitted, not yet reserved: user id -> admission deadline, in admission order."""
        self._holding: dict[int, int] = {}
        """Admitted and reserved, until the hold ends: user id -> admission deadline."""
        self.head = 0
        self.late_next = LATE

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def restore(cls, rows: Iterable[TicketRow], holders: Iterable[int]) -> WaitingRoom:
        """The room as the database has it: `rows` in key order; `holders` are the users with an
        active hold on the drop (an admitted user among them has reserved)."""
        room = cls()
        holding = set(holders)
        for row in rows:
            room._tickets[row.user_id] = pack(row.key, len(room._order), row.joined_at)
            room._order.append(row.user_id)
            if row.key >= room.late_next:
                room.late_next = row.key + 1
            if row.admitted_at is None:
                continue
            room.head += 1
            if row.done_at is None:
                table = room._holding if row.user_id in holding else room._admitted
                table[row.user_id] = row.admission_expires_at or row.admitted_at
        return room

    def copy(self) -> WaitingRoom:
        room = WaitingRoom()
        room._tickets = dict(self._tickets)
        room._order = array("q", self._order)
        room._early = array("q", self._early)
        room._admitted = dict(self._admitted)
        room._holding = dict(self._holding)
        room.head, room.late_next = self.head, self.late_next
        return room

    def _parts(self) -> tuple[object, ...]:
        return (
            self._tickets,
            self._order,
            self._early,
            self._admitted,
            self._holding,
            self.head,
            self.late_next,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WaitingRoom) and self._parts() == other._parts()

    __hash__ = None  # type: ignore[assignment]

    def draw(self) -> bool:
        """Place the tickets taken before `startsAt` in the order of their keys (the caller
        calls it once `startsAt` has come); True if it placed any."""
        if not self._early:
            return False
        tickets = self._tickets
        waiting = list(self._order[self.head :]) + list(self._early)
        waiting.sort(key=lambda user: (tickets[user] >> _KEY_SHIFT, user))
        del self._order[self.head :]
        self._early = array("q")
        for user_id in waiting:
            key, _, joined_at = unpack(tickets[user_id])
            tickets[user_id] = pack(key, len(self._order), joined_at)
            self._order.append(user_id)
        return True

    def apply(self, delta: QueueDelta) -> None:
        """Move to the room a committed batch produced."""
        for user_id, key in delta.joined:
            line = self._order if delta.placed else self._early
            place = len(self._order) if delta.placed else UNPLACED
            self._tickets[user_id] = pack(key, place, delta.joined_at)
            line.append(user_id)
        self.head = delta.head
        self.late_next = delta.late_next
        apply_counts(self._admitted, delta.admitted)
        apply_counts(self._holding, delta.holding)

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tickets)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._tickets

    @property
    def waiting(self) -> int:
        return len(self._order) - self.head + len(self._early)

    @property
    def active(self) -> int:
        return len(self._admitted) + len(self._holding)

    @property
    def admitted_table(self) -> dict[int, int]:
        return self._admitted

    @property
    def holding_table(self) -> dict[int, int]:
        return self._holding

    def user_at(self, place: int) -> int:
        return self._order[place]

    @property
    def placed(self) -> int:
        return len(self._order)

    def next_deadline(self) -> int | None:
        """The earliest admission that lapses (the actor's timer wakes for it)."""
        for deadline in self._admitted.values():
            return deadline
        return None

    def ticket(
        self,
        drop_id: int,
        user_id: int,
        *,
        now: int,
        starts_at: int,
        capacity: int,
        hold_ms: int,
    ) -> QueueTicket | None:
        """`user_id`'s ticket, or None if they have none. `capacity` is what the room may
        have admitted at once (`stock + reserved`), for the estimate."""
        packed = self._tickets.get(user_id)
        if packed is None:
            return None
        _, place, joined_at = unpack(packed)
        deadline = self._admitted.get(user_id) or self._holding.get(user_id)
        if now < starts_at or place == UNPLACED:
            seconds = max(0, -(-(starts_at - now) // 1000))
            return QueueTicket(drop_id, user_id, None, joined_at, False, None, False, seconds)
        if place < self.head:
            admitted = deadline is not None and (now < deadline or user_id in self._holding)
            expires = deadline if admitted else None
            # Nobody still waits ahead of a user past the head: 1 + 0.
            return QueueTicket(drop_id, user_id, 1, joined_at, admitted, expires, not admitted, 0)
        position = place - self.head + 1
        wait = None if capacity <= 0 else -(-position // capacity) * -(-hold_ms // 1000)
        return QueueTicket(drop_id, user_id, position, joined_at, False, None, False, wait)

    def may_reserve(self, user_id: int, now: int) -> bool:
        """Admitted, not done, and the admission has not lapsed."""
        deadline = self._admitted.get(user_id) or self._holding.get(user_id)
        return deadline is not None and now < deadline


class QueueBook:
    """One batch's working copy of a room: what it decides is kept here, and the room below
    is never written (`finish` returns the rows to write and the `QueueDelta` to apply)."""

    def __init__(self, room: WaitingRoom, *, now: int, admission_ms: int, started: bool) -> None:
        self._room = room
        self._now = now
        self._started = started
        """`startsAt` has come: the room is drawn, new tickets queue behind, admission runs."""
        self._admission_ms = admission_ms
        self._joined: list[tuple[int, int]] = []
        self._joined_users: set[int] = set()
        self._head = room.head
        self._late_next = room.late_next
        self._admitted: Overlay[int, int] = Overlay(room.admitted_table)
        self._holding: Overlay[int, int] = Overlay(room.holding_table)
        self._newly_admitted: list[int] = []
        self._done: list[int] = []

    @property
    def dirty(self) -> bool:
        return bool(self._joined or self._newly_admitted or self._done)

    def has(self, user_id: int) -> bool:
        return user_id in self._room or user_id in self._joined_users

    def join(self, user_id: int, draw_key: Callable[[], int]) -> None:
        """A new ticket (the caller checked the user has none): a random key before the draw,
        the next late key after it."""
        if self._started:
            key = self._late_next
            self._late_next += 1
        else:
            key = draw_key() % LATE
        self._joined.append((user_id, key))
        self._joined_users.add(user_id)

    def may_reserve(self, user_id: int) -> bool:
        deadline = self._admitted.get(user_id) or self._holding.get(user_id)
        return deadline is not None and self._now < deadline

    def reserved(self, user_id: int) -> None:
        """An admitted user reserved: they stay admitted until that hold ends."""
        deadline = self._admitted.get(user_id)
        if deadline is not None:
            del self._admitted[user_id]
            self._holding[user_id] = deadline

    def hold_ended(self, user_id: int) -> None:
        """A hold of `user_id` was bought, expired or cancelled: their turn is done."""
        if self._holding.get(user_id) is not None:
            del self._holding[user_id]
            self._done.append(user_id)

    def lapse(self) -> None:
        """Admissions not used within their period are done."""
        for user_id, deadline in self._room.admitted_table.items():
            if deadline > self._now:
                break
            if user_id in self._admitted:
                del self._admitted[user_id]
                self._done.append(user_id)

    def admit(self, capacity: int) -> None:
        """Admit from the head of the line while admitted-and-not-done stays within
        `capacity` (`stock + reserved`: units free now plus units held, which come back if
        their holds lapse)."""
        if not self._started:
            return
        room = self._room
        active = len(room.admitted_table) + len(room.holding_table)
        active += len(self._admitted.changed) - len(self._admitted.removed)
        active += len(self._holding.changed) - len(self._holding.removed)
        placed = room.placed + len(self._joined)
        late = [user for user, _ in self._joined]
        deadline = self._now + self._admission_ms
        while active < capacity and self._head < placed:
            place = self._head
            user_id = room.user_at(place) if place < room.placed else late[place - room.placed]
            self._head += 1
            self._admitted[user_id] = deadline
            self._newly_admitted.append(user_id)
            active += 1

    def finish(self) -> tuple[QueueChanges, QueueDelta]:
        now = self._now
        joined = tuple(TicketRow(user, key, now) for user, key in self._joined)
        changes = QueueChanges(
            joined=joined,
            admitted=tuple(self._newly_admitted),
            admitted_at=now,
            admission_expires_at=now + self._admission_ms,
            done=tuple(self._done),
            done_at=now,
        )
        admitted = dict(self._admitted.changed)
        admitted.update(dict.fromkeys(self._admitted.removed, 0))
        holding = dict(self._holding.changed)
        holding.update(dict.fromkeys(self._holding.removed, 0))
        delta = QueueDelta(
            joined=tuple(self._joined),
            joined_at=now,
            head=self._head,
            admitted=admitted,
            holding=holding,
            late_next=self._late_next,
            placed=self._started,
        )
        return changes, delta


def room_ticket(
    drop: Drop, room: WaitingRoom, user_id: int, now: int, hold_ms: int
) -> QueueTicket | None:
    """`user_id`'s ticket in `drop`'s room as committed (what the actor answers and reads)."""
    return room.ticket(
        drop.id,
        user_id,
        now=now,
        starts_at=drop.info.starts_at,
        capacity=drop.stock + drop.reserved,
        hold_ms=hold_ms,
    )


def room_wakeup(drop: Drop, room: WaitingRoom, now: int, deadline: int | None) -> int | None:
    """When the actor must wake, given the holds' earliest `deadline`: sooner if an admission
    lapses first, or if the room has tickets to draw at `startsAt`."""
    found = [deadline]
    if drop.info.queue:
        found.append(room.next_deadline())
        if len(room) and now < drop.info.starts_at:
            found.append(drop.info.starts_at)
    return min((d for d in found if d is not None), default=None)
