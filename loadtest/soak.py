"""`soak`: ten minutes (by default) of mixed traffic, watching the server's memory and open file
descriptors. Several drops are restocked as they sell, so the traffic never dries up: users
reserve, then buy, cancel or let the hold expire (a short hold, so expiries run all the time);
some requests are refused (limits, bad bodies, bad tokens); readers list drops and their own
holds; WebSocket watchers stay connected while others come and go.

Every 10 s the server's VmRSS and descriptor count are sampled. After a warm-up (the first
fifth of the run, at least 60 s: caches, pools and allocator arenas fill) both should stay flat:
the report gives the first and last post-warm-up samples, the spread, and the growth rate.
Checks: `sneakerd db check`, no 5xx and no dropped connection, RSS growth after warm-up under
10 %, descriptors back to their post-warm-up range.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time

import aiohttp
import orjson

from loadtest import client, probes, record, report
from loadtest.servers import Database, raise_nofile, sneakerd_server, workdir
from loadtest.stats import Outcomes
from loadtest.users import insert_users, mint
from loadtest.wsfleet import Fleet

SAMPLE_EVERY = 10.0


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--duration", "-d", type=float, default=600.0, help="seconds of traffic")
    p.add_argument("--users", type=int, default=5_000)
    p.add_argument("--drops", type=int, default=5)
    p.add_argument("--stock", type=int, default=200, help="units per drop (restocked)")
    p.add_argument("--hold-ms", type=int, default=3000, help="RESERVATION_DURATION for the run")
    p.add_argument("--rate", type=float, default=400.0, help="reserve attempts per second")
    p.add_argument("--concurrency", "-c", type=int, default=32)
    p.add_argument("--watchers", "-n", type=int, default=200, help="steady WebSocket watchers")
    p.add_argument("--seed", type=int, default=1)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def listen_overflows() -> int:
    """The kernel's count of handshakes dropped because an accept queue was full (all
    sockets on this machine: read it as a delta over a run with nothing else listening)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


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
            admin = mint(people.admin, "admin")
            drops = [
                int(
                    (
                        await client.create_drop(
                            server.url, admin, stock=args.stock, per_user_limit=1000
                        )
                    )["id"]
                )
                for _ in range(args.drops)
            ]
            fleet = Fleet()
            connected = await fleet.connect(server.port, f"/api/drops/{drops[0]}/ws", args.watchers)
            tokens = [mint(u) for u in people.customers]
            book = Outcomes()
            recorder = record.current()
            failures: list[str] = []
            samples: list[tuple[float, int, int]] = []
            holders: set[asyncio.Task[None]] = set()
            t0 = time.monotonic()
            stop_at = t0 + args.duration
            sent = 0
            port = server.port

            async def request(
                conn: client.Connection, kind: str, data: bytes
            ) -> tuple[client.Connection, int, bytes]:
                started = time.monotonic()
                try:
                    status, body = await conn.request(data)
                except (ConnectionError, ValueError):
                    conn.close()
                    conn = await client.connect(port)
                    status, body = 0, b""
                label, latency = (
                    f"{kind} " + client.outcome_of(status, body),
                    time.monotonic() - started,
                )
                book.add(label, latency)
                recorder.request(label, latency)
                if status == 0 or status >= 500:
                    failures.append(f"{kind} {status} {body[:200]!r}")
                return conn, status, body

            def delete(path: str, token: str) -> bytes:
                return (
                    f"DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n"
                ).encode()

            def get(path: str, token: str | None = None) -> bytes:
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode()

            async def holder(token: str, reservation_id: int) -> None:
                roll = rng.random()
                if roll >= 0.75:
                    return  # lets the hold expire
                await asyncio.sleep(rng.uniform(0.1, 0.8) * hold)
                conn = await client.connect(port)
                try:
                    if roll < 0.5:
                        body = {"reservationId": reservation_id}
                        data = client.post_json(port, "/api/purchases", body, token)
                        await request(conn, "purchase", data)
                    else:
                        data = delete(f"/api/reservations/{reservation_id}", token)
                        await request(conn, "cancel", data)
                finally:
                    conn.close()

            async def shopper() -> None:
                nonlocal sent
                conn = await client.connect(port)
                try:
                    while (now := time.monotonic()) < stop_at:
                        delay = t0 + sent / args.rate - now
                        sent += 1
                        if delay > 0:
                            await asyncio.sleep(delay)
                        token = rng.choice(tokens)
                        roll = rng.random()
                        if roll < 0.85:
                            body = {"dropId": rng.choice(drops)}
                            data = client.post_json(port, "/api/reservations", body, token)
                            conn, status, answer = await request(conn, "reserve", data)
                            if status == 201:
                                rid = int(orjson.loads(answer)["reservation"]["id"])
                                task = asyncio.create_task(holder(token, rid))
                                holders.add(task)
                                task.add_done_callback(holders.discard)
                        elif roll < 0.92:
                            conn, _, _ = await request(conn, "list drops", get("/api/drops"))
                        elif roll < 0.97:
                            path = "/api/reservations/user"
                            conn, _, _ = await request(conn, "my holds", get(path, token))
                        elif roll < 0.985:
                            data = client.post_json(
                                port, "/api/reservations", {"dropId": "x"}, token
                            )
                            conn, _, _ = await request(conn, "bad body", data)
                        else:
                            data = client.post_json(
                                port, "/api/reservations", {"dropId": drops[0]}, token[:-2] + "xx"
                            )
                            conn, _, _ = await request(conn, "bad token", data)
                finally:
                    conn.close()

            async def restocker() -> None:
                # Keeps units coming: every 2 s, a drop that ran low gets its sold units back.
                async with aiohttp.ClientSession() as http:
                    headers = {"Authorization": f"Bearer {admin}"}
                    while time.monotonic() < stop_at:
                        await asyncio.sleep(2.0)
                        for drop_id in drops:
                            async with http.get(f"{server.url}/api/drops/{drop_id}") as r:
                                drop = (await r.json())["drop"]
                            if drop["stock"] < args.stock // 4:
                                body = {
                                    "initialStock": drop["sold"] + drop["reserved"] + args.stock
                                }
                                async with http.put(
                                    f"{server.url}/api/drops/{drop_id}", json=body, headers=headers
                                ) as r:
                                    book.add(f"restock {r.status}", 0.0)

            async def churn() -> None:
                # WebSocket watchers that come and go: each stays a few seconds.
                async with aiohttp.ClientSession() as http:
                    while time.monotonic() < stop_at:
                        url = f"{server.url}/api/drops/{rng.choice(drops)}/ws"
                        async with http.ws_connect(url) as ws:
                            await ws.receive(timeout=5)
                            await asyncio.sleep(rng.uniform(0.5, 3.0))

            def sample() -> None:
                at, rss, fds = time.monotonic(), server.rss_kib(), fd_count(server.pid)
                samples.append((at - t0, rss, fds))
                recorder.gauge("server VmRSS", rss / 1024, "MiB", at)
                recorder.gauge("server open file descriptors", fds, "fds", at)
                progress(
                    f"progress: soak {at - t0:.0f}/{args.duration:g} s: {book.total:,} requests, "
                    f"RSS {rss / 1024:.1f} MiB, {fds} fds"
                )

            async def sampler() -> None:
                while time.monotonic() < stop_at:
                    sample()
                    await asyncio.sleep(SAMPLE_EVERY)
                sample()

            meter = probes.CpuMeter(
                {
                    "server": server.pid,
                    "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                    "loadtest": os.getpid(),
                }
            )
            meter.start()
            overflows_before = listen_overflows()
            await asyncio.gather(
                *(shopper() for _ in range(args.concurrency)),
                restocker(),
                *(churn() for _ in range(4)),
                sampler(),
            )
            meter.stop()
            overflows = listen_overflows() - overflows_before
            elapsed = time.monotonic() - t0
            await asyncio.gather(*holders, return_exceptions=True)
            await asyncio.sleep(hold + 1.0)  # the last holds expire; their units come back
            settled = (server.rss_kib(), fd_count(server.pid))
            server.stop()
            passed, output = db.check()
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()
            db.drop()

    warm = max(60.0, args.duration / 5)
    steady = [s for s in samples if s[0] >= warm] or samples
    rss = [r for _, r, _ in steady]
    fds = [f for _, _, f in steady]
    _, first_rss, first_fd = steady[0]
    _, last_rss, last_fd = steady[-1]
    # The trend, not two noisy end points: a least-squares line through every steady sample.
    xs = [t / 60 for t, _, _ in steady]
    mean_x, mean_r = sum(xs) / len(xs), sum(rss) / len(rss)
    spread = sum((x - mean_x) ** 2 for x in xs)
    per_minute = (
        sum((x - mean_x) * (r - mean_r) for x, r in zip(xs, rss, strict=True)) / spread
        if spread
        else 0.0
    )
    growth = per_minute * (xs[-1] - xs[0]) / mean_r if mean_r else 0.0
    minute_rows = [s for i, s in enumerate(samples) if i % 6 == 0 or i == len(samples) - 1]
    server_errors = len(failures)
    lines = [
        f"  store={args.store} duration={args.duration:g}s users={args.users} drops={args.drops} "
        f"stock={args.stock} (restocked) hold={args.hold_ms} ms rate={args.rate:g}/s "
        f"watchers={connected['connected']} + churn",
        f"  {book.total:,} requests in {elapsed:.0f} s = {book.total / elapsed:,.0f}/s",
        f"  {'request outcome':<28} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        *(f"  {k:<28} {s.count:>7} {s.ms()}" for k, s in book.summaries().items()),
        meter.line(),
        "",
        "  minute  VmRSS MiB  open fds",
        *(f"  {t / 60:>6.1f} {r / 1024:>10.1f} {f:>9}" for t, r, f in minute_rows),
        f"  after warm-up ({warm:.0f} s): RSS {first_rss / 1024:.1f} -> {last_rss / 1024:.1f} MiB "
        f"(min {min(rss) / 1024:.1f} max {max(rss) / 1024:.1f}); trend {per_minute / 1024:+.2f} "
        f"MiB/min = {growth:+.1%} over the steady part; fds {first_fd} -> {last_fd} "
        f"(min {min(fds)} max {max(fds)})",
        f"  after the traffic stopped and holds expired: RSS {settled[0] / 1024:.1f} MiB, "
        f"fds {settled[1]}; kernel ListenOverflows during the run: {overflows}",
        "",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            server_errors == 0,
            f"no 5xx and no dropped connection ({server_errors}{': ' if failures else ''}"
            f"{'; '.join(failures[:3])})",
        ),
        report.check(growth < 0.10, "RSS trend after warm-up < 10 % of the mean"),
        report.check(
            settled[1] <= max(fds), f"fds after the run ({settled[1]}) within the steady range"
        ),
    ]
    print(report.header("soak", lines))
    return 0 if passed and server_errors == 0 and growth < 0.10 else 1
