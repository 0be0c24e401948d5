"""Token buckets per key (an IP, an account, a user), kept in memory.

A bucket holds up to `limit` tokens and refills at `limit / period` per second, so a client may
burst to its limit and then proceeds at the average rate. Full buckets carry no information and
are dropped when the table grows, which bounds memory under a crowd of one-off clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sneakerd.web.problems import ApiError, retry_after


class RateLimiter:
    def __init__(
        self,
        limit: int,
        period: float,
        *,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self._rate = limit / period if limit else 0.0
        self._what = what
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, updated)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def check(self, *keys: object) -> None:
        """Take one token from each key's bucket, or raise 429 with Retry-After."""
        if not self.limit:
            return
        now = self._clock()
        wait = 0.0
        updated: list[tuple[object, float]] = []
        for key in keys:
            tokens, at = self._buckets.get(key, (float(self.limit), now))
            tokens = min(float(self.limit), tokens + (now - at) * self._rate)
            if tokens < 1.0:
                wait = max(wait, (1.0 - tokens) / self._rate)
            updated.append((key, tokens))
        if wait > 0:
            for key, tokens in updated:
                self._buckets[key] = (tokens, now)
            raise ApiError(
                429,
                "rate_limited",
                f"Too many {self._what}; slow down",
                headers=retry_after(wait),
            )
        for key, tokens in updated:
            self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate >= self.limit
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self._max_keys:  # still too many: forget the oldest half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]
