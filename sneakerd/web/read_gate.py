"""The read gate: a connection that was just refused is not read while buyers' writes run.

The refusal pacer (`sneakerd.pacer`) puts refusals behind the loop's other work once they are
decided. By then each has cost its read, its parse, its token check and its handler, and a
crowd hammering a sold-out drop over keep-alive connections brings a full turn of those every
turn. Under `serve --workers 2`, a quiet drop's hold crosses both workers and the database,
and each of its steps waited behind them: its p99 was 10-20 x its value alone (loadtest
`multidrop --hot-rate 0 --workers 2`).

So a connection whose last answer was such a refusal (`note`) is held while writes are in
flight (`watch`: this process's count, or every worker's of the machine,
`cluster/busy_board.py`). Its next bytes are kept as they arrive, reading pauses (the rest
waits in the kernel), and when the writes are done (`idle`, told by the pacer, or seen at the
next `POLL_MS`) or `LONGEST_MS` has passed, they go to aiohttp exactly as they came, in order.
Nothing is dropped or answered differently. The crowd's next refusals come a few milliseconds
later, and only while somebody is buying. A connection that was not just refused is never
held, and neither is a refused one while nobody is buying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from sneakerd.clock import Cancellable, Clock

log = logging.getLogger(__name__)

LONGEST_MS = 20
"""Longest a held connection waits: the crowd is slowed while people buy, never stopped."""
POLL_MS = 1
"""How often held connections look again: another worker's writes end without a word here."""


class Held(Protocol):
    """A connection the gate may hold (`web/transport.py`'s `GuardedHandler`)."""

    def let_in(self) -> None:
        """Hand what arrived meanwhile to the parser and read again."""


def _never() -> bool:
    return False


class ReadGate:
    """One per event loop (the app's): which refused connections wait, and when they go on."""

    def __init__(self, clock: Clock, longest_ms: int = LONGEST_MS, poll_ms: int = POLL_MS):
        self._clock = clock
        self.longest_ms = longest_ms
        self.poll_ms = poll_ms
        self._busy: Callable[[], bool] = _never
        self._held: dict[Held, None] = {}
        """In the order they were held (a dict keeps it, and forgets in O(1))."""
        self._since = 0
        """When the oldest connection held now was held (the clock's monotonic ms)."""
        self._timer: Cancellable | None = None
        self._opening = False
        """An `idle` opening is scheduled for the loop's next turn."""
        self.holds = 0
        """Connections held so far."""

    def watch(self, busy: Callable[[], bool]) -> None:
        """Hold refused connections while `busy()` is true."""
        self._busy = busy

    @property
    def closed(self) -> bool:
        """True while writes are in flight: a refused connection's next bytes wait."""
        return self._busy()

    @property
    def waiting(self) -> int:
        return len(self._held)

    def hold(self, connection: Held) -> None:
        if not self._held:
            self._since = self._clock.monotonic_ms()
        self._held[connection] = None
        self.holds += 1
        if self._timer is None:
            self._timer = self._clock.call_at(self._clock.now_ms() + self.poll_ms, self._look)

    def forget(self, connection: Held) -> None:
        """A held connection closed: nothing to let in."""
        self._held.pop(connection, None)

    def idle(self) -> None:
        """This process's last write in flight ended (told from inside that write's request):
        open in the loop's next turn, unless another worker's writes run, so that parsing the
        held requests is not that request's work."""
        if self._held and not self._opening:
            self._opening = True
            asyncio.get_running_loop().call_soon(self._open_if_idle)

    def _open_if_idle(self) -> None:
        self._opening = False
        if self._held and not self.closed:
            self.open()

    def _look(self) -> None:
        self._timer = None
        if not self._held:
            return
        if not self.closed or self._clock.monotonic_ms() - self._since >= self.longest_ms:
            self.open()
        else:
            self._timer = self._clock.call_at(self._clock.now_ms() + self.poll_ms, self._look)

    def open(self) -> None:
        """Let every held connection in, oldest first (the refusal pacer then orders them
        behind whatever else is in flight). One that fails is logged and dropped from the
        gate; the others still go in."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, {}
        for connection in held:
            try:
                connection.let_in()
            except Exception:  # a bug must not keep the rest paused
                log.exception("read gate: letting a held connection in failed")


def note(request: web.Request, refused: bool) -> None:
    """Whether this request's answer is a refusal read from committed state: the gate then
    holds the connection's next request while writes are in flight (or no longer does)."""
    protocol = request.protocol
    if hasattr(protocol, "refused"):
        protocol.refused = refused
