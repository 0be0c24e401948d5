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
        if [s for s, _ in answers] != [201] * 20:
            raise AssertionError(
                str(answers)[:300] + "\nA:" + a.stop()[-3000:] + "\nB:" + b.stop()[-3000:]
            )
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


async def _drop(http: aiohttp.ClientSession, node: Node, token: str, stock: int) -> int:
    status, body = await call(
        http,
        node,
        "POST",
        "/api/drops",
        token=token,
        json_body={
            "name": "Jordan",
            "price": "180.00",
            "initialStock": stock,
            "perUserLimit": 1000,
            "holdsPerUser": 1000,
        },
    )
    assert status == 201, body
    return int(body["drop"]["id"])


def _owner_and_other(cluster: Cluster, drop_id: int) -> tuple[Node, Node]:
    """The node holding the drop's lease (the preferred node takes a new drop at its next
    pass, a third of the lease time), and the other one."""
    deadline = time.monotonic() + 10
    while True:
        try:
            owner_id, _ = owner_of(cluster, drop_id)
            if owner_id:
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "no node took the drop"
        time.sleep(0.2)
    owner = next(n for n in cluster.nodes if n.node_id == owner_id)
    other = next(n for n in cluster.nodes if n is not owner)
    return owner, other


def _holds_in_db(cluster: Cluster, drop_id: int) -> dict[int, str]:
    import pymysql

    from sneakerd.store.mysql import MySQLParams

    params = MySQLParams.from_url(cluster.db_url)
    conn = pymysql.connect(
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        database=params.db,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, expires_at FROM reservations WHERE drop_id = %s AND status = 'active'",
                (drop_id,),
            )
            return {int(r[0]): r[1].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z" for r in cur}
    finally:
        conn.close()


async def test_killing_the_owner_mid_burst_moves_the_drop_within_the_lease_and_keeps_every_hold(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(2, LEASE_TTL=str(LEASE))
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, cluster.nodes[0])
        drop_id = await _drop(http, cluster.nodes[0], boss, 100_000)
        owner, survivor = _owner_and_other(cluster, drop_id)
        tokens = [await register(http, survivor) for _ in range(8)]
        acknowledged: dict[int, str] = {}
        refused: list[int] = []
        served_after_kill: list[float] = []
        killed_at: list[float] = []
        stop = time.monotonic() + 30

        async def shopper(token: str) -> None:
            while time.monotonic() < stop and not served_after_kill:
                sent_after_kill = bool(killed_at)
                target = survivor if sent_after_kill else owner
                try:
                    status, body = await reserve(http, target, token, drop_id)
                except aiohttp.ClientError:
                    continue
                if status == 201:
                    hold = body["reservation"]
                    acknowledged[hold["id"]] = hold["expiresAt"]
                    if sent_after_kill:
                        served_after_kill.append(time.monotonic())
                else:
                    assert status == 503, body  # no owner yet: never a guess
                    refused.append(status)
                    await asyncio.sleep(0.05)

        burst = [asyncio.create_task(shopper(t)) for t in tokens]
        await asyncio.sleep(1.0)
        killed_at.append(time.monotonic())
        owner.kill()
        await asyncio.gather(*burst)
        assert served_after_kill, "the survivor never took the drop over"
        took = served_after_kill[0] - killed_at[0]
        print(f"takeover: first hold served {took:.2f} s after the kill (LEASE_TTL {LEASE} ms)")
        assert took <= LEASE / 1000 + 2, f"took {took:.2f} s"
        new_owner, epoch = owner_of(cluster, drop_id)
        assert new_owner == survivor.node_id and epoch >= 2
        # Every 201 any client got is a hold in the database, with its original deadline.
        in_db = _holds_in_db(cluster, drop_id)
        missing = {rid for rid in acknowledged if rid not in in_db}
        assert not missing, sorted(missing)[:5]
        assert all(in_db[rid] == deadline for rid, deadline in acknowledged.items())
        status, body = await call(http, survivor, "GET", f"/api/drops/{drop_id}")
        assert status == 200 and body["drop"]["reserved"] == len(in_db)
        assert body["drop"]["stock"] + body["drop"]["reserved"] == 100_000
    db_check(cluster)


async def test_a_paused_owner_that_lost_its_lease_commits_nothing_when_it_wakes(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(2, LEASE_TTL=str(LEASE))
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, cluster.nodes[0])
        drop_id = await _drop(http, cluster.nodes[0], boss, 1_000)
        owner, other = _owner_and_other(cluster, drop_id)
        _, first_epoch = owner_of(cluster, drop_id)
        watchers = [
            Watcher(await http.ws_connect(f"{node.url}/api/drops/{drop_id}/ws"))
            for node in (owner, other)
        ]
        token = await register(http, other)
        for node in (owner, other):
            assert (await reserve(http, node, token, drop_id))[0] == 201
        owner.pause()
        try:
            # A request already on its way to the paused owner, and the lease running out.
            late = asyncio.create_task(reserve(http, owner, token, drop_id))
            await asyncio.sleep(LEASE / 1000 + 1.5)
            sold: list[int] = []
            for _ in range(5):
                status, body = await reserve(http, other, token, drop_id)
                if status == 201:
                    sold.append(body["reservation"]["id"])
                else:
                    assert status == 503, body
                    await asyncio.sleep(0.5)
            assert len(sold) >= 3, sold
            new_owner, epoch = owner_of(cluster, drop_id)
            assert new_owner == other.node_id and epoch > first_epoch
        finally:
            owner.resume()
        status, body = await asyncio.wait_for(late, 15)
        # The stale owner could not commit it: the caller hears 503 (retry), or the request
        # was forwarded to the new owner and made there; never a hold the new owner missed.
        assert status in (201, 503), body
        await asyncio.sleep(1.0)
        in_db = _holds_in_db(cluster, drop_id)
        expected = 2 + len(sold) + (1 if status == 201 else 0)
        assert len(in_db) == expected, (len(in_db), expected)
        status, body = await call(http, other, "GET", f"/api/drops/{drop_id}")
        assert body["drop"]["reserved"] == expected
        for watcher in watchers:
            assert strictly_rising(watcher.seqs()), watcher.seqs()
            await watcher.close()
    db_check(cluster)


async def test_one_key_sent_to_both_nodes_at_once_is_one_hold_and_never_a_503(
    start_cluster: Callable[..., Cluster],
) -> None:
    """A client that retries through the load balancer lands its twin on the other node while
    the first is still on its way: the twin is forwarded to the owner, whose commit finds the
    key's row already there. It gets the first answer replayed (or 409 request_in_progress),
    never a 503 that says nothing was done."""
    cluster = start_cluster(2, LEASE_TTL=str(LEASE), RATE_LIMIT_RESERVE="0")
    a = cluster.nodes[0]
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, a)
        drop_id = await _drop(http, a, boss, 100)
        owner, other = _owner_and_other(cluster, drop_id)
        buyer = await register(http, a)
        for round_ in range(6):
            key = f"twin-{round_}-" + uuid.uuid4().hex
            answers = await asyncio.gather(
                reserve(http, owner, buyer, drop_id, key=key),
                reserve(http, other, buyer, drop_id, key=key),
            )
            statuses = sorted(s for s, _ in answers)
            assert 503 not in statuses, answers
            held = {body["reservation"]["id"] for s, body in answers if s == 201}
            assert len(held) == 1, answers
            for status, body in answers:
                assert status == 201 or body["error"]["code"] == "request_in_progress", body
    assert len(_holds_in_db(cluster, drop_id)) == 6
    db_check(cluster)


async def _timed_reserve(
    http: aiohttp.ClientSession, node: Node, token: str, drop_id: int
) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    async with http.post(
        node.url + "/api/reservations",
        json={"dropId": drop_id},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        await resp.read()
        return resp.status, dict(resp.headers), time.monotonic() - started


async def test_a_write_forwarded_to_a_frozen_owner_is_a_quick_503_not_a_long_hang(
    start_cluster: Callable[..., Cluster],
) -> None:
    """The owner is frozen (SIGSTOP: a stalled VM) and still holds its lease (5 s, the
    default): a write that reaches the other node cannot be decided until the lease moves.
    Its caller hears 503 with Retry-After within a few seconds (the peer link's heartbeat
    finds the silent owner), and the callers after it as fast, not each after a long wait."""
    cluster = start_cluster(2, LEASE_TTL="5000")
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, cluster.nodes[0])
        drop_id = await _drop(http, cluster.nodes[0], boss, 1_000)
        owner, other = _owner_and_other(cluster, drop_id)
        token = await register(http, other)
        status, _, _ = await _timed_reserve(http, other, token, drop_id)
        assert status == 201  # the link to the owner is open and answering
        owner.pause()
        try:
            answers = [await _timed_reserve(http, other, token, drop_id) for _ in range(3)]
        finally:
            owner.resume()
        waits = [(status, round(seconds, 2)) for status, _, seconds in answers]
        assert answers[0][0] == 503, waits  # the lease cannot have moved yet
        # Was 7.5 s: a heartbeat every 5 s, and half of that for the pong.
        assert answers[0][2] < 3.5, waits
        for status, _, seconds in answers[1:]:
            # Until the lease moves (then the other node sells).
            assert status in (503, 201), waits
            assert seconds < 2.5, waits
        for status, headers, _ in answers:
            if status == 503:
                assert int(headers["Retry-After"]) >= 1, headers
        # Awake again, the owner answers (or the lease has moved): the drop sells on.
        deadline = time.monotonic() + 15
        while (await _timed_reserve(http, other, token, drop_id))[0] != 201:
            assert time.monotonic() < deadline, "the drop never sold again"
            await asyncio.sleep(0.2)
    db_check(cluster)


async def test_a_cli_pause_goes_through_the_node_that_owns_the_drop(
    start_cluster: Callable[..., Cluster],
) -> None:
    """No --server, no PORT: the CLI finds the owner from the drop's lease, and the owner's
    actor makes the change, so the watchers on both nodes hear of it at once (written around
    it, they heard only after the next shopper's request)."""
    cluster = start_cluster(2)
    async with aiohttp.ClientSession() as http:
        boss = await admin(http, cluster.nodes[0])
        drop_id = await _drop(http, cluster.nodes[0], boss, 10)
        owner, other = _owner_and_other(cluster, drop_id)
        watchers = [
            Watcher(await http.ws_connect(f"{node.url}/api/drops/{drop_id}/ws"))
            for node in (owner, other)
        ]
        env = {k: v for k, v in owner.server.env.items() if k not in ("PORT", "HOST")}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "sneakerd", "drops", "pause", str(drop_id),
             "--db", cluster.db_url],
            capture_output=True, text=True, timeout=60, env=env, cwd=cluster.workdir,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        for watcher in watchers:
            await watcher.wait_for(
                lambda w=watcher: any(
                    f["type"] == "dropUpdated" and f["drop"]["paused"] for f in w.frames
                ),
                within=3,
            )
            await watcher.close()
