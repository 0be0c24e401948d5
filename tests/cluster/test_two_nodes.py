"""Two real nodes on one MariaDB database and one Redis: routing, events, failover, the fence.

Each node is a `sneakerd serve` process with REDIS_URL set; a drop's writes go to the node
holding its lease, wherever they arrive, and every node's watchers get its events over Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.cluster.conftest import Cluster, Node

LEASE = 2_000
PASSWORD = "hunter2hunter2"


async def call(
    http: aiohttp.ClientSession,
    node: Node,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    async with http.request(method, node.url + path, json=json_body, headers=h) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


async def register(http: aiohttp.ClientSession, node: Node) -> str:
    name = "u" + uuid.uuid4().hex[:10]
    status, body = await call(
        http,
        node,
        "POST",
        "/api/users/register",
        json_body={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert status == 201, body
    return str(body["token"])


async def admin(http: aiohttp.ClientSession, node: Node) -> str:
    name = "a" + uuid.uuid4().hex[:8]
    node.server.admin_token_cli(f"{name}@example.com", name, PASSWORD)
    status, body = await call(
        http,
        node,
        "POST",
        "/api/users/login",
        json_body={"email": f"{name}@example.com", "password": PASSWORD},
    )
    assert status == 200, body
    return str(body["token"])


async def reserve(
    http: aiohttp.ClientSession, node: Node, token: str, drop_id: int, key: str | None = None
) -> tuple[int, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return await call(
        http,
        node,
        "POST",
        "/api/reservations",
        token=token,
        json_body={"dropId": drop_id},
        headers=headers,
    )


def cluster_status(cluster: Cluster) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", "cluster", "status", "--json", "--db", cluster.db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cluster.workdir,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def owner_of(cluster: Cluster, drop_id: int) -> tuple[str, int]:
    for lease in cluster_status(cluster)["drops"]:
        if lease["id"] == drop_id:
            return str(lease["owner"]), int(lease["epoch"])
    raise AssertionError(f"drop {drop_id} has no lease")


def db_check(cluster: Cluster) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", "db", "check", "--db", cluster.db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cluster.workdir,
    )
    assert done.returncode == 0, done.stdout + done.stderr


class Watcher:
    """A WebSocket on one node, keeping every frame; checks seq never goes backwards."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames if "seq" in f]

    def last_stock(self) -> int | None:
        for frame in reversed(self.frames):
            if frame["type"] == "stockUpdate":
                return int(frame["newStock"])
            if frame["type"] == "snapshot":
                return int(frame["drop"]["stock"])
        return None

    async def wait_for(self, check: Callable[[], bool], within: float = 10) -> None:
        deadline = time.monotonic() + within
        while not check():
            assert time.monotonic() < deadline, self.frames[-5:]
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.ws.close()
        await self.task


def strictly_rising(seqs: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(seqs))


async def test_a_watcher_on_one_node_sees_every_change_made_through_either_in_order(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(2, LEASE_TTL=str(LEASE))
    a, b = cluster.nodes
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, a)
        status, body = await call(
            http,
            a,
            "POST",
            "/api/drops",
            token=boss,
            json_body={"name": "Dunk", "price": "100.00", "initialStock": 50, "perUserLimit": 2},
        )
        assert status == 201, body
        drop_id = body["drop"]["id"]
        watcher = Watcher(await http.ws_connect(f"{b.url}/api/drops/{drop_id}/ws"))
        tokens = [await register(http, a if i % 2 else b) for i in range(10)]
        answers = await asyncio.gather(
            *(reserve(http, node, t, drop_id) for t in tokens for node in (a, b))
        )
        assert [s for s, _ in answers] == [201] * 20, answers
        # perUserLimit 2 holds across the nodes: a third hold anywhere is refused.
        third = await asyncio.gather(*(reserve(http, a, t, drop_id) for t in tokens))
        assert {(s, body["error"]["code"]) for s, body in third} == {(409, "limit_reached")}
        # One Idempotency-Key, sent through one node and then the other: one hold.
        buyer = await register(http, b)
        key = "k-" + uuid.uuid4().hex
        first = await reserve(http, a, buyer, drop_id, key=key)
        again = await reserve(http, b, buyer, drop_id, key=key)
        assert first[0] == 201 and again == first, (first, again)
        await watcher.wait_for(lambda: watcher.last_stock() == 50 - 21)
        assert strictly_rising(watcher.seqs()), watcher.seqs()
        status, health = await call(http, b, "GET", "/healthz")
        assert status == 200 and health["node"] == b.node_id
        owner, _ = owner_of(cluster, drop_id)
        assert owner in (a.node_id, b.node_id)
        await watcher.close()
    db_check(cluster)
