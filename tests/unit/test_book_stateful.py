"""The drop's decision code against a deliberately naive model, over random histories.

Hypothesis drives random sequences of reserve / cancel / purchase / expire / restock / clock
advances from several users, sometimes several messages in one batch, and after every step checks
the replies against the model and the invariants docs/API.md promises.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sneakerd import errors
from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import Cancel, Command, Expire, Purchase, Reserve, UpdateDrop
from sneakerd.domain.events import is_side
from sneakerd.domain.holds import Delta
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.rules import Rejection

HOLD_MS = 1_000
USERS = st.integers(min_value=1, max_value=6)


class CountingIds:
    def __init__(self) -> None:
        self.next_reservation = 1
        self.next_purchase = 1

    def reservation(self) -> int:
        self.next_reservation += 1
        return self.next_reservation - 1

    def purchase(self) -> int:
        self.next_purchase += 1
        return self.next_purchase - 1


class DropMachine(RuleBasedStateMachine):
    @initialize(
        initial=st.integers(min_value=0, max_value=6),
        limit=st.integers(min_value=1, max_value=3),
        lifetime=st.integers(min_value=1, max_value=6),
    )
    def start(self, initial: int, limit: int, lifetime: int) -> None:
        self.now = 1_000_000
        self.ids = CountingIds()
        info = DropInfo(
            name="Jordan 1", price=Decimal("199.99"), per_user_limit=limit, holds_per_user=lifetime
        )
        drop = Drop(1, info, initial, initial, 0, 0, 1, self.now, self.now)
        self.state = DropState(drop)
        self.limit = limit
        self.lifetime = lifetime
        # The model: what a person would write down on paper.
        self.initial = initial
        self.holds: dict[int, tuple[int, int]] = {}  # id -> (user, expires_at)
        self.status: dict[int, ReservationStatus] = {}
        self.owner: dict[int, int] = {}
        self.sold_by_user: dict[int, int] = {}
        self.last_seq = 1

    # -- helpers -----------------------------------------------------------------------------

    def run(self, *commands: Command) -> list[object]:
        book = DropBook(self.state, now=self.now, hold_ms=HOLD_MS, ids=self.ids)
        before = self.state.copy()
        replies = [book.decide(c) for c in commands]
        outcome = book.finish()
        assert self.state == before, "a book must never touch its input"
        if outcome.changes is not None:
            assert outcome.changes.expected_version == before.drop.version
            assert outcome.changes.drop == outcome.drop
            seqs = [e.seq for e in outcome.events if not is_side(e)]
            assert seqs == list(range(before.drop.version + 1, outcome.drop.version + 1))
            # Side events (a hold made or cancelled) come last, with the batch's last seq.
            side = [e.seq for e in outcome.events[len(seqs) :]]
            assert all(is_side(e) for e in outcome.events[len(seqs) :])
            assert side == [outcome.drop.version] * len(side)
            self.last_seq = seqs[-1]
        else:
            assert outcome.drop is self.state.drop and outcome.delta == Delta()
            assert not outcome.events
        self.state.apply(outcome.drop, outcome.delta)
        return replies

    def model_count(self, user: int) -> int:
        held = sum(1 for u, _ in self.holds.values() if u == user)
        return held + self.sold_by_user.get(user, 0)

    def model_made(self, user: int) -> int:
        """Holds the user ever made (any status): what `holdsPerUser` caps."""
        return sum(1 for u in self.owner.values() if u == user)

    def model_refusal(self, user: int) -> type[errors.DomainError] | None:
        if self.model_count(user) >= self.limit or self.model_made(user) >= self.lifetime:
            return errors.LimitReached
        if self.expected_stock() <= 0:
            return errors.OutOfStock
        return None

    def model_expire_due(self) -> None:
        for rid, (_, deadline) in list(self.holds.items()):
            if self.now >= deadline:
                self.model_end(rid, ReservationStatus.EXPIRED)

    def model_end(self, rid: int, status: ReservationStatus) -> None:
        del self.holds[rid]
        self.status[rid] = status

    def expected_stock(self) -> int:
        return self.initial - len(self.holds) - sum(self.sold_by_user.values())

    # -- rules -------------------------------------------------------------------------------

    @rule(user=USERS)
    def reserve(self, user: int) -> None:
        (reply,) = self.run(Reserve(user))
        refusal = self.model_refusal(user)
        if refusal is not None:
            assert isinstance(reply, Rejection) and reply.error is refusal
        else:
            assert isinstance(reply, ReservationRecord)
            assert reply.expires_at == self.now + HOLD_MS
            self.holds[reply.id] = (user, reply.expires_at)
            self.status[reply.id] = ReservationStatus.ACTIVE
            self.owner[reply.id] = user

    def _known(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.status)))

    @precondition(lambda self: self.status)
    @rule(data=st.data(), stranger=st.booleans())
    def cancel(self, data: st.DataObject, stranger: bool) -> None:
        rid = self._known(data)
        user = self.owner[rid] + (100 if stranger else 0)
        (reply,) = self.run(Cancel(user, rid))
        self._check_end(rid, user, reply, ReservationStatus.CANCELLED)

    @precondition(lambda self: self.status)
    @rule(data=st.data(), stranger=st.booleans())
    def purchase(self, data: st.DataObject, stranger: bool) -> None:
        rid = self._known(data)
        user = self.owner[rid] + (100 if stranger else 0)
        (reply,) = self.run(Purchase(user, rid, f"user{user}"))
        self._check_end(rid, user, reply, ReservationStatus.COMPLETED)
        if isinstance(reply, PurchaseRecord):
            assert reply.price == Decimal("199.99") and reply.reservation_id == rid
            self.sold_by_user[user] = self.sold_by_user.get(user, 0) + 1

    def _check_end(self, rid: int, user: int, reply: object, success: ReservationStatus) -> None:
        if rid not in self.holds:
            assert isinstance(reply, Rejection)
            assert reply.error is errors.ReservationNotActive
        elif self.owner[rid] != user:
            assert isinstance(reply, Rejection) and reply.error is errors.NotFound
        elif self.now >= self.holds[rid][1]:
            # No purchase (or cancel) of an expired hold, even before its timer fired.
            assert isinstance(reply, Rejection) and reply.error is errors.ReservationExpired
            self.model_end(rid, ReservationStatus.EXPIRED)
        else:
            assert not isinstance(reply, Rejection), reply
            self.model_end(rid, success)

    @rule()
    def expire_due(self) -> None:
        due = tuple(rid for rid, (_, d) in self.holds.items() if self.now >= d)
        self.run(Expire((*due, 10000)))  # an unknown id is ignored
        self.model_expire_due()

    @rule(ms=st.integers(min_value=1, max_value=1_500))
    def advance(self, ms: int) -> None:
        self.now += ms

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), before=st.booleans())
    def advance_to_deadline(self, data: st.DataObject, before: bool) -> None:
        """Land exactly on a deadline (or a millisecond before it): the boundary that matters."""
        deadline = data.draw(st.sampled_from(sorted(d for _, d in self.holds.values())))
        self.now = max(self.now, deadline - 1 if before else deadline)

    @rule(new_initial=st.integers(min_value=0, max_value=10))
    def restock(self, new_initial: int) -> None:
        (reply,) = self.run(UpdateDrop(initial_stock=new_initial))
        committed = len(self.holds) + sum(self.sold_by_user.values())
        if new_initial < committed:
            assert isinstance(reply, Rejection) and reply.error is errors.StockBelowCommitted
        else:
            assert isinstance(reply, Drop) and reply.initial_stock == new_initial
            self.initial = new_initial

    @rule(users=st.lists(USERS, min_size=2, max_size=8))
    def burst(self, users: list[int]) -> None:
        """Several reserves in one batch: each decided against the effect of the previous."""
        replies = self.run(*(Reserve(u) for u in users))
        for user, reply in zip(users, replies, strict=True):
            if isinstance(reply, ReservationRecord):
                assert self.model_refusal(user) is None
                self.holds[reply.id] = (user, reply.expires_at)
                self.status[reply.id] = ReservationStatus.ACTIVE
                self.owner[reply.id] = user
            else:
                assert isinstance(reply, Rejection)
                assert reply.error is self.model_refusal(user)

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def units_are_conserved(self) -> None:
        drop = self.state.drop
        assert drop.stock + drop.reserved + drop.sold == drop.initial_stock == self.initial
        assert drop.stock >= 0 and drop.reserved >= 0 and drop.sold >= 0
        assert drop.reserved == len(self.state.holds) == len(self.holds)
        assert drop.stock == self.expected_stock()

    @invariant()
    def per_user_limit_holds(self) -> None:
        for user, count in self.state.user_counts.items():
            assert 0 < count <= self.limit
            assert count == self.model_count(user)

    @invariant()
    def lifetime_holds_are_capped(self) -> None:
        for user, made in self.state.user_holds.items():
            assert 0 < made <= self.lifetime
            assert made == self.model_made(user)

    @invariant()
    def holds_match_model(self) -> None:
        assert {rid: (h.user_id, h.expires_at) for rid, h in self.state.holds.items()} == self.holds

    @invariant()
    def version_is_last_seq(self) -> None:
        assert self.state.drop.version == self.last_seq


TestDropMachine = DropMachine.TestCase
TestDropMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
