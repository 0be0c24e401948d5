"""Committed events to every Socket.IO client of this node, at a bounded cost.

`SocketIOFeed` is an `EventSink`: the actors (through the web's fan-out) and, on a cluster, the
events bus call `publish` with each committed batch, and it only appends to an `Outbox`, so no
actor ever waits on a client. One ticker task (owned by the feed, started and stopped with the
app) flushes the outbox at most once per `tick`: each drop's stock is coalesced there, and each
event is encoded once into one Socket.IO packet whose text goes to every recipient's Engine.IO
queue (python-socketio's own broadcast makes one task per recipient per event; this loop does
not). Nothing is sent for an act that did not commit: only committed batches are published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from engineio import packet as eio_packet

from sneakerd.clock import Clock
from sneakerd.domain.events import DropEvent
from sneakerd.web.socketio.payloads import Emission, Outbox

log = logging.getLogger(__name__)

NAMESPACE = "/"
EVENT_PACKET = "2"
"""Socket.IO's EVENT packet type; the default namespace is written as nothing."""
YIELD_EVERY = 256
"""Packets queued between two hand-backs of the loop, so a fan-out to thousands of clients
lets requests interleave (queueing one is a few microseconds; it never waits)."""


class Recipients(Protocol):
    """The two things a flush needs of the Socket.IO server (its manager and engine)."""

    def participants(self, room: str | None) -> Iterator[str]: ...

    async def send(self, eio_sid: str, message: Any) -> None: ...


class ServerRecipients:
    """`Recipients` over a python-socketio `AsyncServer`: the room's Engine.IO sessions from
    its manager, and a send that queues an already-encoded packet on one session."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def participants(self, room: str | None) -> Iterator[str]:
        for _sid, eio_sid in self._server.manager.get_participants(NAMESPACE, room):
            yield str(eio_sid)

    async def send(self, eio_sid: str, message: Any) -> None:
        await self._server.eio.send_packet(eio_sid, message)


def encode(emission: Emission) -> str:
    """One emission as a Socket.IO packet's text: `2["name",{...}]`."""
    return EVENT_PACKET + orjson.dumps([emission.name, emission.payload]).decode()


@dataclass(frozen=True, slots=True)
class FeedStatistics:
    flushes: int
    emitted: int
    """Events emitted (each counted once, however many clients got it)."""
    sent: int
    """Packets queued to clients."""


class SocketIOFeed:
    def __init__(self, clock: Clock, *, tick: float = 0.05) -> None:
        self._clock = clock
        self.tick = tick
        self._outbox = Outbox()
        self._dirty = asyncio.Event()
        self._recipients: Recipients | None = None
        self._task: asyncio.Task[None] | None = None
        self._flushes = self._emitted = self._sent = 0
        self.clients = 0
        """Connected Socket.IO sessions (the server's handlers count them): with none, a
        committed batch costs the feed nothing, not even a place in the outbox."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, recipients: Recipients) -> None:
        self._recipients = recipients
        self._task = asyncio.create_task(self._run(), name="socketio-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._recipients = None

    def statistics(self) -> FeedStatistics:
        return FeedStatistics(self._flushes, self._emitted, self._sent)

    # -- EventSink ---------------------------------------------------------------------------

    def publish(self, events: Sequence[DropEvent]) -> None:
        if self._task is None or not self.clients or not events:
            return  # not serving, or no one connected: there is no one to tell
        self._outbox.add(events)
        self._dirty.set()

    # -- the ticker --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.flush()
            except Exception:  # a bug must not stop live updates for every client
                log.exception("socket.io flush failed")
            await asyncio.sleep(self.tick)

    async def flush(self) -> None:
        """Emit what the outbox holds: each event encoded once, queued to each recipient."""
        recipients = self._recipients
        if recipients is None or not self._outbox:
            return
        emissions = self._outbox.take(self._clock.now_ms())
        self._flushes += 1
        for emission in emissions:
            message = eio_packet.Packet(eio_packet.MESSAGE, encode(emission))
            self._emitted += 1
            targets = [emission.room, None] if emission.room is not None else [None]
            for room in targets:
                for eio_sid in list(recipients.participants(room)):
                    await recipients.send(eio_sid, message)
                    self._sent += 1
                    if self._sent % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
