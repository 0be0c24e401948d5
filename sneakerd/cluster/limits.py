"""Rate limits that hold across nodes: the same token buckets as `sneakerd.web.ratelimit`, kept
in Redis.

With one limiter per process, N nodes would let a client through N times its limit. Here every
node takes its tokens from the same buckets, keys `{prefix}rl:<name>:<key>`, through one Lua
script, so a check of several keys (an IP and an account) is atomic: either one token is taken
from each, or none and the answer is the wait for the emptiest. A bucket is a hash (`t` tokens,
`at` ms) that expires once it would have refilled (an absent bucket is a full one, exactly as
in memory), so Redis holds only the buckets of recent clients. Time is Redis's own `TIME`: the
nodes' clocks are neither shared nor in step, the server's is one clock for every bucket.

Fail open: when Redis cannot answer (down, slow past `timeout`, refusing), the request is let
through, the failure is logged (once per outage, and when Redis answers again) and counted in
`stats()`. A rate limit protects the service; refusing every sign-in and every reserve because
the limiter's store is unreachable would turn a Redis outage into an outage of the service.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sneakerd.web.ratelimit import rate_limited

log = logging.getLogger(__name__)

_TAKE = """
local limit = tonumber(ARGV[1])
local per_ms = limit / tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tokens = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local bucket = redis.call('HMGET', key, 't', 'at')
  local t = tonumber(bucket[1])
  local at = tonumber(bucket[2])
  if t == nil or at == nil then
    t = limit
    at = now
  end
  t = math.min(limit, t + math.max(0, now - at) * per_ms)
  if t < 1 then
    wait = math.max(wait, (1 - t) / per_ms)
  end
  tokens[i] = t
end
local take = 1
if wait > 0 then
  take = 0
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 't', tostring(tokens[i] - take), 'at', tostring(now))
  redis.call('PEXPIRE', key, ttl)
end
return tostring(wait)
"""
"""KEYS: the buckets; ARGV: limit, period in ms, expiry in ms. Returns the wait in ms ("0":
a token was taken from every bucket). A refused check stores the refilled counts, as the
in-memory limiter does: refills are linear, so that changes nothing but the stamp."""


@dataclass(frozen=True, slots=True)
class LimiterStats:
    checks: int
    refused: int
    failures: int
    """Checks let through unchecked because Redis did not answer (fail open)."""


def bucket_key(key: object) -> str:
    """A bucket's name: a tuple key `("ip", "10.0.0.1")` is `ip:10.0.0.1`, anything else its
    str(), so the buckets read the same in Redis as the keys the call sites pass."""
    if isinstance(key, tuple):
        return ":".join(str(part) for part in key)
    return str(key)


class RedisRateLimiter:
    """A `sneakerd.web.ratelimit.Limiter` whose buckets every node shares (see the module).

    `name` is the bucket family in the keys (`auth`, `reserve`); `what` is the refusal's
    words, as for `RateLimiter`. A limit of 0 is off and never touches Redis.
    """

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        limit: int,
        period: float,
        *,
        name: str,
        what: str,
        timeout: float = 0.5,
    ) -> None:
        self.limit = limit
        self._period_ms = period * 1000
        self._ttl_ms = math.ceil(self._period_ms) + 1000  # a bucket idle this long is full
        self._prefix = f"{prefix}rl:{name}:"
        self._what = what
        # A request waits on Redis for about `timeout`: one retry on a fresh connection (a
        # pooled one may predate a Redis restart), never redis-py's default backoff loop.
        self._redis = Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._take = self._redis.register_script(_TAKE)
        self._failing = False
        self._checks = 0
        self._refused = 0
        self._failures = 0

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def check(self, *keys: object) -> None:
        """Take one token from each key's bucket, or raise 429 with Retry-After; let the
        request through when Redis cannot answer (see the module: fail open)."""
        if not self.limit or not keys:
            return
        self._checks += 1
        wait_ms = await self._wait_ms([self._prefix + bucket_key(key) for key in keys])
        if wait_ms > 0:
            self._refused += 1
            raise rate_limited(self._what, wait_ms / 1000)

    async def _wait_ms(self, names: Sequence[str]) -> float:
        try:
            answer = await self._take(
                keys=list(names), args=[self.limit, self._period_ms, self._ttl_ms]
            )
        except (RedisError, OSError) as exc:
            self._failures += 1
            if not self._failing:
                self._failing = True
                log.warning("rate limits unchecked (failing open): Redis unavailable: %s", exc)
            return 0.0
        if self._failing:
            self._failing = False
            log.warning("rate limits checked again: Redis answers")
        return float(answer)

    def stats(self) -> LimiterStats:
        return LimiterStats(checks=self._checks, refused=self._refused, failures=self._failures)

    async def close(self) -> None:
        await self._redis.aclose()
