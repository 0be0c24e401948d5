"""`sneakerd serve`, `db init`, `db check` and `stats`: the server and the database as a whole."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from sneakerd.cli.exits import progress
from sneakerd.cli.runtime import CLOCK, CliError, emit, require_schema, table, with_store
from sneakerd.clock import iso
from sneakerd.config import Settings
from sneakerd.store import Store, check
from sneakerd.store.sql import SqlStore
from sneakerd.views import money

CHECK_GRACE_MS = 5_000
"""How late an active hold may be past its deadline before `db check` calls it a breach."""


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """One server; or, with `--workers N`, the supervisor of N (see `sneakerd.cluster.workers`);
    or, started by that supervisor, one of its workers."""
    from sneakerd.cluster import workers
    from sneakerd.web.app import serve

    settings.check_workers()
    settings = settings.with_jwt_secret()
    if args.demo and settings.worker_index is None:
        from sneakerd.cli.demo import seed
        from sneakerd.cluster.workers import say

        await seed(settings, say)
    if settings.workers > 1 and settings.worker_index is None:
        return await workers.supervise(settings)
    if settings.worker_index is not None:
        workers.follow_supervisor()
        workers.announce(settings)
    try:
        await serve(settings, reuse_port=settings.worker_index is not None)
    except OSError as exc:  # the port is taken, the address is not ours, ...
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    return 0


async def cmd_db_init(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> int | None:
        await store.init_schema()
        return await store.schema_version()

    version = await with_store(settings, work, create=True)
    emit(
        args,
        {"ok": True, "schemaVersion": version},
        lambda out: print(f"schema ready (version {version})", file=out),
    )
    return 0


async def cmd_db_check(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> list[str]:
        if isinstance(store, SqlStore):
            return await check.breaches(store, CLOCK.now_ms(), CHECK_GRACE_MS, progress=progress)
        return await store.check(CLOCK.now_ms())

    breaches: list[str] = await with_store(settings, work)

    def human(out: TextIO) -> None:
        if not breaches:
            print("ok: every invariant holds", file=out)
        for breach in breaches:
            print(f"BREACH: {breach}", file=out)

    emit(args, {"ok": not breaches, "breaches": breaches}, human)
    return 1 if breaches else 0


STATS_HEADERS = ("id", "name", "status", "stock", "reserved", "sold", "expiring<1m")
STATS_KEYS = ("id", "name", "status", "stock", "reserved", "sold", "expiringNextMinute")


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.stats(CLOCK.now_ms())

    now = CLOCK.now_ms()
    stats = await with_store(settings, work)
    data = [
        {
            "id": s.drop.id,
            "name": s.drop.info.name,
            "status": s.drop.status(now).value,
            "stock": s.drop.stock,
            "reserved": s.drop.reserved,
            "sold": s.drop.sold,
            "price": money(s.drop.info.price),
            "expiringNextMinute": s.expiring_soon,
            # The REST stats' names too (GET /api/drops/{id}/stats), for scripts that read both.
            "dropId": s.drop.id,
            "initialStock": s.drop.initial_stock,
            "holdsExpiringNextMinute": s.expiring_soon,
        }
        for s in stats
    ]
    emit(
        args,
        {"drops": data, "at": iso(now)},
        lambda out: table([[d[k] for k in STATS_KEYS] for d in data], STATS_HEADERS, out),
    )
    return 0
