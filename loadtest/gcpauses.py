"""The server's garbage-collector pauses between two scrapes of /metrics.

sneakerd exports `sneakerd_gc_pause_seconds` (a histogram by generation) and
`sneakerd_gc_pause_longest_seconds` (the longest pause since start). Between two scrapes the
histogram's deltas give how many collections ran and how long they took in all; the worst of
them is exact when the longest-pause gauge rose (that pause is the new maximum) or when only one
collection ran, and otherwise known to its bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PAUSES = "sneakerd_gc_pause_seconds"
LONGEST = "sneakerd_gc_pause_longest_seconds"


@dataclass(frozen=True, slots=True)
class Pauses:
    """One generation's collections between two scrapes."""

    count: int
    total: float
    worst_low: float
    """The worst pause is in (worst_low, worst_high]; both equal when it is known exactly."""
    worst_high: float

    @property
    def exact(self) -> bool:
        return self.worst_low == self.worst_high

    def worst_text(self) -> str:
        if not self.count:
            return "-"
        if self.exact:
            return f"{self.worst_high * 1e3:.0f} ms"
        if math.isinf(self.worst_high):
            return f">{self.worst_low * 1e3:.0f} ms"
        return f"{self.worst_low * 1e3:.0f}-{self.worst_high * 1e3:.0f} ms"


def _buckets(metrics: dict[str, float], generation: str) -> dict[float, float]:
    prefix = f'{PAUSES}_bucket{{generation="{generation}",le="'
    out: dict[float, float] = {}
    for key, value in metrics.items():
        if key.startswith(prefix):
            out[float(key[len(prefix) : -2])] = value
    return out


def between(before: dict[str, float], after: dict[str, float], generation: str = "2") -> Pauses:
    """The collections of `generation` that ran between the scrapes `before` and `after`."""
    label = f'{{generation="{generation}"}}'
    count = int(after.get(f"{PAUSES}_count{label}", 0) - before.get(f"{PAUSES}_count{label}", 0))
    total = after.get(f"{PAUSES}_sum{label}", 0.0) - before.get(f"{PAUSES}_sum{label}", 0.0)
    if count <= 0:
        return Pauses(0, 0.0, 0.0, 0.0)
    if count == 1:
        return Pauses(1, total, total, total)
    longest_after = after.get(f"{LONGEST}{label}", 0.0)
    if longest_after > before.get(f"{LONGEST}{label}", 0.0):
        return Pauses(count, total, longest_after, longest_after)
    b0, b1 = _buckets(before, generation), _buckets(after, generation)
    low = 0.0
    for edge in sorted(b1):
        grew = b1[edge] - b0.get(edge, 0.0)
        if grew >= count:
            return Pauses(count, total, low, edge)
        low = edge
    return Pauses(count, total, low, math.inf)
