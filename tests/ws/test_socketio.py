"""The original backend's Socket.IO events at /socket.io/, with the real python-socketio client
over both transports, against a real server on both stores."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio

from sneakerd.clock import parse_iso
from tests.ws.conftest import Live, LiveFactory
from tests.ws.sio import TRANSPORTS, Listener

Listen = Callable[[Live], Awaitable[Listener]]


@pytest.fixture(params=TRANSPORTS)
async def listen(request: pytest.FixtureRequest) -> AsyncIterator[Listen]:
    """`await listen(live)`: a connected client on this test's transport; closed afterwards."""
    clients: list[Listener] = []

    async def connect(live: Live) -> Listener:
        client = await Listener().connect(live.url("/"), request.param)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


async def user(live: Live, name: str) -> tuple[str, int]:
    token = await live.customer(name)
    status, body = await live.call("GET", "/api/users/profile", token)
    assert status == 200
    return token, int(body["user"]["id"])


async def reserve(live: Live, token: str, drop_id: int) -> dict[str, Any]:
    status, body = await live.call("POST", "/api/reservations", token, {"dropId": drop_id})
    assert status == 201, body
    return dict(body["reservation"])


def is_time(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("Z") and parse_iso(value) > 0


async def test_ping_join_leave_and_request_stock_answer_the_asking_socket(
    live_server: LiveFactory, listen: Listen
) -> None:
    live = await live_server()
    drop = await live.drop(initialStock=7)
    asker, bystander = await listen(live), await listen(live)
    await asker.emit("ping")
    pong = await asker.wait_for("pong")
    assert set(pong) == {"timestamp"} and is_time(pong["timestamp"])
    await asker.emit("joinDrop", drop["id"])
    joined = await asker.wait_for("joinedDrop")
    assert joined == {
        "dropId": drop["id"],
        "message": f"Subscribed to updates for drop {drop['id']}",
    }
    await asker.emit("joinDrop", str(drop["id"]))  # the original's client may send a string
    await asker.wait_for("joinedDrop", lambda p: len(asker.named("joinedDrop")) == 2)
    assert asker.named("joinedDrop")[1]["dropId"] == drop["id"]  # a number, always
    await asker.emit("requestStock", drop["id"])
    stock = await asker.wait_for("stockUpdate")
    assert set(stock) == {"dropId", "newStock", "timestamp"} and is_time(stock["timestamp"])
    assert (stock["dropId"], stock["newStock"]) == (drop["id"], 7)
    await asker.emit("requestStock", 987_654)
    assert await asker.wait_for("error") == {"message": "Drop not found", "dropId": 987_654}
    await asker.emit("requestStock", "not-an-id")
    await asker.wait_for("error", lambda p: p == {"message": "Invalid drop id"})
    await asker.emit("leaveDrop", drop["id"])
    left = await asker.wait_for("leftDrop")
    assert left == {
        "dropId": drop["id"],
        "message": f"Unsubscribed from updates for drop {drop['id']}",
    }
    await bystander.barrier()
    assert [name for name, _ in bystander.heard] == ["pong"], "answers go to the asker alone"


async def test_a_hold_its_cancel_and_a_purchase_reach_everyone_and_stock_the_room_twice(
    live_server: LiveFactory, listen: Listen
) -> None:
    live = await live_server()
    drop = await live.drop(initialStock=5)
    drop_id = drop["id"]
    member, outsider = await listen(live), await listen(live)
    await member.emit("joinDrop", drop_id)
    await member.wait_for("joinedDrop")
    token, user_id = await user(live, "ana")

    hold = await reserve(live, token, drop_id)
    for client in (member, outsider):
        created = await client.wait_for("reservationCreated")
        assert created.pop("timestamp") and created == {
            "reservationId": hold["id"],
            "dropId": drop_id,
            "userId": user_id,
        }
        stock = await client.wait_for("stockUpdate", lambda p: p["newStock"] == 4)
        assert stock["dropId"] == drop_id and stock["reservedBy"] == user_id
        assert "reason" not in stock and is_time(stock["timestamp"])
    await member.barrier()
    await outsider.barrier()
    # The original sent stock to the drop's room and to everyone: a member hears it twice.
    assert len(member.named("stockUpdate")) == 2 and len(outsider.named("stockUpdate")) == 1

    status, _ = await live.call("DELETE", f"/api/reservations/{hold['id']}", token)
    assert status == 200
    for client in (member, outsider):
        cancelled = await client.wait_for("reservationCancelled")
        assert cancelled.pop("timestamp") and cancelled == {
            "reservationId": hold["id"],
            "dropId": drop_id,
        }
        back = await client.wait_for("stockUpdate", lambda p: p["newStock"] == 5)
        assert "reservedBy" not in back

    again = await reserve(live, token, drop_id)
    status, body = await live.call("POST", "/api/purchases", token, {"reservationId": again["id"]})
    assert status == 201
    for client in (member, outsider):
        bought = await client.wait_for("purchaseCompleted")
        assert is_time(bought.pop("timestamp")) and bought == {
            "dropId": drop_id,
            "purchaseId": body["purchase"]["id"],
            "purchaser": {"id": user_id, "username": "ana"},
        }
        await client.wait_for("stockUpdate", lambda p: p["newStock"] == 4)


async def test_an_expiry_says_so_and_its_stock_update_gives_the_reason(
    live_server: LiveFactory, listen: Listen
) -> None:
    live = await live_server(reservation_duration_ms=300)
    drop = await live.drop(initialStock=2)
    client = await listen(live)
    token, _ = await user(live, "ben")
    hold = await reserve(live, token, drop["id"])
    expired = await client.wait_for("reservationExpired")
    assert is_time(expired.pop("timestamp")) and expired == {
        "reservationId": hold["id"],
        "dropId": drop["id"],
        "stockReturned": 1,
    }
    stock = await client.wait_for("stockUpdate", lambda p: p.get("reason") is not None)
    assert (stock["newStock"], stock["reason"]) == (2, "reservation_expired")


async def test_admin_writes_announce_the_drop_in_the_original_shape(
    live_server: LiveFactory, listen: Listen
) -> None:
    live = await live_server()
    client = await listen(live)
    drop = await live.drop(name="Jordan 1", price="180.50", initialStock=3, imageUrl="https://x/1")
    new = await client.wait_for("newDrop")
    assert is_time(new["timestamp"])
    shown = new["drop"]
    assert {k: shown[k] for k in ("id", "name", "price", "stock", "initial_stock")} == {
        "id": drop["id"],
        "name": "Jordan 1",
        "price": 180.5,
        "stock": 3,
        "initial_stock": 3,
    }
    assert shown["image_url"] == "https://x/1" and shown["purchases"] == []
    assert all(is_time(shown[k]) for k in ("drop_start_time", "created_at", "updated_at"))

    status, _ = await live.call("PUT", f"/api/drops/{drop['id']}", live.admin_token, {"name": "J1"})
    assert status == 200
    updated = await client.wait_for("dropUpdated")
    assert updated["drop"]["id"] == drop["id"] and updated["drop"]["name"] == "J1"

    status, _ = await live.call("DELETE", f"/api/drops/{drop['id']}", live.admin_token)
    assert status == 204
    deleted = await client.wait_for("dropDeleted")
    assert is_time(deleted.pop("timestamp")) and deleted == {"dropId": drop["id"]}
    await client.emit("requestStock", drop["id"])
    assert await client.wait_for("error") == {"message": "Drop not found", "dropId": drop["id"]}


async def test_a_refused_act_emits_nothing(live_server: LiveFactory, listen: Listen) -> None:
    live = await live_server()
    scarce, other = await live.drop(initialStock=1), await live.drop(initialStock=9)
    client = await listen(live)
    first, _ = await user(live, "cara")
    second, _ = await user(live, "dan")
    hold = await reserve(live, first, scarce["id"])
    await client.wait_for("stockUpdate", lambda p: p["newStock"] == 0)
    before = list(client.heard)
    status, body = await live.call("POST", "/api/reservations", second, {"dropId": scarce["id"]})
    assert status == 409 and body["error"]["code"] == "out_of_stock"
    status, _ = await live.call("DELETE", f"/api/reservations/{hold['id']}", second)
    assert status == 404  # someone else's hold
    status, _ = await live.call("POST", "/api/purchases", second, {"reservationId": hold["id"]})
    assert status == 404
    # A committed act after the refusals: whatever they had emitted would come before its news.
    await reserve(live, second, other["id"])
    await client.wait_for("stockUpdate", lambda p: p["dropId"] == other["id"])
    news = client.heard[len(before) :]
    assert [name for name, _ in news] == ["reservationCreated", "stockUpdate"]
    assert all(payload["dropId"] == other["id"] for _, payload in news)


@pytest.mark.parametrize("client_url", ["http://shop.example", "http://shop.example/"])
async def test_the_client_origin_is_accepted_and_a_foreign_one_refused(
    live_server: LiveFactory, client_url: str
) -> None:
    """CLIENT_URL as an origin (`http://shop.example`) or as a URL with its slash: a browser's
    Origin never has the slash, and both name the same front-end."""
    live = await live_server(client_url=client_url)
    handshake = live.url("/socket.io/?EIO=4&transport=polling")
    async with aiohttp.ClientSession() as http:
        async with http.get(handshake, headers={"Origin": "http://shop.example"}) as ok:
            assert ok.status == 200
            assert ok.headers["Access-Control-Allow-Origin"] == "http://shop.example"
            assert (await ok.text()).startswith("0{")  # Engine.IO's open packet
        async with http.get(handshake, headers={"Origin": "http://evil.example"}) as refused:
            assert refused.status == 400
            assert "Access-Control-Allow-Origin" not in refused.headers
    client = await Listener().connect(
        live.url("/"), "websocket", headers={"Origin": "http://shop.example"}
    )
    try:
        await client.emit("ping")
        await client.wait_for("pong")
    finally:
        await client.close()


async def test_a_polling_client_that_leaves_is_let_go_at_once(live_server: LiveFactory) -> None:
    """Engine.IO would hold its pending long-poll (and its goodbye) for up to 45 s."""
    live = await live_server()
    client = await Listener().connect(live.url("/"), "polling")
    await client.barrier()
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 5


async def test_sessions_share_the_per_address_cap_with_the_native_websockets(
    live_server: LiveFactory,
) -> None:
    live = await live_server(max_websockets_per_ip=2)
    drop = await live.drop()
    native = await live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws"))
    first = await Listener().connect(live.url("/"), "websocket")
    try:
        for transport in TRANSPORTS:
            refused = Listener()
            started = time.monotonic()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await refused.connect(live.url("/"), transport)
            assert time.monotonic() - started < 5, "a refused poll is let go at once, too"
        await first.close()  # its place is given back
        again = await Listener().connect(live.url("/"), "polling")
        await again.close()
    finally:
        await native.close()
        await first.close()
