"""One node among several: what `create_app` adds when REDIS_URL is set.

Its parts, each in a module of its own: the registry that owns drops by lease and forwards the
rest (`ownership`), the connections to the other nodes (`peers`, serving `/internal/peer`), the
event bus every node's hub listens to (`bus`), and rate limits counted in Redis (`limits`). A
single node (no REDIS_URL) uses none of them and runs exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from urllib.parse import urlsplit

from aiohttp import web

from sneakerd import errors
from sneakerd.actors.drop_actor import ActorObserver
from sneakerd.actors.mailbox import ReplyTo
from sneakerd.actors.sink import ResyncingSink
from sneakerd.clock import Clock
from sneakerd.cluster import peers
from sneakerd.cluster.bus import RedisBus
from sneakerd.cluster.committed import CommittedDrops
from sneakerd.cluster.limits import RedisRateLimiter
from sneakerd.cluster.ownership import ClusterRegistry
from sneakerd.config import Settings
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command
from sneakerd.domain.events import DropEvent
from sneakerd.store import Store

FORWARD_TIMEOUT_S = 10.0
"""How long a forwarded command may take at its owner before the caller hears 'maybe'."""
BUS_START_TIMEOUT_S = 10.0
"""How long a node waits at start for its events bus. Without it, its watchers would never
see a change made through another node; so it says which Redis it cannot reach, and exits."""


class ClusterNode:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        if settings.redis_url is None or settings.jwt_secret is None:
            raise errors.ConfigError("a node among several needs REDIS_URL and JWT_SECRET")
        self.settings = settings
        self._clock = clock
        self._redis_url = settings.redis_url
        self.peers = peers.Peers(settings.jwt_secret, settings.node_id, clock=clock)
        self.auth_limit = RedisRateLimiter(
            self._redis_url,
            settings.redis_prefix,
            settings.rate_limit_auth,
            60.0,
            name="auth",
            what="sign-in attempts",
        )
        self.reserve_limit = RedisRateLimiter(
            self._redis_url,
            settings.redis_prefix,
            settings.rate_limit_reserve,
            1.0,
            name="reserve",
            what="reserve and purchase requests",
        )
        self.bus: RedisBus | None = None
        self.registry: ClusterRegistry | None = None
        self.peer_server: peers.PeerServer | None = None
        """The owner's side of forwarding, once `add_routes` made it (metrics read it)."""

    def add_routes(
        self,
        app: web.Application,
        registry: Callable[[], ClusterRegistry],
        work: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """Serve the commands other nodes forward here (the route must exist before the app
        starts; the registry it runs them on is made at start-up). `work` counts each one as
        work in flight here while it runs (see `PeerServer`)."""

        async def handle(drop_id: int, command: Command) -> Reply:
            actor = await registry().take(drop_id)
            return await actor.ask(command)

        def post(drop_id: int, command: Command, reply: ReplyTo[Reply]) -> bool:
            # A hot drop's actor runs here: its forwarded commands skip the task `handle` is.
            actor = registry().running_here(drop_id)
            if actor is None:
                return False
            actor.post(command, reply)
            return True

        assert self.settings.jwt_secret is not None
        self.peer_server = peers.add_routes(
            app,
            handle,
            self.settings.jwt_secret,
            self.settings.node_id,
            clock=self._clock,
            post=post,
            work=work,
        )

    async def open(
        self, store: Store, hub: ResyncingSink, observer: ActorObserver
    ) -> ClusterRegistry:
        """Connect to the peers and the bus, and make the registry (started by the caller)."""
        await self.peers.start()
        committed = CommittedDrops(store)

        def deliver(events: Sequence[DropEvent]) -> None:
            committed.observe(events)
            hub.publish(events)

        def resync(drop_id: int) -> None:
            committed.forget(drop_id)
            hub.resync(drop_id)

        self.bus = RedisBus(
            self._redis_url,
            self.settings.redis_prefix,
            self.settings.node_id,
            deliver=deliver,
            resync=resync,
        )
        self.bus.start()
        try:
            async with asyncio.timeout(BUS_START_TIMEOUT_S):
                await self.bus.wait_subscribed()
        except TimeoutError:
            await self.bus.stop(drain=0)
            await self.peers.close()
            raise errors.Unavailable(
                f"cannot reach Redis at {_where(self._redis_url)} (REDIS_URL): no subscription "
                f"within {BUS_START_TIMEOUT_S:g} s"
            ) from None
        self.registry = ClusterRegistry(
            store=store,
            sink=self.bus,
            clock=self._clock,
            hold_ms=self.settings.reservation_duration_ms,
            node_id=self.settings.node_id,
            node_url=self.settings.node_url,
            lease_ms=self.settings.lease_ttl_ms,
            forwarder=self,
            observer=observer,
            committed=committed,
            draw_delay_ms=self.settings.raffle_draw_delay_ms,
        )
        return self.registry

    async def ask(self, url: str, drop_id: int, command: Command) -> Reply:
        """The registry's `Forwarder`: one command to the owner at `url`."""
        return await self.peers.ask(url, drop_id, command, FORWARD_TIMEOUT_S)

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        await self.peers.close()
        for limiter in (self.auth_limit, self.reserve_limit):
            with contextlib.suppress(Exception):
                await limiter.close()


def _where(url: str) -> str:
    """host:port of a Redis URL, without its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
