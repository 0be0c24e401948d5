"""A request whose Idempotency-Key is still being acted on by its first request answers 409
`request_in_progress` at once (it does not wait, and it does not act); once the first answer is
kept, the same key gets it again. The act is the test's own, held open by an event; the keeping,
the store (both kinds) and the error middleware are the real ones."""

from __future__ import annotations

import asyncio
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
from sneakerd.web.problems import error_middleware

ClientMaker = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def test_a_twin_of_a_running_request_is_told_it_is_in_progress(
    store: Store, aiohttp_client: ClientMaker
) -> None:
    name = f"k{uuid.uuid4().hex[:8]}"
    user = await store.create_user(name, f"{name}@example.com", "x", Role.CUSTOMER, 0)
    keeper = Idempotency(store, SystemClock(), ttl_ms=60_000)
    release, started = asyncio.Event(), asyncio.Event()
    acts: list[RequestKey | None] = []

    async def act(key: RequestKey | None) -> Answer:
        acts.append(key)
        started.set()
        await release.wait()
        return Answer(409, {"error": {"code": "out_of_stock", "message": "None left"}})

    async def rebuild(ref_id: int) -> dict[str, Any] | None:
        raise AssertionError("a refusal is never rebuilt")

    async def route(request: web.Request) -> web.Response:
        return await keeper.run(request, user.id, act, rebuild)

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/act", route)
    client = await aiohttp_client(app)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = asyncio.create_task(client.post("/act", json={"x": 1}, headers=headers))
    await asyncio.wait_for(started.wait(), 10)
    twin = await client.post("/act", json={"x": 1}, headers=headers)
    assert twin.status == 409
    assert (await twin.json())["error"]["code"] == "request_in_progress"
    assert twin.headers["Retry-After"] == "1"
    assert len(acts) == 1
    release.set()
    answered = await first
    assert answered.status == 409
    assert (await answered.json())["error"]["code"] == "out_of_stock"
    again = await client.post("/act", json={"x": 1}, headers=headers)
    assert again.status == 409 and again.headers.get("Idempotent-Replayed") == "true"
    assert (await again.json())["error"]["code"] == "out_of_stock"
    assert len(acts) == 1
