"""Purchases over HTTP: buy a hold, buy it again, refusals and the two lists (docs/API.md, REST)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import ISO_MS, assert_error, get_drop, purchase_call, reserve

PURCHASE_KEYS = {"id", "dropId", "userId", "reservationId", "price", "createdAt"}


def epoch(text: str) -> float:
    assert ISO_MS.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def all_keys(value: Any) -> set[str]:
    """Every object key at any depth of a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


async def buy(api: Api, token: str, drop_id: int) -> dict[str, Any]:
    hold = await reserve(api, token, drop_id)
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    return dict(body["purchase"])


# --- purchase ---------------------------------------------------------------------------------


async def test_purchase_returns_the_purchase(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, price="149.50")
    user, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    before = time.time()
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    assert set(body) == {"purchase"}
    purchase = body["purchase"]
    assert set(purchase) >= PURCHASE_KEYS, purchase
    assert isinstance(purchase["id"], int) and purchase["id"] > 0
    assert purchase["dropId"] == drop["id"]
    assert purchase["userId"] == user["id"]
    assert purchase["reservationId"] == hold["id"]
    assert purchase["price"] == "149.50"
    assert abs(epoch(purchase["createdAt"]) - before) < 30


async def test_purchase_moves_the_unit_from_reserved_to_sold(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=5)
    _, token = await api.register()
    await buy(api, token, drop["id"])
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (4, 0, 1)


async def test_purchase_completes_the_reservation(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    purchase = await buy(api, token, drop["id"])
    status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, body
    statuses = [r["status"] for r in body["reservations"] if r["id"] == purchase["reservationId"]]
    assert statuses == ["completed"]


async def test_purchase_price_is_the_price_when_bought(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, price="100.00")
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"price": "120.00"}
    )
    assert status == 200, body
    status, body = await purchase_call(api, token, hold["id"])
    assert status == 201, body
    assert body["purchase"]["price"] == "120.00"


async def test_purchase_price_stays_when_the_drop_price_changes_later(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, price="100.00", perUserLimit=2)
    _, token = await api.register()
    bought = await buy(api, token, drop["id"])
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"price": 80}
    )
    assert status == 200, body
    status, body, _ = await api.call("GET", "/api/purchases/user", token=token)
    assert status == 200, body
    assert [p["price"] for p in body["purchases"] if p["id"] == bought["id"]] == ["100.00"]


async def test_purchase_of_the_same_reservation_again_returns_it_with_200(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=5)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, first = await purchase_call(api, token, hold["id"])
    assert status == 201, first
    status, again = await purchase_call(api, token, hold["id"])
    assert status == 200, again
    assert again == first
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["sold"]) == (4, 1)


async def test_concurrent_purchases_of_one_reservation_sell_one_unit(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, initialStock=5)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    answers = await asyncio.gather(*(purchase_call(api, token, hold["id"]) for _ in range(8)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 7 + [201], answers
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1, answers
    after = await get_drop(api, drop["id"])
    assert (after["stock"], after["reserved"], after["sold"]) == (4, 0, 1), after


async def test_purchase_of_a_cancelled_hold_is_reservation_not_active(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("DELETE", f"/api/reservations/{hold['id']}", token=token)
    assert status == 200, body
    status, body = await purchase_call(api, token, hold["id"])
    assert_error(status, body, 409, "reservation_not_active")
    assert (await get_drop(api, drop["id"]))["sold"] == 0


async def test_purchase_of_another_users_hold_is_not_found(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, owner = await api.register()
    _, stranger = await api.register()
    hold = await reserve(api, owner, drop["id"])
    status, body = await purchase_call(api, stranger, hold["id"])
    assert_error(status, body, 404, "not_found")
    after = await get_drop(api, drop["id"])
    assert (after["reserved"], after["sold"]) == (1, 0)


async def test_purchase_of_another_users_bought_hold_is_not_found(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    _, owner = await api.register()
    _, stranger = await api.register()
    bought = await buy(api, owner, drop["id"])
    status, body = await purchase_call(api, stranger, bought["reservationId"])
    assert_error(status, body, 404, "not_found")


async def test_purchase_of_unknown_reservation_is_not_found(api: Api) -> None:
    _, token = await api.register()
    status, body = await purchase_call(api, token, 987_654_321)
    assert_error(status, body, 404, "not_found")


async def test_purchase_without_token_is_unauthorized(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    _, token = await api.register()
    hold = await reserve(api, token, drop["id"])
    status, body, _ = await api.call("POST", "/api/purchases", json={"reservationId": hold["id"]})
    assert_error(status, body, 401, "unauthorized")
    assert (await get_drop(api, drop["id"]))["sold"] == 0


@pytest.mark.parametrize(
    "payload", [{}, {"reservationId": None}, {"reservationId": "abc"}, {"reservationId": 2.5}]
)
async def test_purchase_with_bad_reservation_id_is_a_validation_error(
    api: Api, payload: Any
) -> None:
    _, token = await api.register()
    status, body, _ = await api.call("POST", "/api/purchases", token=token, json=payload)
    error = assert_error(status, body, 422, "validation_error")
    assert "reservationId" in error["details"], body


# --- lists ------------------------------------------------------------------------------------


async def test_user_purchases_lists_only_own(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    _, stranger = await api.register()
    mine = [await buy(api, token, drop["id"]) for _ in range(2)]
    theirs = await buy(api, stranger, drop["id"])
    status, body, _ = await api.call("GET", "/api/purchases/user", token=token)
    assert status == 200, body
    assert set(body) == {"purchases", "nextCursor"}
    assert sorted(p["id"] for p in body["purchases"]) == sorted(p["id"] for p in mine)
    assert theirs["id"] not in {p["id"] for p in body["purchases"]}
    for listed in body["purchases"]:
        assert listed == next(p for p in mine if p["id"] == listed["id"])


async def test_user_purchases_is_empty_for_a_new_user(api: Api) -> None:
    _, token = await api.register()
    status, body, _ = await api.call("GET", "/api/purchases/user", token=token)
    assert status == 200, body
    assert body == {"purchases": [], "nextCursor": None}


async def test_user_purchases_without_token_is_unauthorized(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/purchases/user")
    assert_error(status, body, 401, "unauthorized")


async def test_drop_purchases_name_each_purchaser(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    alice, alice_token = await api.register()
    bob, bob_token = await api.register()
    bought = {
        (await buy(api, alice_token, drop["id"]))["id"]: alice["username"],
        (await buy(api, bob_token, drop["id"]))["id"]: bob["username"],
    }
    status, body, _ = await api.call("GET", f"/api/purchases/drop/{drop['id']}")
    assert status == 200, body
    assert set(body) == {"purchases", "nextCursor"}
    assert {p["id"]: p["purchaser"] for p in body["purchases"]} == bought
    for listed in body["purchases"]:
        assert set(listed) == {"id", "purchaser", "createdAt"}, listed
        assert ISO_MS.match(listed["createdAt"])


async def test_drop_purchases_reveal_no_email_or_user_id(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    user, token = await api.register()
    await buy(api, token, drop["id"])
    status, body, _ = await api.call("GET", f"/api/purchases/drop/{drop['id']}")
    assert status == 200, body
    assert user["email"] not in json.dumps(body)
    assert "@" not in json.dumps(body)
    keys = {k.lower() for k in all_keys(body)}
    assert not keys & {"email", "userid", "user_id", "user", "userId".lower()}, body


async def test_drop_purchases_only_lists_that_drop(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    other = await api.drop(admin_token)
    _, token = await api.register()
    here = await buy(api, token, drop["id"])
    there = await buy(api, token, other["id"])
    status, body, _ = await api.call("GET", f"/api/purchases/drop/{drop['id']}")
    assert status == 200, body
    ids = {p["id"] for p in body["purchases"]}
    assert here["id"] in ids and there["id"] not in ids


async def test_drop_purchases_is_empty_before_any_sale(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token)
    status, body, _ = await api.call("GET", f"/api/purchases/drop/{drop['id']}")
    assert status == 200, body
    assert body == {"purchases": [], "nextCursor": None}
