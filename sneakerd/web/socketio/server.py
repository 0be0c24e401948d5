"""Socket.IO at `/socket.io/`, speaking the original backend's events (docs/compat.md).

A python-socketio `AsyncServer` attached to sneakerd's aiohttp app, default namespace, both
transports (websocket and long-polling). The browser origin `CLIENT_URL` is accepted, as the
REST side's CORS does, and so is the page's own origin; no other. Clients ask four things:

- `joinDrop(dropId)` / `leaveDrop(dropId)`: enter or leave the room `drop_<id>`, answered with
  `joinedDrop` / `leftDrop` `{dropId, message}` (any positive id, as the original: joining
  costs nothing and a drop created later is heard);
- `requestStock(dropId)`: `stockUpdate {dropId, newStock, timestamp}` to the asking socket, or
  `error {message, dropId}` for a drop that does not exist (or was deleted);
- `ping`: `pong {timestamp}`.

A Socket.IO session counts against `MAX_WEBSOCKETS_PER_IP`, in the same count as the native
WebSockets (the cap `routes.live` keeps): past it the connection is refused.

Everything else comes from committed events, through `SocketIOFeed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web

from sneakerd import errors
from sneakerd.clock import Clock, iso
from sneakerd.config import Settings
from sneakerd.web import keys
from sneakerd.web.clientaddr import client_address
from sneakerd.web.routes.live import WEBSOCKETS_PER_IP
from sneakerd.web.schemas import MAX_ID
from sneakerd.web.socketio.feed import ServerRecipients, SocketIOFeed
from sneakerd.web.socketio.payloads import room_of, stock_payload

SOCKETIO_PATH = "socket.io"
FEED = web.AppKey("socketio_feed", SocketIOFeed)
SERVER: web.AppKey[Any] = web.AppKey("socketio_server")


def drop_id_of(args: tuple[Any, ...]) -> int | None:
    """The drop id a client sent: a JSON number or a string of digits (a route parameter, as
    the original's client passes it); None for anything else."""
    if not args:
        return None
    value = args[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_ID:
        return value
    return None


def origin_check(client_url: str | None) -> Any:
    """python-socketio's `cors_allowed_origins` callable: `CLIENT_URL` and the page's own."""

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser: no origin to check
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin in (own, client_url)

    return allowed


class Handlers:
    """What the server answers; the app's service and store are read when a client asks."""

    def __init__(self, app: web.Application, server: Any, clock: Clock, feed: SocketIOFeed) -> None:
        self._app = app
        self._server = server
        self._clock = clock
        self._feed = feed
        self._addresses: dict[str, str | None] = {}
        """Each connected session's client address, held in the per-address cap."""

    def register(self) -> None:
        on = self._server.on
        on("connect", self.arrive)
        on("joinDrop", self.join_drop)
        on("leaveDrop", self.leave_drop)
        on("requestStock", self.request_stock)
        on("ping", self.ping)
        on("disconnect", self.gone)

    async def _bad_id(self, sid: str) -> None:
        await self._server.emit("error", {"message": "Invalid drop id"}, to=sid)

    async def join_drop(self, sid: str, *args: Any) -> None:
        drop_id = drop_id_of(args)
        if drop_id is None:
            return await self._bad_id(sid)
        await self._server.enter_room(sid, room_of(drop_id))
        message = f"Subscribed to updates for drop {drop_id}"
        await self._server.emit("joinedDrop", {"dropId": drop_id, "message": message}, to=sid)

    async def leave_drop(self, sid: str, *args: Any) -> None:
        drop_id = drop_id_of(args)
        if drop_id is None:
            return await self._bad_id(sid)
        await self._server.leave_room(sid, room_of(drop_id))
        message = f"Unsubscribed from updates for drop {drop_id}"
        await self._server.emit("leftDrop", {"dropId": drop_id, "message": message}, to=sid)

    async def request_stock(self, sid: str, *args: Any) -> None:
        drop_id = drop_id_of(args)
        if drop_id is None:
            return await self._bad_id(sid)
        try:
            stock = await self._stock(drop_id)
        except errors.Unavailable:
            stock, message = None, "Error fetching stock"
        else:
            message = "Drop not found"
        if stock is None:
            await self._server.emit("error", {"message": message, "dropId": drop_id}, to=sid)
            return
        payload = stock_payload(drop_id, stock, self._clock.now_ms())
        await self._server.emit("stockUpdate", payload, to=sid)

    async def _stock(self, drop_id: int) -> int | None:
        """The drop's available stock: its actor's committed state when one runs here (no
        query for a busy drop), else the store's row; None for no such drop."""
        state = self._app[keys.SERVICE].committed_state(drop_id)
        if state is not None:
            return state.drop.stock
        drop = await self._app[keys.STORE].get_drop(drop_id)
        return None if drop is None or drop.deleted else drop.stock

    async def ping(self, sid: str, *_args: Any) -> None:
        await self._server.emit("pong", {"timestamp": iso(self._clock.now_ms())}, to=sid)

    async def arrive(self, sid: str, environ: dict[str, Any], *_auth: Any) -> bool:
        """Admit a session unless its address already holds its share of live connections."""
        address = client_address(environ["aiohttp.request"])
        if not self._app[WEBSOCKETS_PER_IP].acquire(address):
            return False  # the client hears connect_error
        self._addresses[sid] = address
        self._feed.clients += 1
        return True

    async def gone(self, sid: str, *_reason: Any) -> None:
        """Give the session's place in the per-address cap back, and stop counting it."""
        if sid in self._addresses:
            self._app[WEBSOCKETS_PER_IP].release(self._addresses.pop(sid))
            self._feed.clients -= 1


def end_polls_on_close(server: Any) -> None:
    """When an Engine.IO session closes, end its pending long-poll GET at once.

    Engine.IO (4.x) closes a polling session (a client's goodbye, or one refused at connect)
    without waking the GET it has pending, which then holds a connection here, and the
    client's own disconnect, for up to a ping interval plus timeout (45 s). The empty packet
    it is woken with is the one Engine.IO's poll already reads as "nothing more". Wraps the
    engine's `disconnect` handler (python-socketio's own), through Engine.IO's public `on`."""
    inner = server.eio.handlers["disconnect"]

    async def disconnect(eio_sid: str, *args: Any) -> None:
        try:
            await inner(eio_sid, *args)
        finally:
            session = server.eio.sockets.get(eio_sid)
            if session is not None and not session.upgraded:
                session.queue.put_nowait(None)

    server.eio.on("disconnect", disconnect)


CLOSE_WAIT_SECONDS = 1.0
"""How long a shutdown waits for the close packets to be written before it goes on."""


async def close_sessions(server: Any) -> None:
    """At shutdown, tell every client the server is going (Engine.IO's close packet), so each
    reconnects at once, to another node behind the balancer or to this one restarted.

    `AsyncServer.shutdown` only stops Engine.IO's background tasks: the sessions stay open, so
    the WebSocket handlers and pending polls held the process for its whole shutdown grace
    (`SHUTDOWN_GRACE`, 5 s) and the clients learnt of it only when their connections were cut.
    Each session is closed without waiting for its queue (a polling client that never polls
    again would hold `close()` for ever); the packets are given `CLOSE_WAIT_SECONDS` to go out."""
    sessions = list(server.eio.sockets.values())
    for session in sessions:
        with contextlib.suppress(Exception):  # one broken session must not keep the others open
            await session.close(wait=False, reason=server.eio.reason.SERVER_DISCONNECT)
            # After the close packet: ends the WebSocket writer, which then closes the socket
            # itself (else the handler waits for the client to, up to a ping interval).
            session.queue.put_nowait(None)
    drains = [asyncio.create_task(session.queue.join()) for session in sessions]
    if drains:
        _, pending = await asyncio.wait(drains, timeout=CLOSE_WAIT_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def setup(app: web.Application, settings: Settings, clock: Clock) -> SocketIOFeed:
    """Attach Socket.IO to `app` and return its feed (an `EventSink` for committed events).

    Call after the app's CORS set-up: Engine.IO answers its own CORS headers, and aiohttp-cors
    must not add a second set to its routes. The feed runs while the app serves (a cleanup
    context added here, so after the store and the actors are up and before they stop)."""
    server = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=origin_check(settings.client_url),
        logger=False,
        engineio_logger=False,
    )
    server.attach(app, socketio_path=SOCKETIO_PATH)
    feed = SocketIOFeed(clock)
    Handlers(app, server, clock, feed).register()
    end_polls_on_close(server)
    app[FEED] = feed
    app[SERVER] = server

    async def running(_app: web.Application) -> AsyncIterator[None]:
        feed.start(ServerRecipients(server))
        try:
            yield
        finally:
            await feed.stop()

    async def disconnect_all(_app: web.Application) -> None:
        await close_sessions(server)
        await server.shutdown()  # its background tasks (the pings)

    app.cleanup_ctx.append(running)
    app.on_shutdown.append(disconnect_all)
    return feed
