"""`sneakerd serve --demo`: something to look at on the first start.

On an empty database (no user, no drop) it makes an admin with a random password, printed once
with its email, and three drops: one live, one upcoming, one nearly sold out. The nearly sold
out drop's sales are real: demo shoppers reserve and buy through the drop's actor, as the API's
callers do, so its counts, holds and purchases agree and `sneakerd db check` passes. On a
database that holds anything at all it changes nothing and says so: a demo must never write
into someone's data.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sneakerd.actors.registry import Registry
from sneakerd.actors.sink import RecordingSink
from sneakerd.clock import SystemClock
from sneakerd.config import Settings
from sneakerd.domain.model import DropInfo, Role
from sneakerd.passwords import hash_password_sync
from sneakerd.service import DropService
from sneakerd.store import Store, open_store
from sneakerd.store.sql import SqlStore

ADMIN_EMAIL = "admin@example.com"
ADMIN_USERNAME = "admin"
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class DemoDrop:
    info: DropInfo
    stock: int
    sold: int = 0
    """Units the demo shoppers buy through the actor once the drop exists."""


def demo_drops(now: int) -> list[DemoDrop]:
    """The three drops, timed around `now`. No image URL: the shop shows its own picture."""
    return [
        DemoDrop(
            DropInfo(
                name="Air Max 1 '86 OG",
                price=Decimal("150.00"),
                brand="Nike",
                description="Live now: the big bubble, back in University Red.",
                per_user_limit=2,
                starts_at=now - 5 * MINUTE_MS,
            ),
            stock=120,
        ),
        DemoDrop(
            DropInfo(
                name="Samba OG 'Cloud White'",
                price=Decimal("100.00"),
                brand="adidas",
                description="Opens in an hour: watch the countdown.",
                starts_at=now + 60 * MINUTE_MS,
                ends_at=now + 24 * 60 * MINUTE_MS,
            ),
            stock=300,
        ),
        DemoDrop(
            DropInfo(
                name="Air Jordan 1 High 'Chicago'",
                price=Decimal("180.00"),
                brand="Jordan",
                description="Nearly gone: a few pairs left.",
                starts_at=now - 30 * MINUTE_MS,
            ),
            stock=25,
            sold=22,
        ),
    ]


async def is_empty(store: Store) -> bool:
    """No user and no drop row at all (a deleted drop still counts: it has history)."""
    if not isinstance(store, SqlStore):  # pragma: no cover - every store is SQL
        return False
    for table in ("users", "drops"):
        rows = await store._read(f"SELECT COUNT(*) FROM {table}")
        if int(rows[0][0]):
            return False
    return True


async def seed(settings: Settings, say: Callable[[str], None]) -> bool:
    """Fill an empty database with the demo; False (and nothing written) when it was not
    empty. The admin's password is said once, here, and kept nowhere but as its hash."""
    clock = SystemClock()
    store = await open_store(settings.database_url)
    try:
        await store.init_schema()
        if not await is_empty(store):
            say("demo: the database is not empty: nothing added (--demo fills only an empty one)")
            return False
        password = secrets.token_urlsafe(12)
        # One hash for the admin and one shared by the shoppers (no one signs in as them).
        admin_hash, shopper_hash = await asyncio.gather(
            asyncio.to_thread(hash_password_sync, password, settings.bcrypt_rounds),
            asyncio.to_thread(hash_password_sync, secrets.token_urlsafe(24), 4),
        )
        now = clock.now_ms()
        await store.create_user(ADMIN_USERNAME, ADMIN_EMAIL, admin_hash, Role.ADMIN, now)
        registry = Registry(
            store=store,
            sink=RecordingSink(),
            clock=clock,
            hold_ms=settings.reservation_duration_ms,
        )
        service = DropService(store=store, registry=registry, clock=clock)
        try:
            for demo in demo_drops(now):
                drop = await service.create_drop(demo.info, demo.stock)
                for n in range(1, demo.sold + 1):
                    shopper = await store.create_user(
                        f"shopper{n}", f"shopper{n}@example.com", shopper_hash, Role.CUSTOMER, now
                    )
                    hold = await service.reserve(shopper.id, drop.id)
                    await service.purchase(shopper.id, shopper.username, hold.id)
                say(f"demo: drop {drop.id} {demo.info.name!r} ({demo.stock - demo.sold} left)")
        finally:
            await registry.stop_all()
        say(f"demo: admin {ADMIN_EMAIL} password {password} (shown once: keep it)")
        return True
    finally:
        await store.close()
