"""The Idempotency-Key header on POST /api/reservations and POST /api/purchases (docs/API.md)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.api.conftest import Api
from tests.api.helpers import get_drop, purchase_call, reserve_call


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def active_holds(api: Api, token: str, drop_id: int) -> list[dict[str, Any]]:
    status, body, _ = await api.call("GET", "/api/reservations/user", token=token)
    assert status == 200, body
    return [r for r in body["reservations"] if r["dropId"] == drop_id and r["status"] == "active"]


async def test_same_key_reserves_once_and_replays_the_answer(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    first = await reserve_call(api, token, drop["id"], headers)
    again = await reserve_call(api, token, drop["id"], headers)
    assert first[0] == 201, first
    assert again == first
    assert len(await active_holds(api, token, drop["id"])) == 1
    assert (await get_drop(api, drop["id"]))["reserved"] == 1


async def test_same_key_sent_concurrently_reserves_once(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    answers = await asyncio.gather(
        *(reserve_call(api, token, drop["id"], headers) for _ in range(5))
    )
    assert len(await active_holds(api, token, drop["id"])) == 1, answers
    assert (await get_drop(api, drop["id"]))["reserved"] == 1
    assert all(status < 500 for status, _ in answers), answers
    created = [body for status, body in answers if status == 201]
    assert created, answers
    assert all(body == created[0] for body in created), answers


async def test_different_keys_reserve_separately(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    first = await reserve_call(api, token, drop["id"], key())
    second = await reserve_call(api, token, drop["id"], key())
    assert (first[0], second[0]) == (201, 201), (first, second)
    assert first[1]["reservation"]["id"] != second[1]["reservation"]["id"]
    assert (await get_drop(api, drop["id"]))["reserved"] == 2


async def test_same_key_from_different_users_is_independent(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    alice, alice_token = await api.register()
    bob, bob_token = await api.register()
    headers = key()
    for_alice = await reserve_call(api, alice_token, drop["id"], headers)
    for_bob = await reserve_call(api, bob_token, drop["id"], headers)
    assert (for_alice[0], for_bob[0]) == (201, 201), (for_alice, for_bob)
    assert for_alice[1]["reservation"]["userId"] == alice["id"]
    assert for_bob[1]["reservation"]["userId"] == bob["id"]
    assert (await get_drop(api, drop["id"]))["reserved"] == 2


async def test_same_key_replays_a_refusal(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, initialStock=1, perUserLimit=1)
    _, token = await api.register()
    _, other = await api.register()
    status, body = await reserve_call(api, other, drop["id"])
    assert status == 201, body
    headers = key()
    first = await reserve_call(api, token, drop["id"], headers)
    assert first[0] == 409 and first[1]["error"]["code"] == "out_of_stock", first
    status, body, _ = await api.call(
        "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"initialStock": 5}
    )
    assert status == 200, body
    assert await reserve_call(api, token, drop["id"], headers) == first
    assert (await get_drop(api, drop["id"]))["reserved"] == 1


async def test_same_key_purchases_once_and_replays_the_answer(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop["id"])
    assert status == 201, body
    headers = key()
    first = await purchase_call(api, token, body["reservation"]["id"], headers)
    again = await purchase_call(api, token, body["reservation"]["id"], headers)
    assert first[0] == 201, first
    assert again == first
    after = await get_drop(api, drop["id"])
    assert (after["sold"], after["reserved"]) == (1, 0)
    status, listed, _ = await api.call("GET", "/api/purchases/user", token=token)
    assert [p["id"] for p in listed["purchases"]] == [first[1]["purchase"]["id"]]


async def test_same_key_sent_concurrently_purchases_once(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    status, body = await reserve_call(api, token, drop["id"])
    assert status == 201, body
    headers = key()
    answers = await asyncio.gather(
        *(purchase_call(api, token, body["reservation"]["id"], headers) for _ in range(5))
    )
    assert all(status < 500 for status, _ in answers), answers
    bought = {b["purchase"]["id"] for status, b in answers if status in (200, 201)}
    assert len(bought) == 1, answers
    after = await get_drop(api, drop["id"])
    assert (after["sold"], after["reserved"]) == (1, 0), after


async def test_same_key_from_different_users_purchases_independently(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    _, alice = await api.register()
    _, bob = await api.register()
    headers = key()
    bought = []
    for token in (alice, bob):
        status, body = await reserve_call(api, token, drop["id"])
        assert status == 201, body
        status, body = await purchase_call(api, token, body["reservation"]["id"], headers)
        assert status == 201, body
        bought.append(body["purchase"])
    assert bought[0]["id"] != bought[1]["id"]
    assert bought[0]["userId"] != bought[1]["userId"]
    assert (await get_drop(api, drop["id"]))["sold"] == 2


async def test_one_key_on_reserve_then_purchase_is_refused_not_replayed(
    api: Api, admin_token: str
) -> None:
    """A key names one attempt at one request: on the other endpoint it is refused (422), never
    answered with the hold (schemathesis once found a 201 carrying a reservation, not a
    purchase), and it neither buys nor disturbs the key's first answer."""
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    held = await reserve_call(api, token, drop["id"], headers)
    assert held[0] == 201, held
    bought = await purchase_call(api, token, held[1]["reservation"]["id"], headers)
    assert bought[0] == 422 and bought[1]["error"]["code"] == "idempotency_key_reused", bought
    assert await reserve_call(api, token, drop["id"], headers) == held
    after = await get_drop(api, drop["id"])
    assert (after["sold"], after["reserved"]) == (0, 1)
