"""Token buckets per key (an IP, an account, a user), kept in memory.

A bucket holds up to `limit` tokens and refills at `limit / period` per second, so a client may
burst to its limit and then proceeds at the average rate. Full buckets carry no information and
are dropped when the table grows, which bounds memory under a crowd of one-off clients. Refills
are measured on the clock's monotonic reading, so a wall-clock step neither drains nor fills
the buckets.

`Limiter` is the one interface of every limiter: `check` is async so that a limiter counting in
a shared store (`sneakerd.cluster.limits.RedisRateLimiter`, for many nodes) and this one (one
node, no I/O) are interchangeable at the call sites.
"""

from __future__ import annotations

from typing import Protocol

from sneakerd.clock import Clock
from sneakerd.web.problems import ApiError, retry_after


class Limiter(Protocol):
    """Per-key buckets of `limit` requests per period; `check` takes one token from each."""

    @property
    def enabled(self) -> bool: ...

    async def check(self, *keys: object) -> None:
        """Return when every key's bucket had a token (one is taken from each), or raise
        `ApiError` 429 `rate_limited` with Retry-After (the wait for the emptiest bucket)."""
        ...


def rate_limited(what: str, wait_seconds: float) -> ApiError:
    """The refusal of every limiter, so one node and many answer alike."""
    return ApiError(
        429,
        "rate_limited",
        f"Too many {what}; slow down",
        headers=retry_after(wait_seconds),
    )


class RateLimiter:
    """The `Limiter` of a single node: buckets in this process's memory."""

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        what: str,
        clock: Clock,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self._per_ms = limit / (period * 1000) if limit else 0.0  # tokens refilled a ms
        self._what = what
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[object, tuple[float, int]] = {}  # key -> (tokens, updated ms)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def check(self, *keys: object) -> None:
        """Take one token from each key's bucket, or raise 429 with Retry-After (async only to
        share `Limiter`'s interface: nothing here waits)."""
        if not self.limit:
            return
        now = self._clock.monotonic_ms()
        wait_ms = 0.0
        updated: list[tuple[object, float]] = []
        for key in keys:
            tokens, at = self._buckets.get(key, (float(self.limit), now))
            tokens = min(float(self.limit), tokens + (now - at) * self._per_ms)
            if tokens < 1.0:
                wait_ms = max(wait_ms, (1.0 - tokens) / self._per_ms)
            updated.append((key, tokens))
        if wait_ms > 0:
            for key, tokens in updated:
                self._buckets[key] = (tokens, now)
            raise rate_limited(self._what, wait_ms / 1000)
        for key, tokens in updated:
            self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_keys:
            self._prune(now)

    def _prune(self, now: int) -> None:
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._per_ms >= self.limit
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self._max_keys:  # still too many: forget the oldest half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]
