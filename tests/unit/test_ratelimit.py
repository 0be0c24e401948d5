"""Token buckets refill on the injected clock: a burst to the limit, then the average rate."""

from __future__ import annotations

import pytest

from sneakerd.clock import ManualClock
from sneakerd.web.problems import ApiError
from sneakerd.web.ratelimit import Limiter, RateLimiter


async def refused_for(limiter: Limiter, *keys: object) -> str | None:
    """The Retry-After of a refusal, or None when the check passed."""
    try:
        await limiter.check(*keys)
    except ApiError as exc:
        assert exc.status == 429
        return exc.headers["Retry-After"]
    return None


async def test_a_bucket_bursts_to_its_limit_then_refills_at_the_average_rate() -> None:
    clock = ManualClock()
    limiter = RateLimiter(2, 1.0, what="requests", clock=clock)  # one token every 500 ms
    assert await refused_for(limiter, "ip") is None
    assert await refused_for(limiter, "ip") is None
    assert await refused_for(limiter, "ip") == "1"
    assert await refused_for(limiter, "other ip") is None  # buckets are per key
    clock.advance(499)
    assert await refused_for(limiter, "ip") == "1"
    clock.advance(1)
    assert await refused_for(limiter, "ip") is None
    assert await refused_for(limiter, "ip") == "1"
    clock.advance(60_000)  # a long quiet spell refills to the limit, never above it
    assert [await refused_for(limiter, "ip") for _ in range(3)] == [None, None, "1"]


async def test_retry_after_is_the_wait_for_the_emptiest_of_the_keys() -> None:
    clock = ManualClock()
    limiter = RateLimiter(3, 60.0, what="sign-in attempts", clock=clock)  # one every 20 s
    for _ in range(3):
        await limiter.check("ip", "account")
    assert await refused_for(limiter, "ip", "fresh account") == "20"
    clock.advance(15_000)
    assert await refused_for(limiter, "ip") == "5"
    clock.advance(5_000)
    assert await refused_for(limiter, "ip", "account") is None


async def test_a_limit_of_zero_is_off() -> None:
    limiter = RateLimiter(0, 1.0, what="requests", clock=ManualClock())
    assert not limiter.enabled
    for _ in range(100):
        await limiter.check("ip")


async def test_full_buckets_are_forgotten_when_the_table_grows() -> None:
    clock = ManualClock()
    limiter = RateLimiter(1, 1.0, what="requests", clock=clock, max_keys=3)
    for key in range(3):
        await limiter.check(key)
    clock.advance(1_000)  # every bucket is full again: they carry nothing
    await limiter.check("newcomer")
    assert set(limiter._buckets) == {"newcomer"}
    with pytest.raises(ApiError):
        await limiter.check("newcomer")
