"""A drop's live holds cost the garbage collector nothing, however many there are."""

from __future__ import annotations

import gc
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import Cancel, Reserve
from sneakerd.domain.holds import Hold, HoldTable, Overlay, pack, unpack
from sneakerd.domain.model import Drop, DropInfo, DropState, ReservationRecord
from tests.unit.test_book_stateful import CountingIds

NOW = 1_796_000_000_000


@given(
    user=st.integers(min_value=1, max_value=2**63 - 1),
    expires=st.integers(min_value=0, max_value=2**47 - 1),
    held=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_hold_packs_into_one_int_and_back(user: int, expires: int, held: int) -> None:
    hold = Hold(user, expires, expires - held)
    assert unpack(pack(hold)) == hold


def test_an_overlay_reads_through_and_never_writes_below() -> None:
    base = {1: 10, 2: 20}
    over: Overlay[int, int] = Overlay(base)
    over[3] = 30
    del over[1]
    over[2] = 21
    assert (over.get(1), over.get(2), over.get(3)) == (None, 21, 30)
    assert sorted(over.items()) == [(2, 21), (3, 30)]
    assert base == {1: 10, 2: 20}
    assert over.changed == {2: 21, 3: 30} and over.removed == frozenset({1})


def _drop(stock: int) -> Drop:
    info = DropInfo(name="x", price=Decimal("1.00"), per_user_limit=10**6, holds_per_user=10**6)
    return Drop(1, info, stock, stock, 0, 0, 1, NOW, NOW)


def test_a_hundred_thousand_live_holds_add_no_object_the_collector_walks() -> None:
    """What a full collection walks does not grow with the live holds (it grew by two or
    three tracked objects a hold when holds were tuples in a persistent map)."""
    state = DropState(_drop(200_000))
    ids = CountingIds()
    gc.collect()
    before = len(gc.get_objects())
    for batch in range(100):
        book = DropBook(state, now=NOW + batch, hold_ms=60_000, ids=ids)
        replies = [book.reserve(Reserve(user)) for user in range(batch * 1000, batch * 1000 + 1000)]
        assert all(isinstance(r, ReservationRecord) for r in replies)
        outcome = book.finish()
        state.apply(outcome.drop, outcome.delta)
        del book, replies, outcome
    gc.collect()
    after = len(gc.get_objects())
    assert len(state.holds) == 100_000 and state.drop.reserved == 100_000
    assert after - before < 100, after - before


def test_a_batch_applied_after_its_commit_moves_every_table() -> None:
    state = DropState(_drop(5))
    book = DropBook(state, now=NOW, hold_ms=60_000, ids=CountingIds())
    first = book.reserve(Reserve(7))
    second = book.reserve(Reserve(7))
    assert isinstance(first, ReservationRecord) and isinstance(second, ReservationRecord)
    book.cancel(Cancel(7, first.id))
    outcome = book.finish()
    assert dict(state.holds) == {} and state.user_counts == {}  # untouched until applied
    state.apply(outcome.drop, outcome.delta)
    assert dict(state.holds) == {second.id: Hold(7, NOW + 60_000, NOW)}
    assert state.user_counts == {7: 1} and state.user_holds == {7: 2}
    assert state.holds == HoldTable({second.id: Hold(7, NOW + 60_000, NOW)})
