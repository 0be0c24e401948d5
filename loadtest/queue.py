"""`queue`: a waiting room's opening burst. N users (100,000 by default) join one queued drop as
fast as C connections allow, before its `startsAt` (so every ticket gets a random key: the
largest live state). Reports join throughput and latency (target p99 <= 50 ms) and the bytes per
queued user, two ways:

- the live state alone (target <= 200): the same N joins decided by the drop's book and applied
  to a `WaitingRoom` in this process, RSS growth / N (GC'd, as a server would hold it);
- the server's whole RSS growth over the burst / N, after a warm-up burst on another queued drop
  that fills the server's caches of users and tokens (so what grows is the second room, plus
  whatever the allocator keeps from the burst's traffic).

Checks afterwards: one ticket row per user, every join a 200, and a sample of tickets read back
with no position (the order is drawn at startsAt)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from loadtest import client, probes, report
from loadtest.servers import Database, ServerProcess, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Summary
from loadtest.users import insert_users, mint, sql


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--concurrency", "-c", type=int, default=64)
    p.add_argument("--no-warm", action="store_true", help="skip the warm-up burst")


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def live_state_bytes(users: int) -> tuple[float, float]:
    """Bytes per queued user of a room built the way the actor builds it (batches of 500 joins
    decided by the book, applied after each 'commit'), and the seconds the deciding took."""
    from sneakerd.domain.book import DropBook
    from sneakerd.domain.commands import JoinQueue
    from sneakerd.domain.model import Drop, DropInfo, DropState

    class NoIds:
        def reservation(self) -> int:
            raise AssertionError

        def purchase(self) -> int:
            raise AssertionError

        def entry(self) -> int:
            raise AssertionError

    now = int(time.time() * 1000)
    info = DropInfo(name="q", price=Decimal("1.00"), starts_at=now + 3_600_000, queue=True)
    state = DropState(Drop(1, info, 100, 100, 0, 0, 1, now, now))
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    for first in range(1, users + 1, 500):
        book = DropBook(state, now=now, hold_ms=60_000, ids=NoIds())
        for user in range(first, min(first + 500, users + 1)):
            book.decide(JoinQueue(user))
        outcome = book.finish()
        state.apply(outcome.drop, outcome.delta)
        assert outcome.queue is not None
        state.queue.apply(outcome.queue)
        del book, outcome
    seconds = time.perf_counter() - started
    gc.collect()
    grown = (rss_kib() - before) * 1024
    assert len(state.queue) == users
    return grown / users, seconds


async def create_queued_drop(server: ServerProcess, admin: str, starts_at: datetime) -> int:
    body = {
        "name": "queue",
        "price": "199.99",
        "initialStock": 500,
        "queue": True,
        "startsAt": starts_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.url + "/api/drops", json=body, headers={"Authorization": f"Bearer {admin}"}
        ) as response,
    ):
        data = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST /api/drops answered {response.status}: {data}")
        return int(data["drop"]["id"])


async def join_burst(
    server: ServerProcess, drop_id: int, tokens: list[str], concurrency: int
) -> tuple[list[client.Result], float]:
    path = f"/api/drops/{drop_id}/queue"
    batch = [client.post_json(server.port, path, {}, token) for token in tokens]
    return await client.run_load(server.port, batch, concurrency)


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    per_user_live, decide_s = live_state_bytes(args.users)
    with workdir() as wd:
        db = Database(args.store, wd)
        server = sneakerd_server(db.url, wd)
        try:
            db.init()
            people = insert_users(db, args.users)
            server.start()
            admin = mint(people.admin, "admin")
            later = datetime.now(UTC) + timedelta(hours=1)
            tokens = [mint(u) for u in people.customers]
            if not args.no_warm:
                warm = await create_queued_drop(server, admin, later)
                await join_burst(server, warm, tokens, args.concurrency)
            drop_id = await create_queued_drop(server, admin, later)
            await asyncio.sleep(1.0)
            rss_before = server.rss_kib()
            meter = probes.CpuMeter(
                {
                    "server": server.pid,
                    "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                    "loadtest": os.getpid(),
                }
            )
            meter.start()
            results, elapsed = await join_burst(server, drop_id, tokens, args.concurrency)
            meter.stop()
            await asyncio.sleep(1.0)
            rss_after = server.rss_kib()
            metrics = probes.actor_figures(await probes.scrape(server.url), drop_id)
            sample = await read_sample(server, drop_id, tokens[:: max(1, len(tokens) // 50)])
            code = server.stop()
            [(rows,)] = sql(
                db,
                "SELECT COUNT(DISTINCT user_id) FROM queue_tickets WHERE drop_id = %s",
                (drop_id,),
            )
        finally:
            server.stop()
            db.drop()
    ok = [r for r in results if r.status == 200]
    joins = Summary.of(r.done - r.sent for r in ok)
    per_user_server = (rss_after - rss_before) * 1024 / args.users
    checks = [
        report.check(len(ok) == args.users, f"every join answered 200: {len(ok)}/{args.users}"),
        report.check(rows == args.users, f"one ticket row per user: {rows}"),
        report.check(all(p is None for p in sample), "sampled tickets have no position yet"),
        report.check(joins.p99 <= 0.050, f"join p99 {joins.p99 * 1e3:.1f} ms (target 50)"),
        report.check(
            per_user_live <= 200, f"live state {per_user_live:.0f} bytes/user (target 200)"
        ),
    ]
    lines = [
        f"  store={args.store} users={args.users} concurrency={args.concurrency} "
        f"warm={not args.no_warm}",
        *report.outcome_table(client.outcomes_of(results), elapsed),
        meter.line(),
        report.summary_line("POST /queue (200s)", joins),
        metrics,
        f"  live state (in-process room, {args.users} joins in batches of 500): "
        f"{per_user_live:.0f} bytes/user; deciding took {decide_s:.2f} s",
        f"  server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB: "
        f"{per_user_server:.0f} bytes/user (whole process); server exit code {code}",
        *checks,
    ]
    print(report.header("queue", lines))
    return 0 if all("[PASS]" in c for c in checks) else 1


async def read_sample(server: ServerProcess, drop_id: int, tokens: list[str]) -> list[object]:
    positions: list[object] = []
    async with aiohttp.ClientSession() as session:
        for token in tokens:
            async with session.get(
                f"{server.url}/api/drops/{drop_id}/queue/me",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                body = await response.json()
                positions.append(body["ticket"]["position"] if response.status == 200 else "bad")
    return positions
