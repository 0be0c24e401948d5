"""A node that does not own a drop answers the refusals its committed state decides."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sneakerd import errors
from sneakerd.cluster.committed import CommittedDrops
from sneakerd.domain.events import DropDeleted, DropUpdated, StockChanged
from sneakerd.domain.model import DropInfo
from sneakerd.store import Store

NOW = 1_796_000_000_000


async def test_refusals_follow_the_published_stock_and_never_go_back(store: Store) -> None:
    drop = await store.create_drop(DropInfo(name="d", price=Decimal("1.00")), 2, NOW)
    committed = CommittedDrops(store)
    assert committed.refusal(drop.id, NOW) is None  # knows nothing yet: the owner decides
    await committed.load(drop.id)
    assert committed.refusal(drop.id, NOW) is None  # in stock
    committed.observe([StockChanged(drop.id, 3, 0, 2, 0)])
    refused = committed.refusal(drop.id, NOW)
    assert refused is not None and refused.error is errors.OutOfStock
    committed.observe([StockChanged(drop.id, 2, 1, 1, 0)])  # older: ignored
    assert committed.refusal(drop.id, NOW) is not None
    committed.observe([StockChanged(drop.id, 4, 1, 1, 0)])  # a hold expired
    assert committed.refusal(drop.id, NOW) is None
    committed.observe([DropDeleted(drop.id, 5)])
    gone = committed.refusal(drop.id, NOW)
    assert gone is not None and gone.error is errors.NotFound
    committed.forget(drop.id)
    assert committed.refusal(drop.id, NOW) is None


async def test_a_window_that_has_not_opened_is_refused_for_everyone(store: Store) -> None:
    info = DropInfo(name="d", price=Decimal("1.00"), starts_at=NOW + 60_000)
    drop = await store.create_drop(info, 5, NOW)
    committed = CommittedDrops(store)
    await committed.load(drop.id)
    refused = committed.refusal(drop.id, NOW)
    assert refused is not None and refused.error is errors.DropNotLive


async def test_a_paused_drop_is_left_to_its_owner(store: Store) -> None:
    """A pause may be lifted by the operator CLI in the database, which only the owner's actor
    reads again (`actors.pause_check`): a node that does not own the drop forwards, so the
    owner's actor is asked and can find the unpause."""
    drop = await store.create_drop(DropInfo(name="d", price=Decimal("1.00"), paused=True), 2, NOW)
    committed = CommittedDrops(store)
    await committed.load(drop.id)
    assert committed.refusal(drop.id, NOW) is None
    ended = dataclasses.replace(drop, info=dataclasses.replace(drop.info, ends_at=NOW), version=9)
    committed.observe([DropUpdated(drop.id, 9, ended)])
    refused = committed.refusal(drop.id, NOW)
    assert refused is not None and refused.error is errors.DropEnded
