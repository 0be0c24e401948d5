"""`sustained`: wrk reserves on one hot drop for R rounds of D seconds back to back, holds
piling up (nothing expires during the run), then the same rounds against the ceiling.

What is measured: load from `wrk` (one thread, C keep-alive connections, `sustained.lua`
spreading POST /api/reservations over every user's token), every request a hold that succeeds
(stock and perUserLimit large enough for the whole run). Per round: requests/s, wrk's p50 / p99
/ max over every response, the server's full (generation 2) GC passes from /metrics scraped
between rounds (how many, their total, the worst), its VmRSS and live holds, and CPU (server,
MariaDB, wrk, other). Then the same rounds against `baselines.ceiling`, which stores nothing, so
what grows from round to round on sneakerd and not on the ceiling is the cost of what piles up.

Checks: every 201's reservation id (wrk's Lua writes every one) is an active hold of the drop
in the database; the active holds that no 201 reported are at most one per connection per
round (answered after wrk stopped reading); no hold ended; the drop's `reserved` equals its
active holds; every response on both servers was a 201 with no socket error; `sneakerd db
check` passes.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from loadtest import client, gcpauses, probes, report
from loadtest.servers import (
    JWT_SECRET,
    Database,
    ServerProcess,
    raise_nofile,
    sneakerd_server,
    workdir,
)
from loadtest.stats import median
from loadtest.users import insert_users, mint, sql
from loadtest.wrk import WrkReport, run_wrk, wrk_path

MARGIN_S = 120
"""Holds must outlive the sneakerd rounds, the checks and this much more."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--users", type=int, default=2000, help="users whose tokens wrk spreads over")
    p.add_argument("--rounds", "-r", type=int, default=6)
    p.add_argument("--duration", "-d", type=int, default=8, help="seconds per round")
    p.add_argument("--connections", "-c", type=int, default=64)
    p.add_argument("--threads", "-t", type=int, default=1, help="wrk threads")
    p.add_argument("--stock", type=int, default=2_000_000)
    p.add_argument("--per-user-limit", type=int, default=1000)
    p.add_argument(
        "--hold-ms",
        type=int,
        default=600_000,
        help="RESERVATION_DURATION: longer than the run, so that every hold stays live",
    )
    p.add_argument(
        "--requests",
        type=int,
        default=0,
        metavar="N",
        help="stop each wrk thread after N responses in a round (for tests: the round still "
        "lasts -d seconds, so requests/s then means nothing); 0 = no cap",
    )


@dataclass(frozen=True, slots=True)
class Round:
    number: int
    wrk: WrkReport
    gc_full: gcpauses.Pauses | None
    rss_kib: int
    live_holds: int
    cpu: dict[str, float]

    def row(self) -> str:
        w = self.wrk
        gc = self.gc_full
        gc_cols = (
            f"{gc.count:>4} {gc.total * 1e3:>7.0f} {gc.worst_text():>11}"
            if gc is not None
            else f"{'-':>4} {'-':>7} {'-':>11}"
        )
        return (
            f"  {self.number:>5} {w.rate:>9,.0f} {w.ms('p50'):>7.1f} {w.ms('p99'):>7.1f} "
            f"{w.ms('max'):>7.1f}  {gc_cols} {self.rss_kib / 1024:>8.1f} {self.live_holds:>9,}"
            f"   {self.cpu.get('server', 0):.2f} {self.cpu.get('mariadb', 0):.2f} "
            f"{self.cpu.get('wrk', 0):.2f} {self.cpu.get('other', 0):.2f}"
        )


TABLE_HEAD = (
    f"  {'round':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  "
    f"{'GCs':>4} {'GC ms':>7} {'worst GC':>11} {'RSS MiB':>8} {'201s':>9}"
    "   cpu server mariadb wrk other"
)


class Rounds:
    """R wrk runs back to back against one server, scraping its /metrics between them."""

    def __init__(
        self,
        args: argparse.Namespace,
        server: ServerProcess,
        wd: Path,
        tokens_file: Path,
        drop_id: int,
        *,
        scrape: bool,
        mariadb: int | None,
    ) -> None:
        self.args = args
        self.server = server
        self.wd = wd
        self.tokens_file = tokens_file
        self.drop_id = drop_id
        self.scrape = scrape
        self.mariadb = mariadb
        self.rounds: list[Round] = []
        self.rss_before = 0

    async def run(self) -> list[Round]:
        self.rss_before = self.server.rss_kib()
        metrics = await probes.scrape(self.server.url) if self.scrape else {}
        holds = 0
        for n in range(1, self.args.rounds + 1):
            meter = probes.CpuMeter(
                {"server": self.server.pid, "mariadb": self.mariadb, "loadtest": os.getpid()}
            )
            meter.start()
            result = await run_wrk(
                self.server.url,
                tokens_file=self.tokens_file,
                drop_id=self.drop_id,
                out=self.wd / f"{self.server.name}-round{n}",
                seconds=self.args.duration,
                connections=self.args.connections,
                threads=self.args.threads,
                max_responses=self.args.requests,
            )
            cpu = meter.stop()
            cpu["wrk"] = result.cpu_seconds / max(result.seconds, 1e-9)
            cpu["other"] = max(0.0, cpu["other"] - cpu["wrk"])
            gc_full = None
            if self.scrape:
                after = await probes.scrape(self.server.url)
                gc_full = gcpauses.between(metrics, after)
                metrics = after
            holds += result.statuses.get(201, 0)
            done = Round(n, result, gc_full, self.server.rss_kib(), holds, cpu)
            self.rounds.append(done)
            print(f"progress: {self.server.name}" + done.row(), file=sys.stderr, flush=True)
        return self.rounds


def verify_holds(
    db: Database, drop_id: int, rounds: list[Round], connections: int, reserved: int
) -> list[str]:
    """Every 201 id is an active hold of the drop; the few the client did not hear of are in
    flight at the end of a round; nothing ended; the drop's count is its holds."""
    told = [i for r in rounds for i in r.wrk.ids]
    unreadable = [i for i in told if not i.isdigit()]
    seen = {int(i) for i in told if i.isdigit()}
    rows = sql(db, "SELECT id, status FROM reservations WHERE drop_id = %s", (drop_id,))
    active = {int(i) for i, status in rows if status == "active"}
    ended = len(rows) - len(active)
    unheard = len(active - seen)
    in_flight = connections * len(rounds)
    counted = sum(r.wrk.statuses.get(201, 0) for r in rounds)
    return [
        report.check(
            not unreadable and len(seen) == len(told) == counted and seen <= active,
            f"every 201 id is an active hold of the drop: {len(told):,} ids from wrk's Lua "
            f"({counted:,} 201s counted), {len(told) - len(seen)} repeated or unreadable, "
            f"{len(seen - active)} not an active hold",
        ),
        report.check(
            unheard <= in_flight,
            f"active holds no 201 reported: {unheard} (at most {in_flight}: one per connection "
            f"per round, answered after wrk stopped reading)",
        ),
        report.check(ended == 0, f"no hold ended during the run: {ended}"),
        report.check(
            reserved == len(active),
            f"the drop's reserved count {reserved:,} = its active holds {len(active):,}",
        ),
    ]


def answers_check(name: str, rounds: list[Round]) -> str:
    bad = {
        r.number: (r.wrk.not_201(), r.wrk.error_count)
        for r in rounds
        if r.wrk.not_201() or r.wrk.error_count
    }
    total = sum(r.wrk.requests for r in rounds)
    return report.check(
        not bad and total > 0,
        f"{name}: all {total:,} responses 201, no socket error"
        + (f"; rounds with others (statuses, errors): {bad}" if bad else ""),
    )


def ratios(sneakerd: list[Round], ceiling: list[Round], rss_before: int) -> list[str]:
    first, last = sneakerd[0], sneakerd[-1]
    n = last.number
    gcs = [(r.gc_full, r.number) for r in sneakerd if r.gc_full is not None and r.gc_full.count]
    lines = [
        f"  sneakerd round {n} p99 / round 1 p99 = {last.wrk.ms('p99'):.1f} / "
        f"{first.wrk.ms('p99'):.1f} ms = {_ratio(last.wrk.ms('p99'), first.wrk.ms('p99'))}",
        f"  sneakerd round {n} throughput / round 1 = {last.wrk.rate:,.0f} / "
        f"{first.wrk.rate:,.0f} = {_ratio(last.wrk.rate, first.wrk.rate)}",
    ]
    if gcs:
        worst, at = max(gcs, key=lambda g: (g[0].worst_high, g[0].worst_low))
        total = sum(g.total for g, _ in gcs)
        count = sum(g.count for g, _ in gcs)
        lines.append(
            f"  worst full-GC pause {worst.worst_text()} (round {at}); {count} full passes, "
            f"{total:.2f} s in all"
        )
    else:
        lines.append("  worst full-GC pause: no full pass during the rounds")
    med, ceil = median([r.wrk.rate for r in sneakerd]), median([r.wrk.rate for r in ceiling])
    lines.append(
        f"  median sustained holds/s / ceiling = {med:,.0f} / {ceil:,.0f} = {_ratio(med, ceil)}"
    )
    if ceiling:
        c0, c1 = ceiling[0], ceiling[-1]
        lines.append(
            f"  (ceiling round {c1.number} p99 / round 1 p99 = {c1.wrk.ms('p99'):.1f} / "
            f"{c0.wrk.ms('p99'):.1f} ms = {_ratio(c1.wrk.ms('p99'), c0.wrk.ms('p99'))})"
        )
    holds = last.live_holds
    grown = (last.rss_kib - rss_before) * 1024
    per_hold = f"{grown / holds:,.0f} bytes" if holds else "-"
    lines.append(
        f"  memory per live hold = RSS growth / holds = {grown / 2**20:,.1f} MiB / {holds:,} "
        f"= {per_hold}"
    )
    return lines


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f} x" if b > 0 else "-"


async def run(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.duration < 1 or args.connections < args.threads:
        raise SystemExit("sustained: need rounds >= 1, duration >= 1 s, connections >= threads")
    wrk_path()  # fail before any server starts
    if args.hold_ms < (args.rounds * args.duration + MARGIN_S) * 1000:
        raise SystemExit(
            f"sustained: --hold-ms {args.hold_ms} is shorter than the rounds plus {MARGIN_S} s: "
            "holds would expire during the run"
        )
    raise_nofile()
    with workdir() as wd:
        db = Database(args.store, wd)
        server = sneakerd_server(db.url, wd, hold_ms=args.hold_ms)
        ceiling = ServerProcess(
            "ceiling", ["-m", "loadtest.baselines.ceiling"], {"JWT_SECRET": JWT_SECRET}, wd
        )
        try:
            db.init()
            people = insert_users(db, args.users)
            tokens_file = wd / "tokens.txt"
            tokens_file.write_text("".join(mint(u) + "\n" for u in people.customers))
            server.start()
            drop = await client.create_drop(
                server.url,
                mint(people.admin, "admin"),
                stock=args.stock,
                per_user_limit=args.per_user_limit,
                name="sustained",
            )
            drop_id = int(drop["id"])
            mariadb = probes.mariadb_pid() if args.store == "mysql" else None
            hot = Rounds(args, server, wd, tokens_file, drop_id, scrape=True, mariadb=mariadb)
            sneakerd_rounds = await hot.run()
            final = await client.get_drop(server.url, drop_id)
            code = server.stop()
            ceiling.start()
            base = Rounds(args, ceiling, wd, tokens_file, drop_id, scrape=False, mariadb=None)
            ceiling_rounds = await base.run()
            ceiling.stop()
            checks = [
                *verify_holds(
                    db, drop_id, sneakerd_rounds, args.connections, int(final["reserved"])
                ),
                answers_check("sneakerd", sneakerd_rounds),
                answers_check("ceiling", ceiling_rounds),
            ]
            passed, output = db.check()
            checks.append(
                report.check(
                    passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"
                )
            )
        finally:
            server.stop()
            ceiling.stop()
            db.drop()
    lines = [
        f"  store={args.store} users={args.users} stock={args.stock:,} "
        f"perUserLimit={args.per_user_limit} wrk -t{args.threads} -c{args.connections} "
        f"rounds={args.rounds} x {args.duration} s back to back, RESERVATION_DURATION="
        f"{args.hold_ms} ms"
        + (f", at most {args.requests} responses a round" if args.requests else ""),
        "  sneakerd (one hot drop, holds accumulating; GC = full passes between scrapes):",
        TABLE_HEAD,
        *(r.row() for r in sneakerd_rounds),
        f"  server VmRSS before round 1: {hot.rss_before / 1024:.1f} MiB; exit code {code}",
        "  ceiling (stores nothing):",
        TABLE_HEAD,
        *(r.row() for r in ceiling_rounds),
        "",
        *ratios(sneakerd_rounds, ceiling_rounds, hot.rss_before),
        "",
        *checks,
    ]
    print(report.header("sustained", lines))
    return 0 if all("[PASS]" in c for c in checks) else 1
