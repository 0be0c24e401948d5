"""Writes one drop's frame to thousands of sockets on a thread of its own.

On loopback most of a fan-out's cost is the kernel's `send`, about 5-7 us a socket (it runs the
receiving side's TCP path too): 10,000 watchers are ~60 ms of one core per frame. In the event
loop's thread that time is taken from every HTTP request, however finely it is sliced (each of a
request's loop hops can wait for a slice). Here the sends run on a second thread, in batches
(`web/sendmany.py`): a C loop that releases the GIL for a whole batch when the extension is
built, so the kernel's work runs on the other core while the loop goes on and the thread takes
the GIL back once a batch; else `os.write` one socket at a time.

The thread only ever writes whole frames to a subscriber that the loop has lent to it
(`Subscriber.claim` decides, under the subscriber's lock, with nothing buffered in the
transport and nothing queued or owed to its outbox; the lock is held until `Subscriber.finish`
has looked at what the send did). What it cannot write it hands back to the loop, in order, as
the frames the subscriber's outbox must carry (`settle`), so a subscriber never receives frames
out of order and never misses one. Jobs run one at a time, in the order they were given: a
later flush's frames never overtake an earlier one's.

The thread makes room for buyers' writes in flight (a hold, a purchase, a cancel: `in_flight`,
the service's count). On two cores a pass's sends and the watchers' receives take both, and a
hold's steps (its commit's round trip, its reply) wait for a core behind them: with 10,000
watchers the reserve p99 was 4-6 x its value without them. So before each batch the thread
looks at the count and, while it is not zero, waits (without the GIL, `path.wait_while`) up to
`YIELD_SECONDS`. It waits holding no subscriber's lock: the loop, busy with those writes, may
need one of them meanwhile (loadtest/README.md, "watchers").

The hub owns the thread: `start` and `stop` (which joins it) go with the hub's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sneakerd.web import sendmany

if TYPE_CHECKING:
    from sneakerd.web.subscriber import Subscriber

log = logging.getLogger(__name__)

YIELD_SECONDS = 0.003
"""Longest the thread steps aside before a batch (~256 sends, ~1.5 ms: under a steady stream
of writes the fan-out keeps about a third of its time). About a hold's whole time on an idle
machine, so a hold that arrives mid-pass finds the cores free after one batch."""

YIELD_EVERY = sendmany.C_BATCH
"""Sockets sent to between two chances to step aside (the fallback sends one a call)."""


@dataclass(slots=True)
class Job:
    """One drop's frames for its subscribers of the moment."""

    wire: bytes
    first: int
    last: int
    subscribers: Sequence[Subscriber]
    done: asyncio.Future[list[Subscriber]]
    diverted: list[Subscriber] = field(default_factory=list)


class SendThread:
    """A single writer thread fed by the hub's ticker, one `Job` at a time."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: sendmany.SendPath = sendmany.LIVE,
        in_flight: array[int] | None = None,
    ) -> None:
        self._loop = loop
        self.path = path
        self._in_flight = in_flight
        """One item: the loop's count of buyers' writes in flight (None: never step aside)."""
        self._yield_every = max(1, YIELD_EVERY // max(1, path.batch))
        """Batches per chance to step aside: each of the C path's (256 sockets), every 256th
        of the fallback's (one socket each)."""
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ws-fanout", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)

    def write(
        self, wire: bytes, first: int, last: int, subscribers: Sequence[Subscriber]
    ) -> asyncio.Future[list[Subscriber]]:
        """Queue a job; the future gives the subscribers the thread could not write to (their
        frames must go through their outboxes), once the thread is done with all of them."""
        done: asyncio.Future[list[Subscriber]] = self._loop.create_future()
        self._jobs.put(Job(wire, first, last, subscribers, done))
        return done

    def _run(self) -> None:
        _lower_priority(self.path.nice)
        while (job := self._jobs.get()) is not None:
            subscribers, size = job.subscribers, self.path.batch
            start = 0
            in_flight, every = self._in_flight, self._yield_every
            try:
                for n, start in enumerate(range(0, len(subscribers), size)):
                    if in_flight is not None and in_flight[0] and n % every == 0:
                        self.path.wait_while(in_flight, YIELD_SECONDS)
                    self._send_batch(job, subscribers[start : start + size])
            except Exception:  # a bug must not stop the thread: the rest go by the outbox
                log.exception("fan-out thread failed")
                for subscriber in subscribers[start + size :]:
                    subscriber.divert()
                    job.diverted.append(subscriber)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                self._loop.call_soon_threadsafe(_resolve, job)

    def _send_batch(self, job: Job, batch: Sequence[Subscriber]) -> None:
        """Claim the batch's writable subscribers (their locks stay held), send to all of them
        in one call, then finish each. On a failure, every subscriber of the batch that was
        neither written nor owed yet is owed, and every lock still held is released."""
        held: dict[int, Subscriber] = {}
        decided = 0
        try:
            for subscriber in batch:
                decided += 1
                claimed = False
                try:
                    claimed = subscriber.claim(job.first)
                finally:  # not claimed (even by a failure): `claim` has owed its frames
                    if claimed:
                        held[len(held)] = subscriber
                    else:
                        job.diverted.append(subscriber)
            if held:
                self._send_held(job, held)
        except BaseException:
            for subscriber in held.values():
                subscriber.abandon()
                job.diverted.append(subscriber)
            for subscriber in batch[decided:]:
                subscriber.divert()
                job.diverted.append(subscriber)
            raise

    def _send_held(self, job: Job, held: dict[int, Subscriber]) -> None:
        """One send call for the claimed subscribers, then `finish` for each (removing it from
        `held`): whole or failed sends first, so that a partial write's wait for the rest of
        its frame keeps only its own subscriber locked."""
        claimed = list(held.values())
        fds = array("i", [s.fd for s in claimed])
        inodes = array("Q", [s.inode for s in claimed])
        results = array("q", bytes(8 * len(claimed)))
        self.path.send_each(job.wire, fds, inodes, results)
        size = len(job.wire)
        partial = [i for i, sent in enumerate(results) if 0 < sent < size]
        for i in [i for i, sent in enumerate(results) if not 0 < sent < size] + partial:
            subscriber = held.pop(i)
            written = False
            try:
                written = subscriber.finish(job.last, job.wire, results[i])
            finally:
                if not written:
                    job.diverted.append(subscriber)


def _lower_priority(nice: int) -> None:
    """Where the cores are all busy, the kernel runs the loop (and the database, on a shared
    machine) before the fan-out's sends: a late frame costs a watcher less than a late answer
    costs a buyer. Where they are not, this changes nothing."""
    if nice and sys.platform == "linux":  # elsewhere PRIO_PROCESS with a thread id is no thread
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):  # relative to the process's own niceness
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(current + nice, 19))


def _resolve(job: Job) -> None:
    if not job.done.done():
        job.done.set_result(job.diverted)
