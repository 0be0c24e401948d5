"""A fleet of lean WebSocket watchers, run in a child process of its own.

Each watcher is a bare non-blocking socket on one `select.epoll`: it does the upgrade handshake,
then splits server frames (unmasked, unfragmented: what aiohttp sends). Pings get pongs. JSON is
parsed only after the run, and a chunk that is exactly one small text frame (nearly every
stockUpdate) is stored after three byte checks, so a watcher costs a few microseconds a frame,
most of it the kernel's receive.

Every chunk carries two times, both on CLOCK_MONOTONIC (system-wide on Linux, so the parent can
compare its own stamps with them):

- **arrival**: when the bytes reached the watcher's socket, from the kernel's receive timestamp
  (`SO_TIMESTAMPNS`, CLOCK_REALTIME, moved onto the monotonic clock with an offset read at the
  same wakeup). This is what a watcher on a machine of its own would see, so it is the figure
  that judges the server.
- **read**: when this process got round to reading them. On a machine where the fleet shares
  the server's cores, read minus arrival is the fleet's own lag, which belongs to the load
  generator, not to the server; it is reported beside the arrival figure, not mixed into it.

For TCP the kernel stamps a read with its last segment, so a frame that waited in the socket
behind a later one is stamped late: the arrival figure errs towards slower, never faster. The
result counts the frames that shared a read with a later frame (`shared_stamps`).

**The fleet reads in rounds** (`read_gap`, 10 ms by default): once it has read what one wait
brought, it sleeps out the rest of the gap before it waits again. Woken for every frame instead
(as a loop reading each socket as soon as it is readable is), a process on the same two cores
as the server is woken by each of the fan-out thread's sends; the kernel puts the woken reader
on the sender's core, where it preempts the low-priority sender, and each send pays for a
wake-up. Watchers on machines of their own cost the server none of that. Reading in rounds
takes the fleet off the sender's back; the arrival stamps keep its figure exact (a frame's
stamp is when it reached the socket, however long the fleet slept), and `shared_stamps` shows
what the rounds cost in precision.

The parent drives the child over a multiprocessing pipe: `connect` (any number of times), then
`collect`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import multiprocessing
import os
import select
import socket
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from loadtest import stamps
from loadtest.servers import HOST

Observation = tuple[float, str, int, int | None]
"""(arrival time, type, seq, stock: newStock of a stockUpdate, drop.stock of a snapshot)."""

READ_SIZE = 1 << 14
"""Small enough that each read allocates from the heap, not from a fresh mapping (a 256 KiB
buffer made every read an mmap and a munmap); a bigger arrival is read again by the next poll."""
READ_GAP = 0.010
"""Seconds from one round of reads to the next, at least (the module's docstring says why)."""


class Watcher:
    """One subscriber's socket and everything it received, with both times of each chunk."""

    __slots__ = (
        "answered",
        "buffer",
        "close_code",
        "closed",
        "frames",
        "live",
        "lost",
        "opened_at",
        "request",
        "shared",
        "sock",
        "upgraded",
    )

    def __init__(self, sock: socket.socket, request: bytes, opened_at: float) -> None:
        self.sock = sock
        self.request = request
        self.buffer = bytearray()
        self.upgraded = False
        self.answered = False
        """True once the upgrade was answered (either way) or the attempt failed."""
        self.frames: list[tuple[float, float, bytes]] = []
        """(arrival, read, payload) of each text frame."""
        self.close_code: int | None = None
        self.lost = False
        self.live = False
        """True once the first text frame (the snapshot) is in: from then on the fast path."""
        self.closed = False
        self.opened_at = opened_at
        self.shared = 0
        """Text frames that came in one read with a later one (stamped with its arrival)."""

    def feed(self, data: bytes, arrival: float, read: float) -> bool:
        """Takes one chunk; False when the watcher is done (refused, or closed by the server)."""
        buf = self.buffer
        # The fast path, nearly every chunk of a run: one whole small text frame (a coalesced
        # stockUpdate) at a frame boundary. Kept to a few checks and one append, because 10,000
        # watchers on the server's two cores must cost the client little per frame.
        if (
            self.live
            and not buf
            and len(data) > 2
            and data[0] == 0x81
            and data[1] < 126
            and len(data) == data[1] + 2
        ):
            self.frames.append((arrival, read, data[2:]))
            return True
        buf += data
        before = len(self.frames)
        try:
            return self._split(arrival, read)
        finally:
            if len(self.frames) - before > 1:
                self.shared += len(self.frames) - before - 1

    def _split(self, arrival: float, read: float) -> bool:
        buf = self.buffer
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return True
            ok = buf[:12] == b"HTTP/1.1 101"
            del buf[: end + 4]
            self.upgraded = ok
            self.answered = True
            if not ok:
                return False
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return True
                length = int.from_bytes(buf[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return True
                length = int.from_bytes(buf[2:10], "big")
                offset = 10
            if len(buf) < offset + length:
                return True
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x1:
                self.frames.append((arrival, read, payload))
                self.live = True
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.send(0x8, payload[:2])
                return False
        return True

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        # A pong or a close reply the socket cannot take is dropped: the server times us out.
        with contextlib.suppress(OSError):
            self.sock.send(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def observations(self, by_read: bool = False) -> list[Observation]:
        out: list[Observation] = []
        for arrival, read, payload in self.frames:
            msg = orjson.loads(payload)
            kind = msg.get("type", "?")
            stock: int | None = None
            if kind == "stockUpdate":
                stock = msg["newStock"]
            elif kind == "snapshot":
                stock = msg["drop"]["stock"]
            out.append((read if by_read else arrival, kind, int(msg.get("seq", -1)), stock))
        return out


def upgrade_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@dataclass
class FleetResult:
    observations: list[list[Observation]]
    """Each watcher's frames, timed by their arrival at its socket."""
    close_codes: list[int | None]
    lost: int
    read_observations: list[list[Observation]] | None = None
    """The same frames timed by when the fleet read them (its own lag included)."""
    shared_stamps: int = 0
    """Frames that came in one read with a later frame: stamped with its (later) arrival."""

    def as_read(self) -> FleetResult:
        """This result with every frame timed by its read instead of its arrival."""
        assert self.read_observations is not None
        return FleetResult(self.read_observations, self.close_codes, self.lost)


class _Child:
    """The fleet's process: one epoll over the pipe and every watcher's socket."""

    def __init__(self, pipe: Connection, read_gap: float) -> None:
        self.pipe = pipe
        self.read_gap = read_gap
        self.epoll = select.epoll()
        self.epoll.register(pipe.fileno(), select.EPOLLIN)
        self.by_fd: dict[int, Watcher] = {}
        self.watchers: list[Watcher] = []
        """Every watcher whose upgrade succeeded, in the order they connected."""
        self.command_waiting = False

    def pump(self, timeout: float) -> None:
        """One wait for events and everything they bring."""
        events = self.epoll.poll(timeout)
        read = time.monotonic()
        offset = time.time() - read
        for fd, mask in events:
            watcher = self.by_fd.get(fd)
            if watcher is None:
                self.command_waiting = True
                continue
            if not watcher.request:
                self._receive(watcher, read, offset)
            elif mask & (select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP):
                self._connected(watcher)

    def _connected(self, watcher: Watcher) -> None:
        err = watcher.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            watcher.answered = True
            self._drop(watcher, lost=False)
            return
        try:
            watcher.sock.send(watcher.request)
        except OSError:
            watcher.answered = True
            self._drop(watcher, lost=False)
            return
        watcher.request = b""
        self.epoll.modify(watcher.sock.fileno(), select.EPOLLIN)

    def _receive(self, watcher: Watcher, read: float, offset: float) -> None:
        try:
            data, ancillary, _flags, _addr = watcher.sock.recvmsg(READ_SIZE, stamps.ANCILLARY)
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        if not data:
            watcher.answered = True
            self._drop(watcher, lost=True)
            return
        arrival = stamps.arrival(ancillary, read, offset)
        was_upgraded = watcher.upgraded
        if not watcher.feed(data, arrival, read):
            self._drop(watcher, lost=False)
        elif watcher.upgraded and not was_upgraded:
            self.watchers.append(watcher)

    def _drop(self, watcher: Watcher, lost: bool) -> None:
        if watcher.closed:
            return
        watcher.closed = True
        watcher.lost = lost and watcher.upgraded
        fd = watcher.sock.fileno()
        self.by_fd.pop(fd, None)
        with contextlib.suppress(OSError):
            self.epoll.unregister(fd)
        watcher.sock.close()

    def _open(self, port: int, path: str) -> Watcher:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stamps.enable(sock)
        watcher = Watcher(sock, upgrade_request(port, path), time.monotonic())
        self.by_fd[sock.fileno()] = watcher
        err = sock.connect_ex((HOST, port))
        if err not in (0, errno.EINPROGRESS):
            watcher.answered = True
            self._drop(watcher, lost=False)
            return watcher
        self.epoll.register(sock.fileno(), select.EPOLLOUT)
        return watcher

    def connect(
        self, port: int, path: str, count: int, parallel: int, wait: float
    ) -> dict[str, Any]:
        """Opens `count` watchers, `parallel` handshakes at a time, each allowed `wait` seconds;
        then waits (up to `wait`) for every one that upgraded to have its first frame."""
        started = time.monotonic()
        first = len(self.watchers)
        opening: list[Watcher] = []
        ok = failed = 0
        todo = count
        while todo or opening:
            while todo and len(opening) < parallel:
                opening.append(self._open(port, path))
                todo -= 1
            self.pump(0.05)
            now = time.monotonic()
            still: list[Watcher] = []
            for w in opening:
                if w.answered or w.closed:
                    if w.upgraded and not w.closed:
                        ok += 1
                    else:
                        failed += 1
                elif now - w.opened_at > wait:
                    self._drop(w, lost=False)
                    failed += 1
                else:
                    still.append(w)
            opening = still
        mine = self.watchers[first:]
        deadline = time.monotonic() + wait
        while any(not w.frames and not w.closed for w in mine) and time.monotonic() < deadline:
            self.pump(0.05)
        return {
            "connected": ok,
            "failed": failed,
            "seconds": time.monotonic() - started,
            "without_snapshot": sum(1 for w in mine if not w.frames),
        }

    def result(self) -> FleetResult:
        for w in list(self.by_fd.values()):
            self._drop(w, lost=False)
        return FleetResult(
            [w.observations() for w in self.watchers],
            [w.close_code for w in self.watchers],
            sum(1 for w in self.watchers if w.lost and w.close_code is None),
            [w.observations(by_read=True) for w in self.watchers],
            sum(w.shared for w in self.watchers),
        )

    def serve(self) -> None:
        """Reads in rounds at least `read_gap` apart (the module's docstring says why) and
        answers the parent's commands; `connect` reads as fast as it can."""
        while True:
            if not self.command_waiting:
                began = time.monotonic()
                self.pump(1.0)
                rest = began + self.read_gap - time.monotonic()
                if rest > 0 and not self.command_waiting:
                    time.sleep(rest)
                continue
            self.command_waiting = False
            if not self.pipe.poll():
                continue
            command: tuple[Any, ...] = self.pipe.recv()
            if command[0] == "connect":
                self.pipe.send(self.connect(*command[1:]))
            elif command[0] == "collect":
                self.pipe.send(self.result())
                return
            else:
                self.pipe.send({"error": f"unknown command {command[0]!r}"})


def _child(pipe: Connection, nice: int, read_gap: float) -> None:
    if nice:
        os.nice(nice)
    _Child(pipe, read_gap).serve()


class Fleet:
    """The parent's handle on the child process."""

    def __init__(self, nice: int = 0, read_gap: float = READ_GAP) -> None:
        """`nice`: the child's niceness, so that on a box shared with the server the fleet's
        receives can be made to wait for the server's work instead of competing with it (its
        arrival times come from the kernel, so its own lag does not enter them). `read_gap`:
        the shortest time between two of its rounds of reads (0: read as soon as readable)."""
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child_end, nice, read_gap), daemon=True)
        self._proc.start()
        self._collected = False

    @property
    def pid(self) -> int:
        pid = self._proc.pid
        assert pid is not None
        return pid

    async def _ask(self, command: tuple[Any, ...], wait: float) -> Any:
        self._pipe.send(command)
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._pipe.poll, wait)
        if not ready:
            raise TimeoutError(f"watcher fleet did not answer {command[0]!r} in {wait} s")
        return self._pipe.recv()

    async def connect(
        self, port: int, path: str, count: int, parallel: int = 200, wait: float = 60.0
    ) -> dict[str, Any]:
        answer: dict[str, Any] = await self._ask(
            ("connect", port, path, count, parallel, wait), wait * 2 + 10
        )
        return answer

    async def collect(self, wait: float = 120.0) -> FleetResult:
        result: FleetResult = await self._ask(("collect",), wait)
        self._collected = True
        return result

    def stop(self) -> None:
        if not self._collected:  # interrupted: it is waiting for a command that will not come
            self._proc.terminate()
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
