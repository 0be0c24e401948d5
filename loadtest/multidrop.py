"""`multidrop`: 20 drops at once, one hot. The 19 quiet drops get a steady trickle of
reservations (each from a fresh user, stock to spare) while the hot drop is hammered by C
connections (it sells out, then answers 409s); the same quiet trickle is then run alone. Reports
the quiet drops' latency with and without the hot drop: one actor per drop should keep a hot drop
from slowing the others beyond the shared CPU."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from loadtest import client, probes, report
from loadtest.servers import Database, ServerProcess, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Summary
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
    p.add_argument(
        "--rounds",
        "-r",
        type=int,
        default=3,
        help="rounds, each on a fresh server process; the ratio reported is their median "
        "(one round's p99 is its ~15th slowest request, and a shared 2-core box is noisy)",
    )
    p.add_argument(
        "--samples",
        type=Path,
        help="write every request of the median round (send time from its phase's start, "
        "latency, status) to this JSON file: a tail's timing tells what caused it",
    )


def write_samples(path: Path, phases: dict[str, list[client.Result]]) -> None:
    """One list per phase, times in seconds from that phase's first send."""
    out = {}
    for name, results in phases.items():
        t0 = min((r.sent for r in results), default=0.0)
        out[name] = [(round(r.sent - t0, 6), round(r.done - r.sent, 6), r.status) for r in results]
    path.write_bytes(orjson.dumps(out))


@dataclass
class Round:
    """One round on a fresh server process: the quiet trickle with the hot drop, then alone."""

    quiet_with_hot: list[client.Result]
    hot: list[client.Result]
    quiet_alone: list[client.Result]
    elapsed: tuple[float, float, float]
    meters: tuple[probes.CpuMeter, probes.CpuMeter]

    @property
    def with_hot(self) -> Summary:
        return client.outcomes_of(self.quiet_with_hot).overall()

    @property
    def alone(self) -> Summary:
        return client.outcomes_of(self.quiet_alone).overall()

    @property
    def ratio(self) -> float:
        alone = self.alone.p99
        return self.with_hot.p99 / alone if alone else float("nan")


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    rounds: list[Round] = []
    with workdir() as wd:
        db = Database(args.store, wd)
        try:
            db.init()
            people = insert_users(db, args.users)
            tokens = [mint(u) for u in people.customers]
            for _ in range(args.rounds):
                # A fresh process each round: no round starts with the last one's caches.
                server = sneakerd_server(db.url, wd)
                try:
                    server.start()
                    rounds.append(await _round(args, server, mint(people.admin, "admin"), tokens))
                finally:
                    server.stop()
            passed, output = db.check()
        finally:
            db.drop()

    ordered = sorted(rounds, key=lambda r: r.ratio)
    median = ordered[len(ordered) // 2]
    if args.samples is not None:
        write_samples(
            args.samples,
            {
                "quiet_with_hot": median.quiet_with_hot,
                "hot": median.hot,
                "quiet_alone": median.quiet_alone,
            },
        )
    print(report.header("multidrop", _lines(args, rounds, median, passed, output)))
    return 0 if passed else 1


async def _round(
    args: argparse.Namespace,
    server: ServerProcess,
    admin: str,
    tokens: list[str],
    *,
    server_pids: dict[str, int] | None = None,
    ready: Callable[[list[int]], Awaitable[None]] | None = None,
) -> Round:
    """One round on `server`. `server_pids` names the processes whose CPU is the server's
    (default: the one process); `ready(drop ids)` runs after the drops are made and before any
    load (a cluster waits there until a node owns each drop)."""
    quiet_n = args.drops - 1
    per_phase = int(args.quiet_rate * quiet_n * args.duration)
    hot = await client.create_drop(server.url, admin, stock=args.hot_stock, name="hot")
    quiet = [
        int((await client.create_drop(server.url, admin, stock=per_phase, name="q"))["id"])
        for _ in range(quiet_n)
    ]
    if ready is not None:
        await ready([int(hot["id"]), *quiet])

    def quiet_requests(offset: int) -> list[bytes]:
        # Request k goes to quiet drop k % quiet_n from user offset + k: no user twice on a
        # drop, so every one is a real hold, and every one the server's first sight of its user.
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
    pids: dict[str, int | None] = {
        **(server_pids if server_pids is not None else {"server": server.pid}),
        "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
        "loadtest": os.getpid(),
    }

    # Phase 1: quiet trickle + hot hammer. Every connection is open and accepted before the
    # clock starts, in both phases: the comparison is of the load, not of 64 accepts queued
    # on the server's loop at the first instant.
    quiet_conns = await client.open_connections(server.port, args.quiet_concurrency)
    hot_conns = await client.open_connections(server.port, args.hot_concurrency)
    meter1 = probes.CpuMeter(pids)
    meter1.start()
    (q1, e1), (h1, he1) = await asyncio.gather(
        client.run_load(
            server.port,
            quiet_requests(0),
            args.quiet_concurrency,
            rate=rate,
            duration=args.duration,
            connections=quiet_conns,
        ),
        client.run_load(
            server.port,
            hot_requests,
            args.hot_concurrency,
            rate=args.hot_rate,
            duration=args.duration,
            connections=hot_conns,
        ),
    )
    meter1.stop()
    # Phase 2: the same trickle alone (other users, so each is a first request too).
    quiet_conns = await client.open_connections(server.port, args.quiet_concurrency)
    meter2 = probes.CpuMeter(pids)
    meter2.start()
    q2, e2 = await client.run_load(
        server.port,
        quiet_requests(per_phase),
        args.quiet_concurrency,
        rate=rate,
        duration=args.duration,
        connections=quiet_conns,
    )
    meter2.stop()
    return Round(q1, h1, q2, (e1, he1, e2), (meter1, meter2))


def _lines(
    args: argparse.Namespace, rounds: list[Round], median: Round, passed: bool, output: str
) -> list[str]:
    def table(title: str, results: list[client.Result], elapsed: float) -> list[str]:
        return [f"  {title}", *report.outcome_table(client.outcomes_of(results), elapsed)]

    e1, he1, e2 = median.elapsed
    a, b = median.with_hot, median.alone
    every = [
        client.outcomes_of(r.quiet_with_hot).count("201") == len(r.quiet_with_hot)
        and client.outcomes_of(r.quiet_alone).count("201") == len(r.quiet_alone)
        for r in rounds
    ]
    return [
        f"  store={args.store} drops={args.drops} (1 hot, stock {args.hot_stock}, "
        f"{args.hot_concurrency} connections, "
        f"{f'{args.hot_rate:g}/s' if args.hot_rate else 'closed loop'}; "
        f"{args.drops - 1} quiet at {args.quiet_rate:g}/s each) "
        f"duration={args.duration:g}s per phase, {len(rounds)} rounds",
        f"  the median round ({rounds.index(median) + 1} of {len(rounds)}):",
        *table("phase 1, quiet drops while the hot drop is hammered:", median.quiet_with_hot, e1),
        *table("phase 1, hot drop:", median.hot, he1),
        median.meters[0].line(),
        *table("phase 2, quiet drops alone:", median.quiet_alone, e2),
        median.meters[1].line(),
        "",
        *(
            f"  round {i}: quiet p99 {r.with_hot.p99 * 1e3:.1f} ms with the hot drop vs "
            f"{r.alone.p99 * 1e3:.1f} ms alone ({r.ratio:.1f} x); p50 "
            f"{r.with_hot.p50 * 1e3:.1f} vs {r.alone.p50 * 1e3:.1f} ms"
            for i, r in enumerate(rounds, 1)
        ),
        f"  quiet p99 ratio, median of {len(rounds)} rounds: {median.ratio:.1f} x "
        f"({a.p99 * 1e3:.1f} vs {b.p99 * 1e3:.1f} ms)",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            median.ratio <= 2,
            "quiet drops' p99 with the hot drop within 2 x of alone, median of the rounds "
            "(a target, not a failure)",
        ),
        report.check(all(every), "every quiet request answered 201, every round"),
    ]
