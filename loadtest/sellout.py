"""`sellout`: a realistic drop from open to sold out. 20,000 users try for 500 units (losers
retry), each winner holds a unit for RESERVATION_DURATION (shortened for the run) and then
60 % buy within the hold, the rest cancel or let it expire, so units come back and are grabbed
again until every unit is sold; watchers follow it over WebSockets.

Reports time to sell out (first request to the last unit sold), units sold, expiry lag from the
database (reservations.ended_at - expires_at of every expired hold: when its unit was back), the
HTTP figures per request kind and outcome, and checks `sneakerd db check`, that sold == purchases
the buyers were told of == initial stock, and that every watcher ends on stock 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

import orjson

from loadtest import client, probes, record, report
from loadtest.servers import Database, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Outcomes, Summary
from loadtest.users import insert_users, mint, sql
from loadtest.wsfleet import Fleet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--stock", type=int, default=500)
    p.add_argument("--buy", type=float, default=0.6, help="share of holders who buy")
    p.add_argument("--hold-ms", type=int, default=3000, help="RESERVATION_DURATION for the run")
    p.add_argument("--concurrency", "-c", type=int, default=64, help="reserving connections")
    p.add_argument("--action-connections", type=int, default=16, help="for buy/cancel")
    p.add_argument("--watchers", "-n", type=int, default=500)
    p.add_argument("--max-seconds", type=float, default=60.0, help="stop even if not sold out")
    p.add_argument("--seed", type=int, default=1)


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    rng = random.Random(args.seed)
    hold = args.hold_ms / 1000
    with workdir() as wd:
        db = Database(args.store, wd)
        server = sneakerd_server(db.url, wd, hold_ms=args.hold_ms)
        fleet: Fleet | None = None
        try:
            db.init()
            people = insert_users(db, args.users)
            server.start()
            drop = await client.create_drop(
                server.url, mint(people.admin, "admin"), stock=args.stock
            )
            drop_id, initial = int(drop["id"]), int(drop["stock"])
            fleet = Fleet()
            connected = await fleet.connect(server.port, f"/api/drops/{drop_id}/ws", args.watchers)

            tokens = {u: mint(u) for u in people.customers}
            queue = list(people.customers)
            rng.shuffle(queue)
            waiting: asyncio.Queue[int] = asyncio.Queue()
            for u in queue:
                waiting.put_nowait(u)
            book = Outcomes()
            fates = {"buy": 0, "cancel": 0, "expire": 0}
            sold = 0
            sold_out = asyncio.Event()
            t0 = time.monotonic()
            stop_at = t0 + args.max_seconds
            sold_at = 0.0
            actions: asyncio.Queue[client.Connection] = asyncio.Queue()
            for _ in range(args.action_connections):
                actions.put_nowait(await client.connect(server.port))
            tasks: set[asyncio.Task[None]] = set()
            reserve_body = {"dropId": drop_id}

            async def act(kind: str, request: bytes) -> tuple[int, bytes]:
                conn = await actions.get()
                started = time.monotonic()
                try:
                    status, body = await conn.request(request)
                except (ConnectionError, ValueError):
                    conn = await client.connect(server.port)
                    status, body = 0, b""
                finally:
                    actions.put_nowait(conn)
                label, latency = (
                    f"{kind} " + client.outcome_of(status, body),
                    time.monotonic() - started,
                )
                book.add(label, latency)
                record.current().request(label, latency)
                return status, body

            async def holder(user: int, reservation_id: int) -> None:
                nonlocal sold, sold_at
                roll = rng.random()
                token = tokens[user]
                if roll < args.buy:
                    fates["buy"] += 1
                    await asyncio.sleep(rng.uniform(0.1, 0.8) * hold)
                    request = client.post_json(
                        server.port, "/api/purchases", {"reservationId": reservation_id}, token
                    )
                    status, _ = await act("purchase", request)
                    if status == 201:
                        sold += 1
                        if sold >= initial:
                            sold_at = time.monotonic()
                            sold_out.set()
                elif roll < args.buy + (1 - args.buy) / 2:
                    fates["cancel"] += 1
                    await asyncio.sleep(rng.uniform(0.1, 0.8) * hold)
                    request = (
                        f"DELETE /api/reservations/{reservation_id} HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n\r\n"
                    ).encode()
                    await act("cancel", request)
                else:
                    fates["expire"] += 1

            async def reserver() -> None:
                conn = await client.connect(server.port)
                try:
                    while not sold_out.is_set() and time.monotonic() < stop_at:
                        user = waiting.get_nowait()
                        request = client.post_json(
                            server.port, "/api/reservations", reserve_body, tokens[user]
                        )
                        started = time.monotonic()
                        try:
                            status, body = await conn.request(request)
                        except (ConnectionError, ValueError):
                            conn = await client.connect(server.port)
                            status, body = 0, b""
                        label = "reserve " + client.outcome_of(status, body)
                        book.add(label, time.monotonic() - started)
                        record.current().request(label, time.monotonic() - started)
                        if status == 201:
                            rid = int(orjson.loads(body)["reservation"]["id"])
                            task = asyncio.create_task(holder(user, rid))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                        elif status == 409 and b"out_of_stock" in body:
                            waiting.put_nowait(user)  # tries again later
                        elif status == 0:
                            waiting.put_nowait(user)
                finally:
                    conn.close()

            meter = probes.CpuMeter(
                {
                    "server": server.pid,
                    "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                    "fleet": fleet.pid,
                    "loadtest": os.getpid(),
                }
            )
            meter.start()
            await asyncio.gather(*(reserver() for _ in range(args.concurrency)))
            meter.stop()
            elapsed = time.monotonic() - t0
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            while not actions.empty():
                actions.get_nowait().close()
            await asyncio.sleep(1.0)
            final = await client.get_drop(server.url, drop_id)
            outcome = await fleet.collect()
            if args.store == "mysql":
                lag_rows = sql(
                    db,
                    "SELECT TIMESTAMPDIFF(MICROSECOND, expires_at, ended_at) / 1e6 "
                    "FROM reservations WHERE drop_id = %s AND status = 'expired'",
                    (drop_id,),
                )
            else:
                lag_rows = sql(
                    db,
                    "SELECT (ended_at - expires_at) / 1000.0 FROM reservations "
                    "WHERE drop_id = %s AND status = 'expired'",
                    (drop_id,),
                )
            statuses = dict(
                sql(
                    db,
                    "SELECT status, COUNT(*) FROM reservations WHERE drop_id = %s GROUP BY status",
                    (drop_id,),
                )
            )
            purchases = sql(db, "SELECT COUNT(*) FROM purchases WHERE drop_id = %s", (drop_id,))
            server.stop()
            passed, output = db.check()
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()
            db.drop()

    lag = Summary.of(float(x) for (x,) in lag_rows)
    last: dict[int | None, int] = {}
    for obs in outcome.observations:
        stocks = [s for _, _, _, s in obs if s is not None]
        key = stocks[-1] if stocks else None
        last[key] = last.get(key, 0) + 1
    frames: dict[str, int] = {}
    for obs in outcome.observations:
        for _, kind, _, _ in obs:
            frames[kind] = frames.get(kind, 0) + 1
    total = book.total
    lines = [
        f"  store={args.store} users={args.users} stock={args.stock} buy={args.buy:.0%} "
        f"hold={args.hold_ms} ms concurrency={args.concurrency} watchers={connected['connected']}",
        "  time to sell out: "
        + (f"{sold_at - t0:.2f} s" if sold_out.is_set() else f"NOT sold out in {elapsed:.1f} s"),
        f"  units sold: {final['sold']} of {initial} (stock {final['stock']}, reserved "
        f"{final['reserved']}); holders: {fates}",
        f"  reservations by status: {statuses}",
        f"  {'':<28} {'count':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        report.summary_line("expiry lag (ended-expires)", lag),
        "",
        f"  {'request outcome':<28} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        *(f"  {k:<28} {s.count:>7} {s.ms()}" for k, s in book.summaries().items()),
        f"  {total} requests in {elapsed:.2f} s = {total / elapsed:,.0f} requests/s",
        meter.line(),
        "  frames: " + ", ".join(f"{k} {v}" for k, v in sorted(frames.items())),
        "",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            final["sold"] == purchases[0][0] == sold == initial,
            f"sold {final['sold']} == purchases {purchases[0][0]} == buyers told 201 {sold} "
            f"== initial {initial}",
        ),
        report.check(
            not outcome.observations or set(last) == {final["stock"]},
            f"every watcher's last stock == final stock {final['stock']} ({last})",
        ),
        report.check(lag.count == 0 or lag.p99 < 0.25, "expiry lag p99 < 250 ms (docs/API.md)"),
    ]
    print(report.header("sellout", lines))
    return 0 if passed and sold == initial else 1
