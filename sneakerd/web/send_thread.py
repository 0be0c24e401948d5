"""Writes one drop's frame to thousands of sockets on a thread of its own.

On loopback most of a fan-out's cost is the kernel's `send`, about 5-7 us a socket (it runs the
receiving side's TCP path too): 10,000 watchers are ~60 ms of one core per frame. In the event
loop's thread that time is taken from every HTTP request, however finely it is sliced (each of a
request's loop hops can wait for a slice). Here the sends run on a second thread: `os.write`
releases the GIL for the syscall, so the kernel's work runs on the other core while the loop
goes on, and the loop gives up only the few hundred nanoseconds of Python around each send.

The thread only ever writes whole frames to a subscriber that the loop has lent to it
(`Subscriber.write_from_thread` decides, under the subscriber's lock, with nothing buffered in
the transport and nothing queued or owed to its outbox). What it cannot write it hands back to
the loop, in order, as the frames the subscriber's outbox must carry (`settle`), so a subscriber
never receives frames out of order and never misses one. Jobs run one at a time, in the order
they were given: a later flush's frames never overtake an earlier one's.

The hub owns the thread: `start` and `stop` (which joins it) go with the hub's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sneakerd.web.subscriber import Subscriber

log = logging.getLogger(__name__)


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

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
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
        while (job := self._jobs.get()) is not None:
            reached = 0
            try:
                for subscriber in job.subscribers:
                    reached += 1
                    if not subscriber.write_from_thread(job.first, job.last, job.wire):
                        job.diverted.append(subscriber)
            except Exception:  # a bug must not stop the thread: the rest go by the outbox
                log.exception("fan-out thread failed")
                for subscriber in job.subscribers[reached - 1 :]:
                    subscriber.divert()
                    job.diverted.append(subscriber)
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                self._loop.call_soon_threadsafe(_resolve, job)


def _resolve(job: Job) -> None:
    if not job.done.done():
        job.done.set_result(job.diverted)
