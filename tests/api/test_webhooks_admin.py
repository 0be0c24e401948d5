"""The admin webhooks API: who may use it, what it refuses, and a delivery seen through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from loadtest.receiver import Receiver
from sneakerd.store.base import PageKey
from sneakerd.web.paging import ListKind, encode_cursor
from tests.api.conftest import Api
from tests.api.helpers import ISO_MS, assert_error, assert_validation

HOOKS = "/api/admin/webhooks"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_customers_and_strangers_may_not(api: Api, admin_token: str) -> None:
    _, customer = await api.register()
    for method, path in (("GET", HOOKS), ("POST", HOOKS), ("DELETE", HOOKS + "/1"),
                         ("GET", HOOKS + "/deliveries")):  # fmt: skip
        body = {"url": "https://x.example/h"} if method == "POST" else None
        status, answer, _ = await api.call(method, path, token=customer, json=body)
        assert_error(status, answer, 403, "forbidden")
        status, answer, _ = await api.call(method, path, json=body)
        assert_error(status, answer, 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://x.example/h"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://x.example/h", "events": ["purchase.done"]}, "events"),
        ({"url": "https://x.example/h", "events": "purchase.completed"}, "events"),
        ({"url": "https://x.example/h", "events": ["0" * 65]}, "events"),
        ({"url": "https://x.example/h", "events": [3]}, "events"),
        ({"url": "https://x.example/h", "secret": "mine"}, "secret"),
    ],
)
async def test_bad_registrations_are_422_and_change_nothing(
    api: Api, admin_token: str, body: dict[str, object], field: str
) -> None:
    before = await api.call("GET", HOOKS, token=admin_token)
    status, answer, _ = await api.call("POST", HOOKS, token=admin_token, json=body)
    assert_validation(status, answer, field)
    _, after, _ = await api.call("GET", HOOKS, token=admin_token)
    assert after == before[1]


async def test_add_list_remove(api: Api, admin_token: str) -> None:
    status, made, _ = await api.call(
        "POST",
        HOOKS,
        token=admin_token,
        json={"url": "https://shop.example/hook", "events": ["purchase.completed"]},
    )
    assert status == 201, made
    hook, secret = made["webhook"], made["secret"]
    assert secret.startswith("whsec_")
    assert hook["url"] == "https://shop.example/hook" and hook["events"] == ["purchase.completed"]
    assert hook["enabled"] is True and not hook["allEvents"] and ISO_MS.match(hook["createdAt"])
    _, listed, _ = await api.call("GET", HOOKS, token=admin_token)
    assert hook in listed["webhooks"]
    assert secret not in str(listed)  # shown once, at creation, never again
    status, _, _ = await api.call("DELETE", f"{HOOKS}/{hook['id']}", token=admin_token)
    assert status == 204
    status, gone, _ = await api.call("DELETE", f"{HOOKS}/{hook['id']}", token=admin_token)
    assert_error(status, gone, 404, "not_found")
    _, listed, _ = await api.call("GET", HOOKS, token=admin_token)
    assert hook not in listed["webhooks"]


async def test_a_delivery_seen_by_the_receiver_and_in_the_list(
    api: Api, admin_token: str, receiver: Receiver
) -> None:
    status, made, _ = await api.call(
        "POST", HOOKS, token=admin_token, json={"url": receiver.url, "events": ["drop.updated"]}
    )
    assert status == 201, made
    receiver.secret = made["secret"]
    try:
        drop = await api.drop(admin_token)
        for name in ("first edit", "second edit"):
            status, _, _ = await api.call(
                "PUT", f"/api/drops/{drop['id']}", token=admin_token, json={"name": name}
            )
            assert status == 200
        deadline = time.monotonic() + 20
        while len(receiver.got) < 2:
            assert time.monotonic() < deadline, receiver.got
            await asyncio.sleep(0.05)
        names = [r.payload["data"]["drop"]["name"] for r in receiver.got]
        assert names == ["first edit", "second edit"] and all(r.signed for r in receiver.got)
        assert [r.type for r in receiver.got] == ["drop.updated"] * 2

        status, page, _ = await api.call(
            "GET", HOOKS + "/deliveries?limit=1&state=delivered", token=admin_token
        )
        assert status == 200, page
        [newest] = page["deliveries"]
        assert newest["eventId"] == receiver.got[1].event_id and newest["state"] == "delivered"
        assert newest["lastStatus"] == 200 and newest["attempts"] == 1
        assert page["nextCursor"]
        status, rest, _ = await api.call(
            "GET",
            f"{HOOKS}/deliveries?limit=1&state=delivered&cursor={page['nextCursor']}",
            token=admin_token,
        )
        assert status == 200 and rest["deliveries"][0]["eventId"] == receiver.got[0].event_id
    finally:
        await api.call("DELETE", f"{HOOKS}/{made['webhook']['id']}", token=admin_token)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "state=lost", "cursor=nope", "cursor=ZC4xLjE"]
)
async def test_bad_delivery_queries_are_422(api: Api, admin_token: str, query: str) -> None:
    status, body, _ = await api.call("GET", f"{HOOKS}/deliveries?{query}", token=admin_token)
    assert_error(status, body, 422, "validation_error")


async def test_the_webhooks_list_pages_like_every_other_list(api: Api, admin_token: str) -> None:
    made = []
    for n in range(3):
        status, body, _ = await api.call(
            "POST", HOOKS, token=admin_token, json={"url": f"https://shop.example/h{n}"}
        )
        assert status == 201, body
        made.append(body["webhook"]["id"])
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(4):
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        status, page, _ = await api.call("GET", HOOKS + query, token=admin_token)
        assert status == 200 and set(page) == {"webhooks", "nextCursor"}, page
        assert len(page["webhooks"]) <= 2
        seen += [w["id"] for w in page["webhooks"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == made  # oldest first, each once, the last page's nextCursor null
    for bad in ("limit=0", "limit=201", "limit=abc", "cursor=garbage", "cursor=" + "x" * 300):
        status, answer, _ = await api.call("GET", f"{HOOKS}?{bad}", token=admin_token)
        assert_validation(status, answer, bad.split("=")[0])
    other = encode_cursor(ListKind.WEBHOOK_DELIVERIES, PageKey(1_000_000_000_000, 1), "0" * 8)
    status, answer, _ = await api.call("GET", f"{HOOKS}?cursor={other}", token=admin_token)
    assert_validation(status, answer, "cursor")
