"""The owner's side of forwarding: `GET /internal/peer`, where other nodes send the commands
of the drops this node owns (see `peers` for the protocol), each run on its actor.

The owner's one event loop is what a hot drop's throughput is made of, and a forwarded command
must cost it far less than a client's request, in CPU and in loop turns (each turn a command
waits on a busy owner is a turn its connection at the other node stands idle). So a frame's
commands for a drop whose actor runs here go straight into that actor's mailbox as the frame
is read (`Post`: no task, no coroutine per command), and each reply is encoded the moment the
actor gives it and leaves with the others of that turn in one frame: one turn from the frame's
arrival to the mailbox, one from the batch's commit to the reply frame. Only a command for a
drop with no actor running here (not started yet, or owned elsewhere) takes the slower path,
a task running the `Handler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import partial

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from sneakerd import errors
from sneakerd.actors.mailbox import ReplyTo
from sneakerd.clock import Clock, SystemClock
from sneakerd.cluster import wire
from sneakerd.cluster.peer_auth import (
    HEARTBEAT_S,
    MAX_FRAME_BYTES,
    MAX_SKEW_MS,
    PEER_HEADER,
    PEER_PATH,
    Handler,
    Post,
    peer_key,
    refusal,
)
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import Command
from sneakerd.web.problems import ApiError, respond

log = logging.getLogger(__name__)


# -- the owner's side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerStats:
    """What the owner's side has seen (counters since start, `connections` open now)."""

    connections: int = 0
    accepted: int = 0
    refused: int = 0
    frames_in: int = 0
    requests: int = 0
    frames_out: int = 0
    replies: int = 0
    posted: int = 0
    """Requests put straight into a running actor's mailbox (the rest ran as tasks)."""


class PeerServer:
    """`GET /internal/peer`: runs the commands other nodes forward to this one."""

    def __init__(
        self,
        handler: Handler,
        secret: str,
        node_id: str,
        *,
        clock: Clock | None = None,
        max_skew_ms: int = MAX_SKEW_MS,
        heartbeat_s: float | None = HEARTBEAT_S,
        post: Post | None = None,
        work: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.node_id = node_id
        self._handler = handler
        self._post = post
        self._work = work
        """Around each forwarded command, from its arrival to its reply: the work in flight
        that this node's refusals and fan-out make room for (`sneakerd.pacer`), as they do
        for the writes its own clients send."""
        self._counter: AbstractContextManager[None] | None = None
        """`work()`, taken once at the first command (the same counter every time)."""
        self._key = peer_key(secret)
        self._clock = clock or SystemClock()
        self._max_skew_ms = max_skew_ms
        self._heartbeat_s = heartbeat_s
        self._sockets: set[web.WebSocketResponse] = set()
        self._calls: set[asyncio.Future[Reply]] = set()
        self._stats = ServerStats()
        self._closing = False

    def stats(self) -> ServerStats:
        return replace(self._stats, connections=len(self._sockets))

    def _count(self, **add: int) -> None:
        s = self._stats
        self._stats = replace(s, **{k: getattr(s, k) + v for k, v in add.items()})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        why = refusal(
            self._key, request.headers.get(PEER_HEADER), self._clock.now_ms(), self._max_skew_ms
        )
        if why is not None:
            self._count(refused=1)
            log.warning("peer connection from %s refused: %s", request.remote, why)
            return respond(ApiError(403, "forbidden", why))
        if self._closing:
            return respond(ApiError(503, "unavailable", "This node is shutting down"))
        ws = web.WebSocketResponse(
            heartbeat=self._heartbeat_s, max_msg_size=MAX_FRAME_BYTES, compress=False
        )
        await ws.prepare(request)
        self._count(accepted=1)
        self._sockets.add(ws)
        session = _ServerSession(self, ws)
        try:
            await session.run()
        finally:
            self._sockets.discard(ws)
        return ws

    def started(self) -> None:
        """A forwarded command arrived: it is work in flight until `answered`."""
        if self._work is not None:
            if self._counter is None:  # the service exists once the app has started
                self._counter = self._work()
            self._counter.__enter__()

    def answered(self) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)

    def post(self, drop_id: int, command: Command, reply: ReplyTo[Reply]) -> bool:
        """The fast path (`Post`), if this server has one: True if the command was posted."""
        return self._post is not None and self._post(drop_id, command, reply)

    def call(self, drop_id: int, command: Command) -> asyncio.Future[Reply]:
        """Start one forwarded command; the server owns the future until it is done."""
        future = asyncio.ensure_future(self._handler(drop_id, command))
        self._calls.add(future)
        future.add_done_callback(self._calls.discard)
        return future

    async def close(self, _app: web.Application | None = None) -> None:
        """Close every peer connection and stop the commands still running (the callers
        already hear "outcome unknown" when their connection goes)."""
        self._closing = True
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
        calls = list(self._calls)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


class _ServerSession:
    """One peer connection on the owner: reads request frames, writes reply frames."""

    def __init__(self, server: PeerServer, ws: web.WebSocketResponse) -> None:
        self._server = server
        self._ws = ws
        self._outbox: list[dict[str, wire.Json]] = []
        self._ready = asyncio.Event()
        self._closed = False

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            async for msg in self._ws:
                if msg.type is not WSMsgType.TEXT:
                    await self._ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"text only")
                    break
                if not self._take(msg.data):
                    await self._ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=b"bad frame")
                    break
        finally:
            self._closed = True
            self._outbox.clear()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    def _take(self, data: str) -> bool:
        """Start every request of a frame; False for a frame that breaks the protocol."""
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            frame = None
        if not isinstance(frame, list):
            log.warning("peer frame is not a JSON list; closing the connection")
            return False
        self._server._count(frames_in=1, requests=len(frame))
        for item in frame:
            if not (
                isinstance(item, dict)
                and type(item.get("i")) is int
                and type(item.get("d")) is int
                and "c" in item
            ):
                log.warning("peer request without an id, a drop id or a command; closing")
                return False
            self._start(item["i"], item["d"], item["c"])
        return True

    def _start(self, i: int, drop_id: int, raw: wire.Json) -> None:
        try:
            command = wire.command_from_json(raw)
        except wire.WireError as exc:
            self._queue({"i": i, "e": wire.error_to_json(wire.RemoteFailure(f"unreadable: {exc}"))})
            return
        self._server.started()  # each command started is answered once, through `_send`
        try:
            if self._server.post(drop_id, command, _Slot(self, i)):
                self._server._count(posted=1)
                return
            call = self._server.call(drop_id, command)
        except Exception as exc:  # refused at once (an actor already stopped, ...)
            self._send({"i": i, "e": self._error(exc)})
            return
        call.add_done_callback(partial(self._done, i))

    def _done(self, i: int, call: asyncio.Future[Reply]) -> None:
        if call.cancelled():
            self._send({"i": i, "e": wire.error_to_json(errors.ActorStopped("owner stopping"))})
            return
        exc = call.exception()
        if exc is not None:
            self._send({"i": i, "e": self._error(exc)})
            return
        self._reply(i, call.result())

    def _reply(self, i: int, reply: Reply) -> None:
        try:
            self._send({"i": i, "r": wire.reply_to_json(reply)})
        except wire.WireError as bad:
            log.exception("a reply that cannot be sent to a peer")
            self._send({"i": i, "e": wire.error_to_json(wire.RemoteFailure(str(bad)))})

    @staticmethod
    def _error(exc: BaseException) -> dict[str, wire.Json]:
        body = wire.error_to_json(exc)
        if body["kind"] == "failure":  # a bug here: log it where its traceback is
            log.error("forwarded command failed", exc_info=exc)
        return body

    def _send(self, item: dict[str, wire.Json]) -> None:
        """The one answer to a command started: it is no longer work in flight here."""
        self._server.answered()
        self._queue(item)

    def _queue(self, item: dict[str, wire.Json]) -> None:
        """Queue one reply; the writer sends everything queued in a turn as one frame. A
        reply for a connection that is gone is dropped (its asker already heard that the
        outcome is unknown)."""
        if self._closed:
            return
        self._outbox.append(item)
        self._ready.set()

    async def _write(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            items, self._outbox = self._outbox, []
            if not items or self._ws.closed:
                continue
            try:
                await self._ws.send_str(orjson.dumps(items).decode())
            except (ConnectionError, RuntimeError) as exc:
                log.info("peer connection lost while replying: %s", exc)
                return
            self._server._count(frames_out=1, replies=len(items))


class _Slot:
    """Where the actor answers one posted request (a `ReplyTo`): straight into the session's
    next reply frame, encoded as the actor gives it."""

    __slots__ = ("_answered", "_i", "_session")

    def __init__(self, session: _ServerSession, i: int) -> None:
        self._session = session
        self._i = i
        self._answered = False

    def done(self) -> bool:
        return self._answered

    def set_result(self, result: Reply, /) -> None:
        self._answered = True
        self._session._reply(self._i, result)

    def set_exception(self, exception: BaseException, /) -> None:
        self._answered = True
        self._session._send({"i": self._i, "e": self._session._error(exception)})


def add_routes(
    app: web.Application,
    handler: Handler,
    secret: str,
    node_id: str,
    *,
    clock: Clock | None = None,
    max_skew_ms: int = MAX_SKEW_MS,
    heartbeat_s: float | None = HEARTBEAT_S,
    post: Post | None = None,
    work: Callable[[], AbstractContextManager[None]] | None = None,
) -> PeerServer:
    """Serve `GET /internal/peer` on `app` and close its connections on shutdown; the server
    returned is the one to read `stats()` from. `post` is the fast path for drops whose actor
    runs here; without it every request runs `handler` in a task of its own."""
    server = PeerServer(
        handler,
        secret,
        node_id,
        clock=clock,
        max_skew_ms=max_skew_ms,
        heartbeat_s=heartbeat_s,
        post=post,
        work=work,
    )
    app.router.add_get(PEER_PATH, server.handle)
    app.on_shutdown.append(server.close)
    return server
