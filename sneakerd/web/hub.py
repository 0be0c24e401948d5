"""Fans each drop's committed events out to its WebSocket subscribers.

The actors call `publish` right after a commit; it only appends to a per-drop buffer, so the
actor never waits on a subscriber. One ticker task (owned by the hub, started and stopped with
the app) flushes the buffers: each event is serialised once (orjson) and the same bytes are
offered to every subscriber of the drop. Stock updates are coalesced: per flush only the latest
`stockUpdate` of a drop goes out, and a drop is flushed at most once per `tick` (50 ms), so the
fan-out cost does not grow with reservations x subscribers. A drop written by the fan-out
thread is flushed every `thread_tick` (10 ms) instead: the thread rolls its jobs into the lap
under way (below), so more of them add no sends, and each waits less for the next.

A flush writes to one socket after another (one `send` each, the bulk of its cost), and to
10,000 subscribers that is tens of milliseconds. A drop with more than `thread_above`
subscribers is therefore written by the fan-out thread (`web/send_thread.py`), whose sends run
without the GIL, beside the loop; the others are written in the loop in slices of
`slice_seconds`, handing the loop back between them, so HTTP requests interleave with the
fan-out instead of waiting for it. Frames are built before anything is written. The in-loop
flushes never overlap (a direct `flush` finishes a sliced one first); the thread's do not wait
for each other: the ticker hands the thread one job per thread tick and the thread rolls a drop's
jobs into its lap, each subscriber sent what it has not had, in seq order. A drop stays with
the thread while any of its jobs is there, so its frames never take the other road past them.

Each subscriber has a bounded outbox and its own writer (the WebSocket handler's task). A
subscriber whose outbox overflows is not sent the backlog: its outbox is dropped and it is sent a
fresh `snapshot` instead. A subscriber whose socket stays unwritable for `stuck_seconds` is closed
with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from array import array
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
from sneakerd.web import sendmany
from sneakerd.web.send_thread import SendThread
from sneakerd.web.subscriber import Frame, Subscriber

log = logging.getLogger(__name__)


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
THREAD_ABOVE = 1000
"""Subscribers of one drop above which its flushes go to the fan-out thread."""
IDLE_TURN_SECONDS = 30e-6
"""A loop turn shorter than this ran nothing but the flush's own resumption."""


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


@dataclass(frozen=True, slots=True)
class Flush:
    """One drop's pending events, encoded once: as frames for outboxes and framed for the wire."""

    frames: list[Frame]
    wired: list[tuple[int, bytes]]
    stock: int
    """The seq of its stock update (0: none)."""
    deleted: bool

    @property
    def wire(self) -> bytes:
        return b"".join(frame for _, frame in self.wired)


@dataclass(frozen=True, slots=True)
class ThreadJob:
    """A flush of one drop that the fan-out thread is writing."""

    drop_id: int
    flush: Flush
    subscribers: list[Subscriber]


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
        thread_tick: float = 0.01,
        outbox_limit: int = 256,
        stuck_seconds: float = 10.0,
        slice_seconds: float = SLICE_SECONDS,
        thread_above: int | None = THREAD_ABOVE,
        send_path: sendmany.SendPath = sendmany.LIVE,
    ) -> None:
        self._view = view
        self.tick = tick
        self.thread_tick = thread_tick
        self.slice_seconds = slice_seconds
        self.outbox_limit = outbox_limit
        self.stuck_seconds = stuck_seconds
        self._channels: dict[int, set[Subscriber]] = {}
        self._rosters: dict[int, list[Subscriber]] = {}
        """Each crowded drop's subscribers as a list, for the fan-out thread's jobs: copied from
        its channel once per change of who watches, not once per job (10,000 watchers are ~60 us
        of the loop a copy, and a job goes every 10 ms). The thread only reads a roster."""
        self._pending: dict[int, list[DropEvent]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: Iterator[float] | None = None
        """The ticker's sliced flush while it is under way."""
        self._flushes = 0
        self._frames = 0
        self.thread_above = thread_above
        """Drops with more subscribers than this are written by the fan-out thread (None:
        never): below it the thread's hand-off costs more than it saves."""
        self.send_path = send_path
        """How the fan-out thread sends (`web/sendmany.py`: in C, or the os.write fallback)."""
        self.in_flight: array[int] | None = None
        """The service's count of buyers' writes in flight (set before `start`): the fan-out
        thread steps aside for them (`web/send_thread.py`)."""
        self._thread: SendThread | None = None
        self._threaded: dict[int, int] = {}
        """Thread jobs under way per drop: that drop's next flush goes to the thread too, and
        `flush` must not overtake them."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.thread_above is not None:
            self._thread = SendThread(asyncio.get_running_loop(), self.send_path, self.in_flight)
            self._thread.start()
            log.info(
                "fan-out thread for drops with more than %d watchers: sends %s",
                self.thread_above,
                "in C, the GIL released for each batch of sockets"
                if self.send_path.name == "c"
                else "with os.write per socket (the C extension sneakerd.web._sendmany is not "
                "built: install with a C compiler for faster fan-out)",
            )
        self._task = asyncio.create_task(self._run(), name="ws-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        thread, self._thread = self._thread, None
        if thread is not None:
            await thread.stop()

    def close_all(self, code: int) -> None:
        """Ask every subscriber's writer to close its socket with `code` (shutdown: 1001)."""
        for subscribers in self._channels.values():
            for subscriber in subscribers:
                subscriber.close(code)

    # -- subscribers -------------------------------------------------------------------------

    def subscribe(self, drop_id: int) -> Subscriber:
        subscriber = Subscriber(drop_id, self.outbox_limit)
        self._channels.setdefault(drop_id, set()).add(subscriber)
        self._rosters.pop(drop_id, None)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._channels.get(subscriber.drop_id)
        self._rosters.pop(subscriber.drop_id, None)
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
        """Flush whenever events are pending: the fan-out thread's drops at most once per
        `thread_tick`, the others at most once per `tick`, each from one flush's start to the
        next's. The thread's jobs are handed over, not waited for: one that comes while the
        thread is still writing the drop's last reaches the rest of that lap at once
        (`web/send_thread.py`). A sliced flush that took longer than a tick is followed at once
        by the next, which carries everything committed meanwhile."""
        loop = asyncio.get_running_loop()
        slices_at = 0.0
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = loop.time()
            slices_due = started >= slices_at
            if slices_due:
                slices_at = started + self.tick
            try:
                await self._flush_all(slices_due)
            except Exception:  # a bug must not stop live updates for every drop
                log.exception("hub flush failed")
            now = loop.time()
            if self._pending:  # the loop's drops wait for their tick
                self._dirty.set()
            wait = slices_at - now
            if self._threaded:  # a crowded drop's fan-out under way: its next job soon
                wait = min(wait, self.thread_tick - (now - started))
            await asyncio.sleep(max(0.0, wait))

    def flush(self) -> None:
        """Encode each drop's pending events once and offer the frames to its subscribers, all
        in this call, in the loop. A sliced flush the ticker has under way is finished first, so
        that no subscriber gets these (newer) frames before that flush's older ones; one the
        fan-out thread is writing cannot be finished from here, so this refuses then."""
        if self._threaded:
            raise RuntimeError("flush() while the fan-out thread writes an earlier flush")
        self._finish_inflight()
        for _ in self._fan_out(self._take_pending()):
            pass

    async def _flush_all(self, slices_due: bool = True) -> None:
        """The ticker's flush: drops with many subscribers (or with a job still there) go to
        the fan-out thread; the others, when `slices_due`, are written here in slices (else
        they stay pending for their tick)."""
        thread = self._thread
        if thread is not None and self.thread_above is not None:
            crowded = [
                drop_id
                for drop_id in self._pending
                if drop_id in self._threaded
                or len(self._channels.get(drop_id, ())) > self.thread_above
            ]
            for drop_id in crowded:
                self._to_thread(thread, drop_id, self._pending.pop(drop_id))
        if slices_due:
            await self._flush_in_slices(self._take_pending())

    def _to_thread(self, thread: SendThread, drop_id: int, events: list[DropEvent]) -> None:
        """Hand one drop's frames to the fan-out thread; they are settled when it is done."""
        flush = self._frames_of(events)
        subscribers = self._rosters.get(drop_id)
        if subscribers is None:
            subscribers = self._rosters[drop_id] = list(self._channels.get(drop_id, ()))
        done = thread.write(drop_id, flush.wired, subscribers, flush.stock)
        self._threaded[drop_id] = self._threaded.get(drop_id, 0) + 1
        done.add_done_callback(
            functools.partial(self._settle, ThreadJob(drop_id, flush, subscribers))
        )

    def _settle(self, job: ThreadJob, done: asyncio.Future[list[Subscriber]]) -> None:
        """In the loop, once the thread is done with a job (a drop's in the order given): the
        frames it could not write go to those subscribers' outboxes; a deleted drop's
        subscribers are closed."""
        try:
            if not done.cancelled():
                for subscriber in done.result():
                    subscriber.settle(job.flush.frames)
                if job.flush.deleted:
                    for subscriber in job.subscribers:
                        subscriber.close(1000)
        finally:
            left = self._threaded.pop(job.drop_id) - 1
            if left:
                self._threaded[job.drop_id] = left

    async def _flush_in_slices(self, pending: dict[int, list[DropEvent]]) -> None:
        """Write in the loop, handed back to the loop every `slice_seconds` so that HTTP
        requests interleave with a fan-out to many sockets (one `send` each, ~5-10 us on
        loopback)."""
        fan_out = self._fan_out(pending)
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
            flush = self._frames_of(events)
            frames, wire = flush.frames, flush.wire
            first, last = frames[0][0], frames[-1][0]
            for subscriber in list(subscribers):
                if not subscriber.write_direct(first, last, wire):
                    subscriber.offer(frames)
                if flush.deleted:
                    subscriber.close(1000)
                written += 1
                if written % CLOCK_EVERY == 0 and (now := clock()) >= deadline:
                    yield now - slice_started
                    slice_started = clock()
                    deadline = slice_started + self.slice_seconds

    def _frames_of(self, events: list[DropEvent]) -> Flush:
        """A drop's pending events as frames (each encoded once), the same framed for the
        wire, the seq of its stock update, and whether the drop was deleted."""
        kept = coalesce(events)
        frames = [(e.seq, encode_event(e, self._view)) for e in kept]
        self._flushes += 1
        self._frames += len(frames)
        return Flush(
            frames,
            [(seq, wire_frame(payload)) for seq, payload in frames],
            max((e.seq for e in kept if isinstance(e, StockChanged)), default=0),
            any(isinstance(e, DropDeleted) for e in kept),
        )

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
