"""One user hammering a drop cannot drain it or starve the crowd."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.crowd import post as post_json
from tests.e2e.crowd import stage
from tests.serverproc import Server


async def test_a_hammering_user_gets_limits_and_the_crowd_still_gets_its_units(
    store_url: str, tmp_path: Path
) -> None:
    server = Server(store_url, {"RATE_LIMIT_RESERVE": "5"}, tmp_path)
    await asyncio.to_thread(server.start)
    try:
        async with aiohttp.ClientSession() as http:
            scene = await stage(http, server, users=21, prefix="fan", initialStock=21)
            drop_id, tokens = scene.drop_id, scene.tokens

            async def post(path: str, body: object, token: str | None = None) -> tuple[int, Any]:
                return await post_json(http, server, path, body, token)

            abuser, crowd = tokens[0], tokens[1:]
            hammer = [post("/api/reservations", {"dropId": drop_id}, abuser) for _ in range(300)]
            fair = [post("/api/reservations", {"dropId": drop_id}, t) for t in crowd]
            results = await asyncio.gather(*hammer, *fair)
            abuse = Counter(status for status, _ in results[:300])
            assert abuse[201] == 1, abuse  # perUserLimit 1: one unit, however fast it asks
            assert set(abuse) <= {201, 409, 429}, abuse
            assert abuse[429] >= 250, abuse  # 5/s: almost everything is turned away early
            assert all(status == 201 for status, _ in results[300:]), results[300:]
            async with http.post(
                server.url + "/api/reservations",
                json={"dropId": drop_id},
                headers={"Authorization": f"Bearer {abuser}"},
            ) as r:
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
    finally:
        out = await asyncio.to_thread(server.stop)
    assert "Traceback" not in out
