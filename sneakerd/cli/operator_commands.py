"""`sneakerd drops pause | unpause`, `purchases export` and `audit`: what an operator does to a
drop in a hurry, and what they read afterwards.

While a server runs, a pause or an unpause goes through it (`server_link`): the drop's actor
makes it, at once, and tells its watchers, as the /admin page's would. With no server running
it is decided here by the drop's own rules (`DropBook.update`, the same code the drop's actor
runs) against the drop as stored, and committed with the same version-checked write, its audit
entry (actor `cli`) in that commit; if a writer moved the drop in between, the version check
refuses this write and it is decided again on the new state. A server started later reads the
drop as stored.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sneakerd import buyers_csv, errors
from sneakerd.cli import server_link
from sneakerd.cli.runtime import CLOCK, CliError, emit, require_schema, table, with_store
from sneakerd.config import Settings
from sneakerd.domain.audit import CLI_ACTOR, AuditRecord
from sneakerd.domain.book import DropBook
from sneakerd.domain.commands import UpdateDrop
from sneakerd.domain.model import Drop
from sneakerd.domain.rules import Rejection
from sneakerd.store import MAX_PAGE, PageKey, Store
from sneakerd.views import audit_view, buyer_view, drop_view

ATTEMPTS = 4


class _NoIds:
    """An update makes no reservation or purchase, so it is never asked for an id."""

    def reservation(self) -> int:
        raise RuntimeError("a drop's update takes no reservation id")

    def purchase(self) -> int:
        raise RuntimeError("a drop's update takes no purchase id")

    def entry(self) -> int:
        raise RuntimeError("a drop's update takes no raffle entry id")


async def change_drop(store: Store, drop_id: int, update: UpdateDrop, hold_ms: int) -> Drop:
    """Decide `update` with the drop's rules against its stored state and commit it
    (version-checked); decided again if another writer moved the drop in between."""
    for _ in range(ATTEMPTS):
        state = await store.load_state(drop_id)
        if state is None or state.drop.deleted:
            raise CliError(f"no drop {drop_id}", "not_found")
        book = DropBook(state, now=CLOCK.now_ms(), hold_ms=hold_ms, ids=_NoIds())
        reply = book.update(update)
        if isinstance(reply, Rejection):
            raise reply.to_error()
        outcome = book.finish()
        if outcome.changes is None:
            return outcome.drop
        try:
            await store.commit(outcome.changes)
        except errors.VersionConflict:
            continue
        return outcome.drop
    raise CliError(f"drop {drop_id} kept changing; try again")


async def _set_paused(args: argparse.Namespace, settings: Settings, paused: bool) -> int:
    update = UpdateDrop(paused=paused, actor=CLI_ACTOR)

    async def work(store: Store) -> dict[str, Any]:
        await require_schema(store)
        stored = await store.get_drop(args.id)
        if stored is None or stored.deleted:
            raise CliError(f"no drop {args.id}", "not_found")
        owner = await server_link.owner_url(store, args.id, CLOCK.now_ms())
        link = await server_link.find(settings, stored, args.server, owner)
        if link is not None:  # a server runs: its actor makes the change and tells watchers
            return await server_link.update_drop(link, args.id, {"paused": paused})
        drop = await change_drop(store, args.id, update, settings.reservation_duration_ms)
        return drop_view(drop, CLOCK.now_ms())

    view = await with_store(settings, work)
    word = "paused" if paused else "unpaused"
    emit(args, {"drop": view}, lambda out: print(f"drop {args.id} {word}", file=out))
    return 0


async def cmd_drops_pause(args: argparse.Namespace, settings: Settings) -> int:
    return await _set_paused(args, settings, True)


async def cmd_drops_unpause(args: argparse.Namespace, settings: Settings) -> int:
    return await _set_paused(args, settings, False)


async def cmd_purchases_export(args: argparse.Namespace, settings: Settings) -> int:
    """Every buyer of a drop: CSV (the default, as the API's `Accept: text/csv`) or JSON."""

    if args.json and args.csv:
        raise CliError("give --csv or --json, not both")

    async def work(store: Store) -> None:
        await require_schema(store)
        if await store.get_drop(args.drop) is None:
            raise CliError(f"no drop {args.drop}", "not_found")
        if args.json:
            views = [
                buyer_view(b)
                async for page in buyers_csv.every_page(store, args.drop)
                for b in page
            ]
            emit(args, {"purchases": views}, lambda out: None)
            return
        sys.stdout.write(buyers_csv.header())
        async for page in buyers_csv.every_page(store, args.drop):
            sys.stdout.write(buyers_csv.buyer_lines(page))

    await with_store(settings, work)
    return 0


AUDIT_HEADERS = ("id", "at", "actor", "action", "drop", "changed")


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What an entry changed, for people: `field: old -> new`, comma separated."""
    if before is None or after is None:
        return ""
    return ", ".join(
        f"{k}: {before.get(k)} -> {after.get(k)}" for k in after if before.get(k) != after.get(k)
    )


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> list[AuditRecord]:
        await require_schema(store)
        records: list[AuditRecord] = []
        after: PageKey | None = None
        while True:
            page = await store.audit_entries(drop_id=args.drop, limit=MAX_PAGE, after=after)
            records += page.items
            if page.next is None:
                return records
            after = page.next

    views = [audit_view(r) for r in await with_store(settings, work)]
    rows = [
        (
            v["id"],
            v["at"],
            v["actor"],
            v["action"],
            v["dropId"],
            changed_fields(v["before"], v["after"]),
        )
        for v in views
    ]
    emit(args, {"entries": views}, lambda out: table(rows, AUDIT_HEADERS, out))
    return 0
