"""When a failed delivery is tried again: exponential backoff with full jitter, for a while.

After the n-th failed attempt the next one comes a uniformly random time between 0 and
min(cap, base * 2^(n-1)) later ("full jitter", as AWS's architecture blog measured it: it
spreads the retries of many deliveries that failed together, a receiver's outage, instead of
bringing them back in waves). Once `retry_for` has passed since the delivery's window opened,
a failure makes it `dead` instead (operators can `webhooks replay` it).

Pure functions of their arguments: the deliverer passes the injected clock's time and its
random source, so tests drive the schedule without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sneakerd.config import Settings

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_ms: int = 1_000
    cap_ms: int = 3_600_000
    retry_for_ms: int = DAY_MS
    """How long a delivery is retried before it is dead (at least a day by default)."""
    timeout_ms: int = 10_000
    """How long one attempt may take (connect, send, and the receiver's answer)."""

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_ms=settings.webhook_retry_base_ms,
            retry_for_ms=settings.webhook_retry_for_ms,
            timeout_ms=settings.webhook_timeout_ms,
        )

    def ceiling(self, attempts: int) -> int:
        """The longest wait after the `attempts`-th failure (attempts >= 1)."""
        if attempts >= 40:  # 2**40 seconds is far beyond any cap; avoid huge ints
            return self.cap_ms
        return min(self.cap_ms, self.base_ms * (1 << max(0, attempts - 1)))

    def next_attempt(
        self, attempts: int, since: int, now: int, rand: Callable[[], float]
    ) -> int | None:
        """When to try again after the `attempts`-th failure at `now`, for a delivery whose
        window opened at `since`; None when the window is over (the delivery is dead)."""
        if now - since >= self.retry_for_ms:
            return None
        return now + int(rand() * self.ceiling(attempts))
