"""What a run records for its `--report FILE.html` and `--json FILE`: every request's outcome
and latency in one-second buckets, gauges sampled over time (memory, descriptors, a round's
p99), the checks with pass or fail, and the text report.

One `Recorder` per run (`start` makes it, `current` returns it). The scenarios feed it through
the functions they already call: `client.run_load` records its results once the load is over
(never in the load's hot path), `report.check` and `report.header` record a check and the text,
and the scenarios with request loops of their own (soak, sellout, failover) or a load
generator of their own (wrk: sustained, workers) call `request`, `counts` and `gauge`.
Latencies are kept in 0.1 ms histograms (`stats.Histogram`), so a run of millions of requests
costs a few thousand buckets, not a list of every latency.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loadtest.stats import Histogram


@dataclass
class Gauge:
    unit: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Recorder:
    scenario: str = ""
    argv: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    """The run's start on the monotonic clock that every request time is taken from."""
    wall0: float = field(default_factory=time.time)
    """The same instant on the wall clock (wrk's per-second counts are in wall seconds)."""
    seconds: dict[int, dict[str, Histogram]] = field(default_factory=dict)
    """Second of the run -> outcome -> the latencies of the requests answered in it."""
    counted: dict[int, dict[str, int]] = field(default_factory=dict)
    """Second -> outcome -> answers counted without their latency (wrk's)."""
    gauges: dict[str, Gauge] = field(default_factory=dict)
    checks: list[tuple[bool, str]] = field(default_factory=list)
    title: str = ""
    lines: list[str] = field(default_factory=list)

    def request(self, outcome: str, latency: float, done: float | None = None) -> None:
        """One answer: its outcome label ('201', '409 out_of_stock', 'error'), its latency in
        seconds, and when it came (monotonic; default now)."""
        at = time.monotonic() if done is None else done
        bucket = self.seconds.setdefault(max(0, int(at - self.t0)), {})
        book = bucket.get(outcome)
        if book is None:
            book = bucket[outcome] = Histogram()
        book.add(latency)

    def counts(self, wall_second: float, outcomes: dict[str, int]) -> None:
        """Answers counted per outcome in one wall-clock second, with no latencies."""
        bucket = self.counted.setdefault(max(0, int(wall_second - self.wall0)), {})
        for outcome, n in outcomes.items():
            bucket[outcome] = bucket.get(outcome, 0) + n

    def gauge(self, name: str, value: float, unit: str = "", at: float | None = None) -> None:
        """One sample of a quantity over time (`at` monotonic; default now)."""
        t = (time.monotonic() if at is None else at) - self.t0
        self.gauges.setdefault(name, Gauge(unit)).points.append((t, float(value)))

    def check(self, ok: bool, text: str) -> None:
        self.checks.append((ok, text))

    def header(self, title: str, lines: Iterable[str]) -> None:
        self.title = title
        self.lines = list(lines)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.checks)

    def per_second(self) -> list[dict[str, Any]]:
        """Every second from the first to the last answer (quiet seconds included, with no
        outcomes), each outcome's count and, where known, latency percentiles in ms."""
        keys = set(self.seconds) | set(self.counted)
        if not keys:
            return []
        rows = []
        for second in range(min(keys), max(keys) + 1):
            outcomes: dict[str, dict[str, Any]] = {}
            for outcome, book in sorted(self.seconds.get(second, {}).items()):
                s = book.summary()
                outcomes[outcome] = {
                    "count": s.count,
                    "p50Ms": _ms(s.p50),
                    "p99Ms": _ms(s.p99),
                    "maxMs": _ms(s.max),
                }
            for outcome, n in sorted(self.counted.get(second, {}).items()):
                entry = outcomes.setdefault(
                    outcome, {"count": 0, "p50Ms": None, "p99Ms": None, "maxMs": None}
                )
                entry["count"] += n
            rows.append({"t": second, "outcomes": outcomes})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "argv": self.argv,
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall0)),
            "title": self.title,
            "passed": self.passed,
            "checks": [{"ok": ok, "text": text.strip()} for ok, text in self.checks],
            "perSecond": self.per_second(),
            "gauges": {
                name: {"unit": g.unit, "points": [[round(t, 3), v] for t, v in g.points]}
                for name, g in self.gauges.items()
            },
            "report": "\n".join(self.lines),
        }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1e3, 3)


_current = Recorder()


def start(scenario: str, argv: list[str]) -> Recorder:
    """A new recorder for a run, which every later call records into; its clock starts now
    (`restart_clock` moves it to when the load really begins)."""
    global _current
    _current = Recorder(scenario=scenario, argv=list(argv))
    return _current


def current() -> Recorder:
    return _current


def restart_clock() -> None:
    """Start the current run's clock now: second 0 of the charts is the run's, not the wait
    for a quiet machine that came before it."""
    _current.t0 = time.monotonic()
    _current.wall0 = time.time()
