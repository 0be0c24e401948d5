"""The database goes away for five seconds in the middle of a drop, then comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sneakerd.store import open_store
from tests.e2e.faults import CuttableProxy
from tests.serverproc import Server


@pytest.mark.mysql
async def test_a_database_outage_answers_503_fast_and_recovers_without_restart(
    mysql_url: str, tmp_path: Path
) -> None:
    proxy = await CuttableProxy(3306).start()
    name = mysql_url.rsplit("/", 1)[1]
    via_proxy = f"mysql://root@127.0.0.1:{proxy.port}/{name}"
    server = Server(via_proxy, {"RESERVATION_DURATION": "3000"}, tmp_path)
    await asyncio.to_thread(server.start)
    try:
        await asyncio.to_thread(
            server.admin_token_cli, "boss@example.com", "boss", "hunter2hunter2"
        )
        async with aiohttp.ClientSession() as http:

            async def call(
                method: str, path: str, token: str | None = None, body: Any = None
            ) -> tuple[int, Any, Any, float]:
                started = time.monotonic()
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with http.request(method, server.url + path, json=body, headers=headers) as r:
                    data = await r.json(content_type=None) if r.status != 204 else None
                    return r.status, data, r.headers, time.monotonic() - started

            _, login, _, _ = await call(
                "POST",
                "/api/users/login",
                None,
                {"email": "boss@example.com", "password": "hunter2hunter2"},
            )
            admin = login["token"]
            _, made, _, _ = await call(
                "POST", "/api/drops", admin, {"name": "Outage", "price": "10", "initialStock": 5}
            )
            drop_id = made["drop"]["id"]
            customers = []
            for i in range(3):
                _, reg, _, _ = await call(
                    "POST",
                    "/api/users/register",
                    None,
                    {
                        "username": f"cust{i}",
                        "email": f"cust{i}@example.com",
                        "password": "hunter2hunter2",
                    },
                )
                customers.append(reg["token"])
            status, hold, _, _ = await call(
                "POST", "/api/reservations", customers[0], {"dropId": drop_id}
            )
            assert status == 201
            deadline = hold["reservation"]["expiresAt"]

            proxy.cut()
            cut_at = time.monotonic()
            status, body, headers, took = await call(
                "POST", "/api/reservations", customers[1], {"dropId": drop_id}
            )
            assert status == 503 and body["error"]["code"] == "unavailable", body
            assert headers.get("Retry-After") and took < 6.5
            status, _, headers, took = await call("GET", "/readyz")
            assert status == 503 and headers.get("Retry-After") and took < 6.5
            status, body, _, took = await call("GET", f"/api/drops/{drop_id}")
            assert status == 503 and took < 6.5
            status, _, _, _ = await call("GET", "/healthz")
            assert status == 200  # the process itself is fine
            await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - cut_at)))
            proxy.restore()  # the hold's deadline passed while the database was away

            ready_by = time.monotonic() + 10
            while (await call("GET", "/readyz"))[0] != 200:
                assert time.monotonic() < ready_by, "never ready again"
                await asyncio.sleep(0.1)
            back_by = time.monotonic() + 3
            while True:
                status, body, _, _ = await call("GET", f"/api/drops/{drop_id}")
                if status == 200 and body["drop"]["stock"] == 5:
                    break
                assert time.monotonic() < back_by, f"the overdue hold was not expired: {body}"
                await asyncio.sleep(0.05)
            status, mine, _, _ = await call("GET", "/api/reservations/user", customers[0])
            assert mine["reservations"][0]["status"] == "expired"
            status, _, _, _ = await call(
                "POST", "/api/reservations", customers[1], {"dropId": drop_id}
            )
            assert status == 201
            assert deadline  # kept for the failure message above
    finally:
        out = await asyncio.to_thread(server.stop)
        await proxy.close()
    assert "Traceback" not in out, out
    store = await open_store(mysql_url)
    try:
        drop = await store.get_drop(drop_id)
        assert drop is not None and (drop.stock, drop.reserved) == (4, 1)
        assert await store.check(int(time.time() * 1000)) == []
    finally:
        await store.close()
