"""The single writer of one drop.

The actor's task takes every message waiting in its mailbox as one batch, decides them with the
pure `DropBook`, commits the batch in one transaction, and only then answers the callers, arms
the expiry timer and publishes events ("commit before reply"). Memory moves to the new state only
after the commit returns, so a failed commit leaves it exactly as it was.

Failure handling:
- `VersionConflict` (someone else wrote the drop row): reload from the database and decide the
  same batch again, a few times at most.
- `Unavailable` (the database failed, possibly during COMMIT, so the outcome is unknown): answer
  the batch `Unavailable`, and reload before the next batch so that the version check decides
  what really committed.
- A bug in our own code: logged, the batch answered `Unavailable`, the actor reloads and goes on,
  so one bad message cannot take a drop down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sneakerd import errors
from sneakerd.actors.deadlines import DeadlineQueue
from sneakerd.actors.ids import ActorIds
from sneakerd.actors.mailbox import Envelope, Mailbox, ReplyTo
from sneakerd.actors.pause_check import PauseRecheck, written_elsewhere
from sneakerd.actors.sink import EventSink
from sneakerd.clock import Cancellable, Clock
from sneakerd.domain.book import DropBook, Reply
from sneakerd.domain.commands import Command, Enter, Expire, Purchase, Reserve
from sneakerd.domain.events import Expired
from sneakerd.domain.model import Drop, DropState, DropStatus
from sneakerd.domain.outcome import Outcome
from sneakerd.domain.queue import QueueTicket, TicketRef, room_ticket, room_wakeup
from sneakerd.domain.raffle_book import next_due, raffle_ids_for
from sneakerd.domain.rules import PAUSED, Rejection, reserve_refusal
from sneakerd.store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""The most callers' messages one batch takes from the mailbox (the holds a timer finds due come
on top; `rows.CHUNK` bounds each statement). It is a bound, not a fairness knob: every batch
pays a commit round trip whatever its size, so a small cap costs throughput (docs/DESIGN.md,
"Batch caps and round trips")."""

MAX_CONFLICT_RETRIES = 3


class _Tick:
    """Wakes the actor when the earliest hold is due; carries nothing."""

    __slots__ = ()


TICK = _Tick()
Message = Command | _Tick
Request = Envelope[Command, Reply]
"""A caller's message, as the batch's decision sees it (ticks are taken out first)."""


@dataclass(slots=True)
class ActorStatistics:
    """What one actor has been through, kept in plain counters: `/metrics` reads
    `last_batch_size`, the actor's tests read the rest (the histograms a scrape sees are fed
    through the `ActorObserver` instead)."""

    batches: int = 0
    conflicts: int = 0
    row_conflicts: int = 0
    failures: int = 0
    last_batch_size: int = 0
    max_batch_size: int = 0
    expired: int = 0
    expiry_lags_ms: list[int] = field(default_factory=list)
    """Lag of each expiry (deadline to commit); the last 1,000 only."""

    def record_expiry(self, lag_ms: int) -> None:
        self.expired += 1
        self.expiry_lags_ms.append(lag_ms)
        if len(self.expiry_lags_ms) > 1_000:
            del self.expiry_lags_ms[:500]


class ActorObserver(Protocol):
    """Told about each committed batch and each expiry (metrics implement it)."""

    def batch_committed(self, drop_id: int, size: int, commit_seconds: float) -> None: ...

    def hold_expired(self, drop_id: int, lag_ms: int) -> None: ...


class DropActor:
    """Owns one drop: every write to it goes through `ask`."""

    def __init__(
        self,
        drop_id: int,
        *,
        store: Store,
        sink: EventSink,
        clock: Clock,
        hold_ms: int,
        observer: ActorObserver | None = None,
        on_deleted: Callable[[DropActor], None] | None = None,
        epoch: int | None = None,
        draw_delay_ms: int = 0,
    ) -> None:
        self.drop_id = drop_id
        self._observer = observer
        self._on_deleted = on_deleted
        """Told once, as the actor ends, that its drop was deleted or its lease lost (the
        registry forgets it)."""
        self.epoch = epoch
        """The lease epoch this actor was granted where drops are owned by leases; every commit
        carries it (`Changes.epoch`), so once another node takes the drop this one cannot write."""
        self._lost = False
        self.last_active_ms = 0
        """When the actor last took a batch (the cluster hands back only quiet drops)."""
        self._store = store
        self._sink = sink
        self._clock = clock
        self._hold_ms = hold_ms
        self._draw_delay_ms = draw_delay_ms
        """How long a raffle's draw waits after its entries' digest is due (RAFFLE_DRAW_DELAY)."""
        self._mailbox: Mailbox[Message, Reply] = Mailbox(f"drop {drop_id} actor")
        self._ids = ActorIds(store)
        self._deadlines = DeadlineQueue()
        self._pause_check = PauseRecheck(clock)
        self._state: DropState | None = None
        self._stale = True
        self._deleted = False
        self._timer: Cancellable | None = None
        self._timer_at: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = ActorStatistics()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the drop and its holds, take its first blocks of ids, then start the task;
        overdue holds expire at once.

        Raises `NotFound` for a drop that does not exist (or was deleted), `Unavailable` if
        the database cannot be read.
        """
        await self._reload()
        if self._deleted:
            raise errors.NotFound(f"drop {self.drop_id} does not exist")
        await self._prime_ids()
        self._task = asyncio.create_task(self._run(), name=f"drop-actor-{self.drop_id}")
        self._mailbox.tell(TICK)

    async def stop(self) -> None:
        """Finish what is queued (decided and committed), then end; later asks fail at once."""
        self._mailbox.close()
        if self._task is not None:
            await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def state(self) -> DropState | None:
        """The last committed state, as the actor keeps it: read it, never change it (it moves
        with each commit; take `copy()` to keep one)."""
        return self._state

    @property
    def mailbox_depth(self) -> int:
        return self._mailbox.depth

    def refusal(self, user_id: int) -> Rejection | None:
        """A reserve's refusal read from the last committed state, without queueing; None when
        it might succeed or when memory may be behind the database (after a failure, before
        the reload), so that only the batch decides those."""
        state = self._state
        if state is None or self._stale or self._deleted or not self.running:
            return None
        count = state.user_counts.get(user_id, 0)
        made = state.user_holds.get(user_id, 0)
        refused = reserve_refusal(state.drop, state.drop.stock, count, self._clock.now_ms(), made)
        return None if refused is PAUSED and self._pause_check.due(state) else refused

    def ticket(self, user_id: int) -> QueueTicket | None:
        """`user_id`'s waiting-room ticket as last committed (a read, without queueing)."""
        state = self._state
        if state is None or self._deleted:
            return None
        return room_ticket(state.drop, state.queue, user_id, self._clock.now_ms(), self._hold_ms)

    async def ask(self, command: Command) -> Reply:
        """Send a command and wait for its reply (after the commit that carries it)."""
        return await self._mailbox.ask(command)

    def post(self, command: Command, reply: ReplyTo[Reply]) -> None:
        """Send a command whose reply goes to `reply` (after the commit that carries it);
        raises `ActorStopped` at once if the actor no longer takes commands."""
        self._mailbox.post(command, reply)

    # -- the loop: prepare, decide, commit, deliver ------------------------------------------

    async def _run(self) -> None:
        try:
            while batch := await self._mailbox.take_batch(MAX_BATCH):
                requests = self._prepare(batch)
                try:
                    await self._serve(requests)
                except errors.LeaseLost as exc:
                    self._lose(requests, exc)
                except errors.Unavailable as exc:
                    self._give_up(requests, exc)
                except Exception:
                    log.exception("drop %s: batch of %d failed", self.drop_id, len(batch))
                    self._give_up(requests, errors.Unavailable("internal error; nothing was done"))
                if self._deleted:
                    self._mailbox.close()
        finally:
            self._disarm()
            # Anything still queued after a close gets an answer, never a hang.
            while rest := await self._mailbox.take_batch(MAX_BATCH):
                self._fail(rest, errors.ActorStopped(f"drop {self.drop_id} actor stopped"))
            if (self._deleted or self._lost) and self._on_deleted is not None:
                self._on_deleted(self)

    def _prepare(self, batch: list[Envelope[Message, Reply]]) -> list[Request]:
        """The batch's requests (a timer's tick carries none: it only makes due holds expire)."""
        self.stats.batches += 1
        self.last_active_ms = self._clock.now_ms()
        self.stats.last_batch_size = len(batch)
        self.stats.max_batch_size = max(self.stats.max_batch_size, len(batch))
        return cast(list[Request], [e for e in batch if not isinstance(e.message, _Tick)])

    def lose(self) -> None:
        """The lease is gone (found by the registry's renewal): answer nothing more, stop."""
        self._lost = True
        self._mailbox.close()

    def _lose(self, requests: list[Request], exc: errors.LeaseLost) -> None:
        log.warning("drop %s: lease lost (epoch %s); stopping", self.drop_id, self.epoch)
        self._fail(requests, exc)
        self.lose()

    def _give_up(self, requests: list[Request], exc: errors.Unavailable) -> None:
        """The one way a batch fails: its callers (those not yet answered) get `exc`, memory
        stays as it was, and the actor reloads before the next batch and comes back soon, so
        that due expiries are not forgotten. After a failed COMMIT the outcome is unknown;
        the reload and the version check decide what really committed."""
        self.stats.failures += 1
        self._stale = True
        self._fail(requests, exc)
        self._arm_retry()

    async def _serve(self, requests: list[Request]) -> None:
        """Decide `requests`, commit them, then answer and publish; raises `Unavailable`.

        A `RowConflict` is one caller's row refused by a constraint (a key row that already
        exists, say): nothing was written, so the same requests are served again in two
        halves, each decided against the state as it then is, until the caller whose row it
        is stands alone and only that caller is refused. That costs about 2 log2(n) extra
        commits, and only when a commit was refused.
        """
        if self._lost:
            raise errors.LeaseLost("this node no longer owns the drop; retry")
        if self._stale or self._pause_check.due(self._state):
            self._pause_check.mark()
            await self._reload(tell=True)
        if self._deleted:
            self._fail(requests, errors.NotFound("No such drop"))
            return
        try:
            outcome, replies = await self._commit_decided(requests)
        except errors.RowConflict:
            self.stats.row_conflicts += 1
            log.warning("drop %s: a row of a batch of %d was refused", self.drop_id, len(requests))
            if len(requests) <= 1:
                self._fail(requests, errors.RowRefused("this request could not be recorded"))
                # The holds that came due went back to the deadline queue (`_requeue`), and a
                # batch of the timer's alone has no caller to bring the actor back: its timer
                # must (a retry soon, not at once, as the same row may be refused again).
                self._arm_retry()
                return
            half = len(requests) // 2
            await self._serve(requests[:half])
            await self._serve(requests[half:])
            return
        except errors.NotFound as exc:  # the drop was deleted under us (found on a reload)
            self._fail(requests, exc)
            return
        self._deliver(requests, outcome, replies)

    async def _commit_decided(self, requests: list[Request]) -> tuple[Outcome, list[Reply]]:
        """Decide the requests and commit what they change; after a version conflict (someone
        else wrote the drop row) reload and decide again, a few times at most."""
        for _attempt in range(MAX_CONFLICT_RETRIES + 1):
            await self._ensure_ids(requests)
            outcome, replies, due = self._decide(requests)
            if outcome.changes is None:
                return outcome, replies
            started = time.perf_counter()
            changes = outcome.changes
            if self.epoch is not None:
                changes = dataclasses.replace(changes, epoch=self.epoch)
            try:
                await self._store.commit(changes)
            except errors.RowConflict:
                self._requeue(due)
                raise
            except errors.VersionConflict:
                self.stats.conflicts += 1
                await self._check_lease()
                log.warning("drop %s: version conflict; reloading", self.drop_id)
                await self._reload(tell=True)
                if self._deleted:
                    raise errors.NotFound("No such drop") from None
                continue
            if self._observer is not None:
                seconds = time.perf_counter() - started
                self._observer.batch_committed(self.drop_id, len(requests), seconds)
            return outcome, replies
        raise errors.Unavailable("the drop kept changing; try again")

    async def _check_lease(self) -> None:
        """After a refused commit: if another node took the lease, this actor must stop."""
        if self.epoch is None:
            return
        lease = await self._store.lease_of(self.drop_id)
        if lease is None or lease.epoch != self.epoch:
            raise errors.LeaseLost(f"drop {self.drop_id} is owned elsewhere now; retry")

    def _decide(self, requests: list[Request]) -> tuple[Outcome, list[Reply], tuple[int, ...]]:
        """The pure step: the book decides every request, and the holds that came due, at one
        instant against the last committed state. Memory is not touched."""
        assert self._state is not None
        now = self._clock.now_ms()
        if now >= self._state.drop.info.starts_at:
            # The waiting room's order at `startsAt`, derived from the keys its tickets were
            # committed with: nothing to write, the same order after any reload.
            self._state.queue.draw()
        # Webhook events are written only while a webhook is registered (docs/webhooks.md).
        book = DropBook(
            self._state,
            now=now,
            hold_ms=self._hold_ms,
            ids=self._ids,
            outbox=self._store.webhooks.live,
        )
        due = self._deadlines.pop_due(now)
        if due:
            book.expire(Expire(due))
        book.raffle_step(self._draw_delay_ms)
        replies = [book.decide(e.message) for e in requests]
        return book.finish(), replies, due

    def _requeue(self, due: tuple[int, ...]) -> None:
        """A batch that wrote nothing gives its due holds back to the deadline queue."""
        assert self._state is not None
        holds = self._state.holds
        for reservation_id in due:
            if (hold := holds.get(reservation_id)) is not None:
                self._deadlines.push(hold.expires_at, reservation_id)

    def _deliver(self, requests: list[Request], outcome: Outcome, replies: list[Reply]) -> None:
        """After the commit: memory moves, callers are answered, events go out."""
        self._apply(outcome)
        drop = outcome.drop
        for envelope, reply in zip(requests, replies, strict=True):
            # An admin's edit is answered with the drop as committed (its final version), a
            # queue command with the ticket as committed (with this commit's admissions).
            if isinstance(reply, Drop):
                reply = drop
            elif isinstance(reply, TicketRef):
                reply = self.ticket(reply.user_id)
            envelope.answer(reply)
        if outcome.events:
            self._sink.publish(outcome.events)

    def _apply(self, outcome: Outcome) -> None:
        """Move memory to the committed state; only ever called after the commit returned."""
        state = self._state
        assert state is not None
        committed_at = self._clock.now_ms()
        for event in outcome.events:
            if isinstance(event, Expired):  # read before the hold leaves the table
                lag = max(0, committed_at - state.holds[event.reservation_id].expires_at)
                self.stats.record_expiry(lag)
                if self._observer is not None:
                    self._observer.hold_expired(self.drop_id, lag)
        state.apply(outcome.drop, outcome.delta)
        if outcome.queue is not None:
            state.queue.apply(outcome.queue)
        if outcome.drop.deleted:
            self._deleted = True
            self._disarm()
            return
        for deadline, reservation_id in outcome.new_holds:
            self._deadlines.push(deadline, reservation_id)
        self._arm()

    async def _prime_ids(self) -> None:
        """Take the first id blocks before the first shopper asks, for a drop that can still sell.

        Otherwise a drop's first reservation and first purchase each wait for an allocation
        transaction, and when a drop opens that is every drop's first batch at once, on a loop
        that is busiest then (the measurement is in loadtest/README.md). A failure here is not
        one: the first batch that needs ids asks again and answers `Unavailable` if it must.
        """
        state = self._state
        if state is None or self._deleted:
            return
        drop = state.drop
        if drop.status(self._clock.now_ms()) is DropStatus.ENDED:
            return
        try:
            if drop.stock > 0:
                await self._ids.reservations.ensure(1)
            if drop.stock > 0 or state.holds:
                await self._ids.purchases.ensure(1)
        except errors.Unavailable:
            log.info("drop %s: could not take id blocks ahead; the first batch will", self.drop_id)

    async def _ensure_ids(self, requests: list[Request]) -> None:
        reserves = sum(1 for e in requests if isinstance(e.message, Reserve))
        purchases = sum(1 for e in requests if isinstance(e.message, Purchase))
        entries = sum(1 for e in requests if isinstance(e.message, Enter))
        if self._state is not None:  # a raffle's winners get holds when it draws or passes down
            now, messages = self._clock.now_ms(), (e.message for e in requests)
            reserves += raffle_ids_for(self._state.drop, now, self._draw_delay_ms, messages)
        if entries:
            await self._ids.entries.ensure(entries)
        if reserves:
            await self._ids.reservations.ensure(reserves)
        if purchases:
            await self._ids.purchases.ensure(purchases)

    # -- reload ------------------------------------------------------------------------------

    async def _reload(self, *, tell: bool = False) -> None:
        """Read the drop and its holds again; with `tell`, what another writer changed in
        the drop's description goes out to watchers (`pause_check.written_elsewhere`)."""
        state = await self._store.load_state(self.drop_id)
        if state is None or state.drop.deleted:
            self._deleted = True
            self._stale = False
            return
        if tell and self._state and (news := written_elsewhere(self._state.drop, state.drop)):
            self._sink.publish(news)
        self._state = state
        self._deadlines = DeadlineQueue((h.expires_at, rid) for rid, h in state.holds.items())
        self._stale = False
        self._arm()

    @staticmethod
    def _fail(envelopes: Sequence[Envelope[Any, Reply]], exc: BaseException) -> None:
        for envelope in envelopes:
            envelope.fail(exc)

    # -- the one timer -----------------------------------------------------------------------

    def _arm(self) -> None:
        """Keep one timer armed for the earliest deadline (re-arming only if that moved): a
        hold's, an admission's, the waiting room's draw, or a raffle's."""
        state, deadline = self._state, self._deadlines.next_deadline()
        if state is not None:
            deadline = next_due(deadline, state.drop, self._draw_delay_ms)
            deadline = room_wakeup(state.drop, state.queue, self._clock.now_ms(), deadline)
        if deadline is None:
            self._disarm()
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        self._disarm()
        self._timer = self._clock.call_at(deadline, self._fire)
        self._timer_at = deadline

    def _arm_retry(self, delay_ms: int = 500) -> None:
        """After a failure, come back soon so that due expiries are not forgotten."""
        self._disarm()
        self._timer_at = self._clock.now_ms() + delay_ms
        self._timer = self._clock.call_at(self._timer_at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self._mailbox.tell(TICK)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None
