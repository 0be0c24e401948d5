"""A refusal kept under an Idempotency-Key is answered whole, the first time and on every replay:
its status, its envelope and its headers (a Retry-After must not be lost in the keeping).

The act here is the test's own, so that the refusal can carry a header that no route's refusal
carries today; the keeping, the store (both kinds) and the error middleware are the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from sneakerd.clock import SystemClock
from sneakerd.domain.commands import RequestKey
from sneakerd.domain.model import Role
from sneakerd.store import Store
from sneakerd.web.idempotency import Answer, Idempotency
from sneakerd.web.problems import ApiError, error_middleware

ClientMaker = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def _client(store: Store, aiohttp_client: ClientMaker, refusal: Exception) -> Any:
    name = f"k{uuid.uuid4().hex[:8]}"
    user = await store.create_user(name, f"{name}@example.com", "x", Role.CUSTOMER, 0)
    keeper = Idempotency(store, SystemClock(), ttl_ms=60_000)
    acts: list[RequestKey | None] = []

    async def act(key: RequestKey | None) -> Answer:
        acts.append(key)
        raise refusal

    async def rebuild(ref_id: int) -> dict[str, Any] | None:
        raise AssertionError("a refusal is never rebuilt")

    async def route(request: web.Request) -> web.Response:
        return await keeper.run(request, user.id, act, rebuild)

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/act", route)
    client = await aiohttp_client(app)
    client.acts = acts  # type: ignore[attr-defined]
    return client


async def test_a_kept_refusal_keeps_its_headers(store: Store, aiohttp_client: ClientMaker) -> None:
    refusal = ApiError(409, "drop_not_live", "Opens soon", headers={"Retry-After": "30"})
    client = await _client(store, aiohttp_client, refusal)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    answers = []
    for _ in range(2):
        response = await client.post("/act", json={"x": 1}, headers=headers)
        answers.append((response.status, await response.json(), response.headers))
    (status, body, first), (again, replayed, second) = answers
    assert status == again == 409, answers
    assert body == replayed == {"error": {"code": "drop_not_live", "message": "Opens soon"}}
    assert first.get("Retry-After") == "30", first
    assert second.get("Retry-After") == "30", second
    assert second.get("Idempotent-Replayed") == "true", second
    assert len(client.acts) == 1, client.acts


async def test_a_kept_refusal_without_headers_gains_none(
    store: Store, aiohttp_client: ClientMaker
) -> None:
    refusal = ApiError(409, "out_of_stock", "No units left right now")
    client = await _client(store, aiohttp_client, refusal)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(2):
        response = await client.post("/act", json={"x": 1}, headers=headers)
        assert response.status == 409
        assert await response.json() == {
            "error": {"code": "out_of_stock", "message": "No units left right now"}
        }
        assert "Retry-After" not in response.headers
    assert len(client.acts) == 1, client.acts
