"""Reservations over HTTP: hold, list, cancel and every refusal (docs/API.md, REST)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import ISO_MS, assert_error, get_drop, purchase_call, reserve, reserve_call

RESERVATION_KEYS = {"id", "dropId", "userId", "status", "expiresAt", "createdAt"}


def epoch_ms(text: str) -> int:
    assert ISO_MS.match(text), text
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


async def my_reservations(api: Api, token: str) -> list[dict[str, Any]]:
    status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, body
    assert set(body) == {"reservations", "nextCursor"}
    return list(body["reservations"])


# --- reserve ----------------------------------------------------------------------------------


async def test_reserve_returns_an_active_hold(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10)
    user, token = await api.register()
    before = time.time() * 1000
    status, body = await reserve_call(api, token, drop["id"])
    assert status == 201, body
    assert set(body) == {"reservation"}
    hold = body["reservation"]
    assert set(hold) >= RESERVATION_KEYS, hold
    assert isinstance(hold["id"], int) and hold["id"] > 0
    assert hold["dropId"] == drop["id"]
    assert hold["userId"] == user["id"]
    assert hold["status"] == "active"
    created, expires = epoch_ms(hold["createdAt"]), epoch_ms(hold["expiresAt"])
    assert abs(created - before) < 30_000
    assert abs((expires - created) - 60_000) <= 1000, hold


async def test_reserve_takes_one_unit_from_stock(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10)
    _, token = await api.register()
    await reserve(api, token, drop["id"])
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (9, 1, 0)


async def test_reserve_when_nothing_left_is_out_of_stock(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=1)
    _, first = await api.register()
    _, second = await api.register()
    await reserve(api, first, drop["id"])
    status, body = await reserve_call(api, second, drop["id"])
    assert_error(status, body, 409, "out_of_stock")
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["status"]) == (0, 1, "sold_out")


async def test_reserve_beyond_per_user_limit_is_limit_reached(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10, perUserLimit=2)
    _, token = await api.register()
    await reserve(api, token, drop["id"])
    await reserve(api, token, drop["id"])
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "limit_reached")
    assert (await get_drop(api, drop["id"]))["reserved"] == 2


async def test_per_user_limit_counts_purchases(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10, perUserLimit=2)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    await reserve(api, token, drop["id"])
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "limit_reached")


async def test_per_user_limit_is_per_user(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=10, perUserLimit=1)
    _, first = await api.register()
    _, second = await api.register()
    await reserve(api, first, drop["id"])
    await reserve(api, second, drop["id"])
    assert (await get_drop(api, drop["id"]))["reserved"] == 2


async def test_cancelled_hold_no_longer_counts_towards_the_limit(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=10, perUserLimit=1)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, body
    await reserve(api, token, drop["id"])


async def test_reserve_before_start_is_drop_not_live(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, startsAt=iso(datetime.now(UTC) + timedelta(days=1)))
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "drop_not_live")
    assert (await get_drop(api, drop["id"]))["stock"] == drop["initialStock"]


async def test_reserve_after_end_is_drop_ended(api: Api, admin_token: str) -> None:
    ends = datetime.now(UTC) + timedelta(milliseconds=700)
    drop = await api.drop(admin_token, endsAt=iso(ends))
    _, token = await api.register()
    await asyncio.sleep(max(0.0, ends.timestamp() - time.time()) + 0.1)
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "drop_ended")


async def test_reserve_unknown_drop_is_not_found(api: Api) -> None:
    _, token = await api.register()
    status, body = await reserve_call(api, token, 987_654_321)
    assert_error(status, body, 404, "not_found")


async def test_reserve_without_token_is_unauthorized(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("POST", "/api/reservations", json={"dropId": drop["id"]})
    assert_error(status, body, 401, "unauthorized")
    assert (await get_drop(api, drop["id"]))["reserved"] == 0


@pytest.mark.parametrize("payload", [{}, {"dropId": None}, {"dropId": "abc"}, {"dropId": 1.5}])
async def test_reserve_with_bad_drop_id_is_a_validation_error(api: Api, payload: Any) -> None:
    _, token = await api.register()
    status, body, _ = await api.call("POST", "/api/reservations", token=token, json=payload)
    error = assert_error(status, body, 422, "validation_error")
    assert "dropId" in error["details"], body


# --- list -------------------------------------------------------------------------------------


async def test_list_shows_own_holds_newest_first(api: Api, admin_token: str) -> None:
    _, token = await api.register()
    _, stranger = await api.register()
    holds = []
    for _ in range(3):
        drop = await api.drop(admin_token)
        holds.append(await reserve(api, token, drop["id"]))
        await reserve(api, stranger, drop["id"])
        await asyncio.sleep(0.005)
    listed = await my_reservations(api, token)
    assert [r["id"] for r in listed] == [h["id"] for h in reversed(holds)]
    assert listed == list(reversed(holds))


async def test_list_is_empty_for_a_new_user(api: Api) -> None:
    _, token = await api.register()
    assert await my_reservations(api, token) == []


async def test_list_without_token_is_unauthorized(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/reservations/user")
    assert_error(status, body, 401, "unauthorized")


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_returns_the_cancelled_hold(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, body
    assert set(body) == {"reservation"}
    cancelled = body["reservation"]
    assert cancelled["id"] == hold["id"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["dropId"] == drop["id"]
    listed = await my_reservations(api, token)
    assert [r["status"] for r in listed if r["id"] == hold["id"]] == ["cancelled"]


async def test_cancel_returns_the_unit_at_once(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=1)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, body
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["status"]) == (1, 0, "live")
    _, other = await api.register()
    await reserve(api, other, drop["id"])


async def test_cancel_of_another_users_hold_is_not_found(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, owner = await api.register()
    _, stranger = await api.register()
    hold = await reserve(api, owner, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=stranger)
    assert_error(status, body, 404, "not_found")
    listed = await my_reservations(api, owner)
    assert [r["status"] for r in listed if r["id"] == hold["id"]] == ["active"]
    assert (await get_drop(api, drop["id"]))["reserved"] == 1


async def test_cancel_twice_is_reservation_not_active(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, body
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert_error(status, body, 409, "reservation_not_active")
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"]) == (after["initialStock"], 0)


async def test_cancel_of_a_purchased_hold_is_reservation_not_active(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert_error(status, body, 409, "reservation_not_active")
    assert (await get_drop(api, drop["id"]))["sold"] == 1


async def test_cancel_unknown_reservation_is_not_found(api: Api) -> None:
    _, token = await api.register()
    status, body, _ = await api.call("DELETE", "/api/reservations/987654321", token=token)
    assert_error(status, body, 404, "not_found")


async def test_cancel_without_token_is_unauthorized(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}")
    assert_error(status, body, 401, "unauthorized")
    assert (await get_drop(api, drop["id"]))["reserved"] == 1


# --- the outcome counter -----------------------------------------------------------------------


async def reservation_outcomes(api: Api) -> dict[str, float]:
    async with api.http.get(api.server.url + "/metrics") as response:
        text = await response.text()
    found = re.finditer(r'^sneakerd_reservations_total\{outcome="([a-z_]+)"\} (\S+)$', text, re.M)
    return {m.group(1): float(m.group(2)) for m in found}


async def test_reserve_outcomes_are_counted_once_each(api: Api, admin_token: str) -> None:
    """Counted: each act's outcome, refusals read from the drop's state included. Not counted:
    a replay of a kept answer, a refusal of the front (401)."""
    drop = await api.drop(admin_token, initialStock=1)
    _, first = await api.register()
    _, second = await api.register()
    before = await reservation_outcomes(api)
    assert (await reserve_call(api, first, drop["id"]))[0] == 201
    headers = {"Idempotency-Key": f"k-{drop['id']}"}
    for extra in ({}, headers, headers):
        status, body = await reserve_call(api, second, drop["id"], extra)
        assert_error(status, body, 409, "out_of_stock")
    status, body = await reserve_call(api, "not-a-token", drop["id"])
    assert_error(status, body, 401, "unauthorized")
    after = await reservation_outcomes(api)
    grown = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    assert grown == {"reserved": 1.0, "out_of_stock": 2.0}, grown
