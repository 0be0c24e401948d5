"""Live stock over WebSockets, with real clients against a real server on both stores."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import pytest

from sneakerd.domain.events import Purchased
from sneakerd.web import keys
from tests.store.helpers import ms, sql
from tests.ws.conftest import LiveFactory, RawWatcher


async def next_json(ws: aiohttp.ClientWebSocketResponse, wait: float = 2.0) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), wait)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return dict(json.loads(message.data))


async def drain(ws: aiohttp.ClientWebSocketResponse, quiet: float = 0.4) -> list[dict[str, Any]]:
    """Every message until the socket has been quiet for `quiet` seconds."""
    out = []
    while True:
        try:
            message = await asyncio.wait_for(ws.receive(), quiet)
        except TimeoutError:
            return out
        if message.type is not aiohttp.WSMsgType.TEXT:
            return out
        out.append(json.loads(message.data))


async def test_the_first_frame_is_a_snapshot_matching_the_rest_api(
    live_server: LiveFactory,
) -> None:
    live = await live_server()
    drop = await live.drop(initialStock=7)
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        first = await next_json(ws)
        _, body = await live.call("GET", f"/api/drops/{drop['id']}")
        assert first == {
            "type": "snapshot",
            "dropId": drop["id"],
            "seq": drop["version"],
            "drop": body["drop"],
        }
        await ws.send_json({"type": "ping"})
        assert await next_json(ws) == {"type": "pong", "dropId": drop["id"], "seq": first["seq"]}


async def test_a_burst_reaches_every_watcher_in_order_and_ends_on_the_true_stock(
    live_server: LiveFactory,
) -> None:
    live = await live_server(reservation_duration_ms=800)
    drop = await live.drop(initialStock=12, perUserLimit=2)
    watchers = [
        await live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) for _ in range(10)
    ]
    tokens = [await live.customer(f"burst{i}") for i in range(20)]

    async def reserve(token: str) -> dict[str, Any] | None:
        status, body = await live.call("POST", "/api/reservations", token, {"dropId": drop["id"]})
        return body["reservation"] if status == 201 else None

    holds = await asyncio.gather(*(reserve(t) for t in tokens))
    held = [(t, h) for t, h in zip(tokens, holds, strict=True) if h is not None]
    assert len(held) == 12
    bought, cancelled = held[:4], held[4:8]  # the rest expire after 800 ms
    for token, hold in bought:
        status, _ = await live.call("POST", "/api/purchases", token, {"reservationId": hold["id"]})
        assert status == 201
    for token, hold in cancelled:
        status, _ = await live.call("DELETE", f"/api/reservations/{hold['id']}", token)
        assert status == 200
    await asyncio.sleep(1.2)  # every remaining hold has expired by now
    _, final = await live.call("GET", f"/api/drops/{drop['id']}")
    final_drop = final["drop"]
    assert (final_drop["stock"], final_drop["reserved"], final_drop["sold"]) == (8, 0, 4)
    expired_ids = {h["id"] for _, h in held[8:]}
    for ws in watchers:
        messages = await drain(ws)
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
        assert messages[0]["type"] == "snapshot"
        stock = [m for m in messages if m["type"] == "stockUpdate"]
        assert (stock[-1]["newStock"], stock[-1]["reserved"], stock[-1]["sold"]) == (8, 0, 4)
        assert stock[-1]["seq"] == final_drop["version"]
        assert {m["reservationId"] for m in messages if m["type"] == "reservationExpired"} == (
            expired_ids
        )
        purchases = [m for m in messages if m["type"] == "purchaseCompleted"]
        assert len(purchases) == 4 and all(m["purchaser"].startswith("burst") for m in purchases)
        await ws.close()


async def test_nothing_is_sent_for_a_commit_that_failed(live_server: LiveFactory) -> None:
    live = await live_server()
    store = live.app[keys.STORE]
    # A drop's actor takes its first block of ids as it starts: the block begins at next_id.
    [(next_id,)] = await sql(store, "SELECT next_id FROM id_blocks WHERE name = 'reservations'")
    drop = await live.drop(initialStock=3)
    token = await live.customer("unlucky")
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        assert (await next_json(ws))["type"] == "snapshot"
        # Take the id the actor will use next, so its INSERT fails after its UPDATE ran.
        other = await live.drop(initialStock=1)
        [(user_id,)] = await sql(store, "SELECT id FROM users WHERE username = 'unlucky'")
        await sql(
            store,
            "INSERT INTO reservations (id, drop_id, user_id, status, expires_at, "
            "created_at) VALUES (%s, %s, %s, 'cancelled', %s, %s)",
            (next_id, other["id"], user_id, ms(store, 0), ms(store, 0)),
        )
        status, body = await live.call("POST", "/api/reservations", token, {"dropId": drop["id"]})
        assert status == 503 and body["error"]["code"] == "unavailable"
        assert await drain(ws, quiet=0.5) == []
        status, _ = await live.call("POST", "/api/reservations", token, {"dropId": drop["id"]})
        assert status == 201
        update = await next_json(ws)
        assert update["type"] == "stockUpdate" and update["newStock"] == 2


async def test_admin_changes_and_deletion_reach_watchers(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop(initialStock=3)
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as ws:
        await next_json(ws)
        status, body = await live.call(
            "PUT",
            f"/api/drops/{drop['id']}",
            live.admin_token,
            {"name": "Dunk Low Panda", "initialStock": 5},
        )
        assert status == 200
        messages = await drain(ws)
        updated = [m for m in messages if m["type"] == "dropUpdated"]
        assert updated and updated[0]["drop"]["name"] == "Dunk Low Panda"
        assert messages[-1]["type"] == "stockUpdate" and messages[-1]["newStock"] == 5
        status, _ = await live.call("DELETE", f"/api/drops/{drop['id']}", live.admin_token)
        assert status == 204
        gone = await next_json(ws)
        assert gone["type"] == "dropDeleted" and gone["seq"] > messages[-1]["seq"]
        closing = await asyncio.wait_for(ws.receive(), 2)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1000
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws"))
    assert refused.value.status == 404
    status, body = await live.call("GET", "/api/drops/99999/ws")
    assert status == 404 and body["error"]["code"] == "not_found"


async def _flood(live: Any, drop_id: int, start_seq: int, count: int) -> None:
    """Publish purchase events straight into the hub: they are not coalesced, one frame each.
    A few at a time, so that a watcher that does read keeps up."""
    hub = live.app[keys.HUB]
    for i in range(count):
        hub.publish([Purchased(drop_id, start_seq + i, 10_000 + i, "x" * 200)])
        hub.flush()
        if i % 4 == 3:
            await asyncio.sleep(0.001)


async def test_a_slow_watcher_is_resynchronised_and_does_not_slow_the_others(
    live_server: LiveFactory,
) -> None:
    live = await live_server(outbox_limit=16, stuck_seconds=5.0)
    drop = await live.drop(initialStock=50, perUserLimit=50)
    host, port = live.server.host, live.server.port
    assert port is not None
    slow = await asyncio.to_thread(RawWatcher, host, port, f"/api/drops/{drop['id']}/ws")
    try:
        await _slow_watcher_scenario(live, drop, slow)
    finally:
        slow.close()


async def _slow_watcher_scenario(live: Any, drop: dict[str, Any], slow: RawWatcher) -> None:
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as fast:
        await next_json(fast)
        await asyncio.sleep(0.2)
        await _flood(live, drop["id"], drop["version"] + 1, 3000)
        token = await live.customer("busy")
        started = time.perf_counter()
        status, _ = await live.call("POST", "/api/reservations", token, {"dropId": drop["id"]})
        assert status == 201 and time.perf_counter() - started < 1.0, "the actor was slowed"
        received = await drain(fast, quiet=1.0)
        # The fast watcher got the flood as it came (synthetic seqs run ahead of the drop's
        # real version, so the reservation's own stockUpdate is rightly below its last seq).
        assert len([m for m in received if m["type"] == "purchaseCompleted"]) >= 100
        # The slow one now reads: it was sent a fresh snapshot rather than the whole backlog.
        frames = await asyncio.to_thread(slow.frames, 1.5)
        texts = [json.loads(payload) for opcode, payload in frames if opcode == 1]
        kinds = [m["type"] for m in texts]
        assert kinds[0] == "snapshot" and kinds.count("snapshot") >= 2, kinds[:20]
        assert len(texts) < 3000
        # Seqs rise between snapshots (the synthetic flood runs ahead of the drop's real
        # version, which a resync snapshot shows).
        after = texts[kinds.index("snapshot", 1) :]
        seqs = [m["seq"] for m in after if m["type"] != "snapshot"]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert live.app[keys.HUB].statistics().subscribers == 2


async def test_a_watcher_that_stays_stuck_is_closed_with_1013(live_server: LiveFactory) -> None:
    live = await live_server(outbox_limit=16, stuck_seconds=0.5)
    drop = await live.drop(initialStock=5)
    host, port = live.server.host, live.server.port
    assert port is not None
    stuck = await asyncio.to_thread(RawWatcher, host, port, f"/api/drops/{drop['id']}/ws")
    try:
        await _stuck_watcher_scenario(live, drop, stuck)
    finally:
        stuck.close()


async def _stuck_watcher_scenario(live: Any, drop: dict[str, Any], stuck: RawWatcher) -> None:
    async with live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) as fine:
        await next_json(fine)
        await asyncio.sleep(0.2)
        deadline = time.monotonic() + 10
        seq = drop["version"] + 1
        while live.app[keys.HUB].statistics().subscribers > 1:
            assert time.monotonic() < deadline, "the stuck watcher was never closed"
            await _flood(live, drop["id"], seq, 500)
            seq += 500
            await asyncio.sleep(0.3)
        frames = await asyncio.to_thread(stuck.frames, 2.0)
        closes = [payload for opcode, payload in frames if opcode == 8]
        # It is closed with 1013, or its connection is dropped when even that cannot be sent.
        assert not closes or int.from_bytes(closes[0][:2], "big") == 1013
        await drain(fine, quiet=0.3)
        await fine.send_json({"type": "ping"})
        assert (await next_json(fine))["type"] == "pong"


async def test_client_abuse_is_closed_and_others_keep_being_served(
    live_server: LiveFactory,
) -> None:
    live = await live_server()
    drop = await live.drop()
    url = live.url(f"/api/drops/{drop['id']}/ws")
    async with live.http.ws_connect(url) as chatty, live.http.ws_connect(url) as calm:
        await next_json(chatty)
        await next_json(calm)
        for _ in range(50):
            await chatty.send_str('{"type": "ping"}')
        while (message := await asyncio.wait_for(chatty.receive(), 2)).type is (
            aiohttp.WSMsgType.TEXT
        ):
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008
        await calm.send_str("not json")
        assert (await next_json(calm))["type"] == "error"
        await calm.send_json({"type": "ping"})
        assert (await next_json(calm))["type"] == "pong"
    async with live.http.ws_connect(url) as edge:  # 4096 bytes is the most a message may be
        await next_json(edge)
        ping = '{"type": "ping", "pad": "%s"}'
        await edge.send_str(ping % ("x" * (4096 - len(ping % ""))))
        assert (await next_json(edge))["type"] == "pong"
        await edge.send_str(ping % ("x" * (4097 - len(ping % ""))))
        message = await asyncio.wait_for(edge.receive(), 2)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1009
    async with live.http.ws_connect(url) as binary:
        await next_json(binary)
        await binary.send_bytes(b"\x00\x01")
        message = await asyncio.wait_for(binary.receive(), 2)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1003


async def test_shutdown_closes_every_socket_with_1001(live_server: LiveFactory) -> None:
    live = await live_server()
    drop = await live.drop()
    sockets = [
        await live.http.ws_connect(live.url(f"/api/drops/{drop['id']}/ws")) for _ in range(3)
    ]
    for ws in sockets:
        await next_json(ws)
    closing = asyncio.create_task(live.server.close())
    for ws in sockets:
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1001
        await ws.close()
    await asyncio.wait_for(closing, 10)


async def test_a_quiet_watcher_is_pinged_and_one_that_never_answers_is_dropped(
    live_server: LiveFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's own heartbeat (aiohttp's is off, as it would write around the fan-out
    thread's lock): a client that answers pings stays, one that does not is cut."""
    from sneakerd.web.routes import live as live_route

    monkeypatch.setattr(live_route, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(live_route, "PONG_WAIT_SECONDS", 0.3)
    live = await live_server()
    drop = await live.drop(initialStock=3)
    path = live.url(f"/api/drops/{drop['id']}/ws")
    async with live.http.ws_connect(path, autoping=True) as answers:
        heard: list[aiohttp.WSMessage] = []

        async def listen() -> None:  # reading is what lets aiohttp answer the pings
            while True:
                heard.append(await answers.receive())

        listener = asyncio.create_task(listen())
        try:
            async with live.http.ws_connect(path, autoping=False) as mute:
                assert (await next_json(mute))["type"] == "snapshot"
                ping = await asyncio.wait_for(mute.receive(), 2)
                assert ping.type is aiohttp.WSMsgType.PING
                ended = await asyncio.wait_for(mute.receive(), 2)  # it never answers: cut
                # Cut without a close frame (the client sees 1006): never 1000, which tells
                # a client that the drop was deleted and that it should stop watching.
                assert ended.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), ended
                assert mute.close_code in (None, 1006), mute.close_code
            await asyncio.sleep(0.6)  # more heartbeats for the one that answers
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        assert [m.type for m in heard] == [aiohttp.WSMsgType.TEXT]  # its snapshot, no close
        await answers.send_json({"type": "ping"})
        assert (await next_json(answers))["type"] == "pong"
