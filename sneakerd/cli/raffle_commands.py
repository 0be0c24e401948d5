"""`sneakerd raffle verify ID`: recompute a raffle's draw from its public record and say
whether it holds (exit 1 on any mismatch).

`--url` reads the record as anyone can, from a running server's API; `--db` reads the same
values from the database (for an operator), and shows the seed only once the draw published it.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any, TextIO

from sneakerd.cli.runtime import CLOCK, CliError, emit, require_schema, with_store
from sneakerd.config import Settings
from sneakerd.domain.raffle import draw_order
from sneakerd.domain.raffle_check import check_record
from sneakerd.raffle_service import RaffleRecord
from sneakerd.raffle_views import raffle_view
from sneakerd.store import Store


def _fetch(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CliError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot read {url}: {exc}") from None


def _from_api(base: str, drop_id: int) -> tuple[dict[str, Any], int]:
    if not base.startswith(("http://", "https://")):
        raise CliError("--url must be an http:// or https:// address")
    base = base.rstrip("/")
    drop = _fetch(f"{base}/api/drops/{drop_id}")["drop"]
    record = _fetch(f"{base}/api/drops/{drop_id}/raffle")["raffle"]
    return dict(record), int(drop["initialStock"])


async def _from_db(settings: Settings, drop_id: int) -> tuple[dict[str, Any], int]:
    async def work(store: Store) -> tuple[dict[str, Any], int]:
        await require_schema(store)
        drop = await store.get_drop(drop_id)
        if drop is None:
            raise CliError(f"no drop {drop_id}", "not_found")
        if drop.raffle is None:
            raise CliError(f"drop {drop_id} is not a raffle")
        # The same record the API publishes: the seed stays hidden until the draw.
        entries = await store.entry_ids(drop_id)
        raffle = drop.raffle
        winners = draw_order(raffle.seed, entries)[: raffle.winners] if raffle.drawn else None
        view = raffle_view(RaffleRecord(drop, entries, winners), CLOCK.now_ms())
        return view, drop.initial_stock

    result: tuple[dict[str, Any], int] = await with_store(settings, work)
    return result


async def cmd_raffle_verify(args: argparse.Namespace, settings: Settings) -> int:
    url = getattr(args, "url", None)
    if url is not None and getattr(args, "db", None) is not None:
        raise CliError("give --url or --db, not both")
    if url is not None:
        record, initial_stock = _from_api(url, args.id)
    else:
        record, initial_stock = await _from_db(settings, args.id)
    checks = check_record(record, initial_stock)
    ok = all(c.ok for c in checks)
    drawn = record.get("seed") is not None
    result = {
        "dropId": args.id,
        "ok": ok,
        "drawn": drawn,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
    }

    def human(out: TextIO) -> None:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}", file=out)
        verdict = "verified" if ok and drawn else "not drawn yet" if ok else "MISMATCH"
        print(f"drop {args.id}: {verdict}", file=out)

    emit(args, result, human)
    return 0 if ok else 1
