"""`compare`: the same reservation load against sneakerd (MariaDB), the ceiling (aiohttp that
stores nothing) and rowlock (a row lock per request), R rounds interleaved; per-server median
throughput and the ratios sneakerd/ceiling and sneakerd/rowlock.

What is measured: every request does the full reserve path and succeeds. Each (round, server) gets
a fresh drop whose stock equals the number of requests, perUserLimit 1, and each user reserves
once per drop, so no request is a cheap 409. Before the rounds every server gets one warm-up pass
over every user (so sneakerd's user-existence cache is warm and pools are full): the rounds
measure steady-state holds, 201 each, closed loop over C keep-alive connections. Every pass sends
newly minted tokens (unless --reuse-tokens), so every server verifies every token it is sent,
and every 201 sneakerd gave must be a reservation row of that pass's drop.
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from loadtest import client, probes, report
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

SERVERS = ("sneakerd", "ceiling", "rowlock")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", type=int, default=4000, help="users = requests per round")
    p.add_argument("--concurrency", "-c", type=int, default=64)
    p.add_argument("--rounds", "-r", type=int, default=3)
    p.add_argument(
        "--reuse-tokens",
        dest="fresh_tokens",
        action="store_false",
        help="send the same token per user in every pass (sneakerd's token cache then hits)",
    )


class Targets:
    """The three servers and how to give each a fresh drop."""

    def __init__(self, wd: object, db: Database, rowlock_db: Database) -> None:
        self.db = db
        self.rowlock_db = rowlock_db
        self.servers: dict[str, ServerProcess] = {}
        self._next_drop = 0
        self.admin_token = ""

    async def fresh_drop(self, name: str, stock: int) -> int:
        if name == "sneakerd":
            url = self.servers[name].url
            drop = await client.create_drop(url, self.admin_token, stock=stock, name="compare")
            return int(drop["id"])
        self._next_drop += 1
        if name == "rowlock":
            sql(
                self.rowlock_db,
                "INSERT INTO drops (id, stock, per_user_limit) VALUES (%s, %s, 1)",
                (self._next_drop, stock),
            )
        return self._next_drop


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    with workdir() as wd:
        db = Database("mysql", wd)
        rowlock_db = Database("mysql", wd, name=db.name + "_rowlock")
        targets = Targets(wd, db, rowlock_db)
        env = {"JWT_SECRET": JWT_SECRET}
        targets.servers = {
            "sneakerd": sneakerd_server(db.url, wd),
            "ceiling": ServerProcess("ceiling", ["-m", "loadtest.baselines.ceiling"], env, wd),
            "rowlock": ServerProcess(
                "rowlock", ["-m", "loadtest.baselines.rowlock", "--db", rowlock_db.url], env, wd
            ),
        }
        rates: dict[str, list[float]] = {name: [] for name in SERVERS}
        rows: list[str] = []
        bad: list[str] = []
        try:
            db.init()
            people = insert_users(db, args.users)
            targets.admin_token = mint(people.admin, "admin")
            for server in targets.servers.values():
                server.start()
            mariadb = probes.mariadb_pid()
            editions = iter(range(1, 1_000_000))

            async def one_pass(name: str) -> tuple[float, str]:
                server = targets.servers[name]
                # Fresh tokens every pass: sneakerd caches verified tokens, and the ceiling
                # verifies every one, so reused tokens would compare different work.
                edition = next(editions) if args.fresh_tokens else 0
                tokens = [mint(u, edition=edition) for u in people.customers]
                drop_id = await targets.fresh_drop(name, len(tokens))
                body = {"dropId": drop_id}
                batch = [
                    client.post_json(server.port, "/api/reservations", body, t) for t in tokens
                ]
                meter = probes.CpuMeter({"server": server.pid, "mariadb": mariadb})
                meter.start()
                results, elapsed = await client.run_load(server.port, batch, args.concurrency)
                cpu = meter.stop()
                outcomes = client.outcomes_of(results)
                ok = outcomes.count("201")
                if name == "sneakerd":
                    seen = sorted(
                        int(orjson.loads(r.body)["reservation"]["id"])
                        for r in results
                        if r.status == 201
                    )
                    stored = [
                        int(r[0])
                        for r in sql(
                            targets.db,
                            "SELECT id FROM reservations WHERE drop_id = %s ORDER BY id",
                            (drop_id,),
                        )
                    ]
                    if seen != stored:
                        bad.append(f"sneakerd drop {drop_id}: 201 ids differ from the database")
                if ok != len(batch):
                    others = {k: len(v) for k, v in outcomes.latencies.items() if k != "201"}
                    bad.append(f"{name}: {len(batch) - ok} requests not 201: {others}")
                lat = outcomes.overall()
                detail = (
                    f"{ok / elapsed:>9,.0f} {lat.ms()}  cpu server {cpu['server']:.2f} "
                    f"mariadb {cpu.get('mariadb', 0.0):.2f} machine {cpu['machine']:.2f}"
                )
                return ok / elapsed, detail

            for name in SERVERS:
                await one_pass(name)  # warm-up
            for r in range(args.rounds):
                order = SERVERS[r % 3 :] + SERVERS[: r % 3]
                for name in order:
                    rate, detail = await one_pass(name)
                    rates[name].append(rate)
                    rows.append(f"  {r + 1:>5}  {name:<9} {detail}")
                    print("progress:" + rows[-1], file=sys.stderr, flush=True)
            passed, output = db.check()
            held = sql(rowlock_db, "SELECT COUNT(*) FROM reservations")[0][0]
            left = sql(rowlock_db, "SELECT COALESCE(SUM(stock), 0) FROM drops")[0][0]
        finally:
            for server in targets.servers.values():
                server.stop()
            db.drop()
            rowlock_db.drop()
    med = {name: median(v) for name, v in rates.items()}
    passes = args.rounds + 1
    lines = [
        f"  users={args.users} (= requests per pass, all 201) concurrency={args.concurrency} "
        f"rounds={args.rounds} (+1 warm-up), loadtest pid {os.getpid()}",
        f"  {'round':>5}  {'server':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        *rows,
        "",
        *(f"  median {name:<9} {med[name]:>9,.0f} requests/s" for name in SERVERS),
        f"  sneakerd / ceiling = {med['sneakerd'] / med['ceiling']:.2f} x   "
        f"sneakerd / rowlock = {med['sneakerd'] / med['rowlock']:.2f} x",
        "",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            int(held) == args.users * passes and int(left) == 0,
            f"rowlock: {held} holds for {args.users * passes} requests, stock left {left}",
        ),
        report.check(
            not bad, "every request answered 201" + ("; " + "; ".join(bad) if bad else "")
        ),
    ]
    print(report.header("compare", lines))
    return 0 if passed and not bad else 1
