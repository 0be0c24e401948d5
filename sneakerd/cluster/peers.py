"""Forwarding a drop's writes to the node that owns it, over one WebSocket per peer.

Any node accepts any request, but only the owner's actor may decide a write. The node where a
write arrives sends the command to the owner and waits for the reply the owner's actor gave.
A forward must cost the owner far less than a client's request, so:

- one persistent WebSocket per peer (no handshake, no JWT, no HTTP parsing per command), opened
  on first use and reopened, with backoff, when it is lost;
- every ask made in one loop turn leaves in ONE text frame (a list of requests, packed by the
  link's writer as the first ask of the turn wakes it), and the owner answers in frames
  batched the same way as its actors answer, so a burst of a thousand reserves is a handful of
  frames, not a thousand;
- the owner runs every request of a frame concurrently: they are for one or many drops'
  actors, which batch them into one commit each anyway (a drop whose actor runs there gets
  its commands straight in its mailbox: `peer_server`).

Authentication happens before the upgrade. The connecting node sends
`Sneakerd-Peer: <node_id>.<unix_ms>.<hex HMAC-SHA256(key, "<node_id>.<unix_ms>")>` with
`key = HMAC-SHA256(JWT_SECRET, "sneakerd-peer")` (the shared secret is never used directly, so
a peer MAC can never pass for a token signature nor the reverse); a bad MAC, or a time more than
30 s from the owner's clock, is a 403 envelope and no WebSocket.

Frames, both ways JSON lists: requests `[{"i": n, "d": drop_id, "c": <command>}, ...]`, replies
`[{"i": n, "r": <reply>} | {"i": n, "e": <error>}, ...]` (values as `wire` writes them). A reply
that cannot come (a timeout, a lost connection) is `errors.Unavailable` on the caller, and says
whether the owner may have acted: a request that had left this node may have committed, and
only a retry with the same Idempotency-Key tells.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import aiohttp
import orjson
from aiohttp import WSMsgType

from sneakerd import errors
from sneakerd.clock import Clock, SystemClock
from sneakerd.cluster import wire
from sneakerd.cluster.peer_auth import (
    HEARTBEAT_S,
    MAX_FRAME_BYTES,
    PEER_HEADER,
    PEER_PATH,
    peer_key,
    sign,
)
from sneakerd.cluster.peer_server import PeerServer as PeerServer
from sneakerd.cluster.peer_server import ServerStats as ServerStats
from sneakerd.cluster.peer_server import add_routes as add_routes
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command

log = logging.getLogger(__name__)


# -- the forwarding side ---------------------------------------------------------------------

Outcome = Literal["reply", "error", "unavailable"]
"""How a forward ended: the owner's reply, an error the owner raised, or no answer at all."""


class PeerObserver(Protocol):
    """Told about every forward as it ends (metrics: a counter and a latency histogram)."""

    def forwarded(self, url: str, seconds: float, outcome: Outcome) -> None: ...


@dataclass(frozen=True, slots=True)
class PeerStats:
    """Counters since start: forwards by outcome, their latency, frames and connections."""

    forwards: int = 0
    replies: int = 0
    errors: int = 0
    unavailable: int = 0
    latency_total_s: float = 0.0
    latency_max_s: float = 0.0
    frames_out: int = 0
    frames_in: int = 0
    connects: int = 0
    connect_failures: int = 0
    connections: int = 0
    """Open now."""


_Result = tuple[Literal["reply"], Reply] | tuple[Literal["error", "lost"], Exception]
"""What a link resolves an ask's future with. A tagged value rather than a set exception, so
an error the owner raised is never mistaken for a lost connection (both may be Unavailable)."""


def _unknown(url: str, why: str) -> str:
    return (
        f"The owner at {url} {why}: the outcome is unknown (a retry with the same "
        "Idempotency-Key tells what happened)"
    )


def _not_sent(url: str, why: str) -> str:
    return f"The owner at {url} {why}; the request was not sent, so nothing was done"


class Peers:
    """Asks other nodes' actors: one connection per peer URL, one frame per loop turn."""

    def __init__(
        self,
        secret: str,
        node_id: str,
        *,
        clock: Clock | None = None,
        connect_timeout_s: float = 2.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        heartbeat_s: float | None = HEARTBEAT_S,
        observer: PeerObserver | None = None,
    ) -> None:
        self.node_id = node_id
        self._key = peer_key(secret)
        self._clock = clock or SystemClock()
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.heartbeat_s = heartbeat_s
        self._observer = observer
        self._links: dict[str, _Link] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._stats = PeerStats()

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close every connection; asks still waiting get Unavailable."""
        self._closed = True
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forget(self, url: str) -> None:
        """Close the connection to a peer that left the cluster (its asks get Unavailable);
        a later ask to `url` opens a new one."""
        link = self._links.pop(url, None)
        if link is not None:
            await link.close()

    def stats(self) -> PeerStats:
        open_now = sum(1 for link in self._links.values() if link.connected)
        return replace(self._stats, connections=open_now)

    def count(self, **add: int) -> None:
        s = self._stats
        self._stats = replace(s, **{k: getattr(s, k) + v for k, v in add.items()})

    def header(self) -> str:
        return sign(self._key, self.node_id, self._clock.now_ms())

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Peers.start() was not awaited")
        return self._session

    async def ask(self, url: str, drop_id: int, command: Command, timeout_s: float) -> Reply:
        """The reply of the owner at `url` to `command` for `drop_id`, or the error it raised.

        No answer within `timeout_s`, or a connection lost while waiting, is
        `errors.PeerUnreachable` if the request had not left this node and
        `errors.OutcomeUnknown` if it had; an `Unavailable` the owner answered is raised as
        it came (the owner was reached).
        """
        if self._closed:
            raise errors.Unavailable("This node is shutting down")
        session = self.session
        link = self._links.get(url)
        if link is None:
            link = self._links[url] = _Link(self, session, url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        i, future = link.submit(drop_id, command)
        outcome: Outcome = "unavailable"
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    result = await future
            except TimeoutError:
                sent = link.forget(i)
                why = f"did not answer within {timeout_s:g} s"
                if sent:
                    raise errors.OutcomeUnknown(_unknown(url, why)) from None
                raise errors.PeerUnreachable(_not_sent(url, why)) from None
            if result[0] == "reply":
                outcome = "reply"
                return result[1]
            outcome = "error" if result[0] == "error" else "unavailable"
            raise result[1]
        except asyncio.CancelledError:
            link.forget(i)
            raise
        finally:
            self._observe(url, loop.time() - started, outcome)

    def _observe(self, url: str, seconds: float, outcome: Outcome) -> None:
        s = self._stats
        self._stats = replace(
            s,
            forwards=s.forwards + 1,
            replies=s.replies + (outcome == "reply"),
            errors=s.errors + (outcome == "error"),
            unavailable=s.unavailable + (outcome == "unavailable"),
            latency_total_s=s.latency_total_s + seconds,
            latency_max_s=max(s.latency_max_s, seconds),
        )
        if self._observer is not None:
            self._observer.forwarded(url, seconds, outcome)


class _Link:
    """Everything about one peer URL: its asks, its connection and the task that keeps it.

    Asks wait in `_unsent` until a turn's flush puts them in one frame; then they wait in
    `_pending` alone for their reply. The connection opens when there is something to send,
    stays open, and when it is lost every ask that had left fails at once ("outcome unknown").
    A failed connect fails the asks waiting to leave ("not sent") and waits, doubling from
    `backoff_initial_s` up to `backoff_max_s`, before the next try.
    """

    def __init__(self, peers: Peers, session: aiohttp.ClientSession, url: str) -> None:
        self._peers = peers
        self._session = session
        self._url = url
        self._endpoint = url.rstrip("/") + PEER_PATH
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[_Result]] = {}
        self._unsent: dict[int, dict[str, wire.Json]] = {}
        self._frames: collections.deque[str] = collections.deque()
        self._frame_ready = asyncio.Event()
        self._wanted = asyncio.Event()
        self._flush_handle: asyncio.Handle | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task = asyncio.create_task(self._run(), name=f"peer link {url}")

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def submit(self, drop_id: int, command: Command) -> tuple[int, asyncio.Future[_Result]]:
        request = {"i": self._next_id, "d": drop_id, "c": wire.command_to_json(command)}
        i = self._next_id
        self._next_id += 1
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._pending[i] = future
        self._unsent[i] = request
        if self.connected:
            # The writer wakes next turn and packs every ask made until then into one frame:
            # one turn from the ask to the socket, not a flush's turn and then the writer's.
            self._frame_ready.set()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return i, future

    def forget(self, i: int) -> bool:
        """Drop an ask its caller gave up on; True if it had already been sent."""
        self._pending.pop(i, None)
        return self._unsent.pop(i, None) is None

    def _flush(self) -> None:
        """Everything asked in this turn, as one frame (or a wish to connect)."""
        self._flush_handle = None
        if not self._unsent:
            return
        if not self.connected:
            self._wanted.set()
            return
        self._pack()
        self._frame_ready.set()

    def _pack(self) -> None:
        """The asks waiting to leave, as one frame queued for the writer."""
        if self._unsent:
            frame = list(self._unsent.values())
            self._unsent.clear()
            self._frames.append(orjson.dumps(frame).decode())

    def _resolve(self, i: int, result: _Result) -> None:
        future = self._pending.pop(i, None)
        if future is not None and not future.done():
            future.set_result(result)

    def _fail_unsent(self, message: str) -> None:
        """Every ask still waiting to leave gets its own Unavailable (an exception instance
        raised in many tasks would collect all their tracebacks)."""
        for i in list(self._unsent):
            del self._unsent[i]
            self._resolve(i, ("lost", errors.PeerUnreachable(message)))

    def _fail_sent(self, message: str) -> None:
        for i in [i for i in self._pending if i not in self._unsent]:
            self._resolve(i, ("lost", errors.OutcomeUnknown(message)))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._fail_unsent(_not_sent(self._url, "was not asked: this node is shutting down"))
        self._fail_sent(_unknown(self._url, "was still deciding when this node shut down"))

    # -- the connection's life ---------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._peers.backoff_initial_s
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            if not self._unsent:
                continue
            try:
                ws = await self._connect()
                if ws is not None and await self._serve(ws):
                    backoff = self._peers.backoff_initial_s
                    continue
            except Exception:  # a bug here must not leave every later ask to time out
                log.exception("peer link %s failed", self._url)
                self._fail_unsent(_not_sent(self._url, "could not be asked (a bug here)"))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._peers.backoff_max_s)
            if self._unsent:
                self._wanted.set()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        try:
            async with asyncio.timeout(self._peers.connect_timeout_s):
                ws = await self._session.ws_connect(
                    self._endpoint,
                    headers={PEER_HEADER: self._peers.header()},
                    heartbeat=self._peers.heartbeat_s,
                    max_msg_size=MAX_FRAME_BYTES,
                )
        except aiohttp.WSServerHandshakeError as exc:
            why = f"refused this node ({exc.status} {exc.message})"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            why = f"could not be reached ({type(exc).__name__})"
        else:
            self._peers.count(connects=1)
            return ws
        log.warning("peer %s %s", self._url, why)
        self._peers.count(connect_failures=1)
        self._fail_unsent(_not_sent(self._url, why))
        return None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Carry asks and replies until the connection goes; True if any reply came on it
        (the peer works: reconnect at once), False if it failed before (back off)."""
        self._ws = ws
        self._frames.clear()
        writer = asyncio.create_task(self._write(ws))
        answered = False
        try:
            self._flush()
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT or not self._take(msg.data):
                    log.warning("peer %s sent a frame that breaks the protocol", self._url)
                    break
                answered = True
        finally:
            self._ws = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            with contextlib.suppress(Exception):
                await ws.close()
            self._frames.clear()
            self._fail_sent(_unknown(self._url, "was lost while deciding"))
            if self._unsent:  # asked while the connection was going: they wait for the next
                self._wanted.set()
        return answered

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await self._frame_ready.wait()
            self._frame_ready.clear()
            self._pack()
            while self._frames:
                try:
                    await ws.send_str(self._frames.popleft())
                except (ConnectionError, RuntimeError) as exc:
                    log.info("peer %s: sending failed (%s)", self._url, exc)
                    with contextlib.suppress(Exception):
                        await ws.close()
                    return
                self._peers.count(frames_out=1)

    def _take(self, data: str) -> bool:
        """Hand every reply of a frame to its ask; False for a frame that breaks the protocol."""
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(frame, list):
            return False
        self._peers.count(frames_in=1)
        for item in frame:
            if not isinstance(item, dict) or type(item.get("i")) is not int:
                return False
            i = item["i"]
            try:
                if "r" in item:
                    self._resolve(i, ("reply", wire.reply_from_json(item["r"])))
                else:
                    self._resolve(i, ("error", wire.error_from_json(item.get("e"))))
            except wire.WireError as exc:
                self._resolve(i, ("error", wire.RemoteFailure(f"unreadable reply: {exc}")))
        return True
