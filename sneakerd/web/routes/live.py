"""GET /api/drops/{id}/ws: live stock for one drop over a native aiohttp WebSocket.

The handler owns two loops: it reads the client's messages itself (pings, and nothing else is
expected; protocol-level PING frames are answered here too, not by aiohttp, so that they count
against the flood limit like `{"type": "ping"}` messages) and runs the subscriber's writer as a
task it cancels and awaits on the way out. The first message is a `snapshot`; later ones come
from the hub, each with a `seq` above the last. One client address may hold
`MAX_WEBSOCKETS_PER_IP` of them at once; more are refused (429) before the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from sneakerd import errors
from sneakerd.clock import Clock
from sneakerd.domain.model import Drop
from sneakerd.views import drop_view
from sneakerd.web import keys
from sneakerd.web.clientaddr import client_address
from sneakerd.web.hub import Hub
from sneakerd.web.perip import PerAddressCap
from sneakerd.web.problems import ApiError, retry_after
from sneakerd.web.queue_watch import QueueWatch
from sneakerd.web.routes import queue
from sneakerd.web.routes.common import path_id
from sneakerd.web.subscriber import Subscriber

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 20.0
"""A client quiet this long is pinged..."""
PONG_WAIT_SECONDS = 10.0
"""...and dropped if it then stays quiet this long."""
MAX_CLIENT_MESSAGE = 4096
"""The largest message a client may send, in bytes (a larger one is closed with 1009)."""
FLOOD_MESSAGES = 30
FLOOD_WINDOW_MS = 10_000
SEND_BUFFER = 64 * 1024
"""A socket's kernel send buffer: bounds what one slow watcher can hold, so that it fills up
(and is resynchronised or closed) instead of buffering megabytes per watcher."""
WEBSOCKETS_PER_IP = web.AppKey("websockets_per_ip", PerAddressCap)
REFUSED_RETRY_SECONDS = 5.0


async def watch(request: web.Request) -> web.StreamResponse:
    drop_id = path_id(request)
    app = request.app
    try:
        await app[keys.REGISTRY].get(drop_id)
    except errors.NotFound:
        raise ApiError(404, "not_found", "No such drop") from None
    address = client_address(request)
    cap = app[WEBSOCKETS_PER_IP]
    if not cap.acquire(address):
        raise ApiError(
            429,
            "rate_limited",
            "Too many live connections from your address; close some and retry",
            headers=retry_after(REFUSED_RETRY_SECONDS),
        )
    try:
        return await _serve(request, drop_id)
    finally:
        cap.release(address)


async def _serve(request: web.Request, drop_id: int) -> web.WebSocketResponse:
    app = request.app
    ws = web.WebSocketResponse(
        compress=False,
        max_msg_size=MAX_CLIENT_MESSAGE + 1,  # aiohttp refuses a message of this size or more
        autoping=False,
        autoclose=False,
    )
    transport = request.transport
    await ws.prepare(request)
    _bound_send_buffer(transport)
    hub = app[keys.HUB]
    subscriber = hub.subscribe(drop_id)
    writer = asyncio.create_task(
        _write(request, ws, transport, subscriber, hub), name=f"ws-{drop_id}"
    )
    positions = app[queue.QUEUE_WATCH]
    gone = False
    try:
        gone = await _read(ws, subscriber, app[keys.CLOCK], positions)
    finally:
        subscriber.retire()
        positions.forget(subscriber)
        hub.unsubscribe(subscriber)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        if gone and transport is not None:
            # No answer to our ping: cut the connection, no close frame. A polite close would
            # say 1000, which tells a client the drop was deleted (stop watching); a client
            # that was only asleep (a suspended tab, a phone) must see 1006 and reconnect.
            transport.abort()
        elif not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
    return ws


def _bound_send_buffer(transport: asyncio.Transport | None) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


async def _snapshot(request: web.Request, subscriber: Subscriber) -> bytes | None:
    """A fresh `snapshot` frame from the drop's committed state (its actor's, here or in the
    database when another node owns it); None if the drop is gone."""
    app = request.app
    try:
        actor = await app[keys.REGISTRY].get(subscriber.drop_id)
    except (errors.NotFound, errors.Unavailable):
        return None
    state = actor.state
    if state is not None:
        drop: Drop | None = state.drop
    else:  # another node owns the drop: its last commit, as the database has it
        try:
            drop = await app[keys.STORE].get_drop(subscriber.drop_id)
        except errors.Unavailable:
            return None
    if drop is None or drop.deleted:
        return None
    subscriber.last_seq = drop.version
    return orjson.dumps(
        {
            "type": "snapshot",
            "dropId": drop.id,
            "seq": drop.version,
            "drop": drop_view(drop, app[keys.CLOCK].now_ms()),
        }
    )


async def _write(
    request: web.Request,
    ws: web.WebSocketResponse,
    transport: asyncio.Transport | None,
    subscriber: Subscriber,
    hub: Hub,
) -> None:
    """The subscriber's writer: snapshot first, then its outbox, resyncing when it overflowed."""
    try:
        first = await _snapshot(request, subscriber)
        if first is None:
            await _close(ws, transport, 1000, b"drop deleted", hub.stuck_seconds)
            return
        await _send(ws, first, hub.stuck_seconds)
        subscriber.go_live(transport)  # the hub may now write to it directly
        while True:
            await subscriber.wakeup.wait()
            subscriber.wakeup.clear()
            subscriber.hold()
            if subscriber.resync:
                subscriber.resync = False
                frame = await _snapshot(request, subscriber)
                if frame is not None:
                    await _send(ws, frame, hub.stuck_seconds)
            outbox = subscriber.outbox
            while outbox:
                seq, frame = outbox.popleft()
                if seq > subscriber.last_seq:
                    await _send(ws, frame, hub.stuck_seconds)
                    subscriber.last_seq = seq
            subscriber.release()
            if subscriber.closing is not None:
                await _close(ws, transport, subscriber.closing, b"", hub.stuck_seconds)
                return
    except TimeoutError:
        # Its socket has not taken a byte for `stuck_seconds`: a close frame (1013) could
        # not get through either, so the connection is cut.
        log.info("drop %s: a watcher stayed stuck; dropping it (1013)", subscriber.drop_id)
        if transport is not None:
            transport.abort()
    except (ConnectionError, RuntimeError):
        return  # the peer went away; the reader sees it too


async def _send(ws: web.WebSocketResponse, frame: bytes, stuck_seconds: float) -> None:
    async with asyncio.timeout(stuck_seconds):
        await ws.send_frame(frame, WSMsgType.TEXT)


async def _close(
    ws: web.WebSocketResponse,
    transport: asyncio.Transport | None,
    code: int,
    message: bytes,
    wait: float,
) -> None:
    """Close politely within `wait` seconds, else drop the connection: a peer that reads
    nothing would never let the close frame (or a graceful transport close) through, and the
    reader loop only ends once the connection is gone."""
    try:
        await asyncio.wait_for(ws.close(code=code, message=message), wait)
    except (TimeoutError, ConnectionError, RuntimeError):
        if transport is not None:
            transport.abort()


async def _read(
    ws: web.WebSocketResponse, subscriber: Subscriber, clock: Clock, positions: QueueWatch
) -> bool:
    """Until the connection ends; True when it ended because the client stopped answering
    (the caller then cuts it). Answer pings (JSON and protocol frames) and `auth` (queue
    positions); ping a quiet client and give up on one that does not answer; close a client
    that floods (1008: every frame counts, pings and pongs too) or sends binary (1003). Every
    write here goes between `hold` and `release`, as the hub's fan-out thread may be writing to
    the same socket (which is also why aiohttp's own heartbeat and automatic close reply are
    off: they would write around the hold)."""
    window_start, count = clock.monotonic_ms(), 0
    pinged = False
    while True:
        try:
            message = await ws.receive(timeout=PONG_WAIT_SECONDS if pinged else HEARTBEAT_SECONDS)
        except TimeoutError:
            if pinged:  # no answer to our ping: the peer is gone
                return True
            await _reply(subscriber, ws.ping())
            pinged = True
            continue
        pinged = False
        if message.type in _ENDED:
            return False
        now = clock.monotonic_ms()
        if now - window_start > FLOOD_WINDOW_MS:
            window_start, count = now, 0
        count += 1
        if count > FLOOD_MESSAGES:
            await _reply(subscriber, ws.close(code=1008, message=b"too many messages"))
            return False
        if message.type is WSMsgType.BINARY:
            await _reply(subscriber, ws.close(code=1003, message=b"send JSON text frames"))
            return False
        if message.type is WSMsgType.PING:
            await _reply(subscriber, ws.pong(message.data))
        elif message.type is WSMsgType.TEXT:
            reply = await _answer(message.data, subscriber, positions)
            if reply is not None:
                await _reply(subscriber, ws.send_frame(orjson.dumps(reply), WSMsgType.TEXT))


_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


async def _reply(subscriber: Subscriber, write: Coroutine[Any, Any, object]) -> None:
    """Run one of the reader's writes with the fan-out kept off the socket."""
    subscriber.hold()
    try:
        await write
    finally:
        subscriber.release()


async def _answer(
    text: str, subscriber: Subscriber, positions: QueueWatch
) -> dict[str, Any] | None:
    base = {"dropId": subscriber.drop_id, "seq": subscriber.last_seq}
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("type") == "ping":
        return {"type": "pong", **base}
    if isinstance(data, dict) and data.get("type") == "auth":
        return await positions.auth(subscriber, data)  # queue positions follow (web/queue_watch.py)
    return {
        "type": "error",
        **base,
        "error": {
            "code": "bad_request",
            "message": 'Client messages are {"type": "ping"} and {"type": "auth", "token": ...}',
        },
    }


def add_routes(app: web.Application) -> None:
    app[WEBSOCKETS_PER_IP] = PerAddressCap(app[keys.SETTINGS].max_websockets_per_ip)
    app.router.add_get(r"/api/drops/{id:\d+}/ws", watch)
