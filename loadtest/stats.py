"""Percentiles and per-outcome latency books (pure Python: no numpy on the box)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        data = sorted(values)
        if not data:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(data), percentile(data, 50), percentile(data, 99), data[-1], sum(data) / len(data)
        )

    def ms(self) -> str:
        """'p50 / p99 / max' in milliseconds (values are seconds)."""
        if not self.count:
            return "-"
        return f"{self.p50 * 1e3:8.1f} {self.p99 * 1e3:8.1f} {self.max * 1e3:8.1f}"


@dataclass
class Outcomes:
    """Latencies (seconds) per outcome label, e.g. '201', '409 out_of_stock', 'error'."""

    latencies: dict[str, list[float]] = field(default_factory=dict)

    def add(self, outcome: str, seconds: float) -> None:
        self.latencies.setdefault(outcome, []).append(seconds)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def count(self, outcome: str) -> int:
        return len(self.latencies.get(outcome, ()))

    def summaries(self) -> dict[str, Summary]:
        return {k: Summary.of(v) for k, v in sorted(self.latencies.items())}

    def overall(self) -> Summary:
        return Summary.of(x for v in self.latencies.values() for x in v)


def median(values: Sequence[float]) -> float:
    data = sorted(values)
    if not data:
        return math.nan
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


class Histogram:
    """Many latencies (millions of watcher x reservation pairs) in 0.1 ms buckets."""

    RESOLUTION = 1e-4

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max = 0.0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        key = int(seconds / self.RESOLUTION)
        self.buckets[key] = self.buckets.get(key, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def percentile(self, p: float) -> float:
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(p / 100.0 * self.count))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return (key + 1) * self.RESOLUTION
        return self.max

    def summary(self) -> Summary:
        if not self.count:
            return Summary.of(())
        return Summary(
            self.count,
            min(self.percentile(50), self.max),
            min(self.percentile(99), self.max),
            self.max,
            self.total / self.count,
        )
