"""A batch's commit on MySQL/MariaDB, in both of its forms: MariaDB's compound statement (one
answer for the whole batch) and MySQL's multi-statement query (an answer per statement). Both
must write the whole batch or nothing, whatever the values hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from sneakerd import errors
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
    Role,
)
from sneakerd.domain.outcome import Changes
from sneakerd.store.mysql import MySQLStore

pytestmark = pytest.mark.mysql

NOW = 1_795_510_800_123
HOSTILE = "x'; END; COMMIT; -- \\'\" ; BEGIN NOT ATOMIC END ✓"


@pytest.fixture(params=["compound", "multi-statement"])
async def store(request: pytest.FixtureRequest, mysql_url: str) -> AsyncIterator[MySQLStore]:
    opened = await MySQLStore.open(mysql_url, write_connections=2, read_connections=2)
    await opened.init_schema()
    assert opened.compound  # the server here is MariaDB: the compound form is the default
    opened.compound = request.param == "compound"
    try:
        yield opened
    finally:
        await opened.close()


async def _drop(store: MySQLStore) -> tuple[int, Drop]:
    user = await store.create_user("buyer", "buyer@example.com", "h", Role.CUSTOMER, NOW)
    drop = await store.create_drop(DropInfo(name="D", price=Decimal("10")), 10, NOW)
    return user.id, drop


def _hold(rid: int, drop: Drop, user_id: int) -> ReservationRecord:
    return ReservationRecord(rid, drop.id, user_id, ReservationStatus.ACTIVE, NOW + 60_000, NOW)


async def test_a_batch_with_hostile_values_is_written_whole(store: MySQLStore) -> None:
    user_id, drop = await _drop(store)
    rid = await store.allocate_ids("reservations", 2)
    pid = await store.allocate_ids("purchases", 1)
    info = DropInfo(name=HOSTILE, price=Decimal("10"), description=HOSTILE + "\n;")
    after = Drop(drop.id, info, 10, 8, 1, 1, 2, drop.created_at, NOW + 5)
    await store.commit(
        Changes(
            drop=after,
            expected_version=1,
            new_reservations=(_hold(rid, drop, user_id), _hold(rid + 1, drop, user_id)),
            status_changes=((rid, ReservationStatus.COMPLETED),),
            new_purchases=(PurchaseRecord(pid, drop.id, user_id, rid, Decimal("10"), NOW + 5),),
        )
    )
    assert await store.get_drop(drop.id) == after
    state = await store.load_state(drop.id)
    assert state is not None and set(state.holds) == {rid + 1}
    assert await store.purchase_for_reservation(rid) is not None
    assert await store.check(NOW + 10) == []


async def test_a_stale_batch_writes_nothing(store: MySQLStore) -> None:
    user_id, drop = await _drop(store)
    rid = await store.allocate_ids("reservations", 1)
    stale = Changes(
        drop=Drop(drop.id, drop.info, 10, 9, 1, 0, 3, drop.created_at, NOW),
        expected_version=2,
        new_reservations=(_hold(rid, drop, user_id),),
        status_changes=(),
        new_purchases=(),
    )
    with pytest.raises(errors.VersionConflict):
        await store.commit(stale)
    assert await store.get_reservation(rid) is None
    assert await store.get_drop(drop.id) == drop


async def test_a_refused_row_undoes_the_update_before_it(store: MySQLStore) -> None:
    user_id, drop = await _drop(store)
    rid = await store.allocate_ids("reservations", 1)
    first = Drop(drop.id, drop.info, 10, 9, 1, 0, 2, drop.created_at, NOW)
    await store.commit(
        Changes(
            drop=first,
            expected_version=1,
            new_reservations=(_hold(rid, drop, user_id),),
            status_changes=(),
            new_purchases=(),
        )
    )
    again = Changes(  # the version is right, but the hold's id is taken: nothing may stay
        drop=Drop(drop.id, drop.info, 10, 8, 2, 0, 3, drop.created_at, NOW),
        expected_version=2,
        new_reservations=(_hold(rid, drop, user_id),),
        status_changes=(),
        new_purchases=(),
    )
    with pytest.raises(errors.RowConflict):
        await store.commit(again)
    assert await store.get_drop(drop.id) == first
    # The connection that failed is usable (or replaced) for the next batch.
    await store.commit(
        Changes(
            drop=Drop(drop.id, drop.info, 10, 10, 0, 0, 3, drop.created_at, NOW),
            expected_version=2,
            new_reservations=(),
            status_changes=((rid, ReservationStatus.EXPIRED),),
            new_purchases=(),
        )
    )
    assert (await store.get_reservation(rid)).status is ReservationStatus.EXPIRED  # type: ignore[union-attr]
