"""Idempotency made strict: byte-for-byte keys, one caller's key never fails another's
request, a reused key with another body is refused, keys in flight answer 409, 429 is never
kept, keys are forgotten after IDEMPOTENCY_TTL, and a token of a missing user is a 401."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import jwt

from tests.api.conftest import Api
from tests.api.helpers import assert_error, get_drop, purchase_call, reserve_call


def key(value: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": value or uuid.uuid4().hex}


async def test_case_different_keys_never_fail_the_other_shoppers_of_a_batch(
    api: Api, admin_token: str
) -> None:
    """The attack: one user sends `zN` and `ZN` at once while 200 others reserve. On MariaDB
    the key column folded case, the two key rows collided in one batch's commit and 195 of 200
    others got 503. Three rounds, and not one other shopper may get a 503."""
    drop = await api.drop(admin_token, initialStock=2000, perUserLimit=3)
    shoppers = [token for _, token in await asyncio.gather(*(api.register() for _ in range(200)))]
    for round_no in range(3):
        _, attacker = await api.register()
        token_key = f"k{round_no}{uuid.uuid4().hex[:6]}"
        pair = [
            reserve_call(api, attacker, drop["id"], key(token_key.lower())),
            reserve_call(api, attacker, drop["id"], key(token_key.upper())),
        ]
        answers = await asyncio.gather(
            *pair, *(reserve_call(api, token, drop["id"]) for token in shoppers)
        )
        mine, others = answers[:2], answers[2:]
        assert [status for status, _ in others] == [201] * len(others), [
            a for a in others if a[0] != 201
        ][:3]
        # Two keys that differ in case are two keys: both act.
        assert [status for status, _ in mine] == [201, 201], mine
        assert mine[0][1]["reservation"]["id"] != mine[1][1]["reservation"]["id"]
    after = await get_drop(api, drop["id"])
    assert after["reserved"] == 3 * (200 + 2), after


async def test_a_key_compares_byte_for_byte(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    value = "abc-" + uuid.uuid4().hex
    lower = await reserve_call(api, token, drop["id"], key(value))
    upper = await reserve_call(api, token, drop["id"], key(value.upper()))
    assert (lower[0], upper[0]) == (201, 201), (lower, upper)
    assert lower[1]["reservation"]["id"] != upper[1]["reservation"]["id"]


async def test_the_same_key_with_another_body_is_refused(api: Api, admin_token: str) -> None:
    first_drop = await api.drop(admin_token, perUserLimit=3)
    second_drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    held = await reserve_call(api, token, first_drop["id"], headers)
    assert held[0] == 201, held
    status, body = await reserve_call(api, token, second_drop["id"], headers)
    assert_error(status, body, 422, "idempotency_key_reused")
    assert (await get_drop(api, second_drop["id"]))["reserved"] == 0
    # The first answer is still the key's answer.
    assert await reserve_call(api, token, first_drop["id"], headers) == held


async def test_the_same_key_on_another_endpoint_is_refused(api: Api, admin_token: str) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    held = await reserve_call(api, token, drop["id"], headers)
    assert held[0] == 201, held
    status, body = await purchase_call(api, token, held[1]["reservation"]["id"], headers)
    assert_error(status, body, 422, "idempotency_key_reused")
    after = await get_drop(api, drop["id"])
    assert (after["sold"], after["reserved"]) == (0, 1), after


async def test_a_body_that_differs_only_in_spacing_is_the_same_request(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    headers = {**key(), "Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    answers = []
    for raw in (f'{{"dropId": {drop["id"]}}}', f'{{ "dropId" :{drop["id"]} }}'):
        async with api.http.post(
            api.server.url + "/api/reservations", data=raw, headers=headers
        ) as resp:
            answers.append((resp.status, await resp.json()))
    assert answers[0][0] == 201, answers
    assert answers[1] == answers[0]


async def test_a_rate_limited_answer_is_never_kept(start_api: Callable[..., Api]) -> None:
    api = start_api(RATE_LIMIT_RESERVE="1")
    admin = await api.admin()
    drop = await api.drop(admin, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    answers = [await reserve_call(api, token, drop["id"], key()) for _ in range(3)]
    answers.append(await reserve_call(api, token, drop["id"], headers))
    limited = [a for a in answers if a[0] == 429]
    assert limited and answers[-1][0] == 429, answers
    await asyncio.sleep(1.2)
    status, body = await reserve_call(api, token, drop["id"], headers)
    assert status == 201, body


async def test_keys_are_forgotten_after_the_ttl(start_api: Callable[..., Api]) -> None:
    api = start_api(IDEMPOTENCY_TTL="1")
    admin = await api.admin()
    drop = await api.drop(admin, perUserLimit=3)
    _, token = await api.register()
    headers = key()
    first = await reserve_call(api, token, drop["id"], headers)
    assert first[0] == 201, first
    await asyncio.sleep(1.3)
    second = await reserve_call(api, token, drop["id"], headers)
    assert second[0] == 201, second
    assert second[1]["reservation"]["id"] != first[1]["reservation"]["id"]
    assert (await get_drop(api, drop["id"]))["reserved"] == 2


def _token_for_missing_user(secret: str) -> str:
    now = int(time.time())
    claims = {"sub": "987654321", "role": "customer", "iat": now, "exp": now + 600}
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_a_token_of_a_missing_user_with_a_key_is_unauthorized(
    api: Api, admin_token: str
) -> None:
    drop = await api.drop(admin_token)
    token = _token_for_missing_user(api.server.jwt_secret)
    headers = key()
    for _ in range(2):
        status, body = await reserve_call(api, token, drop["id"], headers)
        assert_error(status, body, 401, "unauthorized")
        status, body = await purchase_call(api, token, 1, headers)
        assert_error(status, body, 401, "unauthorized")


async def test_a_token_of_a_missing_user_with_a_key_is_unauthorized_where_the_drop_refuses(
    api: Api, admin_token: str
) -> None:
    """A reserve the drop already refuses (sold out, no such drop) is answered without the user
    check; but a keyed one keeps its answer under the user, who must exist: 401, never a 503."""
    drop = await api.drop(admin_token, initialStock=1)
    _, other = await api.register()
    status, body = await reserve_call(api, other, drop["id"])
    assert status == 201, body
    token = _token_for_missing_user(api.server.jwt_secret)
    status, body = await reserve_call(api, token, drop["id"])
    assert_error(status, body, 409, "out_of_stock")
    for drop_id in (drop["id"], 987654321):
        status, body = await reserve_call(api, token, drop_id, key())
        assert_error(status, body, 401, "unauthorized")


async def test_two_idempotency_key_headers_are_a_422_and_nothing_is_done(
    api: Api, admin_token: str
) -> None:
    """A request that names two keys (or the same one twice, as a proxy that joins them
    would not) cannot say which answer it wants back: it is refused before anything is done,
    as a malformed key is, rather than acting under the first and ignoring the second."""
    drop = await api.drop(admin_token, perUserLimit=3)
    _, token = await api.register()
    for values in (("a-" + uuid.uuid4().hex, "b-" + uuid.uuid4().hex), ("same",) * 2):
        headers = [("Authorization", f"Bearer {token}")]
        headers += [("Idempotency-Key", value) for value in values]
        async with api.http.post(
            api.server.url + "/api/reservations", json={"dropId": drop["id"]}, headers=headers
        ) as resp:
            status, body = resp.status, await resp.json()
        assert_error(status, body, 422, "validation_error")
        assert "Idempotency-Key" in body["error"]["details"], body
    assert (await get_drop(api, drop["id"]))["reserved"] == 0
