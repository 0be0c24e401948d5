"""WebSocket limits: protocol pings count as messages, and one address holds a bounded number."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from sneakerd.config import parse_networks
from sneakerd.web.routes.live import FLOOD_MESSAGES
from tests.ws.conftest import Live, LiveFactory


async def closing_code(ws: aiohttp.ClientWebSocketResponse, wait: float = 3.0) -> int | None:
    """The close code the server sends, skipping anything else it says first."""
    async with asyncio.timeout(wait):
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None


async def test_a_flood_of_protocol_pings_is_closed_like_any_flood(
    live_server: LiveFactory,
) -> None:
    live = await live_server()
    drop = await live.drop()
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws"), autoclose=False) as ws:
        for _ in range(FLOOD_MESSAGES * 3):
            await ws.ping(b"x")
        assert await closing_code(ws) == 1008


async def test_protocol_pings_under_the_limit_get_their_pongs(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop()
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws"), autoping=False) as ws:
        assert (await ws.receive_json())["type"] == "snapshot"
        await ws.ping(b"are you there")
        message = await asyncio.wait_for(ws.receive(), 2)
        assert message.type is aiohttp.WSMsgType.PONG and message.data == b"are you there"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"


async def refused_upgrade(live: Live, path: str, forwarded: str | None = None) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await live.http.ws_connect(live.url(path), headers=headers)
    assert refused.value.status == 429
    assert refused.value.headers is not None
    assert int(refused.value.headers["Retry-After"]) >= 1


async def test_websockets_over_the_per_address_cap_are_refused_before_the_upgrade(
    live_server: LiveFactory,
) -> None:
    live = await live_server(max_websockets_per_ip=2)
    first, second = await live.drop(), await live.drop()
    path = f"/api/drops/{first['id']}/ws"
    held = [
        await live.http.ws_connect(live.url(path)),
        await live.http.ws_connect(live.url(f"/api/drops/{second['id']}/ws")),
    ]
    await refused_upgrade(live, path)
    async with live.http.get(
        live.url(path),
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    ) as resp:
        assert resp.status == 429
        body = await resp.json()
        assert body["error"]["code"] == "rate_limited"
    await held[0].close()
    for _ in range(50):  # the server releases the slot as the handler ends
        try:
            again = await live.http.ws_connect(live.url(path))
            break
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("a closed WebSocket's slot was never released")
    await again.close()
    await held[1].close()


async def test_behind_a_trusted_proxy_the_websocket_cap_counts_each_client(
    live_server: LiveFactory,
) -> None:
    live = await live_server(
        max_websockets_per_ip=1, trusted_proxies=parse_networks("T", "127.0.0.1")
    )
    drop = await live.drop()
    path = f"/api/drops/{drop['id']}/ws"
    one = await live.http.ws_connect(live.url(path), headers={"X-Forwarded-For": "198.51.100.1"})
    two = await live.http.ws_connect(
        live.url(path), headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}
    )
    await refused_upgrade(live, path, "198.51.100.2")
    await one.close()
    await two.close()
