"""The use cases: what reserving, cancelling, buying, and making, changing or deleting a drop
do, and what the drop's stats are; the HTTP routes call these (the CLI's operator commands use
the store directly).

Each write goes to the drop's actor, which decides it with the domain's rules and answers
after the commit; the answer becomes a value or, for a `Rejection`, the `DomainError` it
stands for, here and only here (`_error`). The store is authoritative for terminal reservation
states (expired, cancelled, completed: they never change again), the actor for active holds.
What comes before a use case (who asks, rate, body, Idempotency-Key) is the web front's
(`sneakerd.web.routes.front`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import NoneType
from typing import TypeVar

from sneakerd import errors
from sneakerd.actors.registry import DropHandle, Registry
from sneakerd.clock import Clock
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import (
    Cancel,
    Command,
    DeleteDrop,
    JoinQueue,
    Purchase,
    RequestKey,
    Reserve,
    UpdateDrop,
)
from sneakerd.domain.events import DropCreated
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropState,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.queue import QueueTicket
from sneakerd.domain.raffle_book import raffle_creation_refusal
from sneakerd.domain.rules import Rejection, window_refusal
from sneakerd.pacer import RefusalPacer
from sneakerd.store import DropStats, Store

T = TypeVar("T")

EXPIRING_WINDOW_MS = 60_000
"""`holdsExpiringNextMinute` counts the active holds due within this (its end included)."""


def _error(refusal: Rejection) -> errors.DomainError:
    """The `DomainError` a refusal stands for: the one place where the actor's `Rejection`
    becomes the error a caller sees."""
    return refusal.to_error()


def _expect(reply: Reply, kind: type[T]) -> T:
    """The actor's reply as the `kind` it must be; a refusal is raised as its error."""
    if isinstance(reply, Rejection):
        raise _error(reply)
    if not isinstance(reply, kind):  # a bug, not a client error
        raise TypeError(f"expected {kind.__name__}, the actor answered {reply!r}")
    return reply


class DropService:
    def __init__(self, *, store: Store, registry: Registry, clock: Clock) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self._refusals = RefusalPacer()

    @property
    def in_flight(self) -> array[int]:
        """How many holds, purchases and cancels are in flight here (see `other_work`), as one
        machine integer that the fan-out thread reads as it sends."""
        return self._refusals.in_flight

    def share_count(self, slot: memoryview | None) -> None:
        """Keep the count of writes in flight in `slot` too, for this machine's other workers
        (`cluster/busy_board.py`)."""
        self._refusals.mirror = slot

    def watch_idle(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the last of the writes in flight here ends."""
        self._refusals.on_idle = callback

    def other_work(self) -> AbstractContextManager[None]:
        """Around a request's steps that refusals decided here should make room for (the
        user check, the act, the reply: several loop turns); see `sneakerd.pacer`."""
        return self._refusals.other_work()

    async def _ask(self, drop_id: int, command: Command) -> Reply:
        with self._refusals.other_work():  # refusals make room for it (`sneakerd.pacer`)
            actor = await self.registry.get(drop_id)
            return await actor.ask(command)

    async def reserve_refusal(
        self, user_id: int, drop_id: int, *, admitted: bool = False
    ) -> tuple[DropHandle | None, errors.DomainError | None]:
        """The drop's handle, and the refusal of a reserve that its committed state already
        shows (sold out, limit reached, not live; or no such drop), read without queueing: it
        is true as of this moment, and in a burst nearly every request is one. The refusal is
        None when only the actor can decide (`DropActor.refusal` says when); the caller then
        passes the handle on to `reserve`, so a reserve looks its drop up once."""
        try:
            actor = await self.registry.get(drop_id)
        except errors.NotFound as exc:
            return None, exc
        refused = actor.refusal(user_id) or _admission_refusal(actor, admitted)
        if refused is None:
            return actor, None
        # A fairness point: this answer needs no I/O, so a crowd hammering a sold-out drop
        # would fill every loop turn with its refusals; it waits for its turn behind the other
        # requests' steps, a few refusals a turn (`sneakerd.pacer`; the measurements are in
        # loadtest/README.md).
        await self._refusals.turn()
        return actor, _error(refused)

    async def reserve(
        self,
        user_id: int,
        drop_id: int,
        key: RequestKey | None = None,
        *,
        handle: DropHandle | None = None,
        admitted: bool = False,
    ) -> ReservationRecord:
        """Hold one unit, as the drop's actor decides (a success is recorded under `key` in
        the commit that made it). Callers that can answer early ask `reserve_refusal` first,
        and pass the `handle` it found."""
        command = Reserve(user_id, key, admitted)
        if handle is None:
            return _expect(await self._ask(drop_id, command), ReservationRecord)
        try:
            with self._refusals.other_work():
                reply = await handle.ask(command)
        except errors.ActorStopped:
            # It stopped since it was found (its drop was deleted): ask the registry again,
            # which says what is true now.
            reply = await self._ask(drop_id, command)
        return _expect(reply, ReservationRecord)

    async def _owned(self, user_id: int, reservation_id: int) -> ReservationRecord:
        record = await self.store.get_reservation(reservation_id)
        if record is None or record.user_id != user_id:
            raise errors.NotFound("No such reservation")
        return record

    async def cancel(self, user_id: int, reservation_id: int) -> ReservationRecord:
        record = await self._owned(user_id, reservation_id)
        if record.status is ReservationStatus.ACTIVE:
            reply = await self._ask(record.drop_id, Cancel(user_id, reservation_id))
            if not _is_not_active(reply):
                return _expect(reply, ReservationRecord)
            record = await self._owned(user_id, reservation_id)
        raise _ended(record)

    async def purchase(
        self, user_id: int, username: str, reservation_id: int, key: RequestKey | None = None
    ) -> tuple[PurchaseRecord, bool]:
        """The purchase and whether it was made now (False: the same reservation was bought
        before, and that purchase is returned again). A purchase made now was recorded under
        `key` in its own commit."""
        record = await self._owned(user_id, reservation_id)
        if record.status is ReservationStatus.ACTIVE:
            reply = await self._ask(
                record.drop_id, Purchase(user_id, reservation_id, username, key)
            )
            if not _is_not_active(reply):
                return _expect(reply, PurchaseRecord), True
            record = await self._owned(user_id, reservation_id)
        if record.status is ReservationStatus.COMPLETED:
            existing = await self.store.purchase_for_reservation(reservation_id)
            if existing is not None:
                return existing, False
        raise _ended(record)

    async def join_queue(self, user_id: int, drop_id: int) -> QueueTicket:
        """A place in the drop's waiting room, as committed (the same one when asked again)."""
        return _expect(await self._ask(drop_id, JoinQueue(user_id)), QueueTicket)

    async def queue_ticket(self, user_id: int, drop_id: int) -> QueueTicket:
        """The user's ticket; raises `NotFound` if they hold none. Read from the running
        actor without queueing where it is here; asked of the owner where it is not."""
        handle = await self.registry.get(drop_id)
        read = getattr(handle, "ticket", None)
        if read is None:
            return _expect(await handle.ask(JoinQueue(user_id, join=False)), QueueTicket)
        state = handle.state
        ticket: QueueTicket | None = read(user_id)
        if ticket is None or state is None or not state.drop.info.queue:
            raise errors.NotFound("You are not in this drop's queue")
        return ticket

    def committed_state(self, drop_id: int) -> DropState | None:
        """The drop's last committed state as its running actor holds it, without starting
        one (a read must not wake the actor of an ended drop); None when no actor runs it."""
        for actor in self.registry.running():
            if actor.drop_id == drop_id:
                state = actor.state
                return None if state is None or state.drop.deleted else state
        return None

    async def drop_stats(self, drop_id: int) -> DropStats:
        """A drop's counts, read from its actor's committed state where it has one (no query
        for a live drop, however busy), else from the store; raises `NotFound`.

        The sold-out time is the last purchase's, looked up only once every unit is sold:
        the drop keeps no column for it, and no purchase follows the one that sold it out."""
        now = self.clock.now_ms()
        soon = now + EXPIRING_WINDOW_MS
        state = self.committed_state(drop_id)
        if state is not None:
            drop = state.drop
            expiring = sum(1 for hold in state.holds.values() if hold.expires_at <= soon)
        else:
            found = await self.store.get_drop(drop_id)
            if found is None:
                raise errors.NotFound("No such drop")
            drop = found
            expiring = await self.store.expiring_holds(drop_id, soon) if drop.reserved else 0
        sold_out_at = None
        if drop.sold > 0 and drop.sold == drop.initial_stock:
            sold_out_at = await self.store.last_purchase_at(drop_id)
        return DropStats(drop, expiring, sold_out_at)

    async def create_drop(self, info: DropInfo, initial_stock: int, actor: str = "") -> Drop:
        """A new drop, its actor started; raises `InvalidDrop` for a window that cannot be.
        With an `actor`, the audit log's `create` entry commits with the drop's row."""
        _expect(window_refusal(info.starts_at, info.ends_at), NoneType)
        now = self.clock.now_ms()
        _expect(raffle_creation_refusal(info, now), NoneType)
        drop = await self.store.create_drop(info, initial_stock, now, actor)
        self.registry.announce([DropCreated(drop.id, drop.version, drop)])  # committed: say so
        await self.registry.get(drop.id)
        return drop

    async def update_drop(self, drop_id: int, update: UpdateDrop) -> Drop:
        return _expect(await self._ask(drop_id, update), Drop)

    async def delete_drop(self, drop_id: int, actor: str = "") -> None:
        _expect(await self._ask(drop_id, DeleteDrop(actor)), NoneType)


def _admission_refusal(handle: DropHandle, admitted: bool) -> Rejection | None:
    """Without an admission token, a reserve on a drop with a waiting room is refused at the
    front, as the committed state shows (the actor checks every admitted one)."""
    state = handle.state
    if admitted or state is None or not state.drop.info.queue:
        return None
    return Rejection(errors.NotAdmitted, "Join the queue and reserve once admitted")


def _is_not_active(reply: Reply) -> bool:
    return isinstance(reply, Rejection) and reply.error is errors.ReservationNotActive


def _ended(record: ReservationRecord) -> errors.DomainError:
    """The error for acting on a reservation that is no longer active."""
    if record.status is ReservationStatus.EXPIRED:
        return errors.ReservationExpired("This reservation has expired")
    return errors.ReservationNotActive(f"This reservation is {record.status.value}")
