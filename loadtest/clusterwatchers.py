"""`cluster-watchers`: two nodes (two ports) on one database and Redis prefix, N watchers of one
drop on each node, and a paced reservation load sent through both nodes at once.

The drop's owner publishes each change once over Redis; the other node relays it to its own
watchers. Delivery latency is measured exactly as in `watchers` (the c-th smallest reservation
id among the 201s is in exactly the states with stock <= initial - c; latency = the first
stockUpdate or snapshot with such a stock at a watcher, minus when that 201 reached its client,
clamped at 0), once for the watchers on the owner and once for those on the other node.

Checks: final stock (asked of both nodes) = initial - 201s; every watcher's last stock is the
final stock; seq never decreases at any watcher, on either node; every watcher's first frame is
a snapshot; every reservation answered 201.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import orjson

from loadtest import client, probes, report
from loadtest.failover import owner_of
from loadtest.nodes import REDIS_URL, delete_prefix, node_server, redis_prefix
from loadtest.servers import Database, raise_nofile, workdir
from loadtest.users import insert_users, mint
from loadtest.watchers import Delivery, analyse
from loadtest.workersload import wait_owned
from loadtest.wsfleet import Fleet, FleetResult

NAMES = ("a", "b")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watchers", "-n", type=int, default=1000, help="watchers on each node")
    p.add_argument("--stock", type=int, default=2000)
    p.add_argument("--concurrency", "-c", type=int, default=16, help="connections per node")
    p.add_argument("--rate", type=float, default=200.0, help="reservations/s in all")
    p.add_argument("--duration", "-d", type=float, default=8.0)
    p.add_argument("--lease-ms", type=int, default=5000)


def part(result: FleetResult, start: int, stop: int) -> FleetResult:
    reads = result.read_observations
    return FleetResult(
        result.observations[start:stop],
        result.close_codes[start:stop],
        result.lost,
        None if reads is None else reads[start:stop],
    )


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    per_node = int(args.rate * args.duration / 2)
    with workdir() as wd:
        db = Database("mysql", wd)
        prefix = redis_prefix()
        nodes = {n: node_server(db.url, wd, n, prefix, lease_ms=args.lease_ms) for n in NAMES}
        fleet: Fleet | None = None
        try:
            db.init()
            people = insert_users(db, max(2 * per_node, 10))
            for node in nodes.values():
                node.start()
            drop = await client.create_drop(
                nodes["a"].url, mint(people.admin, "admin"), stock=args.stock
            )
            drop_id = int(drop["id"])
            initial = int(drop["stock"])
            await wait_owned(db, [drop_id])
            owner = owner_of(db, drop_id)[0] or "?"
            fleet = Fleet()
            path = f"/api/drops/{drop_id}/ws"
            connected = {n: await fleet.connect(nodes[n].port, path, args.watchers) for n in NAMES}
            pids: dict[str, int | None] = {
                **{f"node {n}": nodes[n].pid for n in NAMES},
                "mariadb": probes.mariadb_pid(),
                "fleet": fleet.pid,
                "loadtest": os.getpid(),
            }
            loads = []
            for i, n in enumerate(NAMES):
                tokens = [mint(u) for u in people.customers[i * per_node : (i + 1) * per_node]]
                body = {"dropId": drop_id}
                port = nodes[n].port
                requests = [client.post_json(port, "/api/reservations", body, t) for t in tokens]
                conns = await client.open_connections(port, args.concurrency)
                loads.append((port, requests, conns))
            meter = probes.CpuMeter(pids)
            meter.start()
            outcomes = await asyncio.gather(
                *(
                    client.run_load(
                        port,
                        requests,
                        args.concurrency,
                        rate=args.rate / 2,
                        duration=args.duration,
                        connections=conns,
                    )
                    for port, requests, conns in loads
                )
            )
            meter.stop()
            await asyncio.sleep(1.0)  # the last coalesced update is at most one tick away
            finals = {
                n: int((await client.get_drop(nodes[n].url, drop_id))["stock"]) for n in NAMES
            }
            result = await fleet.collect()
        finally:
            if fleet is not None:
                fleet.stop()
            for node in nodes.values():
                node.stop()
            delete_prefix(REDIS_URL, prefix)
            db.drop()

    results = {n: outcomes[i][0] for i, n in enumerate(NAMES)}
    acks = [
        (int(orjson.loads(r.body)["reservation"]["id"]), r.sent, r.done)
        for rs in results.values()
        for r in rs
        if r.status == 201
    ]
    final = finals["a"]
    count_a = int(connected["a"]["connected"])
    deliveries: dict[str, Delivery] = {
        "a": analyse(part(result, 0, count_a), acks, initial, final),
        "b": analyse(part(result, count_a, len(result.observations)), acks, initial, final),
    }
    lines = [
        f"  two nodes (MariaDB, Redis), drop of {args.stock} owned by node {owner}; "
        f"{args.watchers} watchers on each node; {args.concurrency} connections per node, "
        f"{args.rate:g} reservations/s in all (half through each node) for {args.duration:g} s",
        *(
            f"  node {n}: watchers connected {connected[n]['connected']} (failed "
            f"{connected[n]['failed']}) in {connected[n]['seconds']:.2f} s"
            for n in NAMES
        ),
        "",
    ]
    for n in NAMES:
        lines += [f"  reservations through node {n}:"]
        lines += report.outcome_table(client.outcomes_of(results[n]), outcomes[NAMES.index(n)][1])
    lines += [
        meter.line(),
        "",
        f"  delivery per node, every (acknowledged reservation x watcher) pair "
        f"(the owner is {owner}):",
        f"  {'':<28} {'pairs':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for n in NAMES:
        d = deliveries[n]
        role = "owner" if n == owner else "relayed"
        lines += [
            report.summary_line(f"node {n} ({role}) from the 201", d.histogram.summary()),
            report.summary_line(f"node {n} from the send", d.from_send.summary()),
            f"    never delivered {d.undelivered}; frames "
            + ", ".join(f"{k} {v}" for k, v in sorted(d.frames.items()))
            + f"; seq decreases {d.seq_decreases}, repeats {d.seq_repeats}",
        ]
    every_201 = all(r.status == 201 for rs in results.values() for r in rs)
    checks = [
        report.check(
            finals["a"] == finals["b"] == initial - len(acks),
            f"final stock on both nodes {finals} == initial {initial} - {len(acks)} 201s",
        ),
        report.check(
            all(d.wrong_last == 0 for d in deliveries.values()),
            "every watcher's last stock is the final stock (wrong: "
            + ", ".join(f"{n} {d.wrong_last}" for n, d in deliveries.items())
            + ")",
        ),
        report.check(
            all(d.seq_decreases == 0 for d in deliveries.values()),
            "seq never decreased at any watcher on either node",
        ),
        report.check(
            all(d.no_snapshot_first == 0 for d in deliveries.values()),
            "every watcher's first frame is a snapshot",
        ),
        report.check(
            all(d.undelivered == 0 for d in deliveries.values()),
            "every acknowledged reservation reached every watcher",
        ),
        report.check(every_201 and bool(acks), f"every reservation answered 201 ({len(acks)})"),
    ]
    print(report.header("cluster-watchers", [*lines, "", *checks]))
    return 0 if all("[PASS]" in c for c in checks) else 1
