"""Connections: slow or hoarding clients are cut off, malformed requests get a JSON 400.

aiohttp's `RequestHandler` (one per TCP connection) has a keep-alive timeout but no deadline for
a request head, and answers unparseable requests itself, in plain text, logging a traceback each
time. `GuardedHandler` adds the least on top of it:

- a timer per request head: armed when a connection opens (and when the first byte of a later
  request arrives on an idle keep-alive connection), disarmed once aiohttp's parser has counted
  the complete head; if it fires first, the connection is closed. A slow *body* is not covered:
  the handler that reads it is bounded by `MAX_BODY_BYTES` and the per-address cap.
- a per-address connection cap, counted on the TCP peer. A trusted proxy's connections are not
  counted (they carry many clients; who they are is only known per request). A connection over
  the cap is flagged, and `edges.edge_middleware` answers its first request 429 and closes it.
- `handle_error`, aiohttp's answer to a request it could not parse (or a failure outside the
  application's own error middleware), returns the API's JSON error envelope and logs one line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from sneakerd.config import Settings
from sneakerd.web import access, edges, keys
from sneakerd.web.clientaddr import is_trusted, parse_address
from sneakerd.web.perip import PerAddressCap
from sneakerd.web.problems import HTTP_CODES, error_body
from sneakerd.web.read_gate import ReadGate

log = logging.getLogger(__name__)

MAX_LOGGED_REASON = 120
MAX_HELD_BYTES = 64 * 1024
"""Most bytes the read gate keeps for one connection: past it, the connection goes in."""


class ConnectionGuard:
    """What every connection of one server shares: the settings and the per-address counts."""

    def __init__(self, settings: Settings, gate: ReadGate | None = None) -> None:
        self.gate = gate
        """Holds a just-refused connection's next request while writes run (`web/read_gate.py`)."""
        self.header_timeout = settings.header_timeout
        self.proxies = settings.trusted_proxies
        self.connections = PerAddressCap(settings.max_connections_per_ip)

    def counted_address(self, peer: str | None) -> str | None:
        """The address a connection from `peer` counts against; None if it is not counted."""
        address = parse_address(peer) if peer is not None else None
        if address is None or is_trusted(address, self.proxies):
            return None
        return str(address)


class GuardedHandler(RequestHandler):
    def __init__(self, manager: Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._head_timer: asyncio.TimerHandle | None = None
        self._heads_when_armed = 0
        self._counted: str | None = None
        self.over_cap = False
        """True when this connection's address already held its cap as it opened."""
        self.refused = False
        """Its last answer was a refusal read from committed state (`read_gate.note`)."""
        self._waiting: list[bytes] | None = None
        """What arrived while the read gate held the connection (None: not held)."""
        self._held_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = self._guard.counted_address(str(peer[0]) if peer else None)
        if self._guard.connections.acquire(address):
            self._counted = address
        else:
            self.over_cap = True
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._waiting is not None and self._guard.gate is not None:
            self._guard.gate.forget(self)
            self._waiting = None
        self._disarm_head_timer()
        self._guard.connections.release(self._counted)
        self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._waiting is not None:
            # Held. An empty call is aiohttp asking to parse what it buffered: that happens
            # when the kept bytes go in. Past `MAX_HELD_BYTES` (aiohttp's own flow control can
            # resume the transport meanwhile) the connection goes in now.
            if data:
                self._waiting.append(data)
                self._held_bytes += len(data)
                if self._held_bytes > MAX_HELD_BYTES and self._guard.gate is not None:
                    self._guard.gate.forget(self)
                    self.let_in()
            return
        if not data:
            self._receive(data)
            return
        # The flag covers the next bytes only, whether or not they are held: a connection that
        # goes on to other requests is not held for a refusal it had long ago.
        refused, self.refused = self.refused, False
        gate, transport = self._guard.gate, self.transport
        # Only an HTTP connection is held (a WebSocket's frames are not requests).
        if (
            refused
            and gate is not None
            and transport is not None
            and not self._upgraded
            and gate.closed
        ):
            transport.pause_reading()  # the rest waits in the kernel
            self._waiting, self._held_bytes = [data], len(data)
            gate.hold(self)
            return
        self._receive(data)

    def _resume_transport_reading(self) -> None:
        """aiohttp's flow control resumes reading here; not while the read gate holds."""
        if self._waiting is None:
            super()._resume_transport_reading()

    def let_in(self) -> None:
        """The read gate lets this connection go on: what came meanwhile, in order."""
        waiting, self._waiting = self._waiting, None
        if waiting is None or self.transport is None:
            return
        if not self._reading_paused and not self._buffer_paused:  # aiohttp's own pauses
            self.transport.resume_reading()
        self._receive(b"".join(waiting))

    def _receive(self, data: bytes) -> None:
        if self._head_timer is None and data and self._idle():
            self._arm_head_timer()  # the first byte of the next request on a kept-alive line
        super().data_received(data)
        if self._head_timer is not None and self._request_count != self._heads_when_armed:
            self._disarm_head_timer()

    def _idle(self) -> bool:
        """Waiting for the next request: no request being handled, none queued, not upgraded."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._upgraded

    def _arm_head_timer(self) -> None:
        self._heads_when_armed = self._request_count
        self._head_timer = self._loop.call_later(self._guard.header_timeout, self._head_late)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._request_count != self._heads_when_armed or self._request_in_progress:
            return
        log.info(
            "closing a connection from %s: no complete request head within %gs",
            self._peer(),
            self._guard.header_timeout,
        )
        self.force_close()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if peer else "?"

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The JSON envelope for what aiohttp answers itself; one log line for bad input."""
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already on its way; cannot send the error")
        rid = {"request_id": access.id_of(request)}
        if status >= 500:
            log.error("error outside the application on %s", request.path, exc_info=exc, extra=rid)
            code, text = "internal_error", "Something went wrong on our side"
            if status == 504:
                code, text = "unavailable", "The request timed out; retry"
        else:
            reason = _first_line(message or (str(exc) if exc else "")) or "bad request"
            log.info("malformed request from %s: %s", request.remote, reason, extra=rid)
            code, text = HTTP_CODES.get(status, "bad_request"), "Malformed HTTP request"
        response = web.Response(
            body=orjson.dumps(error_body(code, text)),
            status=status,
            content_type="application/json",
        )
        edges.stamp(response.headers)
        response.headers[access.HEADER] = rid["request_id"]
        response.force_close()
        return response


def _first_line(text: str) -> str:
    """aiohttp's multi-line parser message (with the offending bytes) as one short line."""
    return " ".join(text.split())[:MAX_LOGGED_REASON]


class GuardedServer(Server):
    """aiohttp's connection factory, making `GuardedHandler`s."""

    def __init__(self, base: Server, guard: ConnectionGuard) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            **base._kwargs,
        )
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)

    def pre_shutdown(self) -> None:
        """The server stops: held connections go in first, so that their requests are answered
        in the grace period (aiohttp's own step then marks every connection closing, after
        which nothing more would be parsed)."""
        if self.guard.gate is not None:
            self.guard.gate.open()
        super().pre_shutdown()


class GuardedRunner(web.AppRunner):
    """`web.AppRunner` whose connections are `GuardedHandler`s, idle ones closed after
    `KEEPALIVE_TIMEOUT`."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=settings.keepalive_timeout, **kwargs)
        self._guard = ConnectionGuard(settings, app.get(keys.READ_GATE))

    async def _make_server(self) -> Server:
        return GuardedServer(await super()._make_server(), self._guard)
