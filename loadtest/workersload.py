"""`workers`: the same wrk-driven load against `serve --workers 1` and `--workers 2` (both
cluster-aware: MariaDB, REDIS_URL), R rounds alternating which goes first, medians per count.

Three loads per round, each round on a fresh database and a fresh `serve --workers N`:
(a) refusals: a sold-out drop hammered by wrk (every answer should be a 409);
(b) grants: wrk reserving on one drop with stock to spare (as `sustained`, one round of D s);
(c) multidrop: the quiet drops' trickle with a saturating hot drop (closed loop) and alone,
    their p99 ratio (as `multidrop --hot-rate 0`).
Reported: (a) and (b) 2w / 1w throughput (targets >= 1.4 and >= 1.2), (c) quiet p99 with the
hot drop / alone under each count (target <= 2 under 2 workers), wrk's CPU and everyone else's.

With SO_REUSEPORT the kernel spreads connections over the workers, but one drop lives on one
worker (its lease): a request that reaches the other is forwarded to the owner over its peer
port, or answered there if it can be refused early. On this 2-core box wrk, MariaDB and the
workers share the cores, so read each ratio with the CPU line beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, Popen

import aiohttp

from loadtest import client, multidrop, probes, report
from loadtest.nodes import (
    REDIS_URL,
    delete_prefix,
    redis_prefix,
    start_workers,
    workers_server,
)
from loadtest.servers import Database, ServerProcess, raise_nofile, workdir
from loadtest.stats import median
from loadtest.users import insert_users, mint, sql
from loadtest.wrk import WrkReport, run_wrk, wrk_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", "-r", type=int, default=3)
    p.add_argument("--duration", "-d", type=int, default=5, help="seconds of wrk per load")
    p.add_argument("--connections", "-c", type=int, default=64)
    p.add_argument("--wrk-users", type=int, default=2000, help="users wrk spreads over")
    p.add_argument("--users", type=int, default=20_000, help="users in each round's database")
    p.add_argument("--md-duration", type=float, default=5.0, help="seconds per multidrop phase")
    p.add_argument("--drops", type=int, default=20)
    p.add_argument("--quiet-rate", type=float, default=10.0)
    p.add_argument("--hot-stock", type=int, default=500)
    p.add_argument(
        "--only",
        choices=("abc", "ab"),
        default="abc",
        help="the loads to run: all three, or (a) and (b) alone (a shorter run)",
    )
    p.add_argument(
        "--spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each worker with py-spy during (b) (collapsed stacks into DIR: it "
        "slows the workers, so the figures of such a run are not comparable)",
    )
    p.add_argument(
        "--requests",
        type=int,
        default=0,
        metavar="N",
        help="stop wrk after N responses (for tests: requests/s then means nothing); 0 = no cap",
    )


def socket_errors(w: WrkReport) -> int:
    """wrk's errors but `status` (wrk counts every answer >= 400 there: the 409s here)."""
    return sum(n for kind, n in w.errors.items() if kind != "status")


@dataclass
class Load:
    wrk: WrkReport
    cpu: dict[str, float]
    split: str = ""
    """For (b): each worker's 201s and the owner's batches of the drop (from /metrics)."""

    def line(self, name: str) -> str:
        w, c = self.wrk, self.cpu
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(w.statuses.items()))
        return (
            f"    {name:<9} {w.rate:>9,.0f}/s  p50 {w.ms('p50'):6.1f}  p99 {w.ms('p99'):6.1f} ms"
            f"  [{statuses}; socket errors {socket_errors(w)}]  cpu server {c['server']:.2f} "
            f"mariadb {c.get('mariadb', 0):.2f} wrk {c['wrk']:.2f} other {c['other']:.2f}"
            + ("" if len(self.workers) < 2 else f" (workers {' + '.join(self.workers)})")
            + (f"\n              {self.split}" if self.split else "")
        )

    @property
    def workers(self) -> list[str]:
        """Each worker's CPU, to see whether the drop's owner is the one saturated."""
        return [f"{v:.2f}" for k, v in sorted(self.cpu.items()) if k[1:].isdigit()]


@dataclass
class Trial:
    workers: int
    round: int
    refusals: Load
    grants: Load
    md: multidrop.Round | None
    cpu_md: dict[str, float] = field(default_factory=dict)


async def wait_owned(db: Database, drop_ids: list[int], within: float = 20.0) -> None:
    """Until a node holds a lease on every drop (a node takes a new drop at its next pass)."""
    marks = ",".join(["%s"] * len(drop_ids))
    deadline = time.monotonic() + within
    while True:
        rows = sql(
            db,
            f"SELECT COUNT(*) FROM drop_leases WHERE owner <> '' AND drop_id IN ({marks})",
            drop_ids,
        )
        if int(rows[0][0]) == len(drop_ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"drops {drop_ids} not all owned after {within} s")
        await asyncio.sleep(0.2)


async def reserve_once(url: str, token: str, drop_id: int) -> int:
    """One reservation, retried while the cluster answers 503 (no owner yet)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.post(
                url + "/api/reservations",
                json={"dropId": drop_id},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                if response.status != 503:
                    return response.status
            await asyncio.sleep(0.1)
    return 503


def split_cpu(meter: dict[str, float]) -> dict[str, float]:
    """The workers (w0, w1...) summed as `server`, each kept too."""
    out = dict(meter)
    out["server"] = sum(v for k, v in meter.items() if k.startswith("w"))
    return out


async def wrk_load(
    args: argparse.Namespace,
    server: ServerProcess,
    pids: dict[str, int | None],
    tokens_file: Path,
    drop_id: int,
    out: Path,
) -> Load:
    meter = probes.CpuMeter(pids)
    meter.start()
    result = await run_wrk(
        server.url,
        tokens_file=tokens_file,
        drop_id=drop_id,
        out=out,
        seconds=args.duration,
        connections=args.connections,
        max_responses=args.requests,
    )
    cpu = split_cpu(meter.stop())
    cpu["wrk"] = result.cpu_seconds / max(result.seconds, 1e-9)
    cpu["other"] = max(0.0, cpu["other"] - cpu["wrk"])
    return Load(result, cpu)


async def trial(args: argparse.Namespace, wd: Path, workers: int, number: int) -> Trial:
    db = Database("mysql", wd)
    prefix = redis_prefix()
    server = workers_server(db.url, wd, workers, prefix)
    try:
        db.init()
        people = insert_users(db, max(args.users, args.wrk_users + 1))
        tokens_file = wd / f"tokens-{workers}w-{number}.txt"
        tokens_file.write_text("".join(mint(u) + "\n" for u in people.customers[: args.wrk_users]))
        worker_pids = start_workers(server, workers)
        named: dict[str, int | None] = {f"w{i}": p for i, p in enumerate(worker_pids)}
        pids: dict[str, int | None] = {
            **named,
            "mariadb": probes.mariadb_pid(),
            "loadtest": os.getpid(),
        }
        admin = mint(people.admin, "admin")
        # (a) a sold-out drop: its one unit goes to a user wrk never sends.
        sold = int((await client.create_drop(server.url, admin, stock=1, name="sold"))["id"])
        status = await reserve_once(server.url, mint(people.customers[-1]), sold)
        if status != 201:
            raise RuntimeError(f"the sold-out drop's one reservation answered {status}")
        refusals = await wrk_load(
            args, server, pids, tokens_file, sold, wd / f"ref-{workers}-{number}"
        )
        # (b) grants on one drop with stock to spare.
        hot = await client.create_drop(
            server.url, admin, stock=2_000_000, per_user_limit=1000, name="grants"
        )
        await wait_owned(db, [int(hot["id"])])
        spies = spy(args, named, f"{workers}w-{number}")
        bases = [f"http://127.0.0.1:{server.port + 1 + i}" for i in range(workers)]
        bases = bases if workers > 1 else [server.url]
        before = [await probes.scrape(b) for b in bases]
        grants = await wrk_load(
            args, server, pids, tokens_file, int(hot["id"]), wd / f"gr-{workers}-{number}"
        )
        after = [await probes.scrape(b) for b in bases]
        grants.split = who_answered(before, after, int(hot["id"]))
        for s in spies:
            s.wait(timeout=60)
        if args.only == "ab":
            t = Trial(workers, number, refusals, grants, None)
            print(f"progress: {workers}w round {number}: {summary(t)}", file=sys.stderr, flush=True)
            return t
        # (c) multidrop with a saturating hot drop.
        md_args = argparse.Namespace(
            store="mysql",
            drops=args.drops,
            hot_stock=args.hot_stock,
            hot_concurrency=48,
            hot_rate=0.0,
            quiet_rate=args.quiet_rate,
            quiet_concurrency=16,
            duration=args.md_duration,
        )

        async def ready(ids: list[int]) -> None:
            await wait_owned(db, ids)

        tokens = [mint(u) for u in people.customers]
        md = await multidrop._round(
            md_args,
            server,
            admin,
            tokens,
            server_pids={k: v for k, v in named.items() if v is not None},
            ready=ready,
            database=db.name,
        )
        t = Trial(workers, number, refusals, grants, md)
        print(f"progress: {workers}w round {number}: {summary(t)}", file=sys.stderr, flush=True)
        return t
    finally:
        server.stop(timeout=60)
        delete_prefix(REDIS_URL, prefix)
        db.drop()


def who_answered(before: list[dict[str, float]], after: list[dict[str, float]], drop: int) -> str:
    """Each worker's share of the 201s, and its batches of the drop (the owner's only)."""
    ok = 'sneakerd_http_requests_total{method="POST",route="/api/reservations",status="201"}'
    size = f'sneakerd_actor_batch_size_{{}}{{{{drop="{drop}"}}}}'
    commit = f'sneakerd_actor_commit_seconds_sum{{drop="{drop}"}}'
    parts = []
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        line = f"w{i} {a.get(ok, 0) - b.get(ok, 0):,.0f} 201s"
        batches = a.get(size.format("count"), 0) - b.get(size.format("count"), 0)
        if batches:
            rows = a.get(size.format("sum"), 0) - b.get(size.format("sum"), 0)
            ms = (a.get(commit, 0) - b.get(commit, 0)) / batches * 1e3
            line += f" (owner: {batches:,.0f} batches, mean size {rows / batches:.1f}, {ms:.2f} ms)"
        parts.append(line)
    return "answered: " + ", ".join(parts)


def spy(args: argparse.Namespace, named: dict[str, int | None], tag: str) -> list[Popen[bytes]]:
    """With `--spy DIR`: one `py-spy record` per worker for the grant load's duration, as
    collapsed stacks (`DIR/<worker>-<tag>.txt`, one `frame;frame;... count` line per stack)."""
    if args.spy is None:
        return []
    args.spy.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    return [
        Popen(
            [
                str(py_spy),
                "record",
                "--nonblocking",
                "-r",
                "200",
                "-f",
                "raw",
                "-d",
                str(args.duration),
                "-p",
                str(pid),
                "-o",
                str(args.spy / f"{name}-{tag}.txt"),
            ],
            stdout=DEVNULL,
            stderr=DEVNULL,
        )
        for name, pid in named.items()
        if pid is not None
    ]


def summary(t: Trial) -> str:
    line = f"refusals {t.refusals.wrk.rate:,.0f}/s, grants {t.grants.wrk.rate:,.0f}/s"
    if t.md is None:
        return line
    return (
        f"{line}, multidrop quiet p99 {t.md.with_hot.p99 * 1e3:.1f} vs "
        f"{t.md.alone.p99 * 1e3:.1f} ms ({t.md.ratio:.1f} x; {t.md.read_line()})"
    )


def md_cpu(meter: probes.CpuMeter) -> str:
    c = split_cpu(meter.result)
    return (
        f"server {c['server']:.2f} mariadb {c.get('mariadb', 0):.2f} "
        f"loadtest {c.get('loadtest', 0):.2f} other {c['other']:.2f}"
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f} x" if b > 0 else "-"


async def run(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.duration < 1:
        raise SystemExit("workers: need rounds >= 1 and duration >= 1 s")
    wrk_path()
    raise_nofile()
    trials: list[Trial] = []
    with workdir() as wd:
        for n in range(1, args.rounds + 1):
            order = (1, 2) if n % 2 else (2, 1)
            for workers in order:
                trials.append(await trial(args, wd, workers, n))

    by = {w: [t for t in trials if t.workers == w] for w in (1, 2)}
    lines = [
        f"  MariaDB + Redis, serve --workers 1 vs 2, {args.rounds} rounds alternating (odd "
        f"rounds 1w first), each on a fresh database and server; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s over {args.wrk_users} users"
        + (f", at most {args.requests} responses" if args.requests else "")
        + (
            "; (a) and (b) only"
            if args.only == "ab"
            else f"; multidrop {args.drops} drops, hot closed loop (48 connections, stock "
            f"{args.hot_stock}), quiet {args.quiet_rate:g}/s each, {args.md_duration:g} s a phase"
        ),
        "",
    ]
    with_md = [t.md for t in trials if t.md is not None]
    for t in trials:
        lines += [
            f"  round {t.round}, {t.workers} worker(s):",
            t.refusals.line("refusals"),
            t.grants.line("grants"),
        ]
        if t.md is not None:
            lines += [
                f"    multidrop quiet p99 {t.md.with_hot.p99 * 1e3:.1f} ms with the hot drop vs "
                f"{t.md.alone.p99 * 1e3:.1f} alone ({t.md.ratio:.1f} x; {t.md.read_line()}); "
                "hot drop "
                f"{len(t.md.hot) / max(t.md.elapsed[1], 1e-9):,.0f} req/s; cpu with hot: "
                f"{md_cpu(t.md.meters[0])}{t.md.stall_line()}",
            ]
    med: dict[str, dict[int, float]] = {"ref": {}, "gr": {}, "md": {}}
    for w, ts in by.items():
        med["ref"][w] = median([t.refusals.wrk.rate for t in ts])
        med["gr"][w] = median([t.grants.wrk.rate for t in ts])
        if with_md:
            med["md"][w] = median([t.md.ratio for t in ts if t.md is not None])
    ref_ratio = med["ref"][2] / med["ref"][1] if med["ref"][1] else 0.0
    gr_ratio = med["gr"][2] / med["gr"][1] if med["gr"][1] else 0.0
    lines += [
        "",
        f"  (a) refusals/s, medians: 1w {med['ref'][1]:,.0f}, 2w {med['ref'][2]:,.0f}: "
        f"2w / 1w = {_ratio(med['ref'][2], med['ref'][1])} (target >= 1.4, aim 1.7)",
        f"  (b) grants/s, medians: 1w {med['gr'][1]:,.0f}, 2w {med['gr'][2]:,.0f}: "
        f"2w / 1w = {_ratio(med['gr'][2], med['gr'][1])} (target >= 1.2)",
    ]
    if with_md:
        lines += [
            f"  (c) quiet p99 with the hot drop / alone, medians: 1w {med['md'][1]:.1f} x, "
            f"2w {med['md'][2]:.1f} x (target <= 2 under 2 workers; to each answer's arrival "
            "at the client's socket)",
            "      the same as read by the Python client (adds its own wait for a CPU): "
            + ", ".join(
                f"{w}w {median([t.md.ratio_read for t in ts if t.md is not None]):.1f} x"
                for w, ts in by.items()
            ),
        ]
        clean = {
            w: [t.md.ratio for t in ts if t.md is not None and not t.md.stalled]
            for w, ts in by.items()
        }
        lines.append(
            "      rounds without a database stall in either phase (multidrop.py): "
            + ", ".join(
                f"{w}w {len(r)} of {len(by[w])}" + (f", median {median(r):.1f} x" if r else "")
                for w, r in clean.items()
            )
        )
    lines.append("")
    every_409 = all(
        set(t.refusals.wrk.statuses) == {409} and not socket_errors(t.refusals.wrk) for t in trials
    )
    every_201 = all(
        set(t.grants.wrk.statuses) == {201} and not socket_errors(t.grants.wrk) for t in trials
    )
    quiet_201 = all(
        client.outcomes_of(md.quiet_with_hot).count("201") == len(md.quiet_with_hot)
        and client.outcomes_of(md.quiet_alone).count("201") == len(md.quiet_alone)
        for md in with_md
    )
    checks = [
        report.check(every_409, "(a) every refusal-load answer a 409, no socket error"),
        report.check(every_201, "(b) every grant-load answer a 201, no socket error"),
        report.check(ref_ratio >= 1.4, f"target (a) 2w/1w >= 1.4: {ref_ratio:.2f} x"),
        report.check(gr_ratio >= 1.2, f"target (b) 2w/1w >= 1.2: {gr_ratio:.2f} x"),
    ]
    if with_md:
        checks[2:2] = [report.check(quiet_201, "(c) every quiet request answered 201")]
        checks.append(
            report.check(
                med["md"][2] <= 2, f"target (c) under 2 workers <= 2: {med['md'][2]:.1f} x"
            )
        )
    print(report.header("workers", [*lines, *checks]))
    return 0 if every_409 and every_201 and quiet_201 else 1
