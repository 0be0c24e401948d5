"""Waiting-room positions over the drop's WebSocket, for watchers who said who they are.

A watcher sends `{"type": "auth", "token": "<JWT>"}`; from then on it is sent
`{"type": "queue", "dropId", "seq", "position", "admitted"}` whenever its own ticket's position or
admission changes. The cost is bounded, not one frame per join for every watcher: one ticker
(owned by the app, started and stopped with it) looks, every `tick`, only at drops whose
committed version moved since it last looked, reads each authenticated watcher's ticket from the
actor's committed room (an O(1) read, no I/O), and writes a frame only to those whose
(position, admitted) changed. After the draw a join at the tail moves nobody ahead of it, so a
burst of joins costs the watchers nothing; an admission moves everyone behind by one, and a
tick coalesces every admission within it into one frame per watcher.

Frames go straight to the watcher's socket when its buffer has room (whole frames, between the
hub's own); a watcher whose socket is full is simply tried again next tick, so a slow one never
slows anyone. Queue frames carry no `seq`: they are per watcher, not drop events.

Only drops whose actor runs on this node are watched this way (see docs/fair-drops.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from sneakerd import errors
from sneakerd.actors.registry import Registry
from sneakerd.domain.queue import QueueTicket
from sneakerd.web.auth import Tokens
from sneakerd.web.hub import wire_frame
from sneakerd.web.problems import ApiError
from sneakerd.web.subscriber import DIRECT_WRITE_LIMIT, Subscriber

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2


@dataclass(slots=True)
class _Watcher:
    user_id: int
    sent: tuple[int | None, bool] | None = None
    """The (position, admitted) last sent; None: nothing yet."""


@dataclass(slots=True)
class _Drop:
    watchers: dict[Subscriber, _Watcher] = field(default_factory=dict)
    version: int = -1
    """The drop's committed version when its watchers were last brought up to date."""


UserLookup = Callable[[int], Awaitable[str]]
"""A user's name by id: `ApiError` 401 if there is no such user, `errors.Unavailable` if the store
cannot say (`KnownUsers.username`)."""


class QueueWatch:
    def __init__(
        self, tokens: Tokens, registry: Registry, users: UserLookup, tick: float = TICK_SECONDS
    ) -> None:
        self._tokens = tokens
        self._users = users
        self._registry = registry
        self._tick = tick
        self._drops: dict[int, _Drop] = {}
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0

    # -- watchers ----------------------------------------------------------------------------

    async def auth(self, subscriber: Subscriber, data: dict[str, Any]) -> dict[str, Any] | None:
        """A watcher's `auth` message: the error to answer, or None (its first `queue` frame
        follows within a tick if it holds a ticket). As on HTTP, a validly signed token of a
        user this database does not have (another environment's, a deleted account's) is
        refused. The reader awaits this before it reads on, so the watcher cannot have gone
        (`forget`) before it is registered."""
        token = data.get("token")
        try:
            if not isinstance(token, str):
                raise ApiError(401, "unauthorized", "Send your token as a string")
            who = self._tokens.verify(token)
            await self._users(who.user_id)
        except ApiError as exc:
            return _error(subscriber, exc.code, exc.message)
        except errors.Unavailable:
            return _error(subscriber, "unavailable", "Cannot check the token now; send it again")
        drop = self._drops.setdefault(subscriber.drop_id, _Drop())
        drop.watchers[subscriber] = _Watcher(who.user_id)
        drop.version = -1  # bring the newcomer up to date on the next tick
        return None

    def forget(self, subscriber: Subscriber) -> None:
        drop = self._drops.get(subscriber.drop_id)
        if drop is not None:
            drop.watchers.pop(subscriber, None)
            if not drop.watchers:
                del self._drops[subscriber.drop_id]

    @property
    def watchers(self) -> int:
        return sum(len(d.watchers) for d in self._drops.values())

    # -- the ticker --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                self.flush()
            except Exception:  # a bug here must not end the ticker for every drop
                log.exception("queue positions: a flush failed")

    def flush(self) -> None:
        """Send each watcher of a drop that moved its ticket, if it changed."""
        if not self._drops:
            return
        actors = {a.drop_id: a for a in self._registry.running() if a.drop_id in self._drops}
        for drop_id, drop in self._drops.items():
            actor = actors.get(drop_id)
            state = None if actor is None else actor.state
            if actor is None or state is None or state.drop.version == drop.version:
                continue
            drop.version = state.drop.version
            for subscriber, watcher in drop.watchers.items():
                ticket = actor.ticket(watcher.user_id)
                if ticket is not None:
                    self._offer(subscriber, watcher, ticket)

    def _offer(self, subscriber: Subscriber, watcher: _Watcher, ticket: QueueTicket) -> None:
        now = (ticket.position, ticket.admitted)
        if now == watcher.sent:
            return
        transport = subscriber.transport
        if (
            transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            self._drops[subscriber.drop_id].version = -1  # try again next tick
            return
        frame = {
            "type": "queue",
            "dropId": ticket.drop_id,
            "seq": subscriber.last_seq,  # every server message has one: the last it was sent
            "position": ticket.position,
            "admitted": ticket.admitted,
        }
        subscriber.hold()  # the hub's fan-out thread may be writing to this socket
        try:
            transport.write(wire_frame(orjson.dumps(frame)))
        finally:
            subscriber.release()
        watcher.sent = now
        self.frames_sent += 1


def _error(subscriber: Subscriber, code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "dropId": subscriber.drop_id,
        "seq": subscriber.last_seq,
        "error": {"code": code, "message": message},
    }
