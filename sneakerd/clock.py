"""Wall-clock time as integer epoch milliseconds, injectable for tests.

The decision code compares deadlines millions of times in a burst; plain ints are cheaper than
datetimes and are not tracked by the garbage collector. Conversion to ISO 8601 happens only at
the edges.
"""

from __future__ import annotations

import calendar
import functools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current wall-clock time in epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to, for tests of time-dependent rules."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)


def from_datetime(value: datetime) -> int:
    """A datetime (naive ones are taken as UTC, as the stores keep them) to epoch milliseconds.

    Sub-millisecond digits are truncated, never rounded, so a stored value reads back exactly.
    """
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def iso(ms: int) -> str:
    """Epoch milliseconds as docs/API.md's time format: `2026-11-24T10:00:00.000Z`."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


def sql_datetime(ms: int) -> str:
    """Epoch milliseconds as a UTC `DATETIME(3)` literal: `2026-11-24 10:00:00.000`."""
    return f"{_sql_second(ms // 1000)}{ms % 1000:03d}"


# A reply carries two timestamps and a batch writes several, nearly all within the same few
# seconds: formatting the seconds once each (strftime is ~3 µs) is a measurable share of a hold.
@functools.lru_cache(maxsize=1024)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


@functools.lru_cache(maxsize=1024)
def _sql_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.")


def parse_iso(text: str) -> int:
    """ISO 8601 text to epoch milliseconds; a time without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return from_datetime(value)
