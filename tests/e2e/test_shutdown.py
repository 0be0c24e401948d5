"""SIGTERM in the middle of a burst: answered requests are committed, watchers are told
1001 (going away), new connections are refused, and the process exits within 10 s."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from sneakerd.store import open_store
from tests.e2e.crowd import stage
from tests.serverproc import Server


async def test_sigterm_under_load_loses_nothing_acknowledged(
    store_url: str, tmp_path: Path
) -> None:
    server = Server(store_url, {}, tmp_path).start()
    try:
        async with aiohttp.ClientSession() as http:
            scene = await stage(
                http,
                server,
                users=32,
                prefix="crowd",
                initialStock=10_000,
                perUserLimit=1000,
                holdsPerUser=1_000_000,
            )
            drop_id, tokens = scene.drop_id, scene.tokens
            acknowledged: list[int] = []
            statuses: list[object] = []

            async def hammer(token: str) -> None:
                while True:
                    try:
                        async with http.post(
                            server.url + "/api/reservations",
                            json={"dropId": drop_id},
                            headers={"Authorization": f"Bearer {token}"},
                        ) as r:
                            statuses.append(r.status)
                            if r.status == 201:
                                acknowledged.append((await r.json())["reservation"]["id"])
                            elif r.status >= 500:
                                await r.read()
                                return
                    except (aiohttp.ClientError, ConnectionError):
                        return

            watchers = [
                await http.ws_connect(f"{server.url}/api/drops/{drop_id}/ws") for _ in range(3)
            ]

            async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
                async for _ in ws:  # snapshot and stock updates until the server closes
                    pass
                return ws.close_code

            endings = [asyncio.create_task(close_code(ws)) for ws in watchers]
            workers = [asyncio.create_task(hammer(t)) for t in tokens]
            await asyncio.sleep(1.0)
            assert server.proc is not None
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            # A newcomer after the signal is turned away, never served half-way.
            try:
                async with aiohttp.ClientSession() as late, late.get(server.url + "/healthz") as r:
                    late_status: object = r.status
            except (aiohttp.ClientError, ConnectionError) as exc:
                late_status = type(exc).__name__
            await asyncio.wait_for(asyncio.gather(*workers), 15)
            codes = await asyncio.wait_for(asyncio.gather(*endings), 15)
            code = await asyncio.to_thread(server.proc.wait, 15)
            elapsed = time.monotonic() - started
        assert codes == [1001, 1001, 1001], codes
        assert late_status != 200, late_status
        assert code == 0 and elapsed < 10, (code, elapsed)
        assert len(acknowledged) > 50
        assert all(s in (201, 503) for s in statuses), set(map(str, statuses))
    finally:
        out = server.stop()
    assert "Traceback" not in out, out
    store = await open_store(store_url)
    try:
        for rid in acknowledged:
            record = await store.get_reservation(rid)
            assert record is not None and record.status.value == "active", rid
        drop = await store.get_drop(drop_id)
        assert drop is not None and drop.reserved == len(acknowledged)
        assert await store.check(int(time.time() * 1000)) == []
    finally:
        await store.close()
