"""Waiting-room positions over the drop's WebSocket: a watcher that sent its token is told its
position and admission when they change, and only then (a burst of joins behind it sends it
nothing)."""

from __future__ import annotations

from typing import Any

import aiohttp

from sneakerd.domain.model import Role, User
from sneakerd.web import keys
from sneakerd.web.routes import queue
from tests.ws.conftest import Live, LiveFactory
from tests.ws.test_live import drain, next_json


async def join(live: Live, token: str, drop_id: int) -> dict[str, Any]:
    status, body = await live.call("POST", f"/api/drops/{drop_id}/queue", token)
    assert status == 200, body
    return dict(body["ticket"])


async def queue_frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    return [m for m in await drain(ws, quiet=0.8) if m["type"] == "queue"]


async def test_a_watcher_sees_its_own_position_move(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop(queue=True, initialStock=1)
    first, second, third = [await live.customer(f"queuer{i}") for i in range(3)]
    for token in (first, second, third):
        await join(live, token, drop["id"])
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        snapshot = await next_json(ws)
        assert snapshot["type"] == "snapshot"
        await ws.send_json({"type": "auth", "token": third})
        # Every server message has type, dropId and seq (the last one this watcher got).
        assert await queue_frames(ws) == [
            {"type": "queue", "dropId": drop["id"], "seq": snapshot["seq"], "position": 2,
             "admitted": False}
        ]  # fmt: skip

        # Joins behind it move nobody ahead: no frame for this watcher.
        for i in range(20):
            await join(live, await live.customer(f"behind{i}"), drop["id"])
        assert await queue_frames(ws) == []

        # The first user reserves and cancels: their turn is done, the second is admitted, the
        # third moves up.
        ticket = await join(live, first, drop["id"])
        status, body = await live.call("POST", "/api/reservations", first, {"dropId": drop["id"]})
        assert status == 409 and body["error"]["code"] == "not_admitted"
        async with live.http.post(
            live.url("/api/reservations"),
            json={"dropId": drop["id"]},
            headers={
                "Authorization": f"Bearer {first}",
                "Admission-Token": ticket["admissionToken"],
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
            hold = (await resp.json())["reservation"]
        status, _ = await live.call("DELETE", f"/api/reservations/{hold['id']}", first)
        assert status == 200
        [moved] = await queue_frames(ws)
        assert moved["seq"] > snapshot["seq"]  # the drop's commits since: the hold, the cancel
        assert {k: v for k, v in moved.items() if k != "seq"} == {
            "type": "queue",
            "dropId": drop["id"],
            "position": 1,
            "admitted": False,
        }
        assert live.app[queue.QUEUE_WATCH].watchers == 1
    # Gone with its socket.
    await drain_until_forgotten(live)


async def drain_until_forgotten(live: Live) -> None:
    import asyncio

    for _ in range(200):
        if live.app[queue.QUEUE_WATCH].watchers == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the watcher was never forgotten")


async def test_a_bad_token_is_an_error_frame(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop(queue=True)
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        snapshot = await next_json(ws)
        assert snapshot["type"] == "snapshot"
        await ws.send_json({"type": "auth", "token": "not-a-jwt"})
        reply = await next_json(ws)
        assert reply["type"] == "error" and reply["error"]["code"] == "unauthorized"
        assert reply["dropId"] == drop["id"] and reply["seq"] == snapshot["seq"]
        await ws.send_json({"type": "auth"})
        reply = await next_json(ws)
        assert reply["type"] == "error" and reply["error"]["code"] == "unauthorized"
        assert live.app[queue.QUEUE_WATCH].watchers == 0


async def test_a_signed_token_of_a_user_that_does_not_exist_is_an_error_frame(
    live_server: LiveFactory,
) -> None:
    """As on HTTP (401 for a token whose user does not exist): another environment's token, or
    a deleted account's, is not a watcher the room knows."""
    live = await live_server()
    drop = await live.drop(queue=True)
    ghost = User(987_654_321, "ghost", "ghost@example.com", Role.CUSTOMER, 0)
    token = live.app[keys.TOKENS].issue(ghost)
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        snapshot = await next_json(ws)
        await ws.send_json({"type": "auth", "token": token})
        reply = await next_json(ws)
        assert reply["type"] == "error" and reply["error"]["code"] == "unauthorized", reply
        assert reply["dropId"] == drop["id"] and reply["seq"] == snapshot["seq"]
        assert live.app[queue.QUEUE_WATCH].watchers == 0
        await ws.send_json({"type": "auth", "token": await live.customer("realone")})
        await ws.send_json({"type": "ping"})
        assert (await next_json(ws))["type"] == "pong"
        assert live.app[queue.QUEUE_WATCH].watchers == 1
