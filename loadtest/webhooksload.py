"""`webhooks`: the reserve p99 under a ~2,000 holds/s burst, with a webhook subscribed and without,
in the same run. After a warm-up round (without; shown, not counted: on a fresh server and
database the first round is the slowest, which skewed the "without" median), rounds alternate
(without, with, without, with, ...) on one server, each on a fresh drop; for the "with" rounds a
receiver (a process of its own, answering 200) is registered through the admin API before the
round and removed after it, so every hold of such a round writes its `reservation.created` event
in the batch's commit and is delivered.

Reports per round: holds/s, reserve p50 / p99 / max, then the median p99 of each kind and the
ratio (target: with <= 1.10 x without), the events written and delivered and how long the
outbox took to drain after the burst, the CPU each process used during each burst (on two cores
the server, MariaDB, the load generator, the receiver and a deliverer process share them) and
the actor's batches (how many holds each commit carried, how long it took). Checks: every
request of every round was a 201, every event of the "with" rounds was delivered, none was
written in a "without" round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import aiohttp

from loadtest import client, probes, report
from loadtest.servers import REPO_ROOT, Database, free_port, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Summary, median
from loadtest.users import insert_users, mint, sql


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--rate", type=float, default=2000.0, help="holds per second (open loop)")
    p.add_argument("--duration", "-d", type=float, default=6.0, help="seconds per round")
    p.add_argument("--rounds", "-r", type=int, default=3, help="rounds of each kind")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="rounds without a webhook first, shown but not counted (a fresh server and "
        "database make the first round the slowest)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds of quiet before each round, so that neither kind of round meets the "
        "database's deferred work (purge, page flushes) from the round before it",
    )
    p.add_argument("--connections", "-c", type=int, default=64)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument(
        "--external",
        action="store_true",
        help="deliver from a `sneakerd webhooks deliver` process (server: WEBHOOK_DELIVER=0)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="run the server under cProfile and print its top N functions (slows it down)",
    )


async def _admin(
    server_url: str, token: str, method: str, path: str, body: object = None
) -> object:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, server_url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}")
        return await response.json() if response.status != 204 else None


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    with workdir() as wd:
        db = Database(args.store, wd)
        profile = wd / "sneakerd.prof" if args.profile else None
        extra = {"WEBHOOK_DELIVER": "0"} if args.external else None
        server = sneakerd_server(db.url, wd, hold_ms=3_600_000, profile=profile, extra=extra)
        deliverer: subprocess.Popen[str] | None = None
        top = ""
        port = free_port()
        receiver = _start_receiver(port)
        try:
            db.init()
            people = insert_users(db, args.users)
            server.start()
            if args.external:
                deliverer = _start_deliverer(db.url)
            admin = mint(people.admin, "admin")
            tokens = [mint(u) for u in people.customers]
            lines: list[str] = []
            rows: dict[str, list[float]] = {"without": [], "with": []}
            ok = True
            cpu_lines: list[str] = []
            actor_lines: list[str] = []
            pids: dict[str, int | None] = {
                "server": server.pid,
                "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                "loadtest": os.getpid(),
                "receiver": receiver.pid,
                "deliverer": None if deliverer is None else deliverer.pid,
            }
            per_round = int(args.rate * args.duration)
            for n in range(args.warmup + args.rounds * 2):
                counted = n - args.warmup
                kind = "warm-up" if counted < 0 else "with" if counted % 2 else "without"
                await asyncio.sleep(args.settle)
                drop = await client.create_drop(
                    server.url, admin, stock=per_round + 1000, per_user_limit=1000
                )
                drop_id = int(drop["id"])
                hook_id = None
                if kind == "with":
                    made = await _admin(
                        server.url,
                        admin,
                        "POST",
                        "/api/admin/webhooks",
                        {"url": f"http://127.0.0.1:{port}/hook"},
                    )
                    hook_id = made["webhook"]["id"]  # type: ignore[index]
                body = {"dropId": drop_id}
                requests = [
                    client.post_json(
                        server.port, "/api/reservations", body, tokens[i % len(tokens)]
                    )
                    for i in range(per_round)
                ]
                conns = await client.open_connections(server.port, args.connections)
                meter = probes.CpuMeter(pids)
                meter.start()
                results, elapsed = await client.run_load(
                    server.port, requests, args.connections, rate=args.rate, connections=conns
                )
                meter.stop()
                cpu_lines.append(f"  {n + 1:>5} {kind:>8} " + meter.line().split(": ", 1)[1])
                actor = probes.actor_figures(await probes.scrape(server.url), drop_id)
                actor_lines.append(f"  {n + 1:>5} {kind:>8} " + actor.split(": ", 1)[-1])
                good = [r for r in results if r.status == 201]
                ok &= len(good) == len(results) == per_round
                s = Summary.of(r.done - r.sent for r in results)
                if counted >= 0:
                    rows[kind].append(s.p99)
                drained = await _drain(db, drop_id, kind == "with")
                written, delivered, drain_s = drained
                ok &= (written == delivered == per_round) if kind == "with" else written == 0
                if hook_id is not None:
                    await _admin(server.url, admin, "DELETE", f"/api/admin/webhooks/{hook_id}")
                lines.append(
                    f"  {n + 1:>5} {kind:>8} {len(results) / elapsed:>9,.0f} {s.ms()}"
                    f" {written:>8} {delivered:>9} {drain_s:>8.2f}"
                )
        finally:
            server.stop()
            if profile is not None and profile.exists():
                top = report.profile_top(profile, args.profile)
            receiver.terminate()
            receiver.wait(10)
            if deliverer is not None:
                deliverer.terminate()
                deliverer.wait(10)
            db.drop()
    without, with_ = median(rows["without"]), median(rows["with"])
    ratio = with_ / without if without else float("nan")
    out = [
        f"  {'round':>5} {'webhook':>8} {'holds/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'events':>8} {'delivered':>9} {'drain s':>8}",
        *lines,
        "",
        f"  reserve p99, median of rounds: without {without * 1e3:.1f} ms, "
        f"with {with_ * 1e3:.1f} ms: {ratio:.2f} x (target <= 1.10)",
        "",
        "  CPU during each burst (cores busy, average):",
        *cpu_lines,
        "",
        "  the drop's actor in each round (server /metrics: a batch is one commit):",
        *actor_lines,
        "",
        report.check(ok, "every request a 201; every event of a 'with' round delivered, "
                     "none written in a 'without' round"),
    ]  # fmt: skip
    where = "a deliverer process of its own" if args.external else "the server's deliverer"
    title = f"webhooks: {args.rate:,.0f} holds/s for {args.duration:g} s, {where}"
    print(report.header(title, out))
    if top:
        print(top)
    return 0 if ok else 1


def _start_receiver(port: int) -> subprocess.Popen[str]:
    """The receiver, in a process of its own; returns once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.receiver", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "ready"
    return proc


def _start_deliverer(db_url: str) -> subprocess.Popen[str]:
    """`sneakerd webhooks deliver`, in a process of its own; returns once it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sneakerd", "webhooks", "deliver", "--db", db_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "delivering webhooks"
    return proc


async def _drain(db: Database, drop_id: int, subscribed: bool) -> tuple[int, int, float]:
    """Wait (at most 120 s) until the round's events are delivered; (written, delivered, s)."""
    started = time.monotonic()
    while True:
        written = sql(db, "SELECT COUNT(*) FROM webhook_events WHERE drop_id = %s", (drop_id,))
        done = sql(
            db,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE drop_id = %s AND state = 'delivered'",
            (drop_id,),
        )
        w, d = int(written[0][0]), int(done[0][0])
        if not subscribed or (w and d >= w) or time.monotonic() - started > 120:
            return w, d, time.monotonic() - started
        await asyncio.sleep(0.25)
