"""Committed events over Redis pub/sub, from a drop's owner to the hub of every node.

The owner's actors publish each committed batch to `RedisBus` (an `EventSink`); every node,
the owner included, subscribes and hands what arrives to its own hub. Redis only carries what
the database already holds, so nothing here retries for long or stores anything: a batch that
cannot be sent is dropped, and a receiver that notices the hole in a drop's seq asks its hub to
resync that drop's watchers from the database.

Sending: `publish` only appends to a bounded queue (the actor never waits on Redis; when the
queue is full the oldest batch is dropped). One owned task sends the queue in order, many
batches per round trip (a pipeline of `PUBLISH {prefix}events`), retrying a failed round once on
a fresh connection, then dropping it with a log line and backing off.

Receiving: one owned task holds `SUBSCRIBE {prefix}events`. Per drop it keeps the last seq it
passed on. Events at or below it are dropped (a replay, a duplicate of a retried send: never
backwards). A side event (it shares its batch's seq: `domain.events`) is measured against the
drop's last seq before its message, and never moves it. A batch whose first new seq skips
past last + 1 is passed on and the drop resynced.
After a reconnect the node may have missed anything, so every drop is treated as having a gap
at its next message. A silent connection is pinged, and replaced if it stays silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sneakerd.cluster.wire import WireError
from sneakerd.cluster.wire_events import decode_events, encode_events
from sneakerd.domain.events import (
    DropEvent,
    is_side,
)

log = logging.getLogger(__name__)

Deliver = Callable[[Sequence[DropEvent]], None]
Resync = Callable[[int], None]

# -- the bus ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusStats:
    published: int
    """Messages (one committed batch each) sent to Redis."""
    received: int
    """Messages that arrived from Redis."""
    gaps: int
    """Times a drop's seq skipped ahead (or a reconnect may have lost some): resyncs asked."""
    dropped: int
    """Batches never sent: the queue overflowed, or Redis refused them."""
    stale: int
    """Events that arrived at or below their drop's last seq, and were dropped."""
    malformed: int
    """Messages that were not a batch of events, and were dropped."""
    reconnects: int
    """Subscriptions after the first one."""
    queued: int


class RedisBus:
    """An `EventSink` for a drop's owner and the events feed of every node's hub (see module).

    `deliver` is the local hub's `publish`, `resync(drop_id)` asks the hub to send that drop's
    watchers a fresh snapshot; both are called on the event loop and must not block.
    """

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        node_id: str,
        deliver: Deliver,
        resync: Resync,
        *,
        queue_limit: int = 10_000,
        batches_per_send: int = 512,
        ping_interval: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        self._url = redis_url
        self._channel = f"{prefix}events"
        self._node_id = node_id
        self._client_name = re.sub(r"[^A-Za-z0-9_.:-]", "_", f"{prefix}bus:{node_id}")
        """Shown in Redis's CLIENT LIST for both connections, so an operator sees the nodes."""
        self._deliver = deliver
        self._resync = resync
        self._queue_limit = queue_limit
        self._batches_per_send = batches_per_send
        self._ping_interval = ping_interval
        self._timeout = timeout
        self._queue: deque[tuple[DropEvent, ...]] = deque()
        self._queued = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._subscribed = asyncio.Event()
        self._last: dict[int, int] = {}
        """Per drop, the highest seq handed to the hub."""
        self._checked: set[int] = set()
        """Drops that have had a message since the latest reconnect (used once reconnected)."""
        self._reconnected = False
        self._tasks: list[asyncio.Task[None]] = []
        self._unlogged = 0
        self._next_lost_log = 0.0
        self._published = self._received = self._gaps = self._dropped = 0
        self._stale = self._malformed = self._subscriptions = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._send_forever(), name=f"bus-send {self._node_id}"),
            loop.create_task(self._receive_forever(), name=f"bus-receive {self._node_id}"),
        ]

    async def wait_subscribed(self) -> None:
        """Return once the node listens: start serving watchers after this, or the events
        committed before it would never reach them (and no later seq could show the gap)."""
        await self._subscribed.wait()

    async def stop(self, *, drain: float = 1.0) -> None:
        """Give what is queued or being sent up to `drain` seconds to go out, then stop both
        tasks."""
        if self._tasks and not self._drained.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def stats(self) -> BusStats:
        return BusStats(
            published=self._published,
            received=self._received,
            gaps=self._gaps,
            dropped=self._dropped,
            stale=self._stale,
            malformed=self._malformed,
            reconnects=max(0, self._subscriptions - 1),
            queued=len(self._queue),
        )

    # -- EventSink ---------------------------------------------------------------------------

    def publish(self, events: Sequence[DropEvent]) -> None:
        """Queue one committed batch; never waits (the oldest batch goes when the queue is
        full: receivers see the gap and resync from the database)."""
        if not events:
            return
        if len(self._queue) >= self._queue_limit:
            self._queue.popleft()
            self._lost(1, "the send queue is full")
        self._queue.append(tuple(events))
        self._drained.clear()
        self._queued.set()

    # -- sending -----------------------------------------------------------------------------

    def _client(self, retries: int) -> Redis:
        return Redis.from_url(
            self._url,
            client_name=self._client_name,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), retries),
        )

    async def _send_forever(self) -> None:
        client = self._client(retries=1)  # one retry, on a fresh connection: "reconnecting"
        backoff = 0.0
        try:
            while True:
                if not self._queue:
                    self._drained.set()
                    self._queued.clear()
                    await self._queued.wait()
                    continue
                count = min(len(self._queue), self._batches_per_send)
                chunk = [self._queue.popleft() for _ in range(count)]
                try:
                    await self._send(client, chunk)
                except (RedisError, OSError) as exc:
                    self._lost(count, f"Redis did not take them ({exc})")
                    backoff = min(2.0, max(0.1, backoff * 2))
                    await asyncio.sleep(backoff)
                    continue
                self._published += count
                backoff = 0.0
                if self._unlogged:
                    self._log_lost("the send queue was full, or Redis refused them")
        finally:
            await client.aclose()

    async def _send(self, client: Redis, chunk: Sequence[Sequence[DropEvent]]) -> None:
        pipe = client.pipeline(transaction=False)
        for batch in chunk:
            pipe.publish(self._channel, encode_events(batch))
        await pipe.execute()

    def _lost(self, count: int, why: str) -> None:
        """Count batches that will never be sent, and log them: at once if the last such line
        is a second old, else with the next line (or the next successful send)."""
        self._dropped += count
        self._unlogged += count
        if time.monotonic() >= self._next_lost_log:
            self._log_lost(why)

    def _log_lost(self, why: str) -> None:
        log.warning("events bus: dropped %d batch(es) of events: %s", self._unlogged, why)
        self._unlogged = 0
        self._next_lost_log = time.monotonic() + 1.0

    # -- receiving ---------------------------------------------------------------------------

    async def _receive_forever(self) -> None:
        backoff = 0.05
        while True:
            subscriptions = self._subscriptions
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                log.warning("events bus: subscription lost (%s); reconnecting", exc)
            if self._subscriptions != subscriptions:  # it was up: retry soon
                backoff = 0.05
            await asyncio.sleep(backoff)
            backoff = min(2.0, backoff * 2)

    async def _listen(self) -> None:
        client = self._client(retries=0)  # a reconnect must be seen here, not hidden inside
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self._pump(pubsub)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # untyped before redis-py 8
            await client.aclose()

    async def _pump(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            now = loop.time()
            if message is None:
                if now - heard >= 3 * self._ping_interval:
                    raise ConnectionError("no answer to pings")
                await pubsub.ping()  # its pong (or any message) proves the link alive
                continue
            heard = now
            kind = message["type"]
            if kind == "subscribe":
                self._on_subscribed()
            elif kind == "message":
                self._on_message(message["data"])

    def _on_subscribed(self) -> None:
        self._subscriptions += 1
        if self._subscriptions > 1:
            log.info("events bus: subscribed again; every drop resyncs at its next message")
            self._reconnected = True
            self._checked.clear()
        self._subscribed.set()

    def _on_message(self, payload: bytes) -> None:
        self._received += 1
        try:
            events = decode_events(payload)
        except WireError as exc:
            self._malformed += 1
            log.warning("events bus: dropped a malformed message: %s", exc)
            return
        fresh: list[DropEvent] = []
        gaps: list[int] = []
        before: dict[int, int | None] = {}
        for event in events:
            drop_id = event.drop_id
            last = self._last.get(drop_id)
            if drop_id not in before:
                before[drop_id] = last
            if is_side(event):
                first = before[drop_id]
                if first is not None and event.seq <= first:
                    self._stale += 1
                else:
                    fresh.append(event)
                continue
            if last is not None and event.seq <= last:
                self._stale += 1
                continue
            if self._reconnected and drop_id not in self._checked:
                self._checked.add(drop_id)
                gaps.append(drop_id)
            elif last is not None and event.seq > last + 1 and drop_id not in gaps:
                gaps.append(drop_id)
            self._last[drop_id] = event.seq
            fresh.append(event)
        if fresh:
            self._call(self._deliver, fresh)
        for drop_id in gaps:
            self._gaps += 1
            self._call(self._resync, drop_id)

    @staticmethod
    def _call(target: Callable[[Any], None], argument: object) -> None:
        try:
            target(argument)
        except Exception:  # a bug in one hub call must not stop the node's events
            log.exception("events bus: the hub failed on a message")
