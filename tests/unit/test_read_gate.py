"""The read gate holds just-refused connections while writes are in flight, and lets each in once
the writes are done or its longest wait has passed, in the order they were held. Time is the
manual clock's: nothing here sleeps."""

from __future__ import annotations

import asyncio

from sneakerd.clock import ManualClock
from sneakerd.web.read_gate import LONGEST_MS, POLL_MS, ReadGate


class Connection:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def let_in(self) -> None:
        self.log.append(self.name)


class Busy:
    """A count of writes in flight, as the pacer keeps it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        return self.count != 0


def gate_with(busy: Busy) -> tuple[ReadGate, ManualClock, list[str]]:
    clock = ManualClock()
    gate = ReadGate(clock)
    gate.watch(busy)
    return gate, clock, []


def test_the_gate_is_closed_only_while_writes_are_in_flight() -> None:
    busy = Busy()
    gate, _, _ = gate_with(busy)
    assert not gate.closed
    busy.count = 2
    assert gate.closed
    busy.count = 0
    assert not gate.closed


async def test_held_connections_go_on_in_order_in_the_turn_after_the_last_write_ends() -> None:
    busy = Busy()
    gate, clock, log = gate_with(busy)
    busy.count = 1
    for name in "abc":
        gate.hold(Connection(name, log))
    assert gate.waiting == 3 and gate.holds == 3
    gate.idle()  # told while a write is still in flight: nothing moves
    await asyncio.sleep(0)
    clock.advance(POLL_MS)
    assert log == []
    busy.count = 0
    gate.idle()
    assert log == []  # not inside the request whose write just ended ...
    await asyncio.sleep(0)
    assert log == ["a", "b", "c"]  # ... but in the loop's next turn
    assert gate.waiting == 0 and clock.pending == 0


async def test_one_connection_that_fails_to_go_in_does_not_keep_the_others_out() -> None:
    busy = Busy()
    gate, _, log = gate_with(busy)

    class Broken:
        def let_in(self) -> None:
            raise RuntimeError("a bug")

    busy.count = 1
    gate.hold(Broken())
    gate.hold(Connection("after", log))
    gate.open()
    assert log == ["after"] and gate.waiting == 0


def test_a_write_that_ends_elsewhere_is_seen_at_the_next_look() -> None:
    """Another worker's writes end without a word to this process: the gate looks again every
    `POLL_MS`."""
    busy = Busy()
    gate, clock, log = gate_with(busy)
    busy.count = 1
    gate.hold(Connection("a", log))
    clock.advance(POLL_MS)
    assert log == []
    busy.count = 0
    clock.advance(POLL_MS)
    assert log == ["a"]
    assert clock.pending == 0


def test_nobody_waits_longer_than_the_longest_wait_while_writes_go_on() -> None:
    busy = Busy()
    gate, clock, log = gate_with(busy)
    busy.count = 1
    gate.hold(Connection("a", log))
    clock.advance(LONGEST_MS - POLL_MS)
    assert log == []
    clock.advance(POLL_MS)
    assert log == ["a"]
    # The next hold starts its own wait.
    gate.hold(Connection("b", log))
    clock.advance(LONGEST_MS - POLL_MS)
    assert log == ["a"]
    clock.advance(POLL_MS)
    assert log == ["a", "b"]


async def test_a_connection_that_closed_while_held_is_not_let_in() -> None:
    busy = Busy()
    gate, _, log = gate_with(busy)
    busy.count = 1
    gone, staying = Connection("gone", log), Connection("staying", log)
    gate.hold(gone)
    gate.hold(staying)
    gate.forget(gone)
    busy.count = 0
    gate.idle()
    await asyncio.sleep(0)
    assert log == ["staying"]


def test_open_lets_everyone_in_and_stops_looking() -> None:
    busy = Busy()
    gate, clock, log = gate_with(busy)
    busy.count = 1
    gate.hold(Connection("a", log))
    gate.open()
    assert log == ["a"] and clock.pending == 0
    clock.advance(LONGEST_MS)
    assert log == ["a"]
