"""The deliverer: one owned task that reads the outbox and POSTs each event, signed.

Each pass (every `poll` seconds, at once again while there is more to do):
1. refresh whether any webhook exists (what the actors read at batch time), once a second;
2. fan out events not fanned out yet into one delivery per subscribed webhook;
3. read the first pending delivery of every (webhook, drop) whose next attempt is due, and
   start an attempt for each one not already in flight (nor landed while it was read: that
   read may predate its record).

While the outbox grows fast (the actors commit a burst) the deliverer yields: it sends a
trickle and catches up once the burst is over (`pacing`): a delivery may lag, the burst's
shoppers do not wait for it.

A drop's next event to a webhook waits until the previous one is delivered or dead, so each
receiver sees a drop's events in commit order; attempts for other drops and other webhooks run
side by side (up to `concurrency`), so one slow receiver or drop holds up only itself. The
deliverer never runs in a drop actor's task and reads with its own queries, so it is never part
of a drop's batch; it still shares the cores (and the server's loop) with the actors, which is why
it yields to a burst. Where nodes share the database, `drops` names the drops this node owns:
exactly one node (the lease owner) delivers a drop's events.

At least once: a delivery's row is marked delivered only after its receiver answered 2xx, so a
crash between the two sends it again; receivers de-duplicate by the event's `id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from sneakerd import errors
from sneakerd.clock import Clock, iso
from sneakerd.store.webhook_rows import DEAD, PENDING, DueDelivery, WebhookRows
from sneakerd.webhooks.pacing import Pacer
from sneakerd.webhooks.schedule import RetryPolicy
from sneakerd.webhooks.signing import HEADER, header

log = logging.getLogger(__name__)

REFRESH_S = 1.0
"""How often the deliverer re-reads whether any webhook exists (for a webhook added by another
process; one added through this process counts at once)."""


LANE = 100
"""Events one (webhook, drop) lane reads ahead at a time."""

FAN_OUT = 500
"""Events fanned out per pass; a pass that took this many comes back at once for the rest."""


@dataclass(slots=True)
class DelivererStatistics:
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    in_flight: int = 0


def body(d: DueDelivery) -> bytes:
    """The POST body, `{id, type, createdAt, data}`, byte for byte the same on every retry
    (`data` is stored already rendered)."""
    return (
        f'{{"id":{d.event_id},"type":"{d.event_type}","createdAt":"{iso(d.event_at)}",'
        f'"data":{d.data}}}'
    ).encode()


class Deliverer:
    def __init__(
        self,
        rows: WebhookRows,
        clock: Clock,
        policy: RetryPolicy | None = None,
        *,
        drops: Callable[[], Sequence[int]] | None = None,
        poll: float = 0.2,
        concurrency: int = 32,
        rand: Callable[[], float] = random.random,
        node_id: str = "",
        deliver: bool = True,
        pacer: Pacer | None = None,
    ) -> None:
        self._rows = rows
        self._clock = clock
        self.policy = policy or RetryPolicy()
        self._drops = drops
        self._poll = poll
        self._concurrency = concurrency
        self._rand = rand
        self._node_id = node_id
        self._deliver = deliver
        """False: only keep `live` fresh (another process, `webhooks deliver`, delivers)."""
        """Sent as `Sneakerd-Node`, so an operator (and a test) can tell which node delivered."""
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[tuple[int, int], asyncio.Task[None]] = {}
        self._landed_during_read: set[tuple[int, int]] = set()
        """Lanes that landed while a pass's `due` read was under way: what that read saw of
        them may predate their last record, so the pass leaves them to the next one."""
        self._refreshed_at: float | None = None
        self._wake = asyncio.Event()
        """Set when an attempt lands, so that the (webhook, drop)'s next event goes at once."""
        self._retry_at: int | None = None
        """The soonest retry scheduled since the last pass, so the loop wakes for it."""
        self._closing = False
        self.pacer = pacer or Pacer()
        self.stats = DelivererStatistics()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the client and start the loop of passes."""
        self.open()
        self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    def open(self) -> None:
        """Open the client only: tests drive the passes themselves (`run_once`)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._concurrency),
            headers={"User-Agent": "sneakerd-webhooks/1"},
        )

    async def stop(self) -> None:
        """Finish the pass under way, then end the attempts in flight: closing the client
        makes them fail at once, and an attempt cut short this way is not recorded, so it
        stays pending and is sent again after the restart (at least once).

        Nothing is cancelled inside a database transaction: a pass or a record in progress
        completes (each is bounded by the store's own timeouts)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
        attempts = list(self._in_flight.values())
        if attempts:
            await asyncio.wait(attempts, timeout=self.policy.timeout_ms / 1000)
        for task in attempts:
            task.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        self._session = None

    async def _run(self) -> None:
        while not self._closing:
            busy = False
            self._wake.clear()
            try:
                busy = await self.run_once()
            except errors.Unavailable as exc:
                log.warning("webhooks: the database did not answer (%s); trying again", exc)
            except Exception:
                log.exception("webhooks: a delivery pass failed")
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._nap())

    def _nap(self) -> float:
        """Seconds until the next pass: the poll period, or less when a retry is due sooner;
        while yielding to a burst, the pacer's period (retries wait for it too)."""
        if self._yielding():
            return max(self._poll, self.pacer.period_ms / 1000)
        if self._retry_at is None:
            return self._poll
        return min(self._poll, max(0.0, (self._retry_at - self._clock.now_ms()) / 1000))

    # -- one pass ----------------------------------------------------------------------------

    async def run_once(self) -> bool:
        """One pass; True when there may be more to fan out at once (call again)."""
        loop_time = asyncio.get_running_loop().time()
        if self._refreshed_at is None or loop_time - self._refreshed_at >= REFRESH_S:
            await self._rows.refresh()
            self._refreshed_at = loop_time
        if not self._rows.live or not self._deliver:
            # No webhook: nothing to fan out to, and no delivery can exist (removing a webhook
            # removes its deliveries), so a server without webhooks reads once a second only.
            return False
        drops = None if self._drops is None else list(self._drops())
        self.pacer.observe(self._clock.monotonic_ms(), await self._rows.head(drops))
        now = self._clock.now_ms()
        if self._retry_at is not None and self._retry_at <= now:
            self._retry_at = None  # this pass's query finds it
        fan_limit = self.pacer.share(self._clock.monotonic_ms(), FAN_OUT)
        fanned = await self._rows.fan_out(drops, now, fan_limit)
        self._landed_during_read.clear()
        for due in await self._rows.due(drops, now):
            key = (due.webhook_id, due.drop_id)
            if key in self._in_flight or len(self._in_flight) >= self._concurrency:
                continue
            if key in self._landed_during_read:
                continue  # read before its lane recorded: it may be sent already
            task = asyncio.create_task(self._lane(due), name=f"webhook-{due.id}")
            self._in_flight[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        self.stats.in_flight = len(self._in_flight)
        return fanned >= fan_limit and not self._yielding()

    def _yielding(self) -> bool:
        return self.pacer.yielding(self._clock.monotonic_ms())

    def _landed(self, key: tuple[int, int], _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(key, None)
        self._landed_during_read.add(key)
        if not self._yielding():  # while yielding, the next pass comes at the poll period
            self._wake.set()

    async def wait_idle(self) -> None:
        """Wait for the attempts in flight (tests drive `run_once` and then this)."""
        await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)

    async def _lane(self, head: DueDelivery) -> None:
        """Deliver one (webhook, drop)'s events in order, starting at its due `head`, until one
        fails, one is not due yet, or none is left: each success goes straight on to the next
        event, without waiting for a pass, so a drop's events flow at the receiver's pace
        (one round trip each) rather than one per pass. Successes are recorded a run at a
        time; a crash before that sends them again (at least once)."""
        batch = [head]
        while batch and not self._closing:
            started = self._clock.now_ms()
            sent: list[tuple[int, int]] = []
            for due in batch:
                if due.due_at > self._clock.now_ms() or self._closing:
                    break
                if not self.pacer.may_send(self._clock.monotonic_ms()):
                    break  # yielding to a burst: the next pass goes on from here
                status, error = await self._post(due)
                self.stats.attempts += 1
                if status is not None and 200 <= status < 300:
                    sent.append((due.id, status))
                    continue
                if status is None and self._closing:
                    break  # cut short by our own shutdown: left pending, sent again later
                await self._record_delivered(sent, started)
                await self._record_failure(due, status, error, started)
                return
            await self._record_delivered(sent, started)
            if len(sent) < len(batch):
                return
            ahead = self.pacer.share(self._clock.monotonic_ms(), LANE)
            batch = await self._rows.following(
                head.webhook_id, head.drop_id, batch[-1].event_id, ahead
            )

    async def _record_delivered(self, sent: list[tuple[int, int]], started: int) -> None:
        if not sent:
            return
        self.stats.delivered += len(sent)
        try:
            await self._rows.record_delivered(sent, started=started, now=self._clock.now_ms())
        except errors.Unavailable:
            # Not recorded: they stay pending and are sent again (at least once).
            log.warning(
                "webhooks: could not record %d deliveries; they will be sent again", len(sent)
            )

    async def _record_failure(
        self, due: DueDelivery, status: int | None, error: str | None, started: int
    ) -> None:
        now = self._clock.now_ms()
        attempts = due.attempts + 1
        self.stats.failed += 1
        since = started if due.since is None else due.since
        retry_at = self.policy.next_attempt(attempts, since, now, self._rand)
        state, next_at = (PENDING, retry_at) if retry_at is not None else (DEAD, now)
        if retry_at is not None and (self._retry_at is None or retry_at < self._retry_at):
            self._retry_at = retry_at
        if state == DEAD:
            self.stats.dead += 1
            log.warning(
                "webhooks: delivery %s (event %s to webhook %s) is dead after %d attempts",
                due.id,
                due.event_id,
                due.webhook_id,
                attempts,
            )
        try:
            await self._rows.record_attempt(
                due.id,
                state=state,
                now=now,
                started=started,
                next_attempt_at=next_at,
                status=status,
                error=error,
            )
        except errors.Unavailable:
            # Not recorded: it stays pending and due, and is sent again (at least once).
            log.warning("webhooks: could not record delivery %s; it will be sent again", due.id)

    async def _post(self, due: DueDelivery) -> tuple[int | None, str | None]:
        """POST one event; (status, None) when the receiver answered, else (None, error)."""
        assert self._session is not None
        payload = body(due)
        headers = {
            "Content-Type": "application/json",
            HEADER: header(due.secret, self._clock.now_ms() // 1000, payload),
            "Sneakerd-Event-Id": str(due.event_id),
            "Sneakerd-Event-Type": due.event_type,
            "Sneakerd-Node": self._node_id,
        }
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_ms / 1000)
        try:
            async with self._session.post(
                due.url, data=payload, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None
                return response.status, f"HTTP {response.status}"
        except TimeoutError:
            return None, f"no answer within {self.policy.timeout_ms} ms"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:255]
