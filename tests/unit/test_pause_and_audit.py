"""Pausing a drop and the audit log, decided by the book with no I/O: a paused drop refuses
reserve and purchase and touches no hold (deadlines keep running, expiries still happen), and
each admin write carries exactly one audit entry, named for what it did, in its batch's rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sneakerd.buyers_csv import lines, safe_cell
from sneakerd.domain.audit import AuditAction, action_of, snapshot
from sneakerd.domain.commands import Cancel, DeleteDrop, Expire, Purchase, Reserve, UpdateDrop
from sneakerd.domain.model import Drop, DropState, ReservationRecord, ReservationStatus
from sneakerd.domain.rules import Rejection
from tests.unit.test_book_rules import NOW, applied, book, code, state


def paused_with_a_hold() -> tuple[ReservationRecord, DropState]:
    start = state(stock=3)
    b = book(start)
    hold = b.reserve(Reserve(1))
    assert isinstance(hold, ReservationRecord)
    with_hold = applied(start, b.finish())
    pause = book(with_hold)
    assert isinstance(pause.update(UpdateDrop(paused=True, actor="user:9")), Drop)
    return hold, applied(with_hold, pause.finish())


def test_a_paused_drop_refuses_reserve_and_purchase_and_writes_nothing() -> None:
    hold, paused = paused_with_a_hold()
    b = book(paused)
    assert code(b.reserve(Reserve(2))) == "drop_paused"
    assert code(b.purchase(Purchase(1, hold.id, "ana"))) == "drop_paused"
    outcome = b.finish()
    assert outcome.changes is None and outcome.events == ()
    assert paused.holds.get(hold.id) is not None
    assert paused.drop.reserved == 1 and paused.drop.stock == 2


def test_a_paused_drop_still_expires_its_holds_at_their_deadline() -> None:
    hold, paused = paused_with_a_hold()
    early = book(paused, now=hold.expires_at - 1)
    early.expire(Expire((hold.id,)))
    assert early.finish().changes is None  # not due yet: the deadline did not move
    due = book(paused, now=hold.expires_at)
    due.expire(Expire((hold.id,)))
    changes = due.finish().changes
    assert changes is not None
    assert changes.status_changes == ((hold.id, ReservationStatus.EXPIRED),)
    assert (changes.drop.stock, changes.drop.reserved) == (3, 0)
    assert changes.drop.info.paused and changes.audit == ()


def test_a_paused_drop_still_lets_a_holder_cancel() -> None:
    hold, paused = paused_with_a_hold()
    cancelled = book(paused).cancel(Cancel(1, hold.id))
    assert isinstance(cancelled, ReservationRecord)
    assert cancelled.status is ReservationStatus.CANCELLED


def test_an_expired_hold_on_a_paused_drop_is_refused_as_expired() -> None:
    hold, paused = paused_with_a_hold()
    late = book(paused, now=hold.expires_at)
    assert code(late.purchase(Purchase(1, hold.id, "ana"))) == "reservation_expired"


def test_unpausing_opens_the_sale_again() -> None:
    _, paused = paused_with_a_hold()
    b = book(paused)
    assert isinstance(b.update(UpdateDrop(paused=False, actor="cli")), Drop)
    assert isinstance(b.reserve(Reserve(2)), ReservationRecord)


@pytest.mark.parametrize(
    ("update", "action"),
    [
        (UpdateDrop(paused=True), AuditAction.PAUSE),
        (UpdateDrop(initial_stock=9), AuditAction.RESTOCK),
        (UpdateDrop(initial_stock=4), AuditAction.UPDATE),
        (UpdateDrop(name="New name"), AuditAction.UPDATE),
        (UpdateDrop(paused=True, initial_stock=9), AuditAction.PAUSE),
    ],
)
def test_each_admin_change_is_one_entry_named_for_what_it_did(
    update: UpdateDrop, action: AuditAction
) -> None:
    start = state(stock=5)
    b = book(start)
    b.update(UpdateDrop(**{**_fields(update), "actor": "user:7"}))
    changes = b.finish().changes
    assert changes is not None and len(changes.audit) == 1
    entry = changes.audit[0]
    assert (entry.actor, entry.action, entry.drop_id, entry.at) == ("user:7", action, 1, NOW)
    assert entry.before == snapshot(start.drop)
    assert entry.after is not None and entry.after["paused"] == changes.drop.info.paused
    assert entry.after["initialStock"] == changes.drop.initial_stock


def _fields(update: UpdateDrop) -> dict[str, object]:
    return {
        name: getattr(update, name)
        for name in ("name", "initial_stock", "paused")
        if getattr(update, name) is not None
    }


def test_unpause_and_delete_are_logged_with_before_and_after() -> None:
    _, paused = paused_with_a_hold()
    b = book(paused)
    b.update(UpdateDrop(paused=False, actor="cli"))
    b.delete(DeleteDrop(actor="user:3"))
    changes = b.finish().changes
    assert changes is not None
    unpause, delete = changes.audit
    assert unpause.action is AuditAction.UNPAUSE and unpause.actor == "cli"
    assert unpause.before is not None and unpause.before["paused"] is True
    assert unpause.after is not None and unpause.after["paused"] is False
    assert delete.action is AuditAction.DELETE and delete.after is None
    assert delete.before is not None and delete.before["reserved"] == 1


def test_a_refused_change_and_an_unnamed_one_log_nothing() -> None:
    b = book(state(stock=2))
    b.reserve(Reserve(1))
    refused = b.update(UpdateDrop(initial_stock=0, actor="user:1"))
    assert isinstance(refused, Rejection)
    b.update(UpdateDrop(name="renamed"))  # no actor: the actor's own tests
    changes = b.finish().changes
    assert changes is not None and changes.audit == ()


def test_snapshot_reads_like_the_api_drop() -> None:
    drop = state(stock=4, brand="Nike", ends_at=NOW + 1000).drop
    shot = snapshot(drop)
    assert shot["price"] == "100.00" and shot["brand"] == "Nike" and shot["paused"] is False
    assert shot["endsAt"] == "1970-01-01T00:16:41.000Z"
    assert action_of(drop, drop) is AuditAction.UPDATE


@pytest.mark.parametrize("text", ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_defused(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_plain_cells_are_kept_and_quoted_as_csv_needs() -> None:
    assert safe_cell("ana@example.com") == "ana@example.com"
    assert safe_cell(Decimal("5.00")) == "5.00"
    assert lines([("a,b", 'say "hi"', "=x")]) == '"a,b","say ""hi""",\'=x\r\n'


@pytest.mark.parametrize(
    "update",
    [
        UpdateDrop(actor="user:9"),  # an empty PUT
        UpdateDrop(name="x", actor="user:9"),  # the name it already has
        UpdateDrop(paused=False, actor="user:9"),  # not paused already
    ],
)
def test_an_update_that_changes_nothing_writes_nothing(update: UpdateDrop) -> None:
    """No version, no event, no webhook, no audit entry: the drop is answered as it is."""
    start = state(stock=3)
    b = book(start)
    reply = b.update(update)
    assert reply == start.drop
    outcome = b.finish()
    assert outcome.changes is None and outcome.events == ()
