"""`sneakerd drops list | show | create`. A new drop is held to the domain's rules (its listing's
bounds in `sneakerd.domain.listing`, the price in `money`, the sale window in `rules`), so the CLI
creates only drops the API would, and refuses the rest for the same reasons."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from sneakerd.cli.runtime import CLOCK, CliError, emit, refuse, require_schema, table, with_store
from sneakerd.config import Settings
from sneakerd.domain import listing
from sneakerd.domain.audit import CLI_ACTOR
from sneakerd.domain.model import Drop, DropInfo, DropMode
from sneakerd.domain.money import PriceError, parse_price
from sneakerd.domain.raffle_book import raffle_creation_refusal
from sneakerd.domain.rules import window_refusal
from sneakerd.store import MAX_PAGE, PageKey, Store
from sneakerd.views import drop_view

DROP_HEADERS = ("id", "name", "status", "price", "stock", "reserved", "sold", "initial", "starts")
DROP_KEYS = ("id", "name", "status", "price", "stock", "reserved", "sold", "initialStock")


def _drop_row(view: dict[str, Any]) -> list[object]:
    row: list[object] = [*(view[k] for k in DROP_KEYS), view["startsAt"]]
    if view["paused"]:  # a paused drop's status still says its window and stock
        row[2] = f"{view['status']} (paused)"
    return row


async def _every_drop(store: Store, now: int) -> list[Drop]:
    """Every drop, newest first, read a page at a time as the API serves them."""
    drops: list[Drop] = []
    after: PageKey | None = None
    while True:
        page = await store.list_drops(now=now, limit=MAX_PAGE, after=after)
        drops += page.items
        if page.next is None:
            return drops
        after = page.next


async def cmd_drops_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await _every_drop(store, CLOCK.now_ms())

    now = CLOCK.now_ms()
    views = [drop_view(d, now) for d in await with_store(settings, work)]
    emit(
        args, {"drops": views}, lambda out: table([_drop_row(v) for v in views], DROP_HEADERS, out)
    )
    return 0


async def cmd_drops_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.get_drop(args.id)

    drop = await with_store(settings, work)
    if drop is None:
        raise CliError(f"no drop {args.id}", "not_found")
    view = drop_view(drop, CLOCK.now_ms())
    emit(
        args,
        {"drop": view},
        lambda out: table([(k, v) for k, v in view.items()], ("field", "value"), out),
    )
    return 0


def _price(text: str) -> Decimal:
    try:
        return parse_price(text)
    except PriceError as refused:
        raise CliError(f"--price {text!r}: {refused}") from None


def _time(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return listing.parse_instant(text)
    except listing.InvalidInstant as exc:
        raise CliError(f"{flag} {text!r}: {exc}") from None


def _drop_info(args: argparse.Namespace, now: int) -> DropInfo:
    """The new drop's listing, each value checked by the domain as the API checks it."""
    refuse("--stock", listing.STOCK.problems(args.stock))
    refuse("--per-user-limit", listing.PER_USER_LIMIT.problems(args.per_user_limit))
    refuse("--name", listing.text_problems(args.name, listing.NAME_MAX_LENGTH))
    if args.brand is not None:
        refuse("--brand", listing.text_problems(args.brand, listing.BRAND_MAX_LENGTH))
    starts_at = _time(args.starts_at, "--starts-at")
    ends_at = _time(args.ends_at, "--ends-at")
    starts = now if starts_at is None else starts_at
    window = window_refusal(starts, ends_at)
    if window is not None:
        raise CliError(f"--ends-at is refused: {window.message}")
    info = DropInfo(
        name=args.name,
        price=_price(args.price),
        brand=args.brand,
        per_user_limit=args.per_user_limit,
        starts_at=starts,
        ends_at=ends_at,
        mode=DropMode(args.mode),
        entries_open_at=_time(args.entries_open_at, "--entries-open-at"),
        entries_close_at=_time(args.entries_close_at, "--entries-close-at"),
        claim_seconds=args.claim_seconds,
        queue=args.queue,
    )
    raffle = raffle_creation_refusal(info, CLOCK.now_ms())
    if raffle is not None:
        raise CliError(f"{_FLAGS.get(raffle.field or '', '--mode')} is refused: {raffle.message}")
    return info


_FLAGS = {
    "entriesOpenAt": "--entries-open-at",
    "entriesCloseAt": "--entries-close-at",
    "claimSeconds": "--claim-seconds",
    "queue": "--queue",
}


async def cmd_drops_create(args: argparse.Namespace, settings: Settings) -> int:
    now = CLOCK.now_ms()
    info = _drop_info(args, now)

    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.create_drop(info, args.stock, now, CLI_ACTOR)

    drop = await with_store(settings, work)
    view = drop_view(drop, CLOCK.now_ms())
    emit(args, {"drop": view}, lambda out: print(f"drop {drop.id} created", file=out))
    return 0
