"""`sneakerd webhooks add | list | remove | deliveries | replay`.

These write the webhook tables directly: a webhook is not part of any drop, so no drop's actor
decides it. A running server notices a webhook added here within a second (docs/webhooks.md
says what that means for events in that second).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from sneakerd.cli.arg_types import page_limit, record_id
from sneakerd.cli.runtime import CLOCK, CliError, emit, require_schema, table, with_store
from sneakerd.clock import SystemClock
from sneakerd.config import Settings
from sneakerd.domain.audit import CLI_ACTOR
from sneakerd.store import MAX_PAGE, PageKey, Store
from sneakerd.store.webhook_rows import Delivery
from sneakerd.webhooks.registrations import BadWebhook, delivery_view, register, webhook_view
from sneakerd.webhooks.schedule import RetryPolicy

WEBHOOK_HEADERS = ("id", "url", "events", "enabled", "created")
DELIVERY_HEADERS = ("id", "event", "type", "webhook", "drop", "state", "attempts", "last", "next")


async def cmd_webhooks_add(args: argparse.Namespace, settings: Settings) -> int:
    events = [e for e in (args.events or "").split(",") if e.strip()]

    async def work(store: Store) -> Any:
        await require_schema(store)
        return await register(store.webhooks, args.url, events, CLOCK.now_ms(), CLI_ACTOR)

    try:
        webhook, secret = await with_store(settings, work)
    except BadWebhook as exc:
        raise CliError(str(exc)) from None
    view = webhook_view(webhook)

    def human(out: Any) -> None:
        out.write(f"webhook {webhook.id} added for {webhook.url}\n")
        out.write(f"secret (shown once, keep it now): {secret}\n")

    emit(args, {"webhook": view, "secret": secret}, human)
    return 0


async def cmd_webhooks_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.webhooks.registered()

    views = [webhook_view(w) for w in await with_store(settings, work)]
    rows = [
        (
            v["id"],
            v["url"],
            "all" if v["allEvents"] else ",".join(v["events"]),
            v["enabled"],
            v["createdAt"],
        )
        for v in views
    ]
    emit(args, {"webhooks": views}, lambda out: table(rows, WEBHOOK_HEADERS, out))
    return 0


async def cmd_webhooks_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        return await store.webhooks.remove(args.id, actor=CLI_ACTOR, now=CLOCK.now_ms())

    if not await with_store(settings, work):
        raise CliError(f"no webhook {args.id}", "not_found")
    emit(args, {"removed": args.id}, lambda out: print(f"webhook {args.id} removed", file=out))
    return 0


async def cmd_webhooks_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await require_schema(store)
        found: list[Delivery] = []
        after: PageKey | None = None
        while len(found) < args.limit:
            page = await store.webhooks.deliveries(
                state=args.state, limit=min(MAX_PAGE, args.limit - len(found)), after=after
            )
            found += page.items
            if page.next is None:
                break
            after = page.next
        return found

    views = [delivery_view(d) for d in await with_store(settings, work)]
    rows = [
        (
            v["id"],
            v["eventId"],
            v["eventType"],
            v["webhookId"],
            v["dropId"],
            v["state"],
            v["attempts"],
            v["lastStatus"] or v["lastError"] or "",
            v["nextAttemptAt"] or "",
        )
        for v in views
    ]
    emit(args, {"deliveries": views}, lambda out: table(rows, DELIVERY_HEADERS, out))
    return 0


async def cmd_webhooks_replay(args: argparse.Namespace, settings: Settings) -> int:
    if (args.id is None) == (not args.dead):
        raise CliError("name one DELIVERY_ID or --dead")

    async def work(store: Store) -> Any:
        await require_schema(store)
        ids = None if args.dead else [args.id]
        return await store.webhooks.replay(ids, CLOCK.now_ms())

    count = await with_store(settings, work)
    if args.id is not None and count == 0:
        raise CliError(f"no delivery {args.id}", "not_found")
    emit(
        args,
        {"replayed": count},
        lambda out: print(f"{count} delivery(ies) queued again", file=out),
    )
    return 0


async def cmd_webhooks_deliver(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver webhooks from this process until SIGTERM or SIGINT, for a server started with
    WEBHOOK_DELIVER=0 (one node only: it delivers every drop's events)."""

    async def work(store: Store) -> Any:
        await require_schema(store)
        # Imported here: aiohttp's client is a fifth of every other command's start-up.
        from sneakerd.webhooks.deliverer import Deliverer

        deliverer = Deliverer(
            store.webhooks, SystemClock(), RetryPolicy.of(settings), node_id="deliverer"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        deliverer.start()
        print("delivering webhooks", flush=True)
        try:
            await stop.wait()
        finally:
            await deliverer.stop()

    await with_store(settings, work)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `webhooks` commands, under the parser's subcommands."""
    hooks = sub.add_parser("webhooks", help="webhook registrations and deliveries").add_subparsers(
        dest="webhooks_command", required=True, metavar="COMMAND"
    )
    add = hooks.add_parser("add", parents=[common], help="register a URL (prints its secret once)")
    add.add_argument("url", help="where events are POSTed (http:// or https://)")
    add.add_argument("--events", metavar="E,...", help="event types (default: every type)")
    add.set_defaults(run=cmd_webhooks_add)
    hooks.add_parser("list", parents=[common], help="every webhook").set_defaults(
        run=cmd_webhooks_list
    )
    remove = hooks.add_parser("remove", parents=[common], help="remove a webhook")
    remove.add_argument("id", type=record_id, help="the webhook's id (webhooks list)")
    remove.set_defaults(run=cmd_webhooks_remove)
    deliveries = hooks.add_parser("deliveries", parents=[common], help="deliveries, newest first")
    deliveries.add_argument(
        "--state", choices=("pending", "delivered", "dead"), help="only deliveries in this state"
    )
    deliveries.add_argument("--limit", type=page_limit, default=100, help="at most this many (100)")
    deliveries.set_defaults(run=cmd_webhooks_deliveries)
    replay = hooks.add_parser(
        "replay", parents=[common], help="send a delivery again, or every dead one"
    )
    replay.add_argument(
        "id", type=record_id, nargs="?", metavar="DELIVERY_ID", help="the delivery to send again"
    )
    replay.add_argument("--dead", action="store_true", help="every dead delivery")
    replay.set_defaults(run=cmd_webhooks_replay)
    hooks.add_parser(
        "deliver",
        parents=[common],
        help="deliver webhooks from this process (for a server with WEBHOOK_DELIVER=0)",
    ).set_defaults(run=cmd_webhooks_deliver)
