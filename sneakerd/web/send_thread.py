"""Writes a drop's frames to thousands of sockets on a thread of its own, one lap at a time.

On loopback most of a fan-out's cost is the kernel's `send`, about 5-7 us a socket (it runs the
receiving side's TCP path too): 10,000 watchers are ~60 ms of one core per frame. In the event
loop's thread that time is taken from every HTTP request, however finely it is sliced (each of a
request's loop hops can wait for a slice). Here the sends run on a second thread, in batches
(`web/sendmany.py`): a C loop that releases the GIL for a whole batch when the extension is
built, so the kernel's work runs on the other core while the loop goes on and the thread takes
the GIL back once a batch; else `os.write` one socket at a time.

**Laps that roll.** A pass over 10,000 sockets takes a few hundred milliseconds on a busy
machine, and commits go on meanwhile. Were each flush a pass of its own, after the one before
it, a stock change committed just after a pass began would wait for that whole pass and then
for its place in its own: two passes. Instead the thread keeps, per drop, the chain of jobs
(flushes) it has not finished, and a lap over the drop's subscribers sends each one, when its
turn comes, everything of the chain it has not had yet, in one send: a job that arrives mid-lap
reaches the rest of that lap at once, and the subscribers the lap had already passed in the
next lap, which visits only them. A frame waits at most about one lap. What one send carries
is coalesced as a flush is (`Part`): of the stock updates only the newest goes, every other
event goes in order.

Each subscriber's `dealt` is the serial of the last job the thread dealt with for it (written,
or owed to its outbox); jobs and subscribers draw serials from one counter
(`subscriber.next_serial`), so a subscriber that joined after a job was built is never sent
that job (its snapshot covers it). A lap is done with every job that was in the chain when it
began: it visits every subscriber of the newest of them that has not had it, and an older job's
subscriber that is not in the newest one has gone.

The thread only ever writes to a subscriber that the loop has lent to it (`Subscriber.claim`
decides, under the subscriber's lock, with nothing buffered in the transport and nothing queued
or owed to its outbox; the lock is held until `Subscriber.finish` has looked at what the send
did). It never waits for a socket: one that takes part of a send keeps the rest for the loop,
which writes it before anything else goes to that socket. What it cannot write it hands back
to the loop, job by job and in order, as the frames the subscriber's outbox must carry
(`settle`), so a subscriber never receives frames out of order and never misses one. A
drop's jobs are finished (their futures resolved) in the order they were given.

The thread makes room for buyers' writes in flight (a hold, a purchase, a cancel: `in_flight`,
the service's count). On two cores a lap's sends and the watchers' receives take both, and a
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
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sneakerd.web import sendmany
from sneakerd.web.subscriber import next_serial

if TYPE_CHECKING:
    from sneakerd.web.subscriber import Subscriber

log = logging.getLogger(__name__)

YIELD_SECONDS = 0.003
"""Longest the thread steps aside before a batch (~256 sends, ~1.5 ms: under a steady stream
of writes the fan-out keeps about a third of its time). About a hold's whole time on an idle
machine, so a hold that arrives mid-lap finds the cores free after one batch."""

YIELD_EVERY = sendmany.C_BATCH
"""Sockets sent to between two chances to step aside (the fallback sends one a call)."""

WireFrame = tuple[int, bytes]
"""(seq, the frame as it goes on the wire)."""


@dataclass(slots=True)
class Job:
    """One flush of one drop: its frames for its subscribers of the moment."""

    drop_id: int
    frames: Sequence[WireFrame]
    stock: int
    """The seq of its stock update (0: none): a later job's makes it stale."""
    subscribers: Sequence[Subscriber]
    done: asyncio.Future[list[Subscriber]]
    serial: int = field(default_factory=next_serial)
    diverted: list[Subscriber] = field(default_factory=list)
    """Its subscribers the thread could not write to: their outboxes must carry its frames."""


@dataclass(frozen=True, slots=True)
class Part:
    """What one send carries to a subscriber: the jobs of the chain it has not had."""

    jobs: Sequence[Job]
    wire: bytes
    first: int
    last: int

    @classmethod
    def of(cls, jobs: Sequence[Job]) -> Part:
        """Every frame of `jobs` in order, but stock updates older than the newest of them."""
        newest = max(job.stock for job in jobs)
        wire = b"".join(
            frame for job in jobs for seq, frame in job.frames if seq != job.stock or seq == newest
        )
        return cls(jobs, wire, jobs[0].frames[0][0], jobs[-1].frames[-1][0])

    def owe(self, subscriber: Subscriber) -> None:
        """After the subscriber's owed count went up by one per job: list it in each."""
        for job in self.jobs:
            job.diverted.append(subscriber)


@dataclass(slots=True)
class Roll:
    """One drop's chain of jobs not finished yet, oldest first."""

    chain: list[Job]
    serials: list[int] = field(default_factory=list)
    """The chain's serials, in order (for `start_of`'s bisection)."""
    parts: dict[int, Part] = field(default_factory=dict)
    """Part from chain index i on, for the chain as it is (cleared when it changes)."""

    def __post_init__(self) -> None:
        self.serials = [job.serial for job in self.chain]

    def add(self, job: Job) -> None:
        self.chain.append(job)
        self.serials.append(job.serial)
        self.parts.clear()

    def finish(self, count: int) -> list[Job]:
        """Take the chain's first `count` jobs out (a lap is done with them)."""
        finished, self.chain[:] = self.chain[:count], self.chain[count:]
        del self.serials[:count]
        self.parts.clear()
        return finished

    def start_of(self, dealt: int) -> int:
        """The chain index of the first job that a subscriber whose last job dealt with is
        `dealt` has not had (the chain holds at least one it has not had)."""
        return bisect_right(self.serials, dealt)

    def part_from(self, start: int) -> Part:
        part = self.parts.get(start)
        if part is None:
            part = self.parts[start] = Part.of(self.chain[start:])
        return part


class SendThread:
    """A single writer thread fed by the hub's ticker, one `Job` per flush of a crowded drop."""

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
        self._rolls: dict[int, Roll] = {}
        """The thread's own: each drop with jobs not finished, in the order of its laps."""
        self._stopping = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ws-fanout", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)

    def write(
        self,
        drop_id: int,
        frames: Sequence[WireFrame],
        subscribers: Sequence[Subscriber],
        stock: int = 0,
    ) -> asyncio.Future[list[Subscriber]]:
        """Queue one flush of a drop (its frames, at least one, in seq order); the future gives
        the subscribers the thread could not write to (their outboxes must carry these frames),
        once the thread is done with all of them and with every earlier job of the drop."""
        done: asyncio.Future[list[Subscriber]] = self._loop.create_future()
        self._jobs.put(Job(drop_id, frames, stock, subscribers, done))
        return done

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        _lower_priority(self.path.nice)
        while not self._stopping:
            job = self._jobs.get()
            try:
                self._take(job)
                self._roll()
            except Exception:  # a bug must not end the thread: what it holds goes by outboxes
                log.exception("fan-out thread failed between laps")
                self._give_back(job)

    def _roll(self) -> None:
        while self._rolls:
            self._take_waiting()
            drop_id, roll = next(iter(self._rolls.items()))
            self._lap(roll)  # jobs of this drop taken meanwhile joined its chain
            del self._rolls[drop_id]
            if roll.chain:  # some came mid-lap: another lap, after the other drops'
                self._rolls[drop_id] = roll

    def _give_back(self, taken: Job | None) -> None:
        """After a failure outside a lap (no subscriber's lock is held then): every job the
        thread holds, and `taken` if it never joined a chain, is owed to each subscriber it has
        not reached, job by job in order, then finished, as a failed lap does for its rest."""
        rolls, self._rolls = list(self._rolls.values()), {}
        chains = [roll.chain for roll in rolls]
        if taken is not None and not any(taken in chain for chain in chains):
            chains.append([taken])
        for chain in chains:
            for job in chain:
                for subscriber in job.subscribers:
                    if subscriber.dealt < job.serial:
                        subscriber.divert()
                        job.diverted.append(subscriber)
                for subscriber in job.subscribers:
                    subscriber.dealt = max(subscriber.dealt, job.serial)
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                    self._loop.call_soon_threadsafe(_resolve, job)

    def _take(self, job: Job | None) -> None:
        if job is None:
            self._stopping = True  # the jobs before it are still done
            return
        roll = self._rolls.get(job.drop_id)
        if roll is None:
            self._rolls[job.drop_id] = Roll([job])
        else:
            roll.add(job)

    def _take_waiting(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._take(self._jobs.get_nowait())

    def _lap(self, roll: Roll) -> None:
        """Visit each subscriber of the chain's newest job that has not had it, sending each
        what it has not had; then finish the jobs the lap began with, in order."""
        begun = len(roll.chain)
        newest = roll.chain[-1]
        ring = [s for s in newest.subscribers if s.dealt < newest.serial]
        size, every, in_flight = self.path.batch, self._yield_every, self._in_flight
        start = 0
        try:
            for n, start in enumerate(range(0, len(ring), size)):
                if in_flight is not None and in_flight[0] and n % every == 0:
                    self.path.wait_while(in_flight, YIELD_SECONDS)
                if not self._jobs.empty():
                    self._take_waiting()  # a job of this drop joins the lap from here on
                self._send_batch(roll, ring[start : start + size])
        except Exception:  # a bug must not stop the thread: the rest go by their outboxes
            log.exception("fan-out thread failed")
            for subscriber in ring[start:]:  # the failed batch's own are dealt with already
                if subscriber.dealt < roll.chain[-1].serial:
                    part = roll.part_from(roll.start_of(subscriber.dealt))
                    subscriber.divert(len(part.jobs))
                    part.owe(subscriber)
                    subscriber.dealt = roll.chain[-1].serial
        for job in roll.finish(begun):
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                self._loop.call_soon_threadsafe(_resolve, job)

    def _send_batch(self, roll: Roll, batch: Sequence[Subscriber]) -> None:
        """Group the batch by what each subscriber has not had, and send each group its part.
        Each is marked dealt with before its send: from there on, whatever happens, its part is
        either written or owed to its outbox (`_send_part`)."""
        groups: dict[int, list[Subscriber]] = {}
        serials = roll.serials
        for subscriber in batch:  # (`Roll.start_of`, inline: this runs once a socket)
            groups.setdefault(bisect_right(serials, subscriber.dealt), []).append(subscriber)
        last = roll.chain[-1].serial
        for start, members in groups.items():
            part = roll.part_from(start)
            for subscriber in members:
                subscriber.dealt = last
            self._send_part(part, members)

    def _send_part(self, part: Part, batch: Sequence[Subscriber]) -> None:
        """Claim the batch's writable subscribers (their locks stay held), send to all of them
        in one call, then finish each. On a failure, every subscriber of the batch that was
        neither written nor owed yet is owed, and every lock still held is released."""
        held: dict[int, Subscriber] = {}
        jobs = len(part.jobs)
        decided = 0
        try:
            for subscriber in batch:
                decided += 1
                claimed = False
                try:
                    claimed = subscriber.claim(part.first, jobs)
                finally:  # not claimed (even by a failure): `claim` has owed its frames
                    if claimed:
                        held[len(held)] = subscriber
                    else:
                        part.owe(subscriber)
            if held:
                self._send_held(part, held)
        except BaseException:
            for subscriber in held.values():
                subscriber.abandon(jobs)
                part.owe(subscriber)
            for subscriber in batch[decided:]:
                subscriber.divert(jobs)
                part.owe(subscriber)
            raise

    def _send_held(self, part: Part, held: dict[int, Subscriber]) -> None:
        """One send call for the claimed subscribers, then `finish` for each (removing it from
        `held`, so that a failure leaves only the ones not finished to abandon)."""
        claimed = list(held.values())
        fds = array("i", [s.fd for s in claimed])
        inodes = array("Q", [s.inode for s in claimed])
        results = array("q", bytes(8 * len(claimed)))
        self.path.send_each(part.wire, fds, inodes, results)
        jobs = len(part.jobs)
        for i in range(len(claimed)):
            subscriber = held.pop(i)
            written = False
            try:
                written = subscriber.finish(part.last, part.wire, results[i], jobs)
            finally:
                if not written:
                    part.owe(subscriber)


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
