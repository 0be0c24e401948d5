"""`hotdrop`: one drop, many users, C connections all reserving at once for a bounded number of
requests. Reports throughput and latency per outcome, and checks the database afterwards:
`sneakerd db check` passes, every 201 the generator saw is an active hold, and there is no other
hold on the drop."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import orjson

from loadtest import client, probes, report
from loadtest.report import profile_top
from loadtest.servers import Database, ServerProcess, raise_nofile, sneakerd_server, workdir
from loadtest.users import Population, insert_users, mint, sql


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--stock", type=int, default=500)
    p.add_argument("--per-user-limit", type=int, default=1)
    p.add_argument("--concurrency", "-c", type=int, default=64)
    p.add_argument("--requests", type=int, default=0, help="default: one per user")
    p.add_argument(
        "--warm",
        action="store_true",
        help="first one pass over every user on another drop (fills the user cache)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="run the server under cProfile and print its top N functions (slows it down)",
    )


@dataclass
class HotResult:
    results: list[client.Result]
    elapsed: float
    lines: list[str]


async def reserve_burst(
    server: ServerProcess,
    drop_id: int,
    people: Population,
    requests: int,
    concurrency: int,
    pids: dict[str, int | None],
) -> HotResult:
    """Every request at once (closed loop over `concurrency` connections), user i % n."""
    users = people.customers
    tokens = [mint(u) for u in users[: min(len(users), requests)]]
    body = {"dropId": drop_id}
    batch = [
        client.post_json(server.port, "/api/reservations", body, tokens[i % len(tokens)])
        for i in range(requests)
    ]
    meter = probes.CpuMeter(pids)
    meter.start()
    results, elapsed = await client.run_load(server.port, batch, concurrency)
    meter.stop()
    lines = [*report.outcome_table(client.outcomes_of(results), elapsed), meter.line()]
    return HotResult(results, elapsed, lines)


def verify_holds(db: Database, drop_id: int, results: list[client.Result]) -> list[str]:
    seen = {int(orjson.loads(r.body)["reservation"]["id"]) for r in results if r.status == 201}
    rows = sql(db, "SELECT id, status FROM reservations WHERE drop_id = %s", (drop_id,))
    active = {int(i) for i, status in rows if status == "active"}
    other = [int(i) for i, status in rows if status != "active"]
    passed, output = db.check()
    last = output.splitlines()[-1] if output else ""
    return [
        report.check(passed, f"sneakerd db check: {last}"),
        report.check(
            seen == active,
            f"every 201 is an active hold and no other is: {len(seen)} 201s, "
            f"{len(active)} active holds, {len(seen - active)} 201s not active, "
            f"{len(active - seen)} active holds nobody was told of",
        ),
        report.check(not other, f"no hold in another state: {len(other)}"),
    ]


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    requests = args.requests or args.users
    with workdir() as wd:
        db = Database(args.store, wd)
        profile = wd / "sneakerd.prof" if args.profile else None
        server = sneakerd_server(db.url, wd, profile=profile)
        top = ""
        try:
            db.init()
            people = insert_users(db, args.users)
            server.start()
            drop = await client.create_drop(
                server.url,
                mint(people.admin, "admin"),
                stock=args.stock,
                per_user_limit=args.per_user_limit,
            )
            drop_id = int(drop["id"])
            pids = {
                "server": server.pid,
                "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                "loadtest": os.getpid(),
            }
            if args.warm:
                other = await client.create_drop(
                    server.url, mint(people.admin, "admin"), stock=len(people.customers)
                )
                await reserve_burst(
                    server, int(other["id"]), people, len(people.customers), args.concurrency, {}
                )
            probe = probes.HealthProbe(server.port)
            probe.start()
            hot = await reserve_burst(server, drop_id, people, requests, args.concurrency, pids)
            lag = await probe.stop()
            actor = probes.actor_figures(await probes.scrape(server.url), drop_id)
            final = await client.get_drop(server.url, drop_id)
            code = server.stop()
            if profile is not None:
                top = profile_top(profile, args.profile)
            checks = verify_holds(db, drop_id, hot.results)
        finally:
            server.stop()
            db.drop()
    lines = [
        f"  store={args.store} users={args.users} stock={args.stock} "
        f"perUserLimit={args.per_user_limit} concurrency={args.concurrency} requests={requests}",
        *hot.lines,
        report.summary_line("GET /healthz probe (loop lag)", lag),
        actor,
        f"  drop after: stock {final['stock']} reserved {final['reserved']} sold {final['sold']}"
        f" status {final['status']}; server exit code {code}",
        *checks,
    ]
    print(report.header("hotdrop", lines))
    if top:
        print(top)
    return 0 if all("[PASS]" in c for c in checks) else 1
