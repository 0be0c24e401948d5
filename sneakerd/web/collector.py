"""When the garbage collector walks what: full passes in proportion to what is new.

CPython's full (generation-2) collection walks every tracked object that is not frozen, and it
stops every thread that wants the GIL while it does. `gc.freeze()` once the server is up hides
the import-time heap, but what the server builds later and keeps is walked again by every full
pass. Live holds are kept out of the collector's sight (`domain/holds.py`); a watcher cannot be:
its connection, request, WebSocket reader and writer, tasks and coroutines are ~90 tracked
objects of aiohttp's and asyncio's. With 10,000 watchers one full pass took 585-790 ms on two
busy cores, every buyer and every frame waiting behind it, and the watchers' arrival alone set
off twelve passes, 3.6 s in all (loadtest/README.md, "Tenth session").

So each full pass is followed by `gc.freeze()` (it links the generations' lists onto the
permanent one: microseconds), and the next one walks only what became long-lived since: its
pause follows the growth, as the young generations' do, whatever is alive. And where objects
were promoted since the last full pass, the collector runs one itself as soon as no buyer's
write is in flight at `TIDY_CHECKS` looks in a row (a tidy pass): the watchers who arrive
before a drop opens are walked then, not in the automatic pass that the 25 % growth rule
would set off in the middle of the burst.

What that costs: a frozen object that later becomes part of an unreachable cycle is not freed
while it is frozen, nor is whatever the cycle holds. A watcher that goes leaves such cycles
(its connection's exception, traceback and frames: ~45 objects). So a complete pass (unfreeze,
collect, freeze again) runs once something was frozen since the last one and either the server
is calm (no buyer's write in flight at any of `CALM_CHECKS` looks, `CHECK_MS` apart: between
drops) or its memory has grown by `FORCE_GROWTH_BYTES` since (a long busy spell with watchers
coming and going), and never sooner than `MIN_COMPLETE_MS` after the last one. The complete
pass stops the loop for as long as the old full passes did; the policy puts it where no buyer
waits for it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from sneakerd.clock import Cancellable, Clock

CHECK_MS = 250
"""How often the collector looks whether a pass is due."""
TIDY_CHECKS = 2
"""Looks in a row with no buyer's write in flight before a tidy pass."""
CALM_CHECKS = 40
"""Looks in a row with no buyer's write in flight that make the server calm (10 s)."""
MIN_COMPLETE_MS = 300_000
"""The least time between two complete passes (and from start-up to the first)."""
FORCE_GROWTH_BYTES = 256 * 1024 * 1024
"""Memory growth since the last complete pass after which one runs, calm or not."""


Phase: TypeAlias = Literal["start", "stop"]
GcCallback: TypeAlias = Callable[[Phase, dict[str, int]], object]


class Collections(Protocol):
    """What the policy needs of the `gc` module (a test passes a recording stand-in)."""

    callbacks: list[GcCallback]

    def collect(self, generation: int = 2) -> int: ...

    def get_count(self) -> tuple[int, int, int]: ...

    def freeze(self) -> None: ...

    def unfreeze(self) -> None: ...


def resident_bytes() -> int:
    """This process's resident memory (0 where /proc is not there: no forced passes then)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(slots=True)
class CollectorStatistics:
    freezes: int = 0
    """Full passes whose survivors were frozen (the automatic ones and the tidy ones)."""
    tidy: int = 0
    """Full passes the collector ran itself at a calm moment (each walks what is not frozen)."""
    complete: int = 0
    """Complete passes (unfreeze, collect, freeze) since start."""
    forced: int = 0
    """Of those, the ones that ran because memory grew while the server was busy."""


class Collector:
    """The serving process's collection policy; `start` once the server is up, `stop` at the
    end (it owns one timer on the injected clock and one entry in `gc.callbacks`)."""

    def __init__(
        self,
        clock: Clock,
        busy: Callable[[], bool],
        *,
        collections: Collections | None = None,
        memory: Callable[[], int] = resident_bytes,
    ) -> None:
        self._clock = clock
        self._busy = busy
        """Whether a buyer's write is in flight now (the service's count)."""
        self._gc: Collections = collections if collections is not None else gc
        self._memory = memory
        self._timer: Cancellable | None = None
        self._calm = 0
        self._frozen_since = False
        self._in_complete = False
        self._last_complete_ms = 0
        self._memory_at_complete = 0
        self.stats = CollectorStatistics()

    def start(self) -> None:
        """Collect and freeze what start-up built (modules, aiohttp, marshmallow, apispec: a few
        hundred thousand objects that live as long as the process), then follow the passes."""
        self._walk()
        self._gc.callbacks.append(self._after)
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._after in self._gc.callbacks:
            self._gc.callbacks.remove(self._after)

    def _after(self, phase: Phase, info: dict[str, int]) -> None:
        """`gc.callbacks`: after a full pass (not a complete one), freeze its survivors. It may
        run on any thread (whichever allocation set the pass off); `freeze` only relinks lists."""
        if phase != "stop" or info.get("generation") != 2 or self._in_complete:
            return
        self._gc.freeze()
        self._frozen_since = True
        self.stats.freezes += 1

    def _arm(self) -> None:
        self._timer = self._clock.call_at(self._clock.now_ms() + CHECK_MS, self._check)

    def _check(self) -> None:
        self._calm = 0 if self._busy() else self._calm + 1
        if self._calm >= TIDY_CHECKS and self._gc.get_count()[2] > 0:
            # Objects were promoted since the last full pass: walk them now, while no buyer
            # waits, rather than in the automatic pass that would come in the middle of a burst.
            self._gc.collect()
            self.stats.tidy += 1
        since = self._clock.monotonic_ms() - self._last_complete_ms
        if self._frozen_since and since >= MIN_COMPLETE_MS:
            calm = self._calm >= CALM_CHECKS
            if calm or self._grown():  # memory is read only once a complete pass may run
                self.stats.forced += int(not calm)
                self.stats.complete += 1
                self._walk()
        self._arm()

    def _grown(self) -> bool:
        """Whether memory grew by `FORCE_GROWTH_BYTES` since the last complete pass (never
        where it cannot be read)."""
        if self._memory_at_complete <= 0:
            return False
        return self._memory() - self._memory_at_complete >= FORCE_GROWTH_BYTES

    def _walk(self) -> None:
        """Walk everything once: what died in cycles while frozen is freed here."""
        self._in_complete = True
        try:
            self._gc.unfreeze()
            self._gc.collect()
            self._gc.freeze()
        finally:
            self._in_complete = False
        self._frozen_since = False
        self._last_complete_ms = self._clock.monotonic_ms()
        self._memory_at_complete = self._memory()
