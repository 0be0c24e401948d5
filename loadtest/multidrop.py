"""`multidrop`: 20 drops at once, one hot. The 19 quiet drops get a steady trickle of
reservations (each from a fresh user, stock to spare) while the hot drop is hammered by C
connections (it sells out, then answers 409s); the same quiet trickle is then run alone. Reports
the quiet drops' latency with and without the hot drop: one actor per drop should keep a hot drop
from slowing the others beyond the shared CPU."""

from __future__ import annotations

import argparse
import asyncio
import os

from loadtest import client, probes, report
from loadtest.servers import Database, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Outcomes
from loadtest.users import insert_users, mint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--drops", type=int, default=20)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--hot-stock", type=int, default=500)
    p.add_argument("--hot-concurrency", type=int, default=48)
    p.add_argument(
        "--hot-rate",
        type=float,
        default=2000.0,
        help="requests/s at the hot drop, paced (open loop); 0 = as fast as the connections "
        "go (closed loop: saturates the server's one core, so every drop slows)",
    )
    p.add_argument("--quiet-rate", type=float, default=10.0, help="reservations/s per quiet drop")
    p.add_argument("--quiet-concurrency", type=int, default=16)
    p.add_argument("--duration", "-d", type=float, default=8.0)


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    quiet_n = args.drops - 1
    per_phase = int(args.quiet_rate * quiet_n * args.duration)
    with workdir() as wd:
        db = Database(args.store, wd)
        server = sneakerd_server(db.url, wd)
        try:
            db.init()
            people = insert_users(db, args.users)
            server.start()
            admin = mint(people.admin, "admin")
            hot = await client.create_drop(server.url, admin, stock=args.hot_stock, name="hot")
            quiet = [
                int((await client.create_drop(server.url, admin, stock=per_phase, name="q"))["id"])
                for _ in range(quiet_n)
            ]
            tokens = [mint(u) for u in people.customers]

            def quiet_requests(offset: int) -> list[bytes]:
                # Request k goes to quiet drop k % quiet_n from user offset + k: no user twice
                # on a drop, so every one is a real hold.
                return [
                    client.post_json(
                        server.port,
                        "/api/reservations",
                        {"dropId": quiet[k % quiet_n]},
                        tokens[(offset + k) % len(tokens)],
                    )
                    for k in range(per_phase)
                ]

            hot_requests = [
                client.post_json(server.port, "/api/reservations", {"dropId": int(hot["id"])}, t)
                for t in tokens
            ]
            rate = args.quiet_rate * quiet_n
            pids = {
                "server": server.pid,
                "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                "loadtest": os.getpid(),
            }

            # Phase 1: quiet trickle + hot hammer.
            meter1 = probes.CpuMeter(pids)
            meter1.start()
            quiet_task = client.run_load(
                server.port,
                quiet_requests(0),
                args.quiet_concurrency,
                rate=rate,
                duration=args.duration,
            )
            hot_task = client.run_load(
                server.port,
                hot_requests,
                args.hot_concurrency,
                rate=args.hot_rate,
                duration=args.duration,
            )
            (q1, e1), (h1, he1) = await asyncio.gather(quiet_task, hot_task)
            meter1.stop()
            # Phase 2: the same trickle alone (other users, so each is a first request too).
            meter2 = probes.CpuMeter(pids)
            meter2.start()
            q2, e2 = await client.run_load(
                server.port,
                quiet_requests(per_phase),
                args.quiet_concurrency,
                rate=rate,
                duration=args.duration,
            )
            meter2.stop()
            server.stop()
            passed, output = db.check()
        finally:
            server.stop()
            db.drop()

    with_hot, alone, hot_book = (
        client.outcomes_of(q1),
        client.outcomes_of(q2),
        client.outcomes_of(h1),
    )

    def table(title: str, book: Outcomes, elapsed: float) -> list[str]:
        return [f"  {title}", *report.outcome_table(book, elapsed)]

    a, b = with_hot.overall(), alone.overall()
    lines = [
        f"  store={args.store} drops={args.drops} (1 hot, stock {args.hot_stock}, "
        f"{args.hot_concurrency} connections, "
        f"{f'{args.hot_rate:g}/s' if args.hot_rate else 'closed loop'}; "
        f"{quiet_n} quiet at {args.quiet_rate:g}/s each) "
        f"duration={args.duration:g}s per phase",
        *table("phase 1, quiet drops while the hot drop is hammered:", with_hot, e1),
        *table("phase 1, hot drop:", hot_book, he1),
        meter1.line(),
        *table("phase 2, quiet drops alone:", alone, e2),
        meter2.line(),
        "",
        f"  quiet p99: {a.p99 * 1e3:.1f} ms with the hot drop vs {b.p99 * 1e3:.1f} ms alone "
        f"({a.p99 / b.p99 if b.p99 else float('nan'):.1f} x); p50 {a.p50 * 1e3:.1f} vs "
        f"{b.p50 * 1e3:.1f} ms",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            bool(b.p99) and a.p99 <= 2 * b.p99,
            "quiet drops' p99 with the hot drop within 2 x of alone (a target, not a failure)",
        ),
        report.check(
            with_hot.count("201") == with_hot.total and alone.count("201") == alone.total,
            "every quiet request answered 201",
        ),
    ]
    print(report.header("multidrop", lines))
    return 0 if passed else 1
