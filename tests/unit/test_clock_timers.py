"""The clock's timers: `ManualClock.advance` runs what comes due, in order, at its time; the
`SystemClock` runs its timers on the event loop at the wall-clock time asked for."""

from __future__ import annotations

import asyncio

import pytest

from sneakerd.clock import ManualClock, SystemClock

START = 1_000_000


def test_advance_runs_what_came_due_in_time_order_each_at_its_time() -> None:
    clock = ManualClock(START)
    ran: list[tuple[str, int]] = []
    for name, at in [("c", START + 30), ("a", START + 10), ("b", START + 10), ("d", START + 31)]:
        clock.call_at(at, lambda name=name: ran.append((name, clock.now_ms())))
    clock.advance(9)
    assert ran == [] and clock.now_ms() == START + 9
    clock.advance(21)
    # Same time: in the order they were set. Each reads its own deadline as the time.
    assert ran == [("a", START + 10), ("b", START + 10), ("c", START + 30)]
    assert clock.now_ms() == START + 30 and clock.pending == 1
    clock.advance(1)
    assert ran[-1] == ("d", START + 31) and clock.pending == 0


def test_a_cancelled_callback_never_runs_and_a_late_cancel_is_harmless() -> None:
    clock = ManualClock(START)
    ran: list[str] = []
    kept = clock.call_at(START + 5, lambda: ran.append("kept"))
    dropped = clock.call_at(START + 5, lambda: ran.append("dropped"))
    dropped.cancel()
    assert clock.pending == 1
    clock.advance(5)
    kept.cancel()  # after it ran
    assert ran == ["kept"] and clock.pending == 0


def test_a_callback_may_set_another_that_runs_in_its_turn() -> None:
    clock = ManualClock(START)
    ran: list[tuple[str, int]] = []

    def first() -> None:
        ran.append(("first", clock.now_ms()))
        clock.call_at(START + 20, lambda: ran.append(("inside", clock.now_ms())))
        clock.call_at(START + 200, lambda: ran.append(("beyond", clock.now_ms())))

    clock.call_at(START + 10, first)
    clock.call_at(START + 30, lambda: ran.append(("after", clock.now_ms())))
    clock.advance(100)
    assert ran == [("first", START + 10), ("inside", START + 20), ("after", START + 30)]
    assert clock.now_ms() == START + 100 and clock.pending == 1


def test_time_never_goes_back_and_the_monotonic_reading_moves_with_it() -> None:
    clock = ManualClock(START)
    before = clock.monotonic_ms()
    clock.advance(1_234)
    assert clock.monotonic_ms() - before == 1_234
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.now_ms() == START + 1_234


async def test_a_callback_already_due_runs_on_the_loops_next_turn_not_inside_call_at() -> None:
    clock = ManualClock(START)
    ran: list[int] = []
    clock.call_at(START - 5, lambda: ran.append(clock.now_ms()))
    clock.call_at(START, lambda: ran.append(clock.now_ms()))
    assert ran == []
    await asyncio.sleep(0)
    assert ran == [START, START] and clock.pending == 0


def test_without_a_loop_a_callback_already_due_waits_for_the_next_advance() -> None:
    clock = ManualClock(START)
    ran: list[int] = []
    clock.call_at(START, lambda: ran.append(clock.now_ms()))
    assert ran == []
    clock.advance(0)
    assert ran == [START]


async def test_the_system_clock_runs_a_timer_at_its_wall_clock_time() -> None:
    clock = SystemClock()
    fired: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    ran: list[str] = []
    at = clock.now_ms() + 30
    clock.call_at(at, lambda: fired.set_result(clock.now_ms()))
    clock.call_at(at - 10, lambda: ran.append("cancelled")).cancel()
    clock.call_at(at - 1_000, lambda: ran.append("overdue"))  # runs at once, on the loop
    assert ran == []
    fired_at = await asyncio.wait_for(fired, 5)
    assert fired_at >= at - 2  # the loop's timer may round by its resolution
    assert ran == ["overdue"]
    before = clock.monotonic_ms()
    await asyncio.sleep(0.01)
    assert clock.monotonic_ms() >= before
