"""kill -9 in the middle of a burst, then a restart on the same database."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from sneakerd.clock import parse_iso
from sneakerd.store import open_store
from tests.e2e.crowd import stage
from tests.serverproc import Server, free_port


async def test_kill_9_mid_burst_loses_no_acknowledged_hold(store_url: str, tmp_path: Path) -> None:
    server = Server(store_url, {"RESERVATION_DURATION": "2500"}, tmp_path).start()
    acknowledged: dict[int, int] = {}  # reservation id -> expiresAt (ms)
    try:
        async with aiohttp.ClientSession() as http:
            scene = await stage(
                http,
                server,
                users=24,
                prefix="crash",
                initialStock=20_000,
                perUserLimit=1000,
                holdsPerUser=1_000_000,
            )
            drop_id, tokens = scene.drop_id, scene.tokens

            async def hammer(token: str) -> None:
                while True:
                    try:
                        async with http.post(
                            server.url + "/api/reservations",
                            json={"dropId": drop_id},
                            headers={"Authorization": f"Bearer {token}"},
                        ) as r:
                            if r.status != 201:
                                return
                            hold = (await r.json())["reservation"]
                            acknowledged[hold["id"]] = parse_iso(hold["expiresAt"])
                    except (aiohttp.ClientError, ConnectionError):
                        return

            workers = [asyncio.create_task(hammer(t)) for t in tokens]
            await asyncio.sleep(1.0)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*workers), 10)
    finally:
        server.stop()
    assert len(acknowledged) > 50
    await asyncio.sleep(3.0)  # every hold made before the crash is now past its deadline

    server.port = free_port()
    await asyncio.to_thread(server.start)
    restarted = int(time.time() * 1000)
    try:
        store = await open_store(store_url)
        try:
            while True:  # holds that expired while it was down are expired at start-up
                [(overdue,)] = await _count_overdue(store, restarted)
                if overdue == 0:
                    break
                assert time.time() * 1000 - restarted < 1000, f"{overdue} holds still overdue"
                await asyncio.sleep(0.05)
            for rid, expires_at in acknowledged.items():
                record = await store.get_reservation(rid)
                assert record is not None, f"acknowledged hold {rid} was lost"
                assert record.expires_at == expires_at
                assert record.status.value == "expired"
            drop = await store.get_drop(drop_id)
            assert drop is not None and drop.reserved == 0 and drop.stock == 20_000
            assert await store.check(int(time.time() * 1000)) == []
        finally:
            await store.close()
    finally:
        out = server.stop()
    assert "Traceback" not in out


async def _count_overdue(store: object, now: int) -> list[tuple[int]]:
    from tests.store.helpers import ms, sql

    return [
        tuple(row)
        for row in await sql(  # type: ignore[misc]
            store,  # type: ignore[arg-type]
            "SELECT COUNT(*) FROM reservations WHERE status = 'active' AND expires_at <= %s",
            (ms(store, now),),  # type: ignore[arg-type]
        )
    ]
