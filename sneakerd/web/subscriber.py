"""One WebSocket watcher's place in the hub, and how bytes reach its socket.

Split from the hub because two threads touch it: the loop (the hub's in-loop flush, the
subscriber's writer and reader) and the fan-out thread (`web/send_thread.py`), and the rules
that keep them from ever writing to one socket at once, or out of order, belong in one place.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import threading
from collections import deque
from collections.abc import Sequence

Frame = tuple[int, bytes]
"""(seq, the encoded JSON text frame)."""

DIRECT_WRITE_LIMIT = 64 * 1024
"""Bytes a socket may have waiting in user space and still be written to directly."""

next_serial = itertools.count(1).__next__
"""Serials for subscribers and the fan-out thread's jobs, from one counter and in the loop, so
that a job's serial tells which subscribers it was built after (`web/send_thread.py`)."""


class Subscriber:
    """One WebSocket's place in the hub: a bounded outbox and what its writer must do next.

    A subscriber that keeps up is written to directly, with bytes framed once for all of a
    drop's watchers (one write per watcher per flush, no task switch): from the flush in the
    loop, or from the fan-out thread for a drop with many watchers (`web/send_thread.py`). One that
    has a backlog, a resync pending, or a full socket goes through its outbox and its own writer
    task instead, which waits for the socket (and gives up on a stuck one).

    `lock` makes the thread's check-and-write one step against the loop's changes of the flags
    it reads (the thread holds it from `claim` to `finish`): the loop takes it to mark the
    writer busy (`hold`), to settle what the thread could not write (`settle`) and to retire the
    subscriber, so the thread never writes while the loop does, and every frame it skips is
    owed to the outbox (`owed`) before any later one is written directly.

    A socket that takes part of what the thread sends (its buffer filled mid-frame: a watcher
    that lags) keeps the rest in `rest`, and the loop hands it to the transport, which writes it
    as the socket drains, before anything else goes to that socket (`settle`, or `hold` if a
    loop write comes first). The thread never waits for a slow socket, so one lagging watcher
    delays nobody else's frames, and a watcher is not cut for lagging: it is cut, as any
    other, only when its socket takes nothing for `stuck_seconds` (`web/routes/live.py`).
    """

    __slots__ = (
        "busy",
        "closing",
        "dealt",
        "drop_id",
        "fd",
        "inode",
        "last_seq",
        "limit",
        "lock",
        "outbox",
        "owed",
        "rest",
        "rest_jobs",
        "rest_seq",
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
        self.fd = -1
        """The socket's descriptor for the fan-out thread; -1 when the thread may not write."""
        self.inode = 0
        """The socket's inode number: the C send path writes to `fd` only while it names this
        socket (the loop may close and reuse the number while a batch is on its way)."""
        self.busy = 0
        """Non-zero while the loop writes to the socket itself (the writer sending from the
        outbox, the reader answering a ping): a direct write then could reorder or interleave."""
        self.owed = 0
        """Frames the thread skipped and the loop has not yet put into the outbox."""
        self.rest: bytes | None = None
        """What the socket did not take of the thread's last send, for the loop to write first."""
        self.rest_jobs = 0
        """Jobs (of those owed) whose frames went in that send: their frames are not queued."""
        self.rest_seq = 0
        """The seq of the last frame of that send."""
        self.lock = threading.Lock()
        self.dealt = next_serial()
        """The fan-out thread's own: the serial of the last of its jobs it dealt with for this
        subscriber (written or owed); at first, a serial newer than every job built before."""

    def go_live(self, transport: asyncio.Transport | None) -> None:
        """The first snapshot is out: the hub may write to the socket directly from now on."""
        sock = transport.get_extra_info("socket") if transport is not None else None
        fd = sock.fileno() if sock is not None else -1
        inode = os.fstat(fd).st_ino if fd >= 0 else 0
        with self.lock:
            self.transport = transport
            self.fd, self.inode = fd, inode

    def retire(self) -> None:
        """No direct write from here on (the handler is leaving, or the socket closes). The
        rest of a frame the socket took in part goes first, so a close frame after it parses."""
        with self.lock:
            self._write_rest()
            self.transport = None
            self.fd = -1

    def hold(self) -> None:
        """The loop is about to write to the socket: wait out a write of the thread's, and
        write the rest of a frame the socket took in part first."""
        with self.lock:
            self.busy += 1
            self._write_rest()

    def _write_rest(self) -> None:
        """With `lock` held, in the loop: hand the rest of the thread's partial send to the
        transport (which buffers what the socket does not take). Under the lock, so that the
        thread, which may find nothing else owed once this is taken, cannot write between."""
        rest, self.rest = self.rest, None
        if rest is None or self.transport is None or self.transport.is_closing():
            return
        self.last_seq = max(self.last_seq, self.rest_seq)
        self.transport.write(rest)

    def release(self) -> None:
        with self.lock:
            self.busy -= 1

    def _writable(self, first_seq: int) -> asyncio.Transport | None:
        transport = self.transport
        if (
            transport is None
            or self.busy
            or self.owed
            or self.resync
            or self.outbox
            or self.closing is not None
            or first_seq <= self.last_seq
            or transport.is_closing()
        ):
            return None
        return transport

    def write_direct(self, first_seq: int, last_seq: int, wire: bytes) -> bool:
        """Write already-framed bytes straight to the socket if nothing could reorder them
        (in the loop)."""
        with self.lock:
            transport = self._writable(first_seq)
            if transport is None or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT:
                return False
            transport.write(wire)
            self.last_seq = last_seq
            return True

    def claim(self, first_seq: int, jobs: int = 1) -> bool:
        """The fan-out thread's first step for one job: True if it may write the job's frames
        (whole frames only, and only with nothing buffered in the transport, whose own writes
        run in the loop); the caller then holds `lock` until `finish` or `abandon`, so the
        loop's `hold` waits out the send. False: the frames are owed to the outbox (those of
        `jobs` jobs), and `settle` puts them there, in the loop, before anything newer is
        written."""
        self.lock.acquire()
        writable = False
        try:
            transport = self._writable(first_seq)
            writable = (
                transport is not None and self.fd >= 0 and transport.get_write_buffer_size() == 0
            )
        finally:
            if not writable:
                self.owed += jobs
                self.lock.release()
        return writable

    def finish(self, last_seq: int, wire: bytes, sent: int, jobs: int = 1) -> bool:
        """After `claim`: what the send did (bytes taken, or -errno); releases `lock`. False:
        the jobs are owed, and if the socket took part of `wire`, the rest waits in `rest` for
        the loop (their frames are then not queued again: `settle`)."""
        written = False
        try:
            written = sent == len(wire)
            if written:
                self.last_seq = last_seq
            elif sent > 0:  # the socket filled mid-send: the loop writes the rest, first
                self.rest, self.rest_jobs, self.rest_seq = wire[sent:], jobs, last_seq
            elif sent < 0 and sent != -errno.EAGAIN:  # the peer went away: the reader sees it
                self.fd = -1
            return written
        finally:
            if not written:
                self.owed += jobs
            self.lock.release()

    def abandon(self, jobs: int = 1) -> None:
        """After `claim`, when the thread failed before `finish`: the frames are owed."""
        self.owed += jobs
        self.lock.release()

    def divert(self, jobs: int = 1) -> None:
        """The thread gives up on this subscriber for `jobs` jobs (their frames are owed)."""
        with self.lock:
            self.owed += jobs

    def settle(self, frames: Sequence[Frame]) -> None:
        """In the loop: put one job's frames the thread skipped into the outbox (called for
        each such job, in job order); for a job whose frames went in part, the rest goes to
        the transport instead (once for all the jobs of that send)."""
        with self.lock:
            self.owed -= 1
            sent_in_part = self.rest_jobs > 0
            if sent_in_part:
                self.rest_jobs -= 1
            self._write_rest()
        if not sent_in_part:
            self.offer(frames)

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
