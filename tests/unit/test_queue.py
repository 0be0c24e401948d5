"""The waiting room's rules, decided by the drop's book as its actor would: a fair draw at
`startsAt`, arrivals behind it in order, admission at the pace stock allows, reserve only with a
live admission, and a room rebuilt from its rows equal to the live one."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sneakerd import errors
from sneakerd.domain.book import DropBook, Reply, secure_draw_key
from sneakerd.domain.commands import (
    Cancel,
    Command,
    Expire,
    JoinQueue,
    Purchase,
    Reserve,
    UpdateDrop,
)
from sneakerd.domain.model import Drop, DropInfo, DropState, ReservationRecord
from sneakerd.domain.queue import LATE, QueueTicket, TicketRef, TicketRow, WaitingRoom
from sneakerd.domain.rules import Rejection

HOLD_MS = 1_000
START = 1_000_000


class Ids:
    def __init__(self) -> None:
        self._next = itertools.count(1)

    def reservation(self) -> int:
        return next(self._next)

    def purchase(self) -> int:
        return next(self._next)


class Harness:
    """The actor's steps without I/O: draw once started, decide, 'commit' (keep the rows),
    apply, answer tickets from the committed room."""

    def __init__(self, stock: int, *, now: int, starts_at: int = START) -> None:
        info = DropInfo(
            name="Jordan 1",
            price=Decimal("1.00"),
            starts_at=starts_at,
            queue=True,
            per_user_limit=1,
            holds_per_user=9,
        )
        drop = Drop(1, info, stock, stock, 0, 0, 1, now, now)
        self.state = DropState(drop)
        self.now = now
        self.ids = Ids()
        self.rows: dict[int, TicketRow] = {}
        self.batches = 0

    def run(self, *commands: Command) -> list[Reply]:
        state = self.state
        if self.now >= state.drop.info.starts_at:
            state.queue.draw()
        book = DropBook(state, now=self.now, hold_ms=HOLD_MS, ids=self.ids)
        due = tuple(rid for rid, h in state.holds.items() if h.expires_at <= self.now)
        if due:
            book.expire(Expire(due))
        replies = [book.decide(c) for c in commands]
        outcome = book.finish()
        if outcome.changes is not None:
            self.batches += 1
            self._keep(outcome.changes.queue)
        state.apply(outcome.drop, outcome.delta)
        if outcome.queue is not None:
            state.queue.apply(outcome.queue)
        return [self.ticket(r.user_id) if isinstance(r, TicketRef) else r for r in replies]

    def _keep(self, changes: object) -> None:
        from dataclasses import replace

        if changes is None:
            return
        assert hasattr(changes, "joined")
        for row in changes.joined:
            assert row.user_id not in self.rows, "one account, one place"
            self.rows[row.user_id] = row
        for user in changes.admitted:
            self.rows[user] = replace(
                self.rows[user],
                admitted_at=changes.admitted_at,
                admission_expires_at=changes.admission_expires_at,
            )
        for user in changes.done:
            self.rows[user] = replace(self.rows[user], done_at=changes.done_at)

    def ticket(self, user_id: int, room: WaitingRoom | None = None) -> QueueTicket | None:
        drop = self.state.drop
        return (room or self.state.queue).ticket(
            drop.id,
            user_id,
            now=self.now,
            starts_at=drop.info.starts_at,
            capacity=drop.stock + drop.reserved,
            hold_ms=HOLD_MS,
        )

    def restored(self) -> WaitingRoom:
        rows = sorted(self.rows.values(), key=lambda r: (r.key, r.user_id))
        holders = [h.user_id for h in self.state.holds.values()]
        room = WaitingRoom.restore(rows, holders)
        if self.now >= self.state.drop.info.starts_at:
            room.draw()
        return room


def spearman(xs: list[int], ys: list[int]) -> float:
    """Spearman's rank correlation of two lists of distinct values."""
    n = len(xs)
    rank_x = {v: i for i, v in enumerate(sorted(xs))}
    rank_y = {v: i for i, v in enumerate(sorted(ys))}
    d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_early_arrivals_positions_are_uncorrelated_with_arrival_order() -> None:
    room = Harness(stock=0, now=START - 60_000)
    arrival = list(range(1, 201))
    for user in arrival:  # one join a batch: each arrives a moment after the last
        [ticket] = room.run(JoinQueue(user))
        assert isinstance(ticket, QueueTicket) and ticket.position is None
        room.now += 10
    room.now = START
    room.run()
    positions = [room.ticket(u).position for u in arrival]  # type: ignore[union-attr]
    assert sorted(positions) == list(range(1, 201))  # type: ignore[type-var]
    rho = spearman(arrival, positions)  # type: ignore[arg-type]
    assert abs(rho) < 0.3, rho


def test_arrivals_after_the_start_queue_behind_in_order() -> None:
    room = Harness(stock=0, now=START - 1)
    room.run(*(JoinQueue(u) for u in (1, 2, 3)))
    room.now = START + 5
    room.run(JoinQueue(10))
    room.run(JoinQueue(11), JoinQueue(12))
    positions = {u: room.ticket(u).position for u in (1, 2, 3, 10, 11, 12)}  # type: ignore[union-attr]
    assert sorted(positions[u] for u in (1, 2, 3)) == [1, 2, 3]  # type: ignore[type-var]
    assert [positions[u] for u in (10, 11, 12)] == [4, 5, 6]
    assert all(r.key >= LATE for u, r in room.rows.items() if u >= 10)
    assert all(r.key < LATE for u, r in room.rows.items() if u < 10)


def test_the_draw_admits_at_start_as_stock_allows() -> None:
    room = Harness(stock=2, now=START - 1)
    room.run(*(JoinQueue(u) for u in range(1, 6)))
    assert room.state.queue.active == 0  # nobody before the start
    room.now = START
    room.run()
    admitted = [u for u in range(1, 6) if room.ticket(u).admitted]  # type: ignore[union-attr]
    assert len(admitted) == 2


def test_reserve_needs_admission_and_a_lapsed_admission_passes_the_turn() -> None:
    room = Harness(stock=1, now=START)
    [first, second] = room.run(JoinQueue(1), JoinQueue(2))
    # 1 + the users still waiting ahead: nobody waits ahead of the admitted first.
    assert isinstance(first, QueueTicket) and first.admitted and first.position == 1
    assert isinstance(second, QueueTicket) and second.position == 1
    [refused] = room.run(Reserve(1))  # no token shown
    assert isinstance(refused, Rejection) and refused.error is errors.NotAdmitted
    [refused] = room.run(Reserve(2, admitted=True))  # a token, but not admitted
    assert isinstance(refused, Rejection) and refused.error is errors.NotAdmitted
    room.now = START + HOLD_MS  # the admission lapsed unused
    [late] = room.run(Reserve(1, admitted=True))
    assert isinstance(late, Rejection) and late.error is errors.NotAdmitted
    assert room.ticket(1).done  # type: ignore[union-attr]
    assert room.ticket(2).admitted  # type: ignore[union-attr]
    [hold] = room.run(Reserve(2, admitted=True))
    assert isinstance(hold, ReservationRecord)


def test_the_same_user_twice_in_one_batch_gets_one_ticket() -> None:
    room = Harness(stock=0, now=START)
    a, b = room.run(JoinQueue(7), JoinQueue(7))
    assert a == b and len(room.rows) == 1


def test_reading_without_a_ticket_is_not_found() -> None:
    room = Harness(stock=0, now=START)
    [reply] = room.run(JoinQueue(7, join=False))
    assert isinstance(reply, Rejection) and reply.error is errors.NotFound
    assert len(room.rows) == 0


def test_the_live_room_keeps_nothing_the_collector_tracks() -> None:
    import gc

    room = Harness(stock=2, now=START - 1)
    room.run(*(JoinQueue(u) for u in range(1, 300)))
    room.now = START
    room.run(JoinQueue(1000))
    queue = room.state.queue
    gc.collect()
    assert len(queue) == 300 and queue.active == 2
    # The int dicts are not tracked at all; an array is one object whatever its length, and
    # holds no object the collector would visit.
    assert not any(gc.is_tracked(t) for t in (queue._tickets, queue._admitted, queue._holding))
    assert all(
        not [r for r in gc.get_referents(line) if not isinstance(r, type)]
        for line in (queue._order, queue._early)
    )


def test_secure_keys_fit_below_late() -> None:
    assert all(0 <= secure_draw_key() < LATE for _ in range(1000))


USERS = st.integers(min_value=1, max_value=12)


class QueueMachine(RuleBasedStateMachine):
    """Random joins, reserves (with and without a token), purchases, cancels, restocks and
    time, checked after every step: admitted-and-not-done within `stock + reserved`, the line's
    positions 1..n, only admitted users holding, and the room from its rows equal to memory."""

    @initialize(stock=st.integers(min_value=0, max_value=4), early=st.booleans())
    def start(self, stock: int, early: bool) -> None:
        self.room = Harness(stock, now=START - 500 if early else START)

    @rule(user=USERS)
    def join(self, user: int) -> None:
        [ticket] = self.room.run(JoinQueue(user))
        assert isinstance(ticket, QueueTicket) and ticket.user_id == user

    @rule(user=USERS, token=st.booleans())
    def reserve(self, user: int, token: bool) -> None:
        before = self.room.state.queue.may_reserve(user, self.room.now)
        [reply] = self.room.run(Reserve(user, admitted=token))
        if isinstance(reply, ReservationRecord):
            assert token and before
        elif not (token and before):
            assert isinstance(reply, Rejection)

    @rule(data=st.data())
    def finish_a_hold(self, data: st.DataObject) -> None:
        holds = sorted(self.room.state.holds.items())
        if not holds:
            return
        rid, hold = data.draw(st.sampled_from(holds))
        if data.draw(st.booleans()):
            self.room.run(Purchase(hold.user_id, rid, "u"))
        else:
            self.room.run(Cancel(hold.user_id, rid))

    @rule(more=st.integers(min_value=1, max_value=2))
    def restock(self, more: int) -> None:
        self.room.run(UpdateDrop(initial_stock=self.room.state.drop.initial_stock + more))

    @rule(ms=st.sampled_from([100, 499, 500, 1_000, 2_500]))
    def wait(self, ms: int) -> None:
        self.room.now += ms
        self.room.run()

    @invariant()
    def admitted_within_what_stock_allows(self) -> None:
        drop = self.room.state.drop
        assert self.room.state.queue.active <= drop.stock + drop.reserved

    @invariant()
    def positions_are_the_line(self) -> None:
        tickets = [self.room.ticket(u) for u in range(1, 13)]
        waiting = sorted(
            t.position
            for t in tickets
            if t is not None and t.position and not t.admitted and not t.done
        )
        if self.room.now >= START:
            assert waiting == list(range(1, len(waiting) + 1))
        holders = {h.user_id for h in self.room.state.holds.values()}
        for user in holders:
            ticket = self.room.ticket(user)
            assert ticket is not None and ticket.position == 1  # nobody waits ahead of it

    @invariant()
    def the_rows_restore_the_room(self) -> None:
        restored = self.room.restored()
        if self.room.now >= START:  # drawn: the very same tables, line and head
            assert restored == self.room.state.queue
        for user in range(1, 13):
            assert self.room.ticket(user, restored) == self.room.ticket(user), user


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
