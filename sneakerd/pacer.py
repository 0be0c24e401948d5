"""The refusal pacer: answers decided without I/O take their turn behind the loop's other work.

A refusal read from a drop's committed state (sold out, limit reached, not live) needs no I/O,
so nothing makes it wait: a crowd hammering a sold-out drop over C keep-alive connections keeps
C such answers in every turn of the event loop, and every step of every other request (its read,
its handler, its actor's commit, its reply: each one a loop turn) waits behind all C of them.
A quiet drop's hold, which takes several such turns, then waits for them several times over
(loadtest `multidrop --hot-rate 0`: quiet p99 5-30 x of alone).

While other work is in flight here (a hold, a purchase, a cancel: an ask of a drop's actor,
told by `other_work`), the pacer lets at most `per_turn` refusals go on in each loop turn and
keeps the rest waiting, in arrival order, so every step of that work waits behind a few
refusals instead of all of them. The loop is never idle while refusals wait (each turn lets
the next ones go). With nothing else in flight a refusal yields one loop turn and goes on, and
a crowd of refusals alone is answered as fast as before: there is nobody to make room for.

The price is the crowd's: while holds are in flight its refusals/s fall (wrk-driven multidrop,
one worker: ~5,600 to ~2,900/s) while the quiet drops' p99 ratio falls from 9.7 to 4.4 x. Only
this loop's work is ordered; with every core busy, the other processes a hold needs (MariaDB,
the drop's owner) still wait for the kernel (loadtest/README.md).
"""

from __future__ import annotations

import asyncio
from array import array
from collections import deque
from collections.abc import Callable
from types import TracebackType

PER_TURN = 2
"""Refusals let go per loop turn while other work is in flight: more makes each turn longer for
that work (8 kept the quiet drops' p99 at 6.7 x of alone, 2 at 3.0 x: loadtest/README.md)."""


class RefusalPacer:
    """One per event loop (the service's): `turn()` returns in a later loop turn than the one
    it was called in; while `other_work` is in flight, at most `per_turn` callers a turn, first
    come first served."""

    def __init__(self, per_turn: int = PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be 1 or more")
        self._per_turn = per_turn
        self._others = 0
        self._in_flight = array("q", [0])
        self._other_work = _OtherWork(self)
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._releasing: asyncio.AbstractEventLoop | None = None
        """The loop a release is scheduled on (None: no release pending)."""
        self.mirror: memoryview | None = None
        """Where the count is also kept for the other workers of this machine (one item of
        `cluster/busy_board.py`'s board), if any."""
        self.on_idle: Callable[[], None] | None = None
        """Called each time the last work in flight ends (`web/read_gate.py` opens then)."""

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def in_flight(self) -> array[int]:
        """The count of work in flight (`other_work`) as one machine integer, for the fan-out
        thread's send loop to read without the GIL (`web/send_thread.py`)."""
        return self._in_flight

    def other_work(self) -> _OtherWork:
        """Around work that refusals should make room for (it takes several loop turns).

        One reusable context manager, not a generator-based one per call: this runs two or
        three times for every hold, and `contextlib.contextmanager`'s generator cost ~1 % of
        the server's CPU in a sustained burst."""
        return self._other_work

    async def turn(self) -> None:
        """Wait for this caller's turn. A cancelled caller gives its place up."""
        if not self._others and not self._waiting:
            await asyncio.sleep(0)  # nobody to make room for: one yield, and on
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        if self._releasing is None:
            self._releasing = loop
            loop.call_soon(self._release)
        await waiter

    def _release(self) -> None:
        """Let the next `per_turn` waiters go (all of them once no other work is in flight; a
        callback of the loop, so no task to own), and come back in the next turn while any are
        left."""
        let_go = 0
        limit = self._per_turn if self._others else len(self._waiting)
        waiting = self._waiting
        while waiting and let_go < limit:
            waiter = waiting.popleft()
            if not waiter.done():  # a cancelled caller's future is done already
                waiter.set_result(None)
                let_go += 1
        loop, self._releasing = self._releasing, None
        if waiting and loop is not None:
            self._releasing = loop
            loop.call_soon(self._release)


class _OtherWork:
    """`RefusalPacer.other_work`: counts the work in flight (re-entrant: only a counter)."""

    __slots__ = ("_pacer",)

    def __init__(self, pacer: RefusalPacer) -> None:
        self._pacer = pacer

    def __enter__(self) -> None:
        pacer = self._pacer
        pacer._others += 1
        pacer._in_flight[0] = pacer._others
        if pacer.mirror is not None:
            pacer.mirror[0] = pacer._others

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pacer = self._pacer
        pacer._others -= 1
        pacer._in_flight[0] = pacer._others
        if pacer.mirror is not None:
            pacer.mirror[0] = pacer._others
        if not pacer._others and pacer.on_idle is not None:
            pacer.on_idle()
