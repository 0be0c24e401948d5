"""Refusals decided from a drop's committed state take their turn behind the loop's other work:
a crowd on a sold-out drop must not finish all its refusals in the loop turns another request
needs for its own steps (the `multidrop --hot-rate 0` tail)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from sneakerd import errors
from sneakerd.actors.registry import Registry
from sneakerd.clock import SystemClock
from sneakerd.domain.rules import Rejection
from sneakerd.pacer import PER_TURN, RefusalPacer
from sneakerd.service import DropService
from sneakerd.store import Store

SOLD_OUT = Rejection(errors.OutOfStock, "No units left right now")


class SoldOutDrop:
    """A drop handle whose committed state refuses every reserve."""

    drop_id = 1
    state = None

    def refusal(self, user_id: int) -> Rejection | None:
        return SOLD_OUT

    async def ask(self, command: Any) -> Any:
        raise AssertionError("a refused reserve never reaches the actor")


class QuietDrop:
    """A drop with stock: its actor takes a few loop turns (the batch, the commit) to answer."""

    drop_id = 2
    state = None

    def refusal(self, user_id: int) -> Rejection | None:
        return None

    async def ask(self, command: Any) -> Any:
        await hops(4)
        return Rejection(errors.LimitReached, "a reply after four turns")


class TwoDrops:
    async def get(self, drop_id: int) -> SoldOutDrop | QuietDrop:
        return SoldOutDrop() if drop_id == 1 else QuietDrop()


def service() -> DropService:
    return DropService(
        store=cast(Store, None), registry=cast(Registry, TwoDrops()), clock=SystemClock()
    )


async def hops(n: int) -> None:
    """Another request's steps: each one waits for a loop turn."""
    for _ in range(n):
        await asyncio.sleep(0)


async def crowd_and_quiet(drops: DropService, quiet: bool) -> tuple[int, list[int]]:
    """48 refusals of a sold-out drop and, if `quiet`, one reserve on a quiet drop, sent in
    the same turn; how many refusals were answered when the quiet one was (or after the quiet
    one's six turns), and every refusal in the order answered."""
    answered: list[int] = []

    async def refuse(user_id: int) -> None:
        _, refused = await drops.reserve_refusal(user_id, 1)
        assert isinstance(refused, errors.OutOfStock)
        answered.append(user_id)

    async def reserve() -> int:
        handle, refused = await drops.reserve_refusal(999, 2)
        assert refused is None
        with pytest.raises(errors.LimitReached):
            await drops.reserve(999, 2, handle=handle)
        return len(answered)

    crowd = [asyncio.ensure_future(refuse(u)) for u in range(48)]
    if quiet:
        seen = await reserve()
    else:
        await hops(6)
        seen = len(answered)
    await asyncio.gather(*crowd)
    return seen, answered


async def test_a_crowd_of_refusals_makes_room_for_a_quiet_drops_reserve() -> None:
    seen, answered = await crowd_and_quiet(service(), quiet=True)
    # The quiet reserve took six turns: only the refusals let go in them were answered by
    # then, not the whole crowd; then the rest, in the order they came.
    assert seen <= 6 * PER_TURN
    assert answered == list(range(48))


async def test_with_nothing_else_in_flight_a_crowd_of_refusals_is_answered_at_once() -> None:
    seen, answered = await crowd_and_quiet(service(), quiet=False)
    assert seen == 48 and answered == list(range(48))


async def test_at_most_per_turn_go_on_in_each_turn_first_come_first_served() -> None:
    pacer = RefusalPacer(per_turn=3)
    gone: list[int] = []

    async def wait(i: int) -> None:
        await pacer.turn()
        gone.append(i)

    with pacer.other_work():
        tasks = [asyncio.ensure_future(wait(i)) for i in range(10)]
        seen = []
        while len(gone) < 10:
            await asyncio.sleep(0)
            seen.append(len(gone))
    steps = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    assert max(steps) == 3 and gone == list(range(10))
    await asyncio.gather(*tasks)
    assert pacer.waiting == 0


async def test_once_the_other_work_ends_every_waiting_refusal_goes_on() -> None:
    pacer = RefusalPacer(per_turn=1)
    gone: list[int] = []

    async def wait(i: int) -> None:
        await pacer.turn()
        gone.append(i)

    with pacer.other_work():
        tasks = [asyncio.ensure_future(wait(i)) for i in range(10)]
        await asyncio.sleep(0)  # all ten wait
    await asyncio.sleep(0)  # the release's turn: all of them go
    await asyncio.sleep(0)
    assert gone == list(range(10))
    await asyncio.gather(*tasks)


async def test_a_cancelled_caller_gives_its_place_up() -> None:
    pacer = RefusalPacer(per_turn=1)
    gone: list[int] = []

    async def wait(i: int) -> None:
        await pacer.turn()
        gone.append(i)

    with pacer.other_work():
        tasks = [asyncio.ensure_future(wait(i)) for i in range(3)]
        await asyncio.sleep(0)  # all three are waiting
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert gone == [1, 2] and pacer.waiting == 0
    # The pacer is idle again, and a later caller goes on at once, in a later turn.
    await asyncio.wait_for(pacer.turn(), 1)


def test_per_turn_is_one_or_more() -> None:
    with pytest.raises(ValueError):
        RefusalPacer(per_turn=0)


def test_in_flight_counts_the_other_work_for_the_fan_out_thread() -> None:
    """The fan-out thread's send loop reads this one integer without the GIL
    (`web/send_thread.py`): it must follow `other_work` exactly, nested or failed."""
    pacer = RefusalPacer()
    assert list(pacer.in_flight) == [0]
    with pacer.other_work():
        assert list(pacer.in_flight) == [1]
        with pytest.raises(KeyError), pacer.other_work():
            assert list(pacer.in_flight) == [2]
            raise KeyError("a failed hold")
        assert list(pacer.in_flight) == [1]
    assert list(pacer.in_flight) == [0]
    assert pacer.in_flight.itemsize == 8  # what the C loop reads
