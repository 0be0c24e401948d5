"""The one source of time: wall-clock epoch milliseconds, a monotonic reading, and a timer.

Every rule that depends on time (a hold's deadline, a token's `exp`, an idempotency key's age,
a rate limit's refill, a WebSocket's flood window) reads it from the `Clock` the application
was built with (`sneakerd.web.keys.CLOCK`), so a test can put a `ManualClock` there and move
time itself instead of sleeping. What only paces the server, not a rule (the hub's flush tick,
the key sweep's period, the transport's connection deadlines), waits on the event loop directly.

The decision code compares deadlines millions of times in a burst; plain ints are cheaper than
datetimes and are not tracked by the garbage collector. Conversion to ISO 8601 happens only at
the edges.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Cancellable(Protocol):
    """A scheduled callback; `cancel` makes sure it will not run (harmless once it has)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Tells the time and runs a callback when a wall-clock time comes."""

    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds: what deadlines and stored times are in."""
        ...

    def monotonic_ms(self) -> int:
        """Milliseconds from an arbitrary origin that never go back, for measuring intervals
        (a rate limit's refill, a flood window): a wall clock stepped back by NTP would make
        an interval negative and keep a window open until the wall clock caught up."""
        ...

    def call_at(self, at_ms: int, callback: Callable[[], None]) -> Cancellable:
        """Run `callback` once the wall clock reaches `at_ms` (soon, if it already has).

        The callback never runs inside `call_at` itself: the caller stores the handle when the
        call returns (the drop actor does), and the callback must find it stored.
        """
        ...


class SystemClock:
    """The real clock; its timers run on the running asyncio event loop."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def call_at(self, at_ms: int, callback: Callable[[], None]) -> Cancellable:
        """The deadline becomes a delay on the loop's monotonic timer when it is set, so a
        wall-clock step after that does not change when it fires; a caller that must not act
        early (the drop actor) compares `now_ms()` with its deadline again when it runs."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at_ms - self.now_ms()) / 1000)
        return loop.call_at(loop.time() + delay, callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to, for tests of time-dependent rules.

    Modelled on trio's `MockClock` with its default rate of 0: time stands still while the
    event loop runs, and `advance(ms)` moves it forward, running each callback that comes due
    in the order of its time (callbacks set for the same time run in the order they were set)
    and with `now_ms()` reading that time while it runs. A callback may set another; one that
    falls within the same advance runs in its turn. A callback set for a time already reached
    runs on the event loop's next turn, as on the `SystemClock` (or at the next `advance`,
    when no loop is running). The monotonic reading moves with the wall clock.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._origin = start_ms
        self._timers: list[tuple[int, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def monotonic_ms(self) -> int:
        return self._now - self._origin

    def call_at(self, at_ms: int, callback: Callable[[], None]) -> Cancellable:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (at_ms, next(self._order), timer))
        if at_ms <= self._now:
            with contextlib.suppress(RuntimeError):  # no loop: the next `advance` runs it
                asyncio.get_running_loop().call_soon(self._run_due, self._now)
        return timer

    @property
    def pending(self) -> int:
        """How many callbacks are set and not cancelled (for tests)."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def advance(self, ms: int) -> None:
        """Move time forward by `ms` (0 runs only what is already due), running what comes due."""
        if ms < 0:
            raise ValueError("a clock does not go back")
        self._run_due(self._now + ms)

    def _run_due(self, until_ms: int) -> None:
        while self._timers and self._timers[0][0] <= until_ms:
            at_ms, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, at_ms)
            timer.cancel()  # it runs once; a late `cancel` from its owner is then harmless
            timer.callback()
        self._now = max(self._now, until_ms)


def from_datetime(value: datetime) -> int:
    """A datetime (naive ones are taken as UTC, as the stores keep them) to epoch milliseconds.

    Sub-millisecond digits are truncated, never rounded, so a stored value reads back exactly.
    """
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def iso(ms: int) -> str:
    """Epoch milliseconds as docs/API.md's time format: `2026-11-24T10:00:00.000Z`."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


def sql_datetime(ms: int) -> str:
    """Epoch milliseconds as a UTC `DATETIME(3)` literal: `2026-11-24 10:00:00.000`."""
    return f"{_sql_second(ms // 1000)}{ms % 1000:03d}"


# A reply carries two timestamps and a batch writes several, nearly all within the same few
# seconds: each second is formatted once (strftime per timestamp showed in the profile of a
# hold; the numbers are in loadtest/README.md).
@functools.lru_cache(maxsize=1024)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


@functools.lru_cache(maxsize=1024)
def _sql_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.")


def parse_iso(text: str) -> int:
    """ISO 8601 text to epoch milliseconds; a time without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return from_datetime(value)
