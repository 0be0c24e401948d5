"""`multidrop`: 20 drops at once, one hot. The 19 quiet drops get a steady trickle of
reservations (each from a fresh user, stock to spare) while the hot drop is hammered by C
connections (it sells out, then answers 409s); the same quiet trickle is then run alone. Reports
the quiet drops' latency with and without the hot drop: one actor per drop should keep a hot drop
from slowing the others beyond the shared CPU.

The closed-loop hot drop (`--hot-rate 0`) is driven by wrk (C on epoll, `sustained.lua`), so
only the light quiet trickle (190 requests/s) is timed by the Python client, whose loop then
stays idle enough to stamp sends and answers when they happen: sending 11,000-19,000 refusals/s
itself, the Python client took a core and its own loop delayed the quiet requests' timestamps.
`--hot-client python` keeps that all-Python load, for comparison. `--workers N` runs
`serve --workers N` (MariaDB and Redis) instead of one plain process.

Each quiet answer is timed to its arrival at the client's socket (the kernel's receive stamp,
`client.StampedConnection`): what is left of the Python client's own wait for a CPU is printed
beside it ("as read by the client"), not mixed into the ratio."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from loadtest import client, nodes, probes, report, wrk
from loadtest.servers import Database, ServerProcess, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Summary
from loadtest.users import insert_users, mint

HOT_WARMUP = 0.5
"""Seconds wrk hammers the hot drop before the quiet trickle's clock starts: its connections
are accepted and its stock sold out by then, so every timed quiet request meets the closed
loop's steady state (refusals as fast as they are answered), none the hammer's first instant."""


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
    p.add_argument(
        "--hot-client",
        choices=("wrk", "python"),
        default="wrk",
        help="what drives the closed-loop hot drop (--hot-rate 0): wrk (default), or the "
        "Python client that also times the quiet drops (the old measurement, for comparison)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="serve --workers N (cluster-aware: MariaDB and REDIS_URL; every drop owned "
        "before the load starts); 0 (default) = one plain `sneakerd serve`",
    )
    p.add_argument("--quiet-rate", type=float, default=10.0, help="reservations/s per quiet drop")
    p.add_argument("--quiet-concurrency", type=int, default=16)
    p.add_argument("--duration", "-d", type=float, default=8.0)
    p.add_argument(
        "--rounds",
        "-r",
        type=int,
        default=3,
        help="rounds, each on a fresh database and server process; the ratio reported is their "
        "median (one round's p99 is its ~15th slowest request, and a shared 2-core box is noisy)",
    )
    p.add_argument(
        "--samples",
        type=Path,
        help="write every quiet request of the median round (send time from its phase's "
        "start, latency, status) to this JSON file (and the hot drop's, when the Python client "
        "sent them): a tail's timing tells what caused it",
    )


def write_samples(path: Path, phases: dict[str, list[client.Result]]) -> None:
    """One list per phase, times in seconds from that phase's first send."""
    out = {}
    for name, results in phases.items():
        t0 = min((r.sent for r in results), default=0.0)
        out[name] = [(round(r.sent - t0, 6), round(r.latency, 6), r.status) for r in results]
    path.write_bytes(orjson.dumps(out))


@dataclass(frozen=True)
class WrkHot:
    """The hot drop's load as wrk reports it: answers by status and whole-run percentiles (wrk
    keeps no per-request record). Its `len` is its answers, as a list of results' is."""

    report: wrk.WrkReport

    def __len__(self) -> int:
        return self.report.requests

    @property
    def socket_errors(self) -> int:
        """wrk's errors but `status` (wrk counts every answer >= 400 there: the 409s)."""
        return sum(n for kind, n in self.report.errors.items() if kind != "status")


@dataclass
class Round:
    """One round on a fresh server process: the quiet trickle with the hot drop, then alone."""

    quiet_with_hot: list[client.Result]
    hot: list[client.Result] | WrkHot
    quiet_alone: list[client.Result]
    elapsed: tuple[float, float, float]
    meters: tuple[probes.CpuMeter, probes.CpuMeter]
    db_check: tuple[bool, str] = (True, "")
    commits: tuple[probes.CommitProbe, probes.CommitProbe] | None = None
    """The database's own commits during each phase (MariaDB), apart from the server's."""

    @property
    def stalled(self) -> bool:
        """Whether the database stalled in either phase (a probe commit over `STALL_MS`): a
        phase's p99 is its ~8th slowest request, so one stall can make it."""
        return self.commits is not None and any(c.stalls for c in self.commits)

    def stall_line(self) -> str:
        if self.commits is None:
            return ""
        with_hot, alone = self.commits
        return (
            f"; database stalls (probe commits over {probes.STALL_MS:g} ms) with / alone "
            f"{with_hot.stalls} / {alone.stalls}, slowest "
            f"{max(with_hot.latencies, default=0) * 1e3:.0f} / "
            f"{max(alone.latencies, default=0) * 1e3:.0f} ms"
        )

    @property
    def with_hot(self) -> Summary:
        return client.outcomes_of(self.quiet_with_hot).overall()

    @property
    def alone(self) -> Summary:
        return client.outcomes_of(self.quiet_alone).overall()

    @property
    def ratio(self) -> float:
        """Quiet p99 with the hot drop / alone, each to the answers' arrival at the client's
        socket (the kernel's stamp: what a client on a machine of its own sees)."""
        alone = self.alone.p99
        return self.with_hot.p99 / alone if alone else float("nan")

    def _read_p99s(self) -> tuple[float, float]:
        """The quiet p99s with the hot drop and alone, to when the client read each answer."""
        return (
            client.outcomes_of(self.quiet_with_hot, as_read=True).overall().p99,
            client.outcomes_of(self.quiet_alone, as_read=True).overall().p99,
        )

    @property
    def ratio_read(self) -> float:
        """`ratio` to when the client read each answer: on two shared cores that adds the
        Python client's own wait for a CPU, which the saturating hot drop makes long."""
        with_hot, alone = self._read_p99s()
        return with_hot / alone if alone else float("nan")

    def read_line(self) -> str:
        """The quiet p99s as the client read them (see `ratio_read`)."""
        with_hot, alone = self._read_p99s()
        ratio = with_hot / alone if alone else float("nan")
        return f"as read by the client {with_hot * 1e3:.1f} vs {alone * 1e3:.1f} ms ({ratio:.1f} x)"


async def run(args: argparse.Namespace) -> int:
    if args.workers and args.store != "mysql":
        raise SystemExit("multidrop: --workers needs --store mysql (and Redis)")
    if args.rounds < 1:
        raise SystemExit("multidrop: need rounds >= 1")
    raise_nofile()
    rounds: list[Round] = []
    with workdir() as wd:
        for _ in range(args.rounds):
            # A fresh database and process each round: no round starts with the last one's
            # caches, and (in a cluster) no lease of the last round's drops.
            rounds.append(await _fresh_round(args, wd))

    ordered = sorted(rounds, key=lambda r: r.ratio)
    median = ordered[len(ordered) // 2]
    if args.samples is not None:
        phases = {"quiet_with_hot": median.quiet_with_hot, "quiet_alone": median.quiet_alone}
        if isinstance(median.hot, list):
            phases["hot"] = median.hot
        write_samples(args.samples, phases)
    print(report.header("multidrop", _lines(args, rounds, median)))
    return 0 if all(r.db_check[0] for r in rounds) and _hot_answers_ok(args, rounds) else 1


async def _fresh_round(args: argparse.Namespace, wd: Path) -> Round:
    db = Database(args.store, wd)
    database = db.name if args.store == "mysql" else None
    prefix = nodes.redis_prefix()
    try:
        db.init()
        people = insert_users(db, args.users)
        tokens = [mint(u) for u in people.customers]
        admin = mint(people.admin, "admin")
        if not args.workers:
            server = sneakerd_server(db.url, wd)
            try:
                server.start()
                done = await _round(
                    args, server, admin, tokens, hot_client=args.hot_client, database=database
                )
            finally:
                server.stop()
        else:
            # The workers scenario's own helpers (imported here: it imports this module).
            from loadtest.workersload import wait_owned

            server = nodes.workers_server(db.url, wd, args.workers, prefix)
            try:
                pids = nodes.start_workers(server, args.workers)

                async def ready(ids: list[int]) -> None:
                    await wait_owned(db, ids)

                done = await _round(
                    args,
                    server,
                    admin,
                    tokens,
                    server_pids={f"w{i}": p for i, p in enumerate(pids)},
                    ready=ready,
                    hot_client=args.hot_client,
                    database=database,
                )
            finally:
                server.stop(timeout=60)
                nodes.delete_prefix(nodes.REDIS_URL, prefix)
        done.db_check = db.check()
        return done
    finally:
        db.drop()


async def _round(
    args: argparse.Namespace,
    server: ServerProcess,
    admin: str,
    tokens: list[str],
    *,
    server_pids: dict[str, int] | None = None,
    ready: Callable[[list[int]], Awaitable[None]] | None = None,
    hot_client: str = "wrk",
    database: str | None = None,
) -> Round:
    """One round on `server`. `server_pids` names the processes whose CPU is the server's
    (default: the one process); `ready(drop ids)` runs after the drops are made and before any
    load (a cluster waits there until a node owns each drop). A closed-loop hot drop
    (`hot_rate` 0) is driven by wrk unless `hot_client` is "python". With `database` (the
    MariaDB database the server uses) each phase also probes the database's own commits."""
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

    rate = args.quiet_rate * quiet_n
    pids: dict[str, int | None] = {
        **(server_pids if server_pids is not None else {"server": server.pid}),
        "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
        "loadtest": os.getpid(),
    }

    async def quiet_phase(
        offset: int, meter_pids: dict[str, int | None]
    ) -> tuple[list[client.Result], float, probes.CpuMeter]:
        # Every connection is open and accepted before the clock starts, in both phases: the
        # comparison is of the load, not of accepts queued on the server's loop at the start.
        conns = await client.open_connections(server.port, args.quiet_concurrency, stamped=True)
        meter = probes.CpuMeter(meter_pids)
        meter.start()
        if database is not None:
            commits.append(probes.CommitProbe(database))
            commits[-1].start()
        try:
            results, elapsed = await client.run_load(
                server.port,
                quiet_requests(offset),
                args.quiet_concurrency,
                rate=rate,
                duration=args.duration,
                connections=conns,
            )
        finally:
            if database is not None:
                commits[-1].stop()
        meter.stop()
        return results, elapsed, meter

    commits: list[probes.CommitProbe] = []

    # Phase 1: quiet trickle + hot hammer.
    hot_id = int(hot["id"])
    h1: list[client.Result] | WrkHot
    if args.hot_rate == 0 and hot_client == "wrk":
        # The users the quiet phases do not send: each quiet request stays its user's first.
        hot_tokens = tokens[2 * per_phase :] or tokens
        with tempfile.TemporaryDirectory(prefix="multidrop-") as tmp:
            tokens_file = Path(tmp) / "hot-tokens.txt"
            tokens_file.write_text("".join(t + "\n" for t in hot_tokens))
            hammer = await wrk.start_wrk(
                server.url,
                tokens_file=tokens_file,
                drop_id=hot_id,
                out=Path(tmp) / "hot",
                # A bound in case the stop below never comes; the phase stops it.
                seconds=math.ceil(HOT_WARMUP + args.duration) + 60,
                connections=args.hot_concurrency,
            )
            try:
                await asyncio.sleep(HOT_WARMUP)
                q1, e1, meter1 = await quiet_phase(0, {**pids, "hot-wrk": hammer.pid})
            finally:
                wrk_report = await hammer.finish(stop=True)
        h1, he1 = WrkHot(wrk_report), wrk_report.seconds
    else:
        hot_requests = [
            client.post_json(server.port, "/api/reservations", {"dropId": hot_id}, t)
            for t in tokens
        ]
        hot_conns = await client.open_connections(server.port, args.hot_concurrency)
        (q1, e1, meter1), (h1, he1) = await asyncio.gather(
            quiet_phase(0, pids),
            client.run_load(
                server.port,
                hot_requests,
                args.hot_concurrency,
                rate=args.hot_rate,
                duration=args.duration,
                connections=hot_conns,
            ),
        )
    # Phase 2: the same trickle alone (other users, so each is a first request too).
    q2, e2, meter2 = await quiet_phase(per_phase, pids)
    probed = (commits[0], commits[1]) if len(commits) == 2 else None
    return Round(q1, h1, q2, (e1, he1, e2), (meter1, meter2), commits=probed)


def _hot_answers_ok(args: argparse.Namespace, rounds: list[Round]) -> bool:
    """wrk's hot drop: exactly its stock granted, every other answer a 409, no socket error
    (the Python client's hot answers are in its outcome table)."""
    for r in rounds:
        if isinstance(r.hot, WrkHot):
            statuses = r.hot.report.statuses
            if r.hot.socket_errors or set(statuses) - {201, 409}:
                return False
            if statuses.get(201, 0) != args.hot_stock:
                return False
    return True


def _hot_lines(hot: list[client.Result] | WrkHot, elapsed: float) -> list[str]:
    if isinstance(hot, list):
        return [
            "  phase 1, hot drop (the Python client):",
            *report.outcome_table(client.outcomes_of(hot), elapsed),
        ]
    w = hot.report
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(w.statuses.items()))
    return [
        f"  phase 1, hot drop (wrk, from {HOT_WARMUP:g} s before the quiet clock to its end):",
        f"    {w.requests:,} answers in {w.seconds:.2f} s ({w.rate:,.0f}/s) [{statuses}; "
        f"socket errors {hot.socket_errors}]  p50 {w.ms('p50'):.1f}  p99 {w.ms('p99'):.1f}  "
        f"max {w.ms('max'):.1f} ms; wrk's own CPU {w.cpu_seconds / max(w.seconds, 1e-9):.2f} "
        "core",
    ]


def _unstalled_line(rounds: list[Round]) -> list[str]:
    """The same median over the rounds in which the database never stalled, beside it (the
    target is judged on every round)."""
    if all(r.commits is None for r in rounds):
        return []
    clean = sorted((r for r in rounds if not r.stalled), key=lambda r: r.ratio)
    if not clean:
        return ["  the database stalled in every round: no round is free of its stalls"]
    mid = clean[len(clean) // 2]
    return [
        f"  rounds without a database stall in either phase: {len(clean)} of {len(rounds)}; "
        f"their median quiet p99 ratio {mid.ratio:.1f} x ({mid.with_hot.p99 * 1e3:.1f} vs "
        f"{mid.alone.p99 * 1e3:.1f} ms)"
    ]


def _lines(args: argparse.Namespace, rounds: list[Round], median: Round) -> list[str]:
    def table(title: str, results: list[client.Result], elapsed: float) -> list[str]:
        return [f"  {title}", *report.outcome_table(client.outcomes_of(results), elapsed)]

    e1, he1, e2 = median.elapsed
    a, b = median.with_hot, median.alone
    every = [
        client.outcomes_of(r.quiet_with_hot).count("201") == len(r.quiet_with_hot)
        and client.outcomes_of(r.quiet_alone).count("201") == len(r.quiet_alone)
        for r in rounds
    ]
    hot_kind = f"{args.hot_rate:g}/s" if args.hot_rate else f"closed loop, {args.hot_client}"
    server_kind = f"serve --workers {args.workers}" if args.workers else "one plain process"
    passed = all(r.db_check[0] for r in rounds)
    last = median.db_check[1].splitlines()[-1] if median.db_check[1] else ""
    lines = [
        f"  store={args.store} ({server_kind}) drops={args.drops} (1 hot, stock "
        f"{args.hot_stock}, {args.hot_concurrency} connections, {hot_kind}; "
        f"{args.drops - 1} quiet at {args.quiet_rate:g}/s each) "
        f"duration={args.duration:g}s per phase, {len(rounds)} rounds",
        f"  the median round ({rounds.index(median) + 1} of {len(rounds)}):",
        *table("phase 1, quiet drops while the hot drop is hammered:", median.quiet_with_hot, e1),
        *_hot_lines(median.hot, he1),
        median.meters[0].line(),
        *table("phase 2, quiet drops alone:", median.quiet_alone, e2),
        median.meters[1].line(),
        "",
        *(
            f"  round {i}: quiet p99 {r.with_hot.p99 * 1e3:.1f} ms with the hot drop vs "
            f"{r.alone.p99 * 1e3:.1f} ms alone ({r.ratio:.1f} x; {r.read_line()}); p50 "
            f"{r.with_hot.p50 * 1e3:.1f} vs {r.alone.p50 * 1e3:.1f} ms; hot drop "
            f"{len(r.hot) / max(r.elapsed[1], 1e-9):,.0f} req/s; cpu with hot: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r.meters[0].result.items())
            + r.stall_line()
            for i, r in enumerate(rounds, 1)
        ),
        "  (quiet latencies to each answer's arrival at the client's socket, the kernel's stamp;",
        "  'as read by the client' adds the Python client's own wait for a CPU)",
        f"  quiet p99 ratio, median of {len(rounds)} rounds: {median.ratio:.1f} x "
        f"({a.p99 * 1e3:.1f} vs {b.p99 * 1e3:.1f} ms; {median.read_line()})",
        *_unstalled_line(rounds),
        report.check(passed, f"sneakerd db check, every round: {last}"),
        report.check(
            median.ratio <= 2,
            "quiet drops' p99 with the hot drop within 2 x of alone, median of the rounds "
            "(a target, not a failure)",
        ),
        report.check(all(every), "every quiet request answered 201, every round"),
    ]
    if any(isinstance(r.hot, WrkHot) for r in rounds):
        lines.append(
            report.check(
                _hot_answers_ok(args, rounds),
                f"hot drop (wrk): {args.hot_stock} answers 201, every other a 409, no socket "
                "error, every round",
            )
        )
    return lines
