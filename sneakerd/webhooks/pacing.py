"""When the deliverer steps aside: while the drops' actors commit a burst, it sends a trickle.

A delivery competes with the burst that made it: its POST, its receiver, its bookkeeping in the
database all take CPU from the server and from MariaDB on the same cores, and the actors' reply
to a shopper waits for every callback ahead of it on the loop. Measured (loadtest/README.md,
"webhooks"), a deliverer that keeps pace with a 2,000 holds/s burst adds a third to the
reserve p99. Nothing obliges it to keep pace: the guarantee is at least once, in commit order
per drop, within a day's retries (docs/webhooks.md). So while the outbox grows faster than
`busy_rate` events a second, the deliverer *yields*: it passes once every `period_ms` instead
of every 200 ms and sends at most `trickle` events a second across every lane (still moving,
so a receiver's outage is still noticed), so that its queries, commits and POSTs during the
burst are a handful a second; it catches up at full speed once the burst is over.

The signal is the outbox itself (how fast its newest id rises), not the actors: the same rule
then holds in a `webhooks deliver` process of its own, which sees the actors' commits only
through the database, and among nodes (each reads the drops it delivers).

A burst that lasts longer than `longest_yield_ms` is not a burst but the load the deliverer
must keep up with: it stops yielding then, until the rate falls below `busy_rate` again, so a
sustained load delays an event by that long at most, never without bound.

Pure: the deliverer passes the clock's monotonic milliseconds, so tests drive it without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUSY_RATE = 200.0
"""Events a second written to the outbox that mean the actors are in a burst."""

TRICKLE = 20.0
"""Events a second the deliverer still sends while it yields (every lane together)."""

LONGEST_YIELD_MS = 30_000
"""Longest the deliverer yields in one go: past it, the load is sustained and it keeps up."""

PERIOD_MS = 1_000
"""How often the deliverer passes while it yields (each pass: one reading of the outbox, one
fan-out, the trickle's share of POSTs, one commit of their results)."""

SAMPLE_MS = 150
"""The shortest interval a rate is measured over. Shorter than the 200 ms between passes, so
the first pass after a burst begins already yields (at 250 ms it went on at full speed for
one more pass: 500 events fanned out and ~0.4 s of POSTs at the burst's start)."""


@dataclass(slots=True)
class Pacer:
    busy_rate: float = BUSY_RATE
    trickle: float = TRICKLE
    longest_yield_ms: int = LONGEST_YIELD_MS
    period_ms: int = PERIOD_MS
    burst: float = field(default=0.0)
    """Sends saved up at most while yielding (default: one period's trickle, a pass's worth)."""
    rate: float = 0.0
    """The outbox's growth, events a second, over the last interval measured."""
    _head: int | None = None
    _head_at: int = 0
    _busy_since: int | None = None
    _tokens: float = 0.0
    _tokens_at: int = 0

    def __post_init__(self) -> None:
        if self.burst <= 0:
            self.burst = max(1.0, self.trickle * self.period_ms / 1000)

    def observe(self, now_ms: int, head: int) -> None:
        """The outbox's newest event id at `now_ms` (monotonic): updates the rate."""
        if self._head is None:
            self._head, self._head_at = head, now_ms
            return
        elapsed = now_ms - self._head_at
        if elapsed < SAMPLE_MS:
            return
        self.rate = max(0, head - self._head) * 1000 / elapsed
        self._head, self._head_at = head, now_ms
        if self.rate < self.busy_rate:
            self._busy_since = None
        elif self._busy_since is None:
            self._busy_since = now_ms
            self._tokens, self._tokens_at = self.burst, now_ms

    def yielding(self, now_ms: int) -> bool:
        """True while a burst is on and has not lasted `longest_yield_ms` yet."""
        since = self._busy_since
        return since is not None and now_ms - since < self.longest_yield_ms

    def may_send(self, now_ms: int) -> bool:
        """Whether one more event may go now (always, unless yielding); takes its share."""
        if not self.yielding(now_ms):
            return True
        self._tokens = min(
            self.burst, self._tokens + (now_ms - self._tokens_at) * self.trickle / 1000
        )
        self._tokens_at = now_ms
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def share(self, now_ms: int, limit: int) -> int:
        """How many events a pass should read ahead or fan out: `limit`, or while yielding no
        more than the trickle can send before the next pass."""
        return limit if not self.yielding(now_ms) else min(limit, max(1, int(self.burst) * 2))
