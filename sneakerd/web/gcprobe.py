"""How long the garbage collector stops the world, by generation.

A full (generation 2) collection walks every tracked object that is not frozen, so its pause
grows with what the process keeps alive: under sustained load the live holds pile up and each
full pass stalls every drop on the one event loop. The pauses are measured from `gc.callbacks`
(a "start" then a "stop" for each collection) into one histogram per process: the callback is
installed once, however many applications (tests start many) export it from their registries.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from prometheus_client import Gauge, Histogram

PAUSE_BUCKETS = (
    0.0001,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
)
"""Fine above 0.1 s, where a full pass under load lands: the worst pause of a round is read
back as the bucket it fell in."""

GENERATIONS = ("0", "1", "2")


class GcProbe:
    """The callback, its histogram and its longest-pause gauge (in no registry: each
    application's registry registers them, so every /metrics shows the process's one record)."""

    def __init__(self) -> None:
        self.pauses = Histogram(
            "sneakerd_gc_pause_seconds",
            "Garbage collector pauses (start to stop of one collection), by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=None,
        )
        # A histogram keeps no maximum; this does, so a load test that scrapes between rounds
        # reads a round's worst pause exactly whenever it beat every earlier one.
        self.longest = Gauge(
            "sneakerd_gc_pause_longest_seconds",
            "The longest garbage collector pause since the process started, by generation",
            ["generation"],
            registry=None,
        )
        # Resolved once: the callback runs on every collection, hundreds a second under load.
        self._children = [(self.pauses.labels(g), self.longest.labels(g)) for g in GENERATIONS]
        self._longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap (the collector refuses to start one while another runs),
        # so one start time is enough, whichever thread triggered it.
        if phase == "start":
            self._started = time.perf_counter()
        elif phase == "stop" and self._started:
            pause = time.perf_counter() - self._started
            self._started = 0.0
            generation = min(max(int(info.get("generation", 2)), 0), 2)
            histogram, longest = self._children[generation]
            histogram.observe(pause)
            if pause > self._longest[generation]:
                self._longest[generation] = pause
                longest.set(pause)


_probe: GcProbe | None = None
_lock = threading.Lock()


def install() -> GcProbe:
    """The process's probe, its callback appended to `gc.callbacks` on the first call only."""
    global _probe
    with _lock:
        if _probe is None:
            _probe = GcProbe()
            gc.callbacks.append(_probe.callback)
        return _probe
