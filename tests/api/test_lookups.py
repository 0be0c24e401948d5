"""One reservation, one purchase and one drop's stats (docs/API.md, Additions: "Lists, lookups and
paging"): the owner sees their own; anyone else, and an unknown id, get the same 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import pytest

from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import SystemClock
from sneakerd.domain.model import DropInfo, Role
from sneakerd.service import DropService
from sneakerd.store import Store
from tests.api.conftest import Api
from tests.api.helpers import assert_error, purchase_call, reserve

STATS_KEYS = {
    "dropId", "initialStock", "stock", "reserved", "sold", "holdsExpiringNextMinute", "soldOutAt",
}  # fmt: skip


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


async def stats(api: Api, drop_id: int) -> dict[str, object]:
    status, body, _ = await api.call("GET", f"/api/drops/{drop_id}/stats")
    assert status == 200, body
    assert set(body) == {"stats"} and set(body["stats"]) == STATS_KEYS, body
    return dict(body["stats"])


# --- GET /api/reservations/{id} --------------------------------------------------------------


async def test_the_owner_reads_a_reservation_as_listed(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("GET", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200 and body == {"reservation": hold}, body
    status, cancelled, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, cancelled
    status, body, _ = await api.call("GET", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200 and body == cancelled and body["reservation"]["status"] == "cancelled"


async def test_another_users_reservation_is_not_found_like_an_unknown_one(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    _, owner = await api.register()
    _, other = await api.register()
    hold = await reserve(api, owner, drop["id"])
    theirs = await api.call("GET", f"/api/reservations/{hold['id']}", token=other)
    unknown = await api.call("GET", "/api/reservations/987654321", token=other)
    for status, body, _ in (theirs, unknown):
        assert_error(status, body, 404, "not_found")
    assert theirs[1] == unknown[1]  # nothing tells the two apart
    status, body, _ = await api.call("GET", f"/api/reservations/{hold['id']}")
    assert_error(status, body, 401, "unauthorized")


# --- GET /api/purchases/{id} -----------------------------------------------------------------


async def test_the_owner_reads_a_purchase_and_no_one_else_does(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, owner = await api.register()
    _, other = await api.register()
    hold = await reserve(api, owner, drop["id"])
    status, bought = await purchase_call(api, owner, hold["id"])
    assert status == 201, bought
    pid = bought["purchase"]["id"]
    status, body, _ = await api.call("GET", f"/api/purchases/{pid}", token=owner)
    assert status == 200 and body == bought, body
    theirs = await api.call("GET", f"/api/purchases/{pid}", token=other)
    unknown = await api.call("GET", "/api/purchases/987654321", token=owner)
    for status, body, _ in (theirs, unknown):
        assert_error(status, body, 404, "not_found")
    assert theirs[1] == unknown[1]
    status, body, _ = await api.call("GET", f"/api/purchases/{pid}")
    assert_error(status, body, 401, "unauthorized")


# --- GET /api/drops/{id}/stats ---------------------------------------------------------------


async def test_stats_follow_holds_and_sales_and_say_when_the_drop_sold_out(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=2, perUserLimit=1)
    assert await stats(api, drop["id"]) == {
        "dropId": drop["id"],
        "initialStock": 2,
        "stock": 2,
        "reserved": 0,
        "sold": 0,
        "holdsExpiringNextMinute": 0,
        "soldOutAt": None,
    }
    _, first = await api.register()
    _, second = await api.register()
    held = await reserve(api, first, drop["id"])
    now = await stats(api, drop["id"])
    # A 60 s hold falls due within the next minute.
    assert (now["stock"], now["reserved"], now["sold"]) == (1, 1, 0)
    assert now["holdsExpiringNextMinute"] == 1 and now["soldOutAt"] is None
    status, one = await purchase_call(api, first, held["id"])
    assert status == 201, one
    now = await stats(api, drop["id"])
    assert (now["stock"], now["reserved"], now["sold"], now["soldOutAt"]) == (1, 0, 1, None)
    status, last = await purchase_call(api, second, (await reserve(api, second, drop["id"]))["id"])
    assert status == 201, last
    now = await stats(api, drop["id"])
    assert (now["stock"], now["reserved"], now["sold"]) == (0, 0, 2)
    assert now["holdsExpiringNextMinute"] == 0
    assert now["soldOutAt"] == last["purchase"]["createdAt"]


async def test_stats_of_an_unknown_or_deleted_drop_are_not_found(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin_token)
    assert status == 204, body
    for drop_id in (drop["id"], 987654321):
        status, body, _ = await api.call("GET", f"/api/drops/{drop_id}/stats")
        assert_error(status, body, 404, "not_found")


# --- the two sources of stats agree: a live drop's actor, and the store ----------------------


@pytest.fixture
async def service(store: Store) -> AsyncIterator[DropService]:
    clock = SystemClock()
    registry = Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000)
    yield DropService(store=store, registry=registry, clock=clock)
    await registry.stop_all()


async def test_stats_from_the_actor_and_from_the_store_agree(
    store: Store, service: DropService
) -> None:
    """A live drop's stats come from its actor's committed state; a drop with no running
    actor (ended, or after a restart) from the store: both must tell the same."""
    clock = service.clock
    users = [
        (await store.create_user(f"s{i}", f"s{i}@example.com", "h", Role.CUSTOMER, clock.now_ms()))
        for i in range(3)
    ]
    drop = await service.create_drop(DropInfo(name="Stats", price=Decimal("5")), 3)
    no_actor = DropService(
        store=store,
        registry=Registry(store=store, sink=RecordingSink(), clock=clock, hold_ms=60_000),
        clock=clock,
    )
    holds = [await service.reserve(u.id, drop.id) for u in users]
    live, stored = await service.drop_stats(drop.id), await no_actor.drop_stats(drop.id)
    assert service.committed_state(drop.id) is not None
    assert no_actor.committed_state(drop.id) is None
    assert (live.drop.stock, live.drop.reserved, live.expiring_soon) == (0, 3, 3)
    assert (stored.drop, stored.expiring_soon, stored.sold_out_at) == (live.drop, 3, None)

    bought = [
        (await service.purchase(u.id, u.username, h.id))[0]
        for u, h in zip(users, holds, strict=True)
    ]
    live, stored = await service.drop_stats(drop.id), await no_actor.drop_stats(drop.id)
    assert live == stored
    assert (live.drop.sold, live.expiring_soon) == (3, 0)
    assert live.sold_out_at == max(p.created_at for p in bought)
