"""`watchers`: N WebSocket subscribers on one drop while reservations run at a steady rate.

The same paced reservation load runs twice in one server process, each time on a fresh drop with
users the server has not seen: first with no watcher connected (the baseline), then with the N
watchers on the second drop. Measures (1) the reservations' p50/p99 in both phases and their
ratio (what the fan-out costs the HTTP path), each answer timed to its arrival at the reserving
client's socket (the kernel's stamp: `client.StampedConnection`), with the figure as the client
read it printed beside it, (2) server memory per idle subscriber (VmRSS before
and after connecting the N watchers, settled, divided by N) and (3) delivery latency of stock
updates to every subscriber.

Delivery latency, defined exactly: reservation ids come from the drop actor's id pool in commit
order, and stock only falls during the run (no cancels, no purchases, holds outlive the run), so
the reservation with the c-th smallest id among all 201s is reflected in exactly the states with
stock <= initial - c. For each acknowledged reservation (T = when its 201 reached the reserving
client) and each watcher, latency = time the watcher first received a stockUpdate (or snapshot)
with stock <= initial - c, minus T, clamped at 0 (the frame may beat the HTTP reply). The run
checks that every 201 was the whole story (final stock == initial - 201s), so c is exact.

"Received" is the frame's arrival at the watcher's socket, from the kernel's receive timestamp:
what a watcher on a machine of its own would see. The fleet shares the server's two cores here,
so when it read the frame adds its own scheduling lag; that figure is printed beside the first,
and the target is judged on arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from dataclasses import dataclass

import orjson

from loadtest import client, gcpauses, probes, report
from loadtest.report import profile_top
from loadtest.servers import (
    Database,
    ServerProcess,
    proc_nofile,
    raise_nofile,
    sneakerd_server,
    workdir,
)
from loadtest.stats import Histogram, Outcomes, Summary
from loadtest.users import insert_users, mint
from loadtest.wsfleet import READ_GAP, Fleet, FleetResult


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--watchers", "-n", type=int, default=2000, help="WebSocket subscribers")
    p.add_argument("--stock", type=int, default=2000, help="units in the drop")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="reserving connections")
    p.add_argument("--rate", type=float, default=200.0, help="reservations/s (0 = unpaced)")
    p.add_argument("--duration", "-d", type=float, default=10.0, help="seconds of reservations")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before reading RSS")
    p.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of the same load before the baseline"
    )
    p.add_argument(
        "--fleet-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the watcher fleet at niceness N (it shares the server's cores here)",
    )
    p.add_argument(
        "--fleet-read-ms",
        type=float,
        default=READ_GAP * 1e3,
        metavar="MS",
        help="the fleet reads in rounds at least MS apart (0: as soon as a socket is readable)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="run the server under cProfile and print its top N functions (slows it down)",
    )


@dataclass
class Delivery:
    histogram: Histogram
    from_send: Histogram
    undelivered: int
    frames: dict[str, int]
    seq_decreases: int
    seq_repeats: int
    wrong_last: int
    last_values: dict[int | None, int]
    no_snapshot_first: int


def analyse(
    fleet: FleetResult, acks: list[tuple[int, float, float]], initial: int, final: int
) -> Delivery:
    """acks: (reservation id, time its request was sent, time its 201 arrived: the kernel's
    stamp at the reserving client's socket)."""
    ordered = sorted(acks)
    thresholds = [(initial - (c + 1), sent, t) for c, (_, sent, t) in enumerate(ordered)]
    hist = Histogram()
    from_send = Histogram()
    undelivered = 0
    frames: dict[str, int] = {}
    decreases = repeats = wrong = no_snapshot = 0
    last_values: dict[int | None, int] = {}
    for obs in fleet.observations:
        last_seq = -1
        for _, kind, seq, _stock in obs:
            frames[kind] = frames.get(kind, 0) + 1
            if seq < last_seq:
                decreases += 1
            elif seq == last_seq:
                repeats += 1
            last_seq = max(last_seq, seq)
        if not obs or obs[0][1] != "snapshot":
            no_snapshot += 1
        stocks = [(t, s) for t, _, _, s in obs if s is not None]
        last = stocks[-1][1] if stocks else None
        last_values[last] = last_values.get(last, 0) + 1
        if last != final:
            wrong += 1
        j = 0
        for threshold, sent_at, acked_at in thresholds:
            while j < len(stocks) and stocks[j][1] > threshold:
                j += 1
            if j == len(stocks):
                undelivered += 1
                continue
            hist.add(max(0.0, stocks[j][0] - acked_at))
            from_send.add(stocks[j][0] - sent_at)
    return Delivery(
        hist, from_send, undelivered, frames, decreases, repeats, wrong, last_values, no_snapshot
    )


@dataclass
class Phase:
    """One paced reservation load on its own drop, and what the server did meanwhile."""

    name: str
    results: list[client.Result]
    elapsed: float
    loop_lag: Summary
    cpu: str
    actor: str
    gc: dict[str, gcpauses.Pauses]
    """The server's collections during the phase, by generation."""

    @property
    def outcomes(self) -> Outcomes:
        return client.outcomes_of(self.results)

    @property
    def reserve(self) -> Summary:
        """The 201s' latency to the answer's arrival at the client's socket (kernel stamp)."""
        return Summary.of(r.latency for r in self.results if r.status == 201)

    @property
    def reserve_read(self) -> Summary:
        """The same to when the client read the answer: adds the client's own lag."""
        return Summary.of(r.done - r.sent for r in self.results if r.status == 201)


async def paced_load(
    args: argparse.Namespace,
    server: ServerProcess,
    pids: dict[str, int | None],
    name: str,
    drop_id: int,
    tokens: list[str],
) -> Phase:
    """The scenario's reservation load (C connections paced to `rate`/s for `d` s, one user per
    request) on `drop_id`, with the loop-lag probe and the CPU meter around it. Both phases run
    exactly this, so that they differ only in the watchers connected."""
    body = {"dropId": drop_id}
    requests = [client.post_json(server.port, "/api/reservations", body, t) for t in tokens]
    connections = await client.open_connections(server.port, args.concurrency, stamped=True)
    meter = probes.CpuMeter(pids)
    probe = probes.HealthProbe(server.port)
    before = await probes.scrape(server.url)
    meter.start()
    probe.start()
    results, elapsed = await client.run_load(
        server.port,
        requests,
        args.concurrency,
        rate=args.rate,
        duration=args.duration if args.rate > 0 else 0.0,
        connections=connections,
    )
    loop_lag = await probe.stop()
    meter.stop()
    after = await probes.scrape(server.url)
    actor = probes.actor_figures(after, drop_id)
    gc = {g: gcpauses.between(before, after, g) for g in ("0", "1", "2")}
    return Phase(name, results, elapsed, loop_lag, meter.line(), actor, gc)


def phase_lines(phase: Phase) -> list[str]:
    return [
        f"  reservations {phase.name} (HTTP, at the reserving client):",
        *report.outcome_table(phase.outcomes, phase.elapsed),
        report.summary_line("GET /healthz probe (loop lag)", phase.loop_lag),
        phase.actor,
        "  server GC: "
        + ", ".join(
            f"gen {g} {p.count} collections, {p.total * 1e3:.0f} ms in all, worst {p.worst_text()}"
            for g, p in phase.gc.items()
        ),
        phase.cpu,
    ]


async def run(args: argparse.Namespace) -> int:
    soft, hard = raise_nofile()
    with workdir() as wd:
        db = Database(args.store, wd)
        profile = wd / "sneakerd.prof" if args.profile else None
        server = sneakerd_server(db.url, wd, profile=profile)
        top = ""
        fleet: Fleet | None = None
        try:
            db.init()
            per_phase = int(args.rate * args.duration) if args.rate > 0 else args.stock * 2
            warm = int(args.rate * args.warmup) if args.rate > 0 else 0
            # Every request has a user of its own, seen by the server for the first time in
            # both phases alike (the server caches users and tokens it has seen).
            people = insert_users(db, max(warm + 2 * per_phase, args.stock, 100))
            customers = people.customers
            server.start()
            admin = mint(people.admin, "admin")
            drops = [
                await client.create_drop(server.url, admin, stock=args.stock) for _ in range(3)
            ]
            warm_id, base_id, watched_id = (int(d["id"]) for d in drops)
            initial = int(drops[2]["stock"])
            path = f"/api/drops/{watched_id}/ws"

            fleet = Fleet(nice=args.fleet_nice, read_gap=args.fleet_read_ms / 1e3)
            pids = {
                "server": server.pid,
                "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                "fleet": fleet.pid,
                "loadtest": os.getpid(),
            }
            if warm:  # the server's first requests (pools, first imports) belong to no phase
                await paced_load(
                    args, server, pids, "warm-up", warm_id, [mint(u) for u in customers[:warm]]
                )
            used = warm
            base_tokens = [mint(u) for u in customers[used : used + per_phase]]
            used += per_phase
            baseline = await paced_load(
                args, server, pids, "without watchers", base_id, base_tokens
            )

            await asyncio.sleep(args.settle)
            rss_before = server.rss_kib()
            connected = await fleet.connect(server.port, path, args.watchers)
            await asyncio.sleep(args.settle)
            rss_after = server.rss_kib()

            tokens = [mint(u) for u in customers[used : used + per_phase]]
            watched = await paced_load(
                args, server, pids, f"with {connected['connected']} watchers", watched_id, tokens
            )
            await asyncio.sleep(1.0)  # the last coalesced update is at most one tick away
            final = int((await client.get_drop(server.url, watched_id))["stock"])
            outcome = await fleet.collect()
            rss_end = server.rss_kib()
            nofile = proc_nofile(server.pid)
        finally:
            if fleet is not None:
                fleet.stop()
            code = server.stop()
            if profile is not None and profile.exists():
                top = profile_top(profile, args.profile)
            db.drop()

    acks = [
        (int(orjson.loads(r.body)["reservation"]["id"]), r.sent, r.sent + r.latency)
        for r in watched.results
        if r.status == 201
    ]
    delivery = analyse(outcome, acks, initial, final)
    lat = delivery.histogram.summary()
    as_read = analyse(outcome.as_read(), acks, initial, final).histogram.summary()
    per_watcher = (rss_after - rss_before) / max(1, connected["connected"])
    ok_count = initial - len(acks) == final
    alone, crowded = baseline.reserve, watched.reserve
    ratio = crowded.p99 / alone.p99 if alone.count and crowded.count else math.nan
    alone_read, crowded_read = baseline.reserve_read, watched.reserve_read
    ratio_read = (
        crowded_read.p99 / alone_read.p99 if alone_read.count and crowded_read.count else math.nan
    )
    lines = [
        f"  store={args.store} watchers={args.watchers} stock={args.stock} "
        f"concurrency={args.concurrency} rate={args.rate:g}/s duration={args.duration:g}s "
        f"(twice: without, then with the watchers; warm-up {warm} requests; "
        f"fleet niceness {args.fleet_nice}, reads in rounds {args.fleet_read_ms:g} ms apart)",
        f"  RLIMIT_NOFILE loadtest={soft}/{hard} server={nofile}",
        f"  watchers connected {connected['connected']} (failed {connected['failed']}, "
        f"without snapshot {connected['without_snapshot']}) in {connected['seconds']:.2f} s",
        f"  server VmRSS: before {rss_before / 1024:.1f} MiB, with {connected['connected']} idle "
        f"watchers {rss_after / 1024:.1f} MiB -> {per_watcher:.1f} KiB per idle subscriber; "
        f"after the run {rss_end / 1024:.1f} MiB",
        "",
        *phase_lines(baseline),
        "",
        *phase_lines(watched),
        "",
        "  stock-update delivery, every (acknowledged reservation x watcher) pair, timed by the",
        "  frame's arrival at the watcher's socket (the kernel's receive timestamp):",
        f"  {'':<28} {'pairs':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        report.summary_line("from the 201 (clamped at 0)", lat),
        report.summary_line("from the request's send", delivery.from_send.summary()),
        "  the same, timed by when the fleet read it (adds the fleet's own lag on shared cores):",
        report.summary_line("from the 201 (clamped at 0)", as_read),
        f"  pairs never delivered: {delivery.undelivered}; frames stamped with a later frame's "
        f"arrival (one read): {outcome.shared_stamps}",
        "  frames received: "
        + ", ".join(f"{k} {v}" for k, v in sorted(delivery.frames.items()))
        + f"  (lost connections {outcome.lost}, close codes "
        f"{sorted({c for c in outcome.close_codes if c is not None})})",
        "",
        "  reservation 201 latency, from the send to the answer's arrival at the client's",
        "  socket (the kernel's receive timestamp):",
        "                               p50 ms   p99 ms",
        f"  without watchers           {alone.p50 * 1e3:8.1f} {alone.p99 * 1e3:8.1f}",
        f"  with the watchers          {crowded.p50 * 1e3:8.1f} {crowded.p99 * 1e3:8.1f}",
        f"  ratio (with / without)     {crowded.p50 / alone.p50:8.2f} {ratio:8.2f}",
        "  the same, to when the client read it (adds the client's own lag on shared cores):",
        f"  without watchers           {alone_read.p50 * 1e3:8.1f} {alone_read.p99 * 1e3:8.1f}",
        f"  with the watchers          {crowded_read.p50 * 1e3:8.1f} {crowded_read.p99 * 1e3:8.1f}",
        f"  ratio (with / without)     {crowded_read.p50 / alone_read.p50:8.2f} {ratio_read:8.2f}",
        "",
        report.check(ok_count, f"final stock {final} == initial {initial} - {len(acks)} 201s"),
        report.check(
            delivery.wrong_last == 0,
            f"every watcher's last stock == final stock {final} "
            f"(wrong: {delivery.wrong_last}; last values {delivery.last_values})",
        ),
        report.check(
            delivery.seq_decreases == 0,
            f"seq never decreased per watcher (decreases {delivery.seq_decreases}, "
            f"repeats {delivery.seq_repeats})",
        ),
        report.check(delivery.no_snapshot_first == 0, "every watcher's first frame is a snapshot"),
        report.check(
            len(baseline.results) == len(watched.results) and crowded.count == alone.count,
            f"both phases sent the same load ({len(baseline.results)} and "
            f"{len(watched.results)} requests, {alone.count} and {crowded.count} 201s)",
        ),
        report.check(lat.p99 <= 0.250, f"target: delivery p99 {lat.p99 * 1e3:.1f} ms <= 250 ms"),
        report.check(
            ratio <= 2.0,
            f"target: reservation p99 with watchers {crowded.p99 * 1e3:.1f} ms <= 2 x without "
            f"({alone.p99 * 1e3:.1f} ms): {ratio:.2f} x",
        ),
        f"  server exit code {code}",
    ]
    print(report.header("watchers", lines))
    if top:
        print(top)
    passed = ok_count and delivery.wrong_last == 0 and delivery.seq_decreases == 0
    return 0 if passed else 1
