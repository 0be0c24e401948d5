"""The rules the state machine does not wander into: windows, admin edits, deletion, events."""

from __future__ import annotations

from decimal import Decimal

from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import Cancel, DeleteDrop, Purchase, Reserve, UpdateDrop
from sneakerd.domain.events import DropDeleted, DropUpdated, Purchased, StockChanged
from sneakerd.domain.holds import Delta
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    PurchaseRecord,
    ReservationRecord,
)
from sneakerd.domain.outcome import Outcome
from sneakerd.domain.rules import Rejection
from tests.unit.test_book_stateful import CountingIds

NOW = 1_000_000


def state(stock: int = 5, **info: object) -> DropState:
    fields: dict[str, object] = {"name": "x", "price": Decimal("100.00"), **info}
    return DropState(Drop(1, DropInfo(**fields), stock, stock, 0, 0, 1, 0, 0))  # type: ignore[arg-type]


def book(s: DropState, now: int = NOW) -> DropBook:
    return DropBook(s, now=now, hold_ms=60_000, ids=CountingIds())


def applied(s: DropState, outcome: Outcome) -> DropState:
    """The state after `outcome`'s commit, as the actor moves to it (on a copy here)."""
    after = s.copy()
    after.apply(outcome.drop, outcome.delta)
    return after


def code(reply: object) -> str:
    assert isinstance(reply, Rejection), reply
    return reply.error.code


def test_the_sale_window() -> None:
    upcoming = state(starts_at=NOW + 1)
    assert code(book(upcoming).reserve(Reserve(1))) == "drop_not_live"
    assert isinstance(book(upcoming, now=NOW + 1).reserve(Reserve(1)), ReservationRecord)
    ended = state(ends_at=NOW)
    assert code(book(ended).reserve(Reserve(1))) == "drop_ended"
    assert isinstance(book(ended, now=NOW - 1).reserve(Reserve(1)), ReservationRecord)


def test_a_hold_made_before_the_end_may_still_be_bought_within_its_own_deadline() -> None:
    start = state(ends_at=NOW + 10)
    b = book(start)
    hold = b.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    later = book(applied(start, b.finish()), now=NOW + 20)
    assert isinstance(later.purchase(Purchase(1, hold.id, "ana")), PurchaseRecord)


def test_the_price_is_captured_when_bought() -> None:
    b = book(state())
    first, second = b.reserve(Reserve(1)), b.reserve(Reserve(2))
    assert isinstance(first, ReservationRecord) and isinstance(second, ReservationRecord)
    bought = b.purchase(Purchase(1, first.id, "ana"))
    assert isinstance(bought, PurchaseRecord) and bought.price == Decimal("100.00")
    b.update(UpdateDrop(price=Decimal("150.00")))
    later = b.purchase(Purchase(2, second.id, "bob"))
    assert isinstance(later, PurchaseRecord) and later.price == Decimal("150.00")


def test_update_edits_fields_and_restocks_within_what_is_committed() -> None:
    b = book(state(stock=3))
    b.reserve(Reserve(1))
    assert code(b.update(UpdateDrop(initial_stock=0))) == "stock_below_committed"
    updated = b.update(UpdateDrop(name="New", initial_stock=1, per_user_limit=2, ends_at=NOW + 5))
    assert isinstance(updated, Drop)
    assert (updated.info.name, updated.initial_stock, updated.stock, updated.reserved) == (
        "New",
        1,
        0,
        1,
    )
    cleared = b.update(UpdateDrop(clear=frozenset({"ends_at", "brand"}), initial_stock=10))
    assert isinstance(cleared, Drop) and cleared.info.ends_at is None and cleared.stock == 9
    outcome = b.finish()
    kinds = [type(e) for e in outcome.events]
    assert kinds == [DropUpdated, DropUpdated, StockChanged]
    assert outcome.events[0].drop == outcome.drop  # type: ignore[union-attr]


def test_delete_cancels_holds_and_is_refused_once_anything_sold() -> None:
    start = state()
    b = book(start)
    holds = [b.reserve(Reserve(u)) for u in (1, 2)]
    assert b.delete(DeleteDrop()) is None
    outcome = b.finish()
    assert outcome.drop.deleted and outcome.drop.stock == 5
    assert dict(applied(start, outcome).holds) == {}
    assert outcome.changes is not None
    assert {rid for rid, s in outcome.changes.status_changes if s.value == "cancelled"} == {
        h.id for h in holds if isinstance(h, ReservationRecord)
    }
    assert [type(e) for e in outcome.events] == [DropDeleted]
    after = book(applied(start, outcome))
    assert code(after.reserve(Reserve(3))) == "not_found"
    assert code(after.update(UpdateDrop(name="y"))) == "not_found"
    assert code(after.delete(DeleteDrop())) == "not_found"

    sold = book(state())
    hold = sold.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    sold.purchase(Purchase(1, hold.id, "ana"))
    assert code(sold.delete(DeleteDrop())) == "drop_has_sales"


def test_a_batch_numbers_its_events_and_a_refusal_writes_nothing() -> None:
    start = state(stock=1)
    b = book(start)
    hold = b.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    b.purchase(Purchase(1, hold.id, "ana"))
    outcome = b.finish()
    assert [type(e) for e in outcome.events] == [Purchased, StockChanged]
    assert [e.seq for e in outcome.events] == [2, 3] and outcome.drop.version == 3
    bought = applied(start, outcome)
    refused = book(bought)
    assert code(refused.reserve(Reserve(2))) == "out_of_stock"
    assert code(refused.cancel(Cancel(1, hold.id))) == "reservation_not_active"
    nothing = refused.finish()
    assert nothing.changes is None and nothing.events == ()
    assert nothing.drop is bought.drop and nothing.delta == Delta()


def test_an_update_may_name_the_units_available_and_the_book_counts_the_committed_ones() -> None:
    """`available` (the original API's `stock` on an edit) is decided against the state it
    changes: the units on hold or sold stay, the drop's total becomes available + those."""
    b = book(state(stock=5))
    b.reserve(Reserve(1))
    updated = b.update(UpdateDrop(available=7))
    assert isinstance(updated, Drop)
    assert (updated.initial_stock, updated.stock, updated.reserved) == (8, 7, 1)
    emptied = b.update(UpdateDrop(available=0))
    assert isinstance(emptied, Drop) and (emptied.initial_stock, emptied.stock) == (1, 0)
    # initial_stock, when given too, is what counts.
    both = b.update(UpdateDrop(available=3, initial_stock=2))
    assert isinstance(both, Drop) and (both.initial_stock, both.stock) == (2, 1)
    assert code(b.update(UpdateDrop(available=10_000_000))) == "validation_error"
