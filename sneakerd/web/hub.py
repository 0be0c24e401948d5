"""Fans each drop's committed events out to its WebSocket subscribers.

The actors call `publish` right after a commit; it only appends to a per-drop buffer, so the
actor never waits on a subscriber. One ticker task (owned by the hub, started and stopped with
the app) flushes the buffers: each event is serialised once (orjson) and the same bytes are
offered to every subscriber of the drop. Stock updates are coalesced: per flush only the latest
`stockUpdate` of a drop goes out, and a drop is flushed at most once per `tick` (50 ms), so the
fan-out cost does not grow with reservations x subscribers.

Each subscriber has a bounded outbox and its own writer (the WebSocket handler's task). A
subscriber whose outbox overflows is not sent the backlog: its outbox is dropped and it is sent a
fresh `snapshot` instead. A subscriber whose socket stays unwritable for `stuck_seconds` is closed
with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sneakerd.domain.events import (
    DropDeleted,
    DropEvent,
    DropUpdated,
    Expired,
    Purchased,
    StockChanged,
)
from sneakerd.domain.model import Drop

log = logging.getLogger(__name__)

Frame = tuple[int, bytes]
"""(seq, the encoded JSON text frame)."""


def encode_event(event: DropEvent, view: Callable[[Drop], dict[str, Any]]) -> bytes:
    """docs/API.md's message for one event."""
    base: dict[str, Any]
    if isinstance(event, StockChanged):
        base = {
            "type": "stockUpdate",
            "newStock": event.stock,
            "reserved": event.reserved,
            "sold": event.sold,
        }
    elif isinstance(event, Expired):
        base = {"type": "reservationExpired", "reservationId": event.reservation_id}
    elif isinstance(event, Purchased):
        base = {
            "type": "purchaseCompleted",
            "purchaser": event.purchaser,
            "purchaseId": event.purchase_id,
        }
    elif isinstance(event, DropUpdated):
        base = {"type": "dropUpdated", "drop": view(event.drop)}
    else:
        base = {"type": "dropDeleted"}
    return orjson.dumps({**base, "dropId": event.drop_id, "seq": event.seq})


def coalesce(events: Sequence[DropEvent]) -> list[DropEvent]:
    """Keep every event but the stock updates, of which only the latest (the highest seq) goes;
    none once the drop is deleted. Ordered by seq."""
    kept: list[DropEvent] = [e for e in events if not isinstance(e, StockChanged)]
    if not any(isinstance(e, DropDeleted) for e in kept):
        stock = [e for e in events if isinstance(e, StockChanged)]
        if stock:
            kept.append(max(stock, key=lambda e: e.seq))
    kept.sort(key=lambda e: e.seq)
    return kept


DIRECT_WRITE_LIMIT = 64 * 1024
"""Bytes a socket may have waiting in user space and still be written to directly."""


def wire_frame(payload: bytes) -> bytes:
    """A server-to-client WebSocket text frame (final, unmasked, uncompressed: RFC 6455 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65_536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class Subscriber:
    """One WebSocket's place in the hub: a bounded outbox and what its writer must do next.

    A subscriber that keeps up is written to directly from the flush, with bytes framed once
    for all of a drop's watchers (one `transport.write` per watcher per flush, no task switch).
    One that has a backlog, a resync pending, or a full socket goes through its outbox and its
    own writer task instead, which waits for the socket (and gives up on a stuck one).
    """

    __slots__ = (
        "busy",
        "closing",
        "drop_id",
        "last_seq",
        "limit",
        "outbox",
        "resync",
        "resyncs",
        "transport",
        "wakeup",
    )

    def __init__(self, drop_id: int, limit: int) -> None:
        self.drop_id = drop_id
        self.limit = limit
        self.outbox: deque[Frame] = deque()
        self.wakeup = asyncio.Event()
        self.resync = False
        self.resyncs = 0
        self.last_seq = 0
        self.closing: int | None = None
        self.transport: asyncio.Transport | None = None
        """Set by the writer once the first snapshot is out; None while it is not live."""
        self.busy = False
        """True while the writer is sending from the outbox (so direct writes would reorder)."""

    def write_direct(self, first_seq: int, last_seq: int, wire: bytes) -> bool:
        """Write already-framed bytes straight to the socket if nothing could reorder them."""
        transport = self.transport
        if (
            transport is None
            or self.busy
            or self.resync
            or self.outbox
            or self.closing is not None
            or first_seq <= self.last_seq
            or transport.is_closing()
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.write(wire)
        self.last_seq = last_seq
        return True

    def offer(self, frames: Sequence[Frame]) -> None:
        """Queue frames without ever blocking; on overflow, ask for a snapshot instead."""
        if self.closing is not None:
            return
        if not self.resync:
            if len(self.outbox) + len(frames) > self.limit:
                self.outbox.clear()
                self.resync = True
                self.resyncs += 1
            else:
                self.outbox.extend(frames)
        self.wakeup.set()

    def close(self, code: int) -> None:
        self.closing = code
        self.wakeup.set()


@dataclass(frozen=True, slots=True)
class HubStatistics:
    drops: int
    subscribers: int
    flushes: int
    frames: int


class Hub:
    """The `EventSink` that the drop actors publish to."""

    def __init__(
        self,
        view: Callable[[Drop], dict[str, Any]],
        *,
        tick: float = 0.05,
        outbox_limit: int = 256,
        stuck_seconds: float = 10.0,
    ) -> None:
        self._view = view
        self.tick = tick
        self.outbox_limit = outbox_limit
        self.stuck_seconds = stuck_seconds
        self._channels: dict[int, set[Subscriber]] = {}
        self._pending: dict[int, list[DropEvent]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushes = 0
        self._frames = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ws-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def close_all(self, code: int) -> None:
        """Ask every subscriber's writer to close its socket with `code` (shutdown: 1001)."""
        for subscribers in self._channels.values():
            for subscriber in subscribers:
                subscriber.close(code)

    # -- subscribers -------------------------------------------------------------------------

    def subscribe(self, drop_id: int) -> Subscriber:
        subscriber = Subscriber(drop_id, self.outbox_limit)
        self._channels.setdefault(drop_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._channels.get(subscriber.drop_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._channels[subscriber.drop_id]
                self._pending.pop(subscriber.drop_id, None)

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            drops=len(self._channels),
            subscribers=sum(len(s) for s in self._channels.values()),
            flushes=self._flushes,
            frames=self._frames,
        )

    # -- EventSink ---------------------------------------------------------------------------

    def publish(self, events: Sequence[DropEvent]) -> None:
        channels = self._channels
        for event in events:
            if event.drop_id in channels:
                self._pending.setdefault(event.drop_id, []).append(event)
                self._dirty.set()

    # -- the ticker --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                self.flush()
            except Exception:  # a bug must not stop live updates for every drop
                log.exception("hub flush failed")
            await asyncio.sleep(self.tick)

    def flush(self) -> None:
        """Encode each drop's pending events once and offer the frames to its subscribers."""
        pending, self._pending = self._pending, {}
        for drop_id, events in pending.items():
            subscribers = self._channels.get(drop_id)
            if not subscribers:
                continue
            kept = coalesce(events)
            frames = [(e.seq, encode_event(e, self._view)) for e in kept]
            wire = b"".join(wire_frame(payload) for _, payload in frames)
            first, last = frames[0][0], frames[-1][0]
            deleted = any(isinstance(e, DropDeleted) for e in kept)
            for subscriber in list(subscribers):
                if not subscriber.write_direct(first, last, wire):
                    subscriber.offer(frames)
                if deleted:
                    subscriber.close(1000)
            self._flushes += 1
            self._frames += len(frames)

    def resync(self, drop_id: int) -> None:
        """Send every watcher of the drop a fresh snapshot instead of what it has queued, as
        for a subscriber whose outbox overflowed: the events bus calls this when it notices
        a seq gap (an event that never reached this node), which only the database can fill."""
        for subscriber in self._channels.get(drop_id, ()):
            if subscriber.closing is None:
                subscriber.outbox.clear()
                subscriber.resync = True
                subscriber.resyncs += 1
                subscriber.wakeup.set()
