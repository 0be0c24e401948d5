"""Fans each drop's committed events out to its WebSocket subscribers.

The actors call `publish` right after a commit; it only appends to a per-drop buffer, so the
actor never waits on a subscriber. One ticker task (owned by the hub, started and stopped with
the app) flushes the buffers: each event is serialised once (orjson) and the same bytes are
offered to every subscriber of the drop. Stock updates are coalesced: per flush only the latest
`stockUpdate` of a drop goes out, and a drop is flushed at most once per `tick` (50 ms), so the
fan-out cost does not grow with reservations x subscribers.

A flush writes to one socket after another (one `send` each, the bulk of its cost), and to
10,000 subscribers that is tens of milliseconds: the ticker therefore writes in slices of
`slice_seconds` and hands the loop back between them, so HTTP requests interleave with the
fan-out instead of waiting for it. Frames are built before the first slice and flushes never
overlap (a direct `flush` finishes a sliced one first), so seq still rises per subscriber.

Each subscriber has a bounded outbox and its own writer (the WebSocket handler's task). A
subscriber whose outbox overflows is not sent the backlog: its outbox is dropped and it is sent a
fresh `snapshot` instead. A subscriber whose socket stays unwritable for `stuck_seconds` is closed
with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
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
    is_side,
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


SLICE_SECONDS = 0.0005
"""How long a flush writes before it hands the loop back (a few dozen sockets)."""
CLOCK_EVERY = 16
"""Subscribers written between two reads of the clock."""
IDLE_TURN_SECONDS = 30e-6
"""A loop turn shorter than this ran nothing but the flush's own resumption."""

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
        slice_seconds: float = SLICE_SECONDS,
    ) -> None:
        self._view = view
        self.tick = tick
        self.slice_seconds = slice_seconds
        self.outbox_limit = outbox_limit
        self.stuck_seconds = stuck_seconds
        self._channels: dict[int, set[Subscriber]] = {}
        self._pending: dict[int, list[DropEvent]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: Iterator[float] | None = None
        """The ticker's sliced flush while it is under way."""
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
            # Side events (a hold made or cancelled, a drop created) are not in this feed.
            if event.drop_id in channels and not is_side(event):
                self._pending.setdefault(event.drop_id, []).append(event)
                self._dirty.set()

    # -- the ticker --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._flush_in_slices()
            except Exception:  # a bug must not stop live updates for every drop
                log.exception("hub flush failed")
            await asyncio.sleep(self.tick)

    def flush(self) -> None:
        """Encode each drop's pending events once and offer the frames to its subscribers, all
        in this call. A sliced flush the ticker has under way is finished first, so that no
        subscriber gets these (newer) frames before that flush's older ones."""
        self._finish_inflight()
        for _ in self._fan_out(self._take_pending()):
            pass

    async def _flush_in_slices(self) -> None:
        """The ticker's flush: the same work as `flush`, handed back to the loop every
        `slice_seconds` so that HTTP requests interleave with a fan-out to thousands of
        sockets (one `send` each, ~5-10 us on loopback: 10,000 watchers are ~70 ms a frame)."""
        fan_out = self._fan_out(self._take_pending())
        self._inflight = fan_out
        try:
            for spent in fan_out:  # ends early if `flush` finished it meanwhile
                await self._let_others_run(spent)
        finally:
            if self._inflight is fan_out:
                self._inflight = None

    async def _let_others_run(self, spent: float) -> None:
        """Yield to the loop until a turn comes back with nothing else done, or until others
        have had `spent` seconds (the slice just written): a request needs several loop turns
        (read, handler, actor, commit, reply), and one turn per slice would make it wait one
        slice per hop. The bound keeps the fan-out at least half the loop under any load."""
        clock = time.perf_counter
        started = clock()
        while True:
            before = clock()
            await asyncio.sleep(0)
            after = clock()
            if after - before < IDLE_TURN_SECONDS or after - started >= spent:
                return

    def _finish_inflight(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            for _ in inflight:
                pass

    def _take_pending(self) -> dict[int, list[DropEvent]]:
        pending, self._pending = self._pending, {}
        return pending

    def _fan_out(self, pending: dict[int, list[DropEvent]]) -> Iterator[float]:
        """Deliver `pending`; yields (the seconds the slice took) after every `slice_seconds`.

        Frames are built per drop once, before any subscriber sees them; the subscribers are
        the drop's at that moment (one who joins later starts from a snapshot taken after
        these commits, and its writer skips what that snapshot already covers)."""
        clock = time.perf_counter
        slice_started = clock()
        deadline = slice_started + self.slice_seconds
        written = 0
        for drop_id, events in pending.items():
            subscribers = self._channels.get(drop_id)
            if not subscribers:
                continue
            kept = coalesce(events)
            frames = [(e.seq, encode_event(e, self._view)) for e in kept]
            wire = b"".join(wire_frame(payload) for _, payload in frames)
            first, last = frames[0][0], frames[-1][0]
            deleted = any(isinstance(e, DropDeleted) for e in kept)
            self._flushes += 1
            self._frames += len(frames)
            for subscriber in list(subscribers):
                if not subscriber.write_direct(first, last, wire):
                    subscriber.offer(frames)
                if deleted:
                    subscriber.close(1000)
                written += 1
                if written % CLOCK_EVERY == 0 and (now := clock()) >= deadline:
                    yield now - slice_started
                    slice_started = clock()
                    deadline = slice_started + self.slice_seconds

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
