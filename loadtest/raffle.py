"""`raffle`: a raffle of 100,000 entries, from the first entry to the published draw.

Users go straight into the database (`users.insert_users`) and get locally minted tokens; every
entry is a real `POST /api/drops/{id}/entries`, so entries are taken by the drop's actor in its
ordinary batched commits (no bulk path). Once every entry is in, the admin moves
`entriesCloseAt` to two seconds ahead; the draw then runs on its own: the digest's commit, then
the draw's (every winner's hold) with the seed published.

Reports the entry rate and latencies, the draw time (from `entriesCloseAt` until a client
polling GET /api/drops/{id} every 20 ms sees the seed: the digest's commit, the draw and its
commit; and `drawnAt`, the instant the draw was decided, both against `entriesCloseAt`), the
size and read time of GET /api/drops/{id}/raffle, and checks: `sneakerd raffle verify --url`,
`sneakerd db check`, every entry counted, `initialStock` winners each holding a unit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from loadtest import client, probes, report
from loadtest.servers import Database, raise_nofile, sneakerd_server, workdir
from loadtest.users import insert_users, mint, sql

DRAW_TARGET_S = 2.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=("mysql", "sqlite"), default="mysql")
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--stock", type=int, default=1_000, help="initialStock: the winners")
    p.add_argument("--concurrency", "-c", type=int, default=64, help="entering connections")
    p.add_argument("--close-in", type=float, default=2.0, help="seconds from the last entry")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


async def _json(
    session: aiohttp.ClientSession, method: str, url: str, token: str = "", body: Any = None
) -> tuple[int, Any, int]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        raw = await response.read()
        return response.status, orjson.loads(raw), len(raw)


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    with workdir() as wd:
        db = Database(args.store, wd)
        server = sneakerd_server(db.url, wd)
        try:
            db.init()
            t_users = time.monotonic()
            people = insert_users(db, args.entries)
            users_s = time.monotonic() - t_users
            server.start()
            admin = mint(people.admin, "admin")
            base = server.url
            now = datetime.now(UTC)
            async with aiohttp.ClientSession() as session:
                status, body, _ = await _json(
                    session,
                    "POST",
                    base + "/api/drops",
                    admin,
                    {
                        "name": "raffle load",
                        "price": "180",
                        "initialStock": args.stock,
                        "mode": "raffle",
                        "entriesOpenAt": _iso(now),
                        "entriesCloseAt": _iso(now + timedelta(hours=1)),
                        "claimSeconds": 600,
                    },
                )
                if status != 201:
                    raise RuntimeError(f"POST /api/drops answered {status}: {body}")
                drop_id = int(body["drop"]["id"])
                path = f"/api/drops/{drop_id}/entries"
                requests = [
                    client.post_json(server.port, path, {}, mint(u)) for u in people.customers
                ]
                meter = probes.CpuMeter(
                    {
                        "server": server.pid,
                        "mariadb": probes.mariadb_pid() if args.store == "mysql" else None,
                        "loadtest": os.getpid(),
                    }
                )
                meter.start()
                results, elapsed = await client.run_load(server.port, requests, args.concurrency)
                meter.stop()
                entered = client.outcomes_of(results)

                close_at = datetime.now(UTC) + timedelta(seconds=args.close_in)
                status, body, _ = await _json(
                    session,
                    "PUT",
                    f"{base}/api/drops/{drop_id}",
                    admin,
                    {"entriesCloseAt": _iso(close_at)},
                )
                if status != 200:
                    raise RuntimeError(f"PUT entriesCloseAt answered {status}: {body}")
                drop: dict[str, Any] = {}
                while True:
                    status, body, _ = await _json(session, "GET", f"{base}/api/drops/{drop_id}")
                    drop = body["drop"]
                    if drop["raffle"]["seed"] is not None:
                        seen_ms = time.time() * 1000
                        break
                    await asyncio.sleep(0.02)
                t_read = time.monotonic()
                status, record, record_bytes = await _json(
                    session, "GET", f"{base}/api/drops/{drop_id}/raffle"
                )
                read_s = time.monotonic() - t_read
            t_verify = time.monotonic()
            verify = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "sneakerd", "raffle", "verify", str(drop_id), "--url", base],
                capture_output=True,
                text=True,
                timeout=300,
            )
            verify_s = time.monotonic() - t_verify
            holds = sql(
                db,
                "SELECT COUNT(*) FROM reservations WHERE drop_id = %s AND status = 'active'",
                (drop_id,),
            )[0][0]
            rss = server.rss_kib()
            server.stop()
            passed, output = db.check()
        finally:
            server.stop()
            db.drop()

    close_ms = _ms(drop["entriesCloseAt"])
    drawn_ms = _ms(drop["raffle"]["drawnAt"])
    draw_s = (drawn_ms - close_ms) / 1000
    seen_s = (seen_ms - close_ms) / 1000
    raffle = record["raffle"]
    ok_entries = entered.summaries().get("201")
    lines = [
        f"  store={args.store} entries={args.entries:,} stock={args.stock:,} "
        f"concurrency={args.concurrency} (users inserted in {users_s:.1f} s)",
        *report.outcome_table(entered, elapsed),
        meter.line(),
        f"  draw decided (drawnAt - entriesCloseAt, server clock): {draw_s:.3f} s",
        f"  draw time (close to the seed seen by a client polling every 20 ms): {seen_s:.3f} s",
        f"  GET /raffle: {record_bytes / 1e6:.1f} MB read in {read_s:.2f} s; "
        f"verify --url in {verify_s:.1f} s; server RSS {rss / 1024:.0f} MiB",
        "",
        report.check(passed, f"sneakerd db check: {output.splitlines()[-1] if output else ''}"),
        report.check(
            verify.returncode == 0,
            f"sneakerd raffle verify: {(verify.stdout.strip().splitlines() or [''])[-1]}",
        ),
        report.check(
            ok_entries is not None
            and ok_entries.count
            == args.entries
            == len(raffle["entries"])
            == drop["raffle"]["entryCount"],
            f"every entry taken: {len(raffle['entries']):,} of {args.entries:,}",
        ),
        report.check(
            len(raffle["winners"]) == holds == min(args.stock, args.entries),
            f"{len(raffle['winners'])} winners, {holds} active holds",
        ),
        report.check(seen_s <= DRAW_TARGET_S, f"draw time {seen_s:.3f} s <= {DRAW_TARGET_S} s"),
    ]
    print(report.header("raffle", lines))
    return 0 if passed and verify.returncode == 0 and seen_s <= DRAW_TARGET_S else 1
