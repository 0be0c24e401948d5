"""Every refusal of the original's status table on /compat, on both stores: its status, the
message the shopper reads, CORS on it, and nothing changed by it. sneakerd's own refusals
(admin-only writes, rate limits, drops with sales) keep their status in the original's
envelope. CORS covers the answers no route makes: 404, 405 and preflights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.compat_helpers import PASSWORD, Compat, assert_cors, field_errors, ok, refused
from tests.api.conftest import COMPAT_ORIGIN, Api


async def _setup(compat_api: Api, **drop: Any) -> tuple[Compat, str, dict[str, Any]]:
    c = Compat(compat_api)
    admin = await c.admin()
    return c, admin, await c.drop(admin, **drop)


async def test_validation_failures_are_400_naming_each_field(compat_api: Api) -> None:
    c = Compat(compat_api)
    name = c.api.unique()
    answer = await c.call(
        "POST",
        "/users/register",
        json={"username": name, "email": "not-an-email", "password": "short"},
    )
    message = refused(answer, 400)
    fields = field_errors(answer[1])
    assert set(fields) == {"email", "password"}, answer[1]
    assert "password" in message and "email" in message
    # Nothing was made: the name is still free.
    await c.register(name)

    refused(await c.call("POST", "/users/register", data="{not json"), 400)
    answer = await c.call("GET", "/drops?page=0")
    refused(answer, 400)
    assert "page" in field_errors(answer[1])
    answer = await c.call("POST", "/reservations", token=(await c.register())[1], json={})
    refused(answer, 400)
    assert "dropId" in field_errors(answer[1])


async def test_a_bad_drop_body_is_400_and_makes_nothing(compat_api: Api) -> None:
    c = Compat(compat_api)
    admin = await c.admin()
    tag = c.api.unique("bad")
    for body in (
        {"name": tag, "price": -1, "stock": 5},
        {"name": tag, "price": 10},
        {"name": tag, "price": 10, "stock": 5, "initial_stock": 6},
        {"name": tag, "price": 10, "stock": 5, "drop_start_time": "yesterday"},
    ):
        refused(await c.call("POST", "/drops", token=admin, json=body), 400)
    assert ok(await c.call("GET", f"/drops?search={tag}"))["total"] == 0


async def test_out_of_stock_is_400_and_changes_nothing(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api, stock=1)
    _, first = await c.register()
    await c.reserve(first, drop["id"])
    _, second = await c.register()
    answer = await c.call("POST", "/reservations", token=second, json={"dropId": drop["id"]})
    refused(answer, 400, "Out of stock")
    assert await c.counts(drop["id"]) == (0, 1, 0)
    mine = ok(await c.call("GET", "/reservations/user", token=second))
    assert mine["count"] == 0


async def test_holding_one_already_is_400_with_the_reason(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api, stock=5)
    _, token = await c.register()
    await c.reserve(token, drop["id"])
    answer = await c.call("POST", "/reservations", token=token, json={"dropId": drop["id"]})
    message = refused(answer, 400)
    assert message == "You already hold or bought 1 of this drop (limit 1)"
    assert await c.counts(drop["id"]) == (4, 1, 0)


async def test_holds_per_user_is_400_with_the_reason(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api, stock=5, holds_per_user=1)
    _, token = await c.register()
    hold = (await c.reserve(token, drop["id"]))["reservation"]
    ok(await c.call("DELETE", f"/reservations/{hold['id']}", token=token))
    answer = await c.call("POST", "/reservations", token=token, json={"dropId": drop["id"]})
    refused(answer, 400, "You have made 1 holds on this drop (limit 1)")
    assert await c.counts(drop["id"]) == (5, 0, 0)


async def test_a_drop_not_started_is_400(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api, drop_start_time="2999-01-01T00:00:00Z")
    _, token = await c.register()
    answer = await c.call("POST", "/reservations", token=token, json={"dropId": drop["id"]})
    refused(answer, 400, "This drop has not started yet")
    assert await c.counts(drop["id"]) == (10, 0, 0)
    stats = ok(await c.call("GET", f"/drops/{drop['id']}/stats"))["data"]["stats"]
    assert (stats["has_started"], stats["is_available"]) == (False, False)


async def test_tokens_and_credentials_are_401(compat_api: Api) -> None:
    c = Compat(compat_api)
    refused(await c.call("GET", "/users/profile"), 401)
    refused(await c.call("GET", "/users/profile", token="not.a.token"), 401)
    refused(await c.call("GET", "/reservations/user"), 401)
    user, _ = await c.register()
    wrong = {"email": user["email"], "password": "not-the-password"}
    refused(await c.call("POST", "/users/login", json=wrong), 401, "Invalid email or password")
    nobody = {"email": "nobody-" + user["email"], "password": PASSWORD}
    refused(await c.call("POST", "/users/login", json=nobody), 401, "Invalid email or password")


async def test_a_taken_email_or_username_is_409(compat_api: Api) -> None:
    c = Compat(compat_api)
    user, _ = await c.register()
    taken_email = {"username": c.api.unique(), "email": user["email"], "password": PASSWORD}
    message = refused(await c.call("POST", "/users/register", json=taken_email), 409)
    assert "email" in message.lower()
    taken_name = {
        "username": user["username"],
        "email": f"{c.api.unique()}@example.com",
        "password": PASSWORD,
    }
    message = refused(await c.call("POST", "/users/register", json=taken_name), 409)
    assert "username" in message.lower()


async def test_unknown_drops_and_reservations_are_404(compat_api: Api) -> None:
    c = Compat(compat_api)
    _, token = await c.register()
    missing = 2**40
    refused(await c.call("GET", f"/drops/{missing}"), 404, "Drop not found")
    refused(await c.call("GET", f"/drops/{missing}/stats"), 404)
    refused(await c.call("GET", f"/purchases/drop/{missing}"), 404, "Drop not found")
    answer = await c.call("POST", "/reservations", token=token, json={"dropId": missing})
    refused(answer, 404)
    refused(await c.call("GET", f"/reservations/{missing}", token=token), 404)
    refused(await c.call("DELETE", f"/reservations/{missing}", token=token), 404)
    answer = await c.call("POST", "/purchases", token=token, json={"reservationId": missing})
    refused(answer, 404)


async def test_another_users_hold_is_404_and_stays_as_it_was(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api)
    _, owner = await c.register()
    hold = (await c.reserve(owner, drop["id"]))["reservation"]
    _, other = await c.register()
    refused(await c.call("GET", f"/reservations/{hold['id']}", token=other), 404)
    refused(await c.call("DELETE", f"/reservations/{hold['id']}", token=other), 404)
    answer = await c.call("POST", "/purchases", token=other, json={"reservationId": hold["id"]})
    refused(answer, 404)
    assert await c.counts(drop["id"]) == (9, 1, 0)


async def test_cancelling_or_buying_a_hold_that_is_not_active_is_404(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api, per_user_limit=2)
    _, token = await c.register()
    cancelled = (await c.reserve(token, drop["id"]))["reservation"]
    ok(await c.call("DELETE", f"/reservations/{cancelled['id']}", token=token))
    again = await c.call("DELETE", f"/reservations/{cancelled['id']}", token=token)
    refused(again, 404, "This reservation is no longer active")
    buy = await c.call("POST", "/purchases", token=token, json={"reservationId": cancelled["id"]})
    refused(buy, 404)

    bought = (await c.reserve(token, drop["id"]))["reservation"]
    await c.buy(token, bought["id"])
    after = await c.call("DELETE", f"/reservations/{bought['id']}", token=token)
    refused(after, 404, "This reservation is no longer active")
    assert await c.counts(drop["id"]) == (9, 0, 1)


async def test_drop_writes_are_for_admins_only_403(compat_api: Api) -> None:
    c, _, drop = await _setup(compat_api)
    _, customer = await c.register()
    tag = c.api.unique("nope")
    made = await c.call(
        "POST", "/drops", token=customer, json={"name": tag, "price": 10, "stock": 5}
    )
    refused(made, 403, "Only an admin may do this")
    assert ok(await c.call("GET", f"/drops?search={tag}"))["total"] == 0
    changed = await c.call("PUT", f"/drops/{drop['id']}", token=customer, json={"name": "x"})
    refused(changed, 403)
    refused(await c.call("DELETE", f"/drops/{drop['id']}", token=customer), 403)
    refused(await c.call("POST", "/drops", json={"name": tag, "price": 10, "stock": 5}), 401)
    assert (await c.get_drop(drop["id"]))["name"] == drop["name"]


async def test_sneakerds_own_drop_refusals_keep_their_409(compat_api: Api) -> None:
    c, admin, drop = await _setup(compat_api, stock=3)
    _, token = await c.register()
    hold = (await c.reserve(token, drop["id"]))["reservation"]
    await c.buy(token, hold["id"])
    answer = await c.call("DELETE", f"/drops/{drop['id']}", token=admin)
    refused(answer, 409, "This drop has 1 purchases and cannot be deleted")
    below = await c.call("PUT", f"/drops/{drop['id']}", token=admin, json={"initial_stock": 0})
    refused(below, 409, "initialStock cannot fall below reserved + sold (1)")
    assert await c.counts(drop["id"]) == (2, 0, 1)


async def test_rate_limits_keep_429_with_retry_after(start_api: Callable[..., Api]) -> None:
    c = Compat(start_api(RATE_LIMIT_AUTH="2", CLIENT_URL=COMPAT_ORIGIN))
    attempt = {"email": f"{c.api.unique()}@example.com", "password": "not-the-password"}
    for _ in range(2):
        refused(await c.call("POST", "/users/login", json=attempt), 401)
    answer = await c.call("POST", "/users/login", json=attempt)
    refused(answer, 429)
    assert answer[2]["Retry-After"].isdigit()


async def test_cors_on_404_405_and_preflights(compat_api: Api) -> None:
    c = Compat(compat_api)
    refused(await c.call("GET", "/no/such/route"), 404, "Route not found")
    answer = await c.call("PATCH", "/drops")
    refused(answer, 405)
    assert "GET" in answer[2]["Allow"]

    preflight = await c.call(
        "OPTIONS",
        "/reservations",
        headers={
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    status, _, headers = preflight
    assert status == 204, preflight
    assert_cors(headers)
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type"

    elsewhere = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"}
    status, body, headers = await c.call("OPTIONS", "/drops", headers=elsewhere)
    assert status == 403 and body["success"] is False, body
    assert "Access-Control-Allow-Origin" not in headers
    status, body, headers = await c.call(
        "GET", "/drops", headers={"Origin": "http://elsewhere.example"}
    )
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_the_native_api_is_not_changed_by_the_mount(compat_api: Api) -> None:
    """The same server's native answers keep their own envelope and camelCase."""
    status, body, _ = await compat_api.call(
        "GET", "/api/no/such/route", headers={"Origin": COMPAT_ORIGIN}
    )
    assert status == 404 and set(body) == {"error"}, body
    _, token = await compat_api.register()
    status, body, _ = await compat_api.call("GET", "/api/users/profile", token=token)
    assert status == 200 and "createdAt" in body["user"] and "created_at" not in body["user"]


async def test_an_idempotency_key_replays_in_the_originals_envelope(compat_api: Api) -> None:
    """A client that sends Idempotency-Key gets the first answer again, refusals included,
    said as the original said them."""
    c, _, drop = await _setup(compat_api, stock=1)
    _, first = await c.register()
    key = {"Idempotency-Key": c.api.unique("key")}
    body = {"dropId": drop["id"]}
    made = ok(await c.call("POST", "/reservations", token=first, json=body, headers=key), 201)
    again = await c.call("POST", "/reservations", token=first, json=body, headers=key)
    assert ok(again, 201) == made and again[2]["Idempotent-Replayed"] == "true"

    _, second = await c.register()
    out = await c.call("POST", "/reservations", token=second, json=body, headers=key)
    refused(out, 400, "Out of stock")
    replayed = await c.call("POST", "/reservations", token=second, json=body, headers=key)
    refused(replayed, 400, "Out of stock")
    assert await c.counts(drop["id"]) == (0, 1, 0)
