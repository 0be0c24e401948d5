"""Which webhook events a batch makes (the outbox), decided by the book with no I/O."""

from __future__ import annotations

from decimal import Decimal

from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import Cancel, DeleteDrop, Expire, Purchase, Reserve, UpdateDrop
from sneakerd.domain.model import Drop, DropState, PurchaseRecord, ReservationRecord
from sneakerd.domain.outcome import Changes
from sneakerd.domain.webhook_events import EventType
from tests.unit.test_book_rules import NOW, applied, state
from tests.unit.test_book_stateful import CountingIds


def book(s: DropState, now: int = NOW, *, outbox: bool = True) -> DropBook:
    return DropBook(s, now=now, hold_ms=60_000, ids=CountingIds(), outbox=outbox)


def kinds(changes: Changes | None) -> list[str]:
    assert changes is not None
    return [e.type.value for e in changes.outbox]


def test_each_act_makes_its_event_in_decision_order() -> None:
    start = state(stock=5)
    b = book(start)
    first, second = b.reserve(Reserve(1)), b.reserve(Reserve(2))
    assert isinstance(first, ReservationRecord) and isinstance(second, ReservationRecord)
    bought = b.purchase(Purchase(1, first.id, "ana"))
    assert isinstance(bought, PurchaseRecord)
    b.cancel(Cancel(2, second.id))
    outcome = b.finish()
    assert outcome.changes is not None
    assert kinds(outcome.changes) == [
        "reservation.created",
        "reservation.created",
        "purchase.completed",
        "reservation.cancelled",
    ]
    events = outcome.changes.outbox
    assert events[2].subject == bought
    cancelled = events[3].subject
    assert isinstance(cancelled, ReservationRecord) and cancelled.status.value == "cancelled"
    assert all(e.drop_id == 1 and e.at == NOW for e in events)


def test_an_expiry_shows_the_hold_as_expired() -> None:
    start = state(stock=2)
    b = book(start)
    hold = b.reserve(Reserve(7))
    assert isinstance(hold, ReservationRecord)
    later = book(applied(start, b.finish()), now=hold.expires_at)
    later.expire(Expire((hold.id,)))
    outcome = later.finish()
    assert outcome.changes is not None
    [event] = outcome.changes.outbox
    assert event.type is EventType.RESERVATION_EXPIRED
    assert isinstance(event.subject, ReservationRecord)
    assert (event.subject.id, event.subject.user_id) == (hold.id, 7)
    assert event.subject.status.value == "expired"
    assert event.subject.expires_at == hold.expires_at


def test_sold_out_is_sent_each_time_the_available_stock_reaches_zero() -> None:
    start = state(stock=1)
    b = book(start)
    hold = b.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    b.cancel(Cancel(1, hold.id))  # a unit is back: stock 1
    again = b.reserve(Reserve(2))  # and gone again: stock 0 a second time
    assert isinstance(again, ReservationRecord)
    assert b.reserve(Reserve(3)) is not None  # refused: out of stock, no event
    outcome = b.finish()
    assert kinds(outcome.changes) == [
        "reservation.created",
        "drop.sold_out",
        "reservation.cancelled",
        "reservation.created",
        "drop.sold_out",
    ]
    assert outcome.changes is not None
    sold_out = outcome.changes.outbox[1].subject
    assert isinstance(sold_out, Drop) and sold_out == outcome.drop  # as the batch commits it


def test_an_edit_is_drop_updated_and_a_cut_to_zero_is_sold_out() -> None:
    start = state(stock=3)
    b = book(start)
    b.update(UpdateDrop(name="renamed"))
    b.update(UpdateDrop(initial_stock=0))
    b.update(UpdateDrop(initial_stock=0))  # already 0: nothing changes, nothing is sent
    outcome = b.finish()
    assert kinds(outcome.changes) == ["drop.updated", "drop.updated", "drop.sold_out"]
    assert outcome.changes is not None
    shown = outcome.changes.outbox[0].subject
    assert isinstance(shown, Drop) and shown.info.name == "renamed" and shown.stock == 0
    assert shown.version == outcome.drop.version


def test_deleting_a_drop_cancels_its_holds_with_an_event_each() -> None:
    start = state(stock=3)
    b = book(start)
    for user in (1, 2):
        b.reserve(Reserve(user))
    after = applied(start, b.finish())
    d = book(after)
    d.delete(DeleteDrop())
    assert kinds(d.finish().changes) == ["reservation.cancelled", "reservation.cancelled"]


def test_refusals_make_no_events() -> None:
    b = book(state(stock=0))
    b.reserve(Reserve(1))
    b.purchase(Purchase(1, 99, "ana"))
    b.cancel(Cancel(1, 99))
    assert b.finish().changes is None


def test_without_webhooks_a_batch_notes_nothing() -> None:
    b = book(state(stock=2, price=Decimal("5.00")), outbox=False)
    hold = b.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    b.purchase(Purchase(1, hold.id, "ana"))
    b.update(UpdateDrop(name="y"))
    outcome = b.finish()
    assert outcome.changes is not None and outcome.changes.outbox == ()
