"""A lean HTTP/1.1 keep-alive client (asyncio protocol, prebuilt request bytes) for the load, and
aiohttp for the few control calls. The load client must cost far less than the server it measures:
on a 2-core box they share the CPU, so aiohttp's client (~100+ us a request) would cap the figures.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import orjson

from loadtest import record, stamps
from loadtest.servers import HOST
from loadtest.stats import Outcomes

HEAD_END = b"\r\n\r\n"
READ_SIZE = 1 << 16


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; Content-Length responses only."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        answer = take_answer(self.buffer)
        if answer is None:
            return
        if isinstance(answer, Exception):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def take_answer(buf: bytearray) -> tuple[int, bytes] | Exception | None:
    """The first whole answer in `buf` (status, body), taken out of it; None while it is not all
    there; an exception for an answer this client cannot read."""
    end = buf.find(HEAD_END)
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return ValueError("response without Content-Length")
    stop = head.find(b"\r\n", at + 17)
    length = int(head[at + 17 : stop if stop > 0 else len(head)])
    total = end + 4 + length
    if len(buf) < total:
        return None
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return int(head[9:12]), body


class StampedConnection:
    """One keep-alive connection like `HttpConnection`, read with `recvmsg` so that each answer
    carries the kernel's receive timestamp of its last segment (`SO_TIMESTAMPNS`).

    On two shared cores, the client that times a request is itself a process waiting for a CPU:
    when the answer is in its socket, it may run only a few milliseconds later, and that wait is
    the load generator's, not the server's. `request` returns when the client read the answer
    (as `HttpConnection` does); `arrived` is when the answer reached the socket, what a client on
    a machine of its own would have seen. The kernel stamps a read with its last segment, so a
    stamp errs towards later, never earlier."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self.arrived = 0.0
        """Monotonic time the last answer reached the socket (the kernel's stamp)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(READ_SIZE, stamps.ANCILLARY)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(exc)
                return
            if not data:
                self._lost(None)
                return
            stamp = stamps.arrival(ancillary, time.monotonic(), stamps.offset_now())
            self.buffer += data
            waiter = self.waiter
            if waiter is None or waiter.done():
                continue  # kept for the request it answers, as `HttpConnection` does
            answer = take_answer(self.buffer)
            if answer is not None:
                self.arrived = stamp
                if isinstance(answer, Exception):
                    waiter.set_exception(answer)
                else:
                    waiter.set_result(answer)

    def _lost(self, exc: Exception | None) -> None:
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.closed:
            raise ConnectionError("connection closed")
        self.waiter = self._loop.create_future()
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            await self._loop.sock_sendall(self.sock, data[sent:])
        return await self.waiter

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


Connection = HttpConnection | StampedConnection


async def connect(port: int, *, stamped: bool = False) -> Connection:
    """A keep-alive connection to the server; `stamped` reads its answers with the kernel's
    receive timestamps (`StampedConnection`)."""
    loop = asyncio.get_running_loop()
    if not stamped:
        _, protocol = await loop.create_connection(HttpConnection, HOST, port)
        return protocol
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stamps.enable(sock)
    try:
        await loop.sock_connect(sock, (HOST, port))
    except OSError:
        sock.close()
        raise
    return StampedConnection(sock)


def post_json(port: int, path: str, body: dict[str, Any], token: str | None) -> bytes:
    payload = orjson.dumps(body)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def outcome_of(status: int, body: bytes) -> str:
    if status < 400:
        return str(status)
    try:
        code = orjson.loads(body)["error"]["code"]
    except Exception:
        code = "?"
    return f"{status} {code}"


@dataclass
class Result:
    index: int
    sent: float
    done: float
    status: int
    body: bytes
    arrived: float = 0.0
    """When the answer reached the client's socket, the kernel's stamp, on a stamped connection
    (`StampedConnection`); 0 on another (`latency` then runs to `done`)."""

    @property
    def latency(self) -> float:
        """From the send to the answer's arrival at the socket (see `arrived`)."""
        return (self.arrived or self.done) - self.sent


async def open_connections(
    port: int, n: int, *, settle: float = 0.3, stamped: bool = False
) -> list[Connection]:
    """Open `n` keep-alive connections, then wait `settle` seconds so that the server has
    accepted them all before any load starts.

    A connect returns once the kernel has completed the handshake, before the server's loop has
    accepted the socket: without the wait, a run's first ~70 ms measure 64 accepts queued on the
    server's loop rather than the load (multidrop saw 10-15 ms for every request there). Shoppers
    of a real drop sit on its page with their connections open before it opens."""
    conns = [await connect(port, stamped=stamped) for _ in range(n)]
    await asyncio.sleep(settle)
    return conns


async def run_load(
    port: int,
    requests: list[bytes],
    concurrency: int,
    *,
    rate: float = 0.0,
    duration: float = 0.0,
    on_result: Callable[[Result], None] | None = None,
    connections: list[Connection] | None = None,
) -> tuple[list[Result], float]:
    """Send `requests` over `concurrency` keep-alive connections, each request once, in order.

    rate > 0 paces request i to start at t0 + i/rate (open loop, as far as the connections allow);
    duration > 0 stops starting new requests after that many seconds. Returns the results and
    the elapsed time from the first send to the last answer. Connection errors are results with
    status 0 (the connection is reopened). `connections` (from `open_connections`) are used
    instead of opening `concurrency` new ones, and are closed at the end all the same.
    """
    conns = (
        connections
        if connections is not None
        else [await connect(port) for _ in range(concurrency)]
    )
    concurrency = len(conns)
    results: list[Result] = []
    next_index = 0
    t0 = time.monotonic()
    stop_at = t0 + duration if duration > 0 else float("inf")

    async def worker(slot: int) -> None:
        nonlocal next_index
        conn = conns[slot]
        while next_index < len(requests):
            i = next_index
            next_index += 1
            if rate > 0:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.monotonic()
            if sent >= stop_at:
                return
            try:
                status, body = await conn.request(requests[i])
            except (ConnectionError, ValueError) as exc:
                status, body = 0, str(exc).encode()
                conn.close()
                conn = conns[slot] = await connect(
                    port, stamped=isinstance(conn, StampedConnection)
                )
            done = time.monotonic()
            arrived = conn.arrived if status and isinstance(conn, StampedConnection) else 0.0
            result = Result(i, sent, done, status, body, arrived)
            results.append(result)
            if on_result is not None:
                on_result(result)

    try:
        await asyncio.gather(*(worker(s) for s in range(concurrency)))
    finally:
        for conn in conns:
            conn.close()
    record_results(results)
    elapsed = max((r.done for r in results), default=t0) - t0
    return results, elapsed


def record_results(results: list[Result]) -> None:
    """Every result into the run's per-second samples, once the load is over (not in its
    loop, which must cost as little as it can)."""
    recorder = record.current()
    labels: dict[tuple[int, bytes], str] = {}
    for r in results:
        if r.status < 400:
            label = "error" if r.status == 0 else str(r.status)
        else:
            # Error bodies repeat (one per code): decode each distinct one once.
            key = (r.status, r.body)
            label = labels.get(key) or labels.setdefault(key, outcome_of(r.status, r.body))
        recorder.request(label, r.latency, r.done)


def outcomes_of(results: list[Result], *, as_read: bool = False) -> Outcomes:
    """The results by outcome, each timed to its answer's arrival (`Result.latency`), or to when
    the client read it (`as_read`: adds the client's own lag on a stamped connection)."""
    book = Outcomes()
    for r in results:
        latency = r.done - r.sent if as_read else r.latency
        book.add("error" if r.status == 0 else outcome_of(r.status, r.body), latency)
    return book


HOLDS_PER_USER = 1_000_000
"""Load tests measure the hot path, not the fairness rule: a scenario's users may cancel and
reserve again as often as it makes them (a real drop keeps the default of 3)."""


# -- control calls -------------------------------------------------------------------------------


async def create_drop(
    base_url: str,
    admin_token: str,
    *,
    stock: int,
    per_user_limit: int = 1,
    name: str = "load",
    holds_per_user: int = HOLDS_PER_USER,
) -> dict[str, Any]:
    body = {
        "name": name,
        "price": "199.99",
        "initialStock": stock,
        "perUserLimit": per_user_limit,
        "holdsPerUser": holds_per_user,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            base_url + "/api/drops",
            json=body,
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as response,
    ):
        data = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST /api/drops answered {response.status}: {data}")
        drop: dict[str, Any] = data["drop"]
        return drop


async def get_drop(base_url: str, drop_id: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/api/drops/{drop_id}") as response,
    ):
        data = await response.json()
        if response.status != 200:
            raise RuntimeError(f"GET /api/drops/{drop_id} answered {response.status}: {data}")
        drop: dict[str, Any] = data["drop"]
        return drop
