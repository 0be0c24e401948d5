"""The registry of a node among several: local actors for the drops it owns, proxies for the rest.

A node owns a drop while it holds the drop's lease (`store.leases`). `get(drop_id)` hands out
the local actor when this node owns the drop, or takes the lease and starts one when the drop
is free and rendezvous hashing (`placement`) picks this node; otherwise it hands out a
`RemoteDrop` that forwards each command to the owner. A forwarded command runs here through
`take`, which takes a free lease whoever the hash prefers, so a request never bounces.

One owned task (`_keep`) runs every third of the lease time: it beats this node's heartbeat,
renews the leases of its actors (an actor whose lease was lost stops at once), takes over the
live drops that the hash gives this node and nobody holds (a dead owner's drops, within the
lease time and one pass), and hands back drops that the hash now gives a newer live node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sneakerd import errors
from sneakerd.actors.drop_actor import ActorObserver, DropActor
from sneakerd.actors.registry import DropHandle, Registry
from sneakerd.actors.sink import EventSink
from sneakerd.clock import Clock
from sneakerd.cluster.committed import CommittedDrops
from sneakerd.cluster.placement import preferred
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command
from sneakerd.domain.model import DropState
from sneakerd.domain.rules import Rejection
from sneakerd.store import Store
from sneakerd.store.leases import Node

log = logging.getLogger(__name__)

OWNER_CACHE_MS = 1_000
"""How long a node trusts what it read of another node's lease before reading it again."""


class HeldElsewhere(errors.Unavailable):
    """Another live node holds the drop's lease: this node may not start its actor."""


class Forwarder(Protocol):
    """Sends one command to the node at `url` and waits for the owner's reply."""

    async def ask(self, url: str, drop_id: int, command: Command) -> Reply: ...


@dataclass(slots=True)
class ClusterStatistics:
    takeovers: int = 0
    """Leases taken from another node (it died, paused or left)."""
    handoffs: int = 0
    lost: int = 0
    forwards: int = 0


class RemoteDrop:
    """A drop owned by another node: commands go there; nothing is decided here."""

    def __init__(
        self,
        drop_id: int,
        url: str,
        forwarder: Forwarder,
        forget: Callable[[int, str, bool], None],
        refusal: Callable[[int], Rejection | None] = lambda _drop_id: None,
    ) -> None:
        self.drop_id = drop_id
        self.url = url
        self._forwarder = forwarder
        self._forget = forget
        self._refusal = refusal

    @property
    def state(self) -> DropState | None:
        return None

    def refusal(self, user_id: int) -> Rejection | None:
        """What the drop's last committed state (as the owner published it) refuses to
        everyone; a refusal that depends on the user is the owner's to decide."""
        return self._refusal(self.drop_id)

    async def ask(self, command: Command) -> Reply:
        try:
            return await self._forwarder.ask(self.url, self.drop_id, command)
        except (errors.PeerUnreachable, errors.OutcomeUnknown):
            self._forget(self.drop_id, self.url, False)  # the node may be gone
            raise
        except errors.Unavailable:
            # The owner answered it (its database failed, it is handing the drop over, one
            # caller's row was refused): it is there, but the drop may have moved.
            self._forget(self.drop_id, self.url, True)
            raise


class LocalDrop:
    """This node's actor, as `get` hands it out: a command that the actor refused to take
    because it stopped in between (handed to another node, or its lease lost) did nothing,
    so it is sent once more, to wherever the drop now lives."""

    def __init__(self, actor: DropActor, registry: ClusterRegistry) -> None:
        self._actor = actor
        self._registry = registry
        self.drop_id = actor.drop_id

    @property
    def state(self) -> DropState | None:
        return self._actor.state

    def refusal(self, user_id: int) -> Rejection | None:
        return self._actor.refusal(user_id)

    async def ask(self, command: Command) -> Reply:
        try:
            return await self._actor.ask(command)
        except (errors.ActorStopped, errors.LeaseLost):
            if self._registry.closed:
                raise
        handle = await self._registry.get(self.drop_id)
        return await handle.ask(command)


class ClusterRegistry(Registry):
    def __init__(
        self,
        *,
        store: Store,
        sink: EventSink,
        clock: Clock,
        hold_ms: int,
        node_id: str,
        node_url: str,
        lease_ms: int,
        forwarder: Forwarder,
        observer: ActorObserver | None = None,
        committed: CommittedDrops | None = None,
        draw_delay_ms: int = 0,
    ) -> None:
        super().__init__(
            store=store,
            sink=sink,
            clock=clock,
            hold_ms=hold_ms,
            observer=observer,
            draw_delay_ms=draw_delay_ms,
        )
        self.node_id = node_id
        self.node_url = node_url
        self.lease_ms = lease_ms
        self._forwarder = forwarder
        self._live: list[Node] = []
        self._owners: dict[int, tuple[str, int]] = {}
        self._suspects: dict[str, int] = {}
        """Node URL -> when a forward to it last failed."""
        self._task: asyncio.Task[None] | None = None
        self.cluster_stats = ClusterStatistics()
        self.committed = committed or CommittedDrops(store)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._store.heartbeat(self.node_id, self.node_url, self._clock.now_ms())
        await self._pass()
        self._task = asyncio.create_task(self._keep(), name=f"ownership-{self.node_id}")
        self.recovered = True

    async def stop_all(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await super().stop_all()
        try:
            await self._store.leave(self.node_id)
        except errors.Unavailable:
            log.warning(
                "could not hand back this node's leases; they lapse in %d ms", self.lease_ms
            )

    # -- routing -----------------------------------------------------------------------------

    async def get(self, drop_id: int) -> DropHandle:
        actor = self._actors.get(drop_id)
        if actor is not None and actor.running:
            return LocalDrop(actor, self)
        url = await self._owner_url(drop_id)
        if url is None:
            try:
                return LocalDrop(await self.take(drop_id), self)
            except HeldElsewhere:
                # Another node took it first (our view of the live nodes was behind): its
                # lease now says where the drop lives.
                url = await self._owner_url(drop_id)
                if url is None:
                    raise
        self.cluster_stats.forwards += 1
        await self.committed.load(drop_id)
        return RemoteDrop(drop_id, url, self._forwarder, self._forget_owner, self._refusal)

    def _refusal(self, drop_id: int) -> Rejection | None:
        return self.committed.refusal(drop_id, self._clock.now_ms())

    def _forget_owner(self, drop_id: int, url: str, reached: bool) -> None:
        """A forward to `url` failed: look the owner up again; and if the node was not
        `reached`, leave it out of placement until it is heard from again (a dead node's row
        lingers for a lease time, and the hash would keep sending its drops' requests to it).
        A failure the node answered itself says it is there: leaving it out would fail every
        other caller's write to its drops for a heartbeat's time."""
        self._owners.pop(drop_id, None)
        if reached:
            return
        self._suspects[url] = self._clock.now_ms()
        self._live = [n for n in self._live if n.url != url]

    async def take(self, drop_id: int) -> DropActor:
        """This node's actor for the drop, taking the lease if it is free; `HeldElsewhere`
        while another node holds it (the caller retries and reaches that node)."""
        return await self._started(drop_id, self._take)

    async def _take(self, drop_id: int) -> DropActor:
        now = self._clock.now_ms()
        before = await self._store.lease_of(drop_id)
        epoch = await self._store.acquire_lease(drop_id, self.node_id, now, self.lease_ms)
        if epoch is None:
            self._owners.pop(drop_id, None)
            raise HeldElsewhere("another node owns this drop right now; retry")
        if before is not None and before.owner not in ("", self.node_id):
            self.cluster_stats.takeovers += 1
            log.info("drop %s: taken over from %s (epoch %d)", drop_id, before.owner, epoch)
        actor = self._make(drop_id, epoch=epoch)
        try:
            await actor.start()
        except BaseException:
            with contextlib.suppress(errors.Unavailable):
                await self._store.release_lease(drop_id, self.node_id, epoch)
            raise
        self._owners.pop(drop_id, None)
        return actor

    async def _owner_url(self, drop_id: int) -> str | None:
        """The URL of the node that owns (or should own) the drop; None for this node."""
        now = self._clock.now_ms()
        cached = self._owners.get(drop_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        lease = await self._store.lease_of(drop_id)
        if lease is not None and lease.until > now and lease.owner:
            if lease.owner == self.node_id:
                return None
            url = self._url_of(lease.owner)
            if url is None:
                self._live = await self._live_nodes(now)
                url = self._url_of(lease.owner)
            if url is not None:
                self._owners[drop_id] = (url, min(lease.until, now + OWNER_CACHE_MS))
                return url
            raise errors.Unavailable("the drop's owner is not reachable; retry")
        best = preferred(self._live, drop_id)
        if best is None or best.id == self.node_id:
            return None
        return best.url

    def _url_of(self, node_id: str) -> str | None:
        return next((n.url for n in self._live if n.id == node_id), None)

    # -- keeping leases ----------------------------------------------------------------------

    async def _keep(self) -> None:
        period = max(self.lease_ms / 3000, 0.05)
        while True:
            await asyncio.sleep(period)
            try:
                await self._store.heartbeat(self.node_id, self.node_url, self._clock.now_ms())
                await self._pass()
            except errors.Unavailable:
                log.warning("ownership pass failed (database unavailable); retrying")
            except Exception:
                log.exception("ownership pass failed")

    async def _pass(self) -> None:
        now = self._clock.now_ms()
        self._live = await self._live_nodes(now)
        await self._renew(now)
        await self._take_over(now)
        await self._hand_back()

    async def _live_nodes(self, now: int) -> list[Node]:
        live = []
        for node in await self._store.nodes():
            if node.seen_at < now - self.lease_ms:
                continue
            if node.seen_at <= self._suspects.get(node.url, -1):
                continue  # not heard from since a forward to it failed
            self._suspects.pop(node.url, None)
            live.append(node)
        return live

    async def _renew(self, now: int) -> None:
        # The actors as they are before the wait: one may stop itself meanwhile (a fenced
        # commit) and leave `_actors`, and a new one may even take its place; a lost lease
        # stops the actor that held it, found here, never a later one.
        holders: dict[int, DropActor] = {}
        held: dict[int, int] = {}
        for drop_id, actor in self._actors.items():
            if actor.running and actor.epoch is not None:
                holders[drop_id], held[drop_id] = actor, actor.epoch
        kept = await self._store.renew_leases(self.node_id, held, now, self.lease_ms)
        for drop_id in set(held) - kept:
            self.cluster_stats.lost += 1
            log.warning("drop %s: lease lost; its actor stops", drop_id)
            holders[drop_id].lose()

    async def _take_over(self, now: int) -> None:
        """Start the drops that need an actor now (live, upcoming, or holding holds) that the
        hash gives this node and that no live lease covers."""
        for drop_id in await self._store.drops_to_recover(now):
            if drop_id in self._actors and self._actors[drop_id].running:
                continue
            best = preferred(self._live, drop_id)
            if best is None or best.id != self.node_id:
                continue
            lease = await self._store.lease_of(drop_id)
            if lease is not None and lease.until > now and lease.owner not in ("", self.node_id):
                continue
            try:
                await self.take(drop_id)
            except (errors.NotFound, errors.Unavailable):
                continue

    async def _hand_back(self) -> None:
        """A drop the hash now gives another live node (it joined) is stopped and released,
        once it has been quiet for a lease time, so that node takes it at its next pass or
        first request. A busy drop stays where it is: rebalancing waits for a lull."""
        quiet_since = self._clock.now_ms() - self.lease_ms
        for drop_id, actor in list(self._actors.items()):
            best = preferred(self._live, drop_id)
            if best is None or best.id == self.node_id or not actor.running:
                continue
            if actor.mailbox_depth or actor.last_active_ms > quiet_since:
                continue  # busy: moving it now would turn its callers away; later
            self.cluster_stats.handoffs += 1
            log.info("drop %s: handed to %s", drop_id, best.id)
            del self._actors[drop_id]
            await actor.stop()
            if actor.epoch is not None:
                await self._store.release_lease(drop_id, self.node_id, actor.epoch)

    @property
    def closed(self) -> bool:
        return self._closed

    def owned(self) -> list[int]:
        return sorted(d for d, a in self._actors.items() if a.running)
