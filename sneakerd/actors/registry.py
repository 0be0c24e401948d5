"""Finds the actor of a drop by id, starting it on first use, and owns every actor's lifetime.

At start-up the registry starts an actor for every drop that is live, upcoming, or still has
active holds, so that holds which expired while the server was down are expired at once and the
rest are re-armed. `stop_all()` stops every actor (each finishes and commits what it has queued)
and is what shutdown and tests call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sneakerd import errors
from sneakerd.actors.drop_actor import ActorObserver, DropActor
from sneakerd.actors.sink import EventSink
from sneakerd.clock import Clock
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command
from sneakerd.domain.events import DropEvent
from sneakerd.domain.model import DropState
from sneakerd.domain.rules import Rejection
from sneakerd.store import Store

log = logging.getLogger(__name__)


class DropHandle(Protocol):
    """What callers of `get` use: the drop's own actor here, or, among several nodes, a proxy
    that forwards to the node that owns the drop (`cluster.ownership.RemoteDrop`)."""

    @property
    def drop_id(self) -> int: ...

    @property
    def state(self) -> DropState | None: ...

    def refusal(self, user_id: int) -> Rejection | None: ...

    async def ask(self, command: Command) -> Reply: ...


class Registry:
    def __init__(
        self,
        *,
        store: Store,
        sink: EventSink,
        clock: Clock,
        hold_ms: int,
        observer: ActorObserver | None = None,
        draw_delay_ms: int = 0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sink = sink
        # Every actor is made the same way; only its drop id differs.
        self._make = functools.partial(
            DropActor,
            store=store,
            sink=sink,
            clock=clock,
            hold_ms=hold_ms,
            observer=observer,
            on_deleted=self._forget,
            draw_delay_ms=draw_delay_ms,
        )
        self._actors: dict[int, DropActor] = {}
        self._starting: dict[int, asyncio.Future[DropActor]] = {}
        self._closed = False
        self.recovered = False
        """True once every drop found at start-up has its actor running (for /readyz)."""

    async def start(self) -> None:
        """Start the actors of every drop that needs one now; raises `Unavailable`."""
        for drop_id in await self._store.drops_to_recover(self._clock.now_ms()):
            try:
                await self.get(drop_id)
            except errors.NotFound:
                continue
        self.recovered = True

    async def get(self, drop_id: int) -> DropHandle:
        """The running actor of `drop_id`; raises `NotFound` for an unknown or deleted drop."""
        return await self._started(drop_id, self._start)

    async def _start(self, drop_id: int) -> DropActor:
        actor = self._make(drop_id)
        await actor.start()
        return actor

    async def _started(
        self, drop_id: int, start: Callable[[int], Awaitable[DropActor]]
    ) -> DropActor:
        """The drop's running actor, started by `start` at most once however many callers
        ask at the same moment (the others wait for the one start and share its outcome)."""
        actor = self._actors.get(drop_id)
        if actor is not None and actor.running:
            return actor
        if self._closed:
            raise errors.ActorStopped("the server is shutting down")
        pending = self._starting.get(drop_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[DropActor] = asyncio.get_running_loop().create_future()
        self._starting[drop_id] = future
        try:
            actor = await start(drop_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._starting[drop_id]
        self._actors[drop_id] = actor
        future.set_result(actor)
        return actor

    def announce(self, events: Sequence[DropEvent]) -> None:
        """Publish events that no actor decides (a drop created: the store commits its row)
        to the sink the actors publish to, so they reach the same watchers on every node."""
        self._sink.publish(events)

    def running_here(self, drop_id: int) -> DropActor | None:
        """The drop's actor if it runs here now (a read: nothing is started)."""
        actor = self._actors.get(drop_id)
        return actor if actor is not None and actor.running else None

    def running(self) -> list[DropActor]:
        return [a for a in self._actors.values() if a.running]

    def _forget(self, actor: DropActor) -> None:
        """The one place a deleted drop's actor is let go: it calls this as it ends."""
        if self._actors.get(actor.drop_id) is actor:
            del self._actors[actor.drop_id]

    async def stop_all(self) -> None:
        """Stop every actor; each commits and answers what it had queued first."""
        self._closed = True
        actors, self._actors = list(self._actors.values()), {}
        await asyncio.gather(*(actor.stop() for actor in actors))
