"""`failover`: two nodes on one database and Redis prefix, a reservation burst through both, and
the drop's owner killed with SIGKILL mid-burst.

C connections reserve on one drop (stock to spare), half of them on each node (the survivor's
forwards its requests to the owner); at `--kill-after` s the owner gets SIGKILL, and every
connection that was on it moves to the survivor. The burst goes on until the survivor has
served for `--after` s (or `--max-seconds` pass). Reported: the time from the kill to the
first 201 the survivor served for a request sent after the kill (it has to wait for the dead
owner's lease, LEASE_TTL, to run out), the time until the lease row names the survivor
(polled every 50 ms: the server's side of the same move), the statuses before and after, and
the answers lost with the killed node's connections.

Checks: the survivor served within LEASE_TTL + 2 s and holds the lease at a higher epoch;
every 201 any client got is an active hold of the drop in the database with the deadline the
client was told; the drop's `reserved` is its active holds and stock + reserved the initial
stock; no answer other than 201, 503 (no owner yet) or a connection lost to the killed node;
`sneakerd db check` passes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import orjson

from loadtest import client, record, report
from loadtest.nodes import REDIS_URL, delete_prefix, node_server, redis_prefix
from loadtest.servers import Database, ServerProcess, raise_nofile, workdir
from loadtest.stats import Summary
from loadtest.users import insert_users, mint, sql
from loadtest.workersload import wait_owned

STOCK = 1_000_000
PER_USER = 1000
"""The API's largest perUserLimit: 500 users then have room for 500,000 holds."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lease-ms", type=int, default=5000, help="LEASE_TTL of both nodes")
    p.add_argument("--connections", "-c", type=int, default=16)
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--kill-after", type=float, default=3.0, help="seconds of burst before")
    p.add_argument("--after", type=float, default=2.0, help="seconds of burst after takeover")
    p.add_argument("--max-seconds", type=float, default=40.0)


@dataclass(frozen=True, slots=True)
class Answer:
    node: str
    sent: float
    done: float
    status: int
    body: bytes


def owner_of(db: Database, drop_id: int) -> tuple[str, int]:
    rows = sql(db, "SELECT owner, epoch FROM drop_leases WHERE drop_id = %s", (drop_id,))
    return (str(rows[0][0]), int(rows[0][1])) if rows else ("", 0)


def holds_in_db(db: Database, drop_id: int) -> dict[int, str]:
    rows = sql(
        db,
        "SELECT id, expires_at FROM reservations WHERE drop_id = %s AND status = 'active'",
        (drop_id,),
    )
    return {int(i): e.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z" for i, e in rows}


class Burst:
    """C shoppers, each on one node's connection, moving to the survivor after the kill."""

    def __init__(
        self,
        args: argparse.Namespace,
        nodes: dict[str, ServerProcess],
        tokens: list[str],
        drop_id: int,
        survivor: str,
    ) -> None:
        self.args = args
        self.nodes = nodes
        self.survivor = survivor
        self.requests = {
            name: [
                client.post_json(node.port, "/api/reservations", {"dropId": drop_id}, t)
                for t in tokens
            ]
            for name, node in nodes.items()
        }
        self.answers: list[Answer] = []
        self.killed_at: float | None = None
        self.served_at: float | None = None
        self.moved_at: float | None = None
        """When the lease row first named another owner (polled every 50 ms after the kill)."""
        self.stop_at = time.monotonic() + args.max_seconds

    def done(self) -> bool:
        now = time.monotonic()
        if now >= self.stop_at:
            return True
        return self.served_at is not None and now >= self.served_at + self.args.after

    async def shopper(self, slot: int) -> None:
        names = list(self.nodes)
        name = names[slot % len(names)]
        conn = await client.connect(self.nodes[name].port)
        k = slot
        try:
            while not self.done():
                if self.killed_at is not None and name != self.survivor:
                    conn.close()
                    name = self.survivor
                    conn = await client.connect(self.nodes[name].port)
                batch = self.requests[name]
                request = batch[k % len(batch)]
                k += self.args.connections
                sent = time.monotonic()
                try:
                    status, body = await conn.request(request)
                except (ConnectionError, ValueError) as exc:
                    status, body = 0, str(exc).encode()
                    conn.close()
                    if name != self.survivor:
                        name = self.survivor  # the killed node's connections go to the other
                    conn = await client.connect(self.nodes[name].port)
                now = time.monotonic()
                self.answers.append(Answer(name, sent, now, status, body))
                if (
                    status == 201
                    and self.killed_at is not None
                    and sent > self.killed_at
                    and self.served_at is None
                ):
                    self.served_at = now
                if status != 201:
                    await asyncio.sleep(0.02)  # a 503 says: retry; not in a tight loop
        finally:
            conn.close()

    async def killer(self, victim: ServerProcess, db: Database, drop_id: int, dead: str) -> None:
        await asyncio.sleep(self.args.kill_after)
        assert victim.proc is not None
        os.kill(victim.pid, signal.SIGKILL)
        self.killed_at = time.monotonic()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, victim.proc.wait)
        while not self.done():
            owner, _ = await loop.run_in_executor(None, owner_of, db, drop_id)
            if owner not in ("", dead):
                self.moved_at = time.monotonic()
                return
            await asyncio.sleep(0.05)


def record_burst(burst: Burst, started: float) -> None:
    """The burst's answers into the run's per-second samples, and the nodes serving over time
    (two until the kill, one after), for the report's charts."""
    recorder = record.current()
    for a in burst.answers:
        label = "error" if a.status == 0 else client.outcome_of(a.status, a.body)
        recorder.request(label, a.done - a.sent, a.done)
    recorder.gauge("nodes running", 2, "nodes", started)
    if burst.killed_at is not None:
        recorder.gauge("nodes running", 2, "nodes", burst.killed_at - 1e-3)
        recorder.gauge("nodes running", 1, "nodes", burst.killed_at)
    recorder.gauge("nodes running", 1 if burst.killed_at else 2, "nodes", time.monotonic())


def statuses(answers: list[Answer]) -> str:
    counts: dict[int, int] = {}
    for a in answers:
        counts[a.status] = counts.get(a.status, 0) + 1
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())) or "none"


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    with workdir() as wd:
        db = Database("mysql", wd)
        prefix = redis_prefix()
        nodes = {
            name: node_server(db.url, wd, name, prefix, hold_ms=600_000, lease_ms=args.lease_ms)
            for name in ("a", "b")
        }
        try:
            db.init()
            people = insert_users(db, args.users)
            for node in nodes.values():
                node.start()
            drop = await client.create_drop(
                nodes["a"].url,
                mint(people.admin, "admin"),
                stock=STOCK,
                per_user_limit=PER_USER,
                name="failover",
            )
            drop_id = int(drop["id"])
            await wait_owned(db, [drop_id])
            owner, epoch_before = owner_of(db, drop_id)
            survivor = next(n for n in nodes if n != owner)
            burst = Burst(args, nodes, [mint(u) for u in people.customers], drop_id, survivor)
            started = time.monotonic()
            await asyncio.gather(
                *(burst.shopper(s) for s in range(args.connections)),
                burst.killer(nodes[owner], db, drop_id, owner),
            )
            elapsed = time.monotonic() - started
            record_burst(burst, started)
            new_owner, epoch_after = owner_of(db, drop_id)
            final = await client.get_drop(nodes[survivor].url, drop_id)
            in_db = holds_in_db(db, drop_id)
            nodes[survivor].stop()
            passed, output = db.check()
        finally:
            for node in nodes.values():
                node.stop()
            delete_prefix(REDIS_URL, prefix)
            db.drop()

    killed_at = burst.killed_at or 0.0
    before = [a for a in burst.answers if a.sent < killed_at]
    after = [a for a in burst.answers if a.sent >= killed_at]
    told: dict[int, str] = {}
    for a in burst.answers:
        if a.status == 201:
            hold: dict[str, Any] = orjson.loads(a.body)["reservation"]
            told[int(hold["id"])] = str(hold["expiresAt"])
    missing = [rid for rid in told if rid not in in_db]
    wrong_deadline = [rid for rid, d in told.items() if rid in in_db and in_db[rid] != d]
    took = (burst.served_at - killed_at) if burst.served_at is not None else float("inf")
    last_before = max((a.done for a in before if a.status == 201), default=killed_at)
    limit = args.lease_ms / 1000 + 2
    odd = [a for a in burst.answers if a.status not in (201, 503, 0)]
    lost = [a for a in burst.answers if a.status == 0]
    refused = Summary.of(a.done - a.sent for a in after if a.status == 503)
    lines = [
        f"  two nodes (MariaDB, Redis), LEASE_TTL {args.lease_ms} ms; {args.connections} "
        f"connections, half on each node, on one drop of {STOCK:,}; the owner ({owner}, epoch "
        f"{epoch_before}) killed with SIGKILL {args.kill_after:g} s into the burst; "
        f"{elapsed:.1f} s in all",
        f"  before the kill: {len(before):,} answers ({statuses(before)})",
        f"  after the kill: {len(after):,} answers ({statuses(after)})",
        f"  connections lost with the killed node (status 0): {len(lost)}",
        f"  the last 201 for a request sent before the kill came "
        f"{(last_before - killed_at) * 1e3:+.0f} ms from the kill",
        report.summary_line("503s after the kill (latency)", refused),
        f"  time from the kill to the survivor's first 201: {took:.2f} s "
        f"(LEASE_TTL {args.lease_ms / 1000:g} s)",
        "  the lease row named the survivor "
        + (
            f"{burst.moved_at - killed_at:.2f} s after the kill"
            if burst.moved_at is not None
            else "never during the burst"
        )
        + f"; lease now: {new_owner} at epoch {epoch_after}",
        "",
        report.check(took <= limit, f"the survivor served within LEASE_TTL + 2 s: {took:.2f} s"),
        report.check(
            new_owner == survivor and epoch_after > epoch_before,
            f"the survivor {survivor} holds the lease at a higher epoch "
            f"({epoch_before} -> {epoch_after})",
        ),
        report.check(
            bool(told) and not missing and not wrong_deadline,
            f"every 201 is an active hold with its deadline: {len(told):,} 201s, "
            f"{len(missing)} missing, {len(wrong_deadline)} with another deadline",
        ),
        report.check(
            int(final["reserved"]) == len(in_db)
            and int(final["stock"]) + int(final["reserved"]) == STOCK,
            f"the drop's reserved {final['reserved']:,} = its active holds {len(in_db):,}; "
            f"stock + reserved = {int(final['stock']) + int(final['reserved']):,}",
        ),
        report.check(not odd, f"no answer but 201, 503 or a lost connection: {len(odd)} others"),
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
    ]
    print(report.header("failover", lines))
    return 0 if all("[PASS]" in line for line in lines if line.startswith("  [")) else 1
