"""A fleet of lean WebSocket watchers, run in a child process of its own.

Each watcher is a bare asyncio protocol: it does the upgrade handshake, then splits server frames
(unmasked, unfragmented: what aiohttp sends) and stamps each chunk of bytes with one
`time.monotonic()` read (CLOCK_MONOTONIC is system-wide on Linux, so the parent process can
compare its own stamps with them). Pings get pongs. JSON is parsed only after the run, and a
chunk that is exactly one small text frame (nearly every stockUpdate) is stored after three
byte checks, so a watcher costs a few microseconds a frame, most of it the kernel's receive.

The parent drives the child over a multiprocessing pipe: `connect`, then `collect`.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import orjson

from loadtest.servers import HOST

Observation = tuple[float, str, int, int | None]
"""(receive time, type, seq, stock: newStock of a stockUpdate, drop.stock of a snapshot)."""


class Watcher(asyncio.Protocol):
    def __init__(self, request: bytes, opened: asyncio.Future[bool]) -> None:
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.frames: list[tuple[float, bytes]] = []
        self.close_code: int | None = None
        self.lost = False
        self.live = False
        """True once the first text frame (the snapshot) is in: from then on the fast path."""
        self.first: asyncio.Future[None] = opened.get_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
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
            self.frames.append((now, data[2:]))
            return
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf[:12] == b"HTTP/1.1 101"
            del buf[: end + 4]
            self.upgraded = ok
            if not self.opened.done():
                self.opened.set_result(ok)
            if not ok:
                assert self.transport is not None
                self.transport.close()
                return
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                offset = 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x1:
                self.frames.append((now, payload))
                if not self.live:
                    self.live = True
                    self.first.set_result(None)
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.send(0x8, payload[:2])
                assert self.transport is not None
                self.transport.close()

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def observations(self) -> list[Observation]:
        out: list[Observation] = []
        for t, payload in self.frames:
            msg = orjson.loads(payload)
            kind = msg.get("type", "?")
            stock: int | None = None
            if kind == "stockUpdate":
                stock = msg["newStock"]
            elif kind == "snapshot":
                stock = msg["drop"]["stock"]
            out.append((t, kind, int(msg.get("seq", -1)), stock))
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
    close_codes: list[int | None]
    lost: int


async def _connect_all(
    watchers: list[Watcher], port: int, path: str, count: int, parallel: int, wait: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    gate = asyncio.Semaphore(parallel)

    async def one() -> bool:
        async with gate:
            opened: asyncio.Future[bool] = loop.create_future()
            watcher = Watcher(upgrade_request(port, path), opened)
            try:
                await loop.create_connection(lambda: watcher, HOST, port)
                ok = await asyncio.wait_for(opened, wait)
            except (OSError, TimeoutError):
                ok = False
            if ok:
                watchers.append(watcher)
            return ok

    oks = await asyncio.gather(*(one() for _ in range(count)))
    # Every watcher must have its first snapshot before the parent goes on.
    pending = [w.first for w in watchers if not w.first.done()]
    if pending:
        await asyncio.wait(pending, timeout=wait)
    return {
        "connected": sum(oks),
        "failed": count - sum(oks),
        "seconds": time.monotonic() - started,
        "without_snapshot": sum(1 for w in watchers if not w.frames),
    }


async def _fleet(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    watchers: list[Watcher] = []
    while True:
        command: tuple[Any, ...] = await loop.run_in_executor(None, pipe.recv)
        if command[0] == "connect":
            pipe.send(await _connect_all(watchers, *command[1:]))
        elif command[0] == "collect":
            for w in watchers:
                if w.transport is not None:
                    w.transport.close()
            pipe.send(
                FleetResult(
                    [w.observations() for w in watchers],
                    [w.close_code for w in watchers],
                    sum(1 for w in watchers if w.lost and w.close_code is None),
                )
            )
            return
        else:
            pipe.send({"error": f"unknown command {command[0]!r}"})


def _child(pipe: Connection, nice: int) -> None:
    import uvloop

    if nice:
        os.nice(nice)
    uvloop.run(_fleet(pipe))


class Fleet:
    """The parent's handle on the child process."""

    def __init__(self, nice: int = 0) -> None:
        """`nice`: the child's niceness, so that on a box shared with the server the fleet's
        receives can be made to wait for the server's work instead of competing with it."""
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child_end, nice), daemon=True)
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
