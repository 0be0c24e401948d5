"""Webhooks on two real nodes: a drop's events are delivered by the node that owns the drop,
once each while nothing fails, and by the new owner after the old one is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from loadtest.receiver import Receiver
from tests.cluster.conftest import Cluster
from tests.cluster.test_two_nodes import admin, call, owner_of, register, reserve

LEASE = 2_000


async def _wait(check: Callable[[], bool], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_the_owner_delivers_and_its_successor_takes_over(
    start_cluster: Callable[..., Cluster],
) -> None:
    receiver = await Receiver().start()
    cluster = start_cluster(2, LEASE_TTL=str(LEASE))
    a, b = cluster.nodes
    try:
        async with aiohttp.ClientSession() as http:
            boss = await admin(http, a)
            status, made = await call(
                http, b, "POST", "/api/admin/webhooks", token=boss,
                json_body={"url": receiver.url, "events": ["reservation.created"]},
            )  # fmt: skip
            assert status == 201, made
            receiver.secret = made["secret"]
            drops = []
            for name in ("one", "two", "three", "four"):
                status, body = await call(
                    http, a, "POST", "/api/drops", token=boss,
                    json_body={"name": name, "price": "10", "initialStock": 100,
                               "perUserLimit": 50},
                )  # fmt: skip
                assert status == 201, body
                drops.append(int(body["drop"]["id"]))
            tokens = [await register(http, a) for _ in range(3)]
            await asyncio.sleep(1.5)  # both nodes have read that a webhook exists
            for i, drop_id in enumerate(drops * 3):
                node = (a, b)[i % 2]  # reserve through either node: the owner decides
                status, body = await reserve(http, node, tokens[i % 3], drop_id)
                assert status == 201, body
            await _wait(lambda: len(receiver.got) >= 12)
            await asyncio.sleep(0.5)
            owners = {d: owner_of(cluster, d)[0] for d in drops}
            by_event = {r.event_id: r for r in receiver.got}
            assert len(receiver.got) == len(by_event) == 12  # once each: one node per drop
            for r in receiver.got:
                drop_id = r.payload["data"]["reservation"]["dropId"]
                assert r.node == owners[drop_id] and r.signed

            # Kill the owner of the first drop; its new owner delivers what comes next.
            victim = a if owners[drops[0]] == a.node_id else b
            survivor = b if victim is a else a
            victim.kill()
            deadline = time.monotonic() + LEASE / 1000 + 10
            while True:
                status, body = await reserve(http, survivor, tokens[0], drops[0])
                if status == 201:
                    break
                assert status == 503 and time.monotonic() < deadline, body
                await asyncio.sleep(0.2)
            await _wait(lambda: any(r.event_id not in by_event for r in receiver.got))
            [late] = [r for r in receiver.got if r.event_id not in by_event]
            assert late.node == survivor.node_id
            assert late.payload["data"]["reservation"]["id"] == body["reservation"]["id"]
    finally:
        await receiver.stop()
