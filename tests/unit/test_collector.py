"""The serving process's collection policy (`web/collector.py`), driven by a manual clock.

A recording stand-in for the `gc` module shows what the policy asks for and when; one test uses
the real collector to show that a full pass's survivors leave the next pass's sight.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from sneakerd.clock import ManualClock
from sneakerd.web import collector
from sneakerd.web.collector import (
    CALM_CHECKS,
    CHECK_MS,
    FORCE_GROWTH_BYTES,
    MIN_COMPLETE_MS,
    TIDY_CHECKS,
    Collector,
    GcCallback,
)

MiB = 1024 * 1024


class RecordingGc:
    def __init__(self) -> None:
        self.callbacks: list[GcCallback] = []
        self.calls: list[str] = []
        self.count = (0, 0, 0)
        """gc.get_count(): its last item, young passes since the last full one."""

    def collect(self, generation: int = 2) -> int:
        """A full pass, as the interpreter runs one when asked: with its callbacks."""
        self.calls.append("collect")
        self.count = (0, 0, 0)
        for callback in list(self.callbacks):
            callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
        return 0

    def get_count(self) -> tuple[int, int, int]:
        return self.count

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def full_pass(self) -> None:
        """What the interpreter does around an automatic generation-2 collection."""
        for callback in list(self.callbacks):
            callback("start", {"generation": 2})
        for callback in list(self.callbacks):
            callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})


class Box:
    busy = False
    memory = 100 * MiB


@pytest.fixture
def box() -> Box:
    return Box()


@pytest.fixture
def fake() -> RecordingGc:
    return RecordingGc()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def policy(clock: ManualClock, fake: RecordingGc, box: Box) -> Iterator[Collector]:
    c = Collector(clock, lambda: box.busy, collections=fake, memory=lambda: box.memory)
    c.start()
    fake.calls.clear()
    yield c
    c.stop()


def test_start_walks_everything_once_freezes_it_and_follows_the_passes(
    clock: ManualClock, fake: RecordingGc
) -> None:
    c = Collector(clock, lambda: False, collections=fake, memory=lambda: 0)
    c.start()
    assert fake.calls == ["unfreeze", "collect", "freeze"]
    assert len(fake.callbacks) == 1
    assert clock.pending == 1
    c.stop()
    assert fake.callbacks == []
    assert clock.pending == 0


def test_an_automatic_full_pass_has_its_survivors_frozen(
    policy: Collector, fake: RecordingGc
) -> None:
    fake.full_pass()
    assert fake.calls == ["freeze"]
    assert policy.stats.freezes == 1


@pytest.mark.parametrize(
    ("phase", "generation"), [("stop", 0), ("stop", 1), ("start", 2)], ids=["gen0", "gen1", "start"]
)
def test_young_passes_and_starts_freeze_nothing(
    policy: Collector, fake: RecordingGc, phase: Any, generation: int
) -> None:
    fake.callbacks[0](phase, {"generation": generation})
    assert fake.calls == []
    assert policy.stats.freezes == 0


def test_a_tidy_pass_walks_what_was_promoted_once_no_write_is_in_flight(
    policy: Collector, fake: RecordingGc, clock: ManualClock, box: Box
) -> None:
    fake.count = (0, 0, 1)  # a young pass promoted objects since the last full one
    box.busy = True
    clock.advance(CHECK_MS * 10)
    assert fake.calls == []
    box.busy = False
    clock.advance(CHECK_MS * (TIDY_CHECKS - 1))
    assert fake.calls == []
    clock.advance(CHECK_MS)
    assert fake.calls == ["collect", "freeze"]  # what it walked is frozen too
    assert (policy.stats.tidy, policy.stats.freezes) == (1, 1)
    fake.calls.clear()
    clock.advance(CHECK_MS * 10)
    assert fake.calls == []  # nothing promoted since


def test_no_tidy_pass_when_nothing_was_promoted(
    policy: Collector, fake: RecordingGc, clock: ManualClock
) -> None:
    clock.advance(CHECK_MS * 20)
    assert fake.calls == []
    assert policy.stats.tidy == 0


def test_a_complete_pass_waits_until_no_write_is_in_flight_for_a_while(
    policy: Collector, fake: RecordingGc, clock: ManualClock, box: Box
) -> None:
    fake.full_pass()
    fake.calls.clear()
    box.busy = True
    clock.advance(MIN_COMPLETE_MS * 3)
    assert fake.calls == []  # busy all along, and memory has not grown
    box.busy = False
    clock.advance(CHECK_MS * (CALM_CHECKS - 1))
    assert fake.calls == []  # calm, but not for long enough yet
    clock.advance(CHECK_MS)
    assert fake.calls == ["unfreeze", "collect", "freeze"]
    assert (policy.stats.complete, policy.stats.forced) == (1, 0)


def test_one_write_in_flight_starts_the_calm_again(
    policy: Collector, fake: RecordingGc, clock: ManualClock, box: Box
) -> None:
    fake.full_pass()
    fake.calls.clear()
    clock.advance(MIN_COMPLETE_MS - CHECK_MS * CALM_CHECKS)
    box.busy = True
    clock.advance(CHECK_MS)
    box.busy = False
    clock.advance(CHECK_MS * (CALM_CHECKS - 1))
    assert fake.calls == []
    clock.advance(CHECK_MS)
    assert fake.calls == ["unfreeze", "collect", "freeze"]


def test_no_complete_pass_when_nothing_was_frozen_since_the_last(
    policy: Collector, fake: RecordingGc, clock: ManualClock
) -> None:
    clock.advance(MIN_COMPLETE_MS * 4)
    assert fake.calls == []
    fake.full_pass()
    clock.advance(MIN_COMPLETE_MS)
    assert fake.calls.count("collect") == 1
    fake.calls.clear()
    clock.advance(MIN_COMPLETE_MS * 4)  # calm, but nothing new was frozen
    assert fake.calls == []


def test_never_sooner_than_the_least_interval(
    policy: Collector, fake: RecordingGc, clock: ManualClock
) -> None:
    fake.full_pass()
    clock.advance(MIN_COMPLETE_MS - CHECK_MS)
    assert "collect" not in fake.calls
    clock.advance(CHECK_MS)
    assert "collect" in fake.calls


def test_memory_growth_forces_a_complete_pass_while_busy(
    policy: Collector, fake: RecordingGc, clock: ManualClock, box: Box
) -> None:
    box.busy = True
    fake.full_pass()
    fake.calls.clear()
    box.memory += FORCE_GROWTH_BYTES - 1
    clock.advance(MIN_COMPLETE_MS * 2)
    assert fake.calls == []
    box.memory += 1
    clock.advance(CHECK_MS)
    assert fake.calls == ["unfreeze", "collect", "freeze"]
    assert (policy.stats.complete, policy.stats.forced) == (1, 1)
    # the growth is measured from the pass: the same memory forces nothing more
    fake.full_pass()
    fake.calls.clear()
    clock.advance(MIN_COMPLETE_MS * 2)
    assert fake.calls == []


def test_without_a_memory_reading_nothing_is_forced(clock: ManualClock, fake: RecordingGc) -> None:
    readings = iter([0, 0, 10 * FORCE_GROWTH_BYTES])
    c = Collector(clock, lambda: True, collections=fake, memory=lambda: next(readings, 0))
    c.start()
    fake.full_pass()
    fake.calls.clear()
    clock.advance(MIN_COMPLETE_MS * 2)
    assert fake.calls == []
    c.stop()


def test_the_resident_reading_is_this_process() -> None:
    assert collector.resident_bytes() > 1024 * 1024  # a Python process is bigger than 1 MiB


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_with_the_real_collector_a_full_pass_leaves_its_survivors_out_of_the_next() -> None:
    c = Collector(ManualClock(), lambda: False)
    c.start()
    try:
        frozen = gc.get_freeze_count()
        kept = [[i] for i in range(5_000)]
        gc.collect()  # a generation-2 pass: its survivors, `kept` among them, are frozen
        assert gc.get_freeze_count() >= frozen + len(kept)
        assert c.stats.freezes == 1
        # ... and a cycle that becomes garbage while frozen waits for the complete pass
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        gc.collect()
        del a, b
        gc.collect()
        assert alive() is not None
        freezes = c.stats.freezes
        c._walk()  # what the calm or forced complete pass does
        assert alive() is None
        assert c.stats.freezes == freezes  # its own pass is not an automatic one
    finally:
        c.stop()
        gc.unfreeze()
    assert kept
