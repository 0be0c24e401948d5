"""Webhooks across a kill -9: every committed act is delivered at least once, signed, with a
stable id, in commit order per drop, and nothing is sent for an act that did not commit.

A real receiver (loopback aiohttp server) fails each event's first delivery with a 500 and
records every delivery; the server is a real process, killed with SIGKILL mid-burst and
restarted on the same database.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.receiver import Receiver
from sneakerd.store import Store, open_store
from tests.e2e.crowd import stage
from tests.serverproc import Server, free_port
from tests.store.helpers import sql


def cli(db_url: str, cwd: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", *args, "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


async def _burst(http: aiohttp.ClientSession, server: Server, drop_id: int, tokens: list[str]):
    """Each user reserves, then buys about half of its holds and leaves the rest to expire."""

    async def shopper(token: str, seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {token}"}
        while True:
            try:
                async with http.post(
                    server.url + "/api/reservations", json={"dropId": drop_id}, headers=headers
                ) as r:
                    if r.status != 201:
                        await asyncio.sleep(0.05)
                        continue
                    hold = (await r.json())["reservation"]
                if rng.random() < 0.5:
                    async with http.post(
                        server.url + "/api/purchases",
                        json={"reservationId": hold["id"]},
                        headers=headers,
                    ) as r:
                        await r.read()
                await asyncio.sleep(0.03)
            except (aiohttp.ClientError, ConnectionError):
                return

    return [asyncio.create_task(shopper(t, i)) for i, t in enumerate(tokens)]


async def _committed(store: Store, drop_id: int) -> dict[str, set[int]]:
    """What really committed, read from the database."""
    purchases = await sql(store, "SELECT id FROM purchases WHERE drop_id = %s", (drop_id,))
    holds = await sql(store, "SELECT id, status FROM reservations WHERE drop_id = %s", (drop_id,))
    return {
        "purchase.completed": {int(r[0]) for r in purchases},
        "reservation.created": {int(r[0]) for r in holds},
        "reservation.expired": {int(r[0]) for r in holds if r[1] == "expired"},
    }


def _subject_id(payload: dict[str, Any]) -> int:
    data = payload["data"]
    return int((data.get("purchase") or data.get("reservation") or data["drop"])["id"])


async def test_webhooks_survive_kill_9(store_url: str, tmp_path: Path) -> None:
    receiver = await Receiver(fail_first=True).start()
    try:
        cli(store_url, tmp_path, "db", "init")
        added = cli(store_url, tmp_path, "webhooks", "add", receiver.url, "--json")
        receiver.secret = added["secret"]
        env = {"RESERVATION_DURATION": "600", "WEBHOOK_RETRY_BASE": "5"}
        server = Server(store_url, env, tmp_path).start()
        try:
            async with aiohttp.ClientSession() as http:
                scene = await stage(
                    http,
                    server,
                    users=8,
                    prefix="hook",
                    initialStock=5_000,
                    perUserLimit=1_000,
                    holdsPerUser=1_000_000,
                )
                shoppers = await _burst(http, server, scene.drop_id, scene.tokens)
                await asyncio.sleep(1.5)
                assert receiver.got, "nothing was delivered during the burst"
                assert server.proc is not None
                server.proc.send_signal(signal.SIGKILL)
                await asyncio.wait_for(asyncio.gather(*shoppers), 10)
        finally:
            server.stop()
        before_restart = len(receiver.got)
        await asyncio.sleep(1.0)  # holds made before the crash are now past their deadline

        server.port = free_port()
        await asyncio.to_thread(server.start)
        store = await open_store(store_url)
        try:
            deadline = time.monotonic() + 90
            while True:  # until every committed act has been delivered
                committed = await _committed(store, scene.drop_id)
                delivered = receiver.delivered()
                got: dict[str, set[int]] = {kind: set() for kind in committed}
                for r in delivered.values():
                    if r.type in got:
                        got[r.type].add(_subject_id(r.payload))
                missing = {k: committed[k] - got[k] for k in committed if committed[k] - got[k]}
                if not missing and not await _active(store, scene.drop_id):
                    break
                assert time.monotonic() < deadline, f"never delivered: {missing}"
                await asyncio.sleep(0.25)
        finally:
            await store.close()
            out = server.stop()
    finally:
        await receiver.stop()
    assert "Traceback" not in out
    assert len(receiver.got) > before_restart, "nothing was delivered after the restart"
    assert len(committed["purchase.completed"]) > 20 and len(committed["reservation.expired"]) > 20

    # Nothing for an act that did not commit: every delivered subject is in the database, and
    # in the state its event says.
    for r in receiver.delivered().values():
        if r.type in committed:
            assert _subject_id(r.payload) in committed[r.type], r.payload
    # Every delivery is signed with the webhook's secret; an event's retries send the same
    # bytes under the same id.
    assert all(r.signed for r in receiver.got)
    bodies: dict[int, bytes] = {}
    for r in receiver.got:
        assert bodies.setdefault(r.event_id, r.body) == r.body
    # First deliveries in commit order (event ids rise in commit order within a drop), and a
    # hold's creation is sent before its purchase or expiry.
    first = receiver.first_seen()
    assert first == sorted(first)
    # Each event's first delivery was refused, so each was retried until it got its 200.
    tries: dict[int, int] = {}
    for r in receiver.got:
        tries[r.event_id] = tries.get(r.event_id, 0) + 1
    assert all(tries[e] >= 2 for e in receiver.delivered())
    print(f"events {len(first)}, deliveries {len(receiver.got)}, committed {_sizes(committed)}")
    created_at: dict[int, int] = {}
    for event_id in first:
        payload = json.loads(bodies[event_id])
        if payload["type"] == "reservation.created":
            created_at[_subject_id(payload)] = event_id
    for event_id in first:
        payload = json.loads(bodies[event_id])
        if payload["type"] == "reservation.expired":
            assert created_at[_subject_id(payload)] < event_id
        if payload["type"] == "purchase.completed":
            rid = int(payload["data"]["purchase"]["reservationId"])
            assert created_at[rid] < event_id


async def _active(store: Store, drop_id: int) -> int:
    rows = await sql(
        store,
        "SELECT COUNT(*) FROM reservations WHERE drop_id = %s AND status = 'active'",
        (drop_id,),
    )
    return int(rows[0][0])


def _sizes(committed: dict[str, set[int]]) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in committed.items()}
