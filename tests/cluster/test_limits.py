"""The Redis limiter: one set of buckets for every node, the in-memory limiter's meaning."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aredis

from sneakerd.cluster.limits import RedisRateLimiter
from sneakerd.web.problems import ApiError
from sneakerd.web.ratelimit import Limiter

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture
async def make_limiter(redis_url: str, prefix: str) -> AsyncIterator[MakeLimiter]:
    """Limiters of one deployment (one prefix), as many "nodes" as a test asks for."""
    made: list[RedisRateLimiter] = []

    def make(limit: int, period: float, *, url: str = redis_url) -> RedisRateLimiter:
        limiter = RedisRateLimiter(url, prefix, limit, period, name="auth", what="attempts")
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


async def refused_for(limiter: Limiter, *keys: object) -> str | None:
    """The Retry-After of a refusal, or None when the check passed."""
    try:
        await limiter.check(*keys)
    except ApiError as exc:
        assert exc.status == 429
        assert exc.code == "rate_limited"
        return exc.headers["Retry-After"]
    return None


async def test_the_limit_holds_across_nodes_and_answers_retry_after(
    make_limiter: MakeLimiter,
) -> None:
    node_a, node_b = make_limiter(3, 60.0), make_limiter(3, 60.0)  # one token every 20 s
    assert await refused_for(node_a, ("ip", "10.0.0.1")) is None
    assert await refused_for(node_b, ("ip", "10.0.0.1")) is None
    assert await refused_for(node_a, ("ip", "10.0.0.1")) is None
    assert await refused_for(node_b, ("ip", "10.0.0.1")) == "20"  # the 4th, on either node
    assert await refused_for(node_a, ("ip", "10.0.0.1")) == "20"
    assert await refused_for(node_b, ("ip", "10.0.0.2")) is None  # buckets are per key
    assert node_a.stats().refused == 1 and node_b.stats().refused == 1


async def test_a_refusal_takes_no_token_from_the_other_keys(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(2, 60.0)
    for _ in range(2):
        await limiter.check(("ip", "a"), ("account", "x@example.com"))
    assert await refused_for(limiter, ("ip", "a"), ("account", "fresh@example.com")) == "30"
    # the fresh account lost nothing to the refusal: its two tokens are still there
    assert await refused_for(limiter, ("ip", "b"), ("account", "fresh@example.com")) is None
    assert await refused_for(limiter, ("ip", "c"), ("account", "fresh@example.com")) is None
    assert await refused_for(limiter, ("ip", "d"), ("account", "fresh@example.com")) == "30"


async def test_buckets_refill_at_the_average_rate(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(2, 0.2)  # one token every 100 ms
    assert [await refused_for(limiter, 7) for _ in range(3)] == [None, None, "1"]
    await asyncio.sleep(0.12)
    assert await refused_for(limiter, 7) is None
    assert await refused_for(limiter, 7) == "1"


async def test_buckets_are_prefixed_keys_that_expire(
    make_limiter: MakeLimiter, redis_url: str, prefix: str
) -> None:
    await make_limiter(5, 60.0).check(("ip", "10.0.0.9"), 42)
    client = aredis.Redis.from_url(redis_url)
    try:
        names = sorted([k.decode() async for k in client.scan_iter(match=prefix + "*")])
        assert names == [prefix + "rl:auth:42", prefix + "rl:auth:ip:10.0.0.9"]
        for name in names:
            assert 0 < await client.pttl(name) <= 61_000  # gone once it would be full again
    finally:
        await client.aclose()


async def test_a_limit_of_zero_is_off_and_writes_nothing(
    make_limiter: MakeLimiter, redis_url: str, prefix: str
) -> None:
    limiter = make_limiter(0, 1.0)
    assert not limiter.enabled
    for _ in range(20):
        await limiter.check("ip")
    client = aredis.Redis.from_url(redis_url)
    try:
        assert [k async for k in client.scan_iter(match=prefix + "*")] == []
    finally:
        await client.aclose()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


async def test_without_redis_it_fails_open_logs_once_and_counts(
    make_limiter: MakeLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = make_limiter(1, 60.0, url=f"redis://127.0.0.1:{_closed_port()}")
    with caplog.at_level(logging.WARNING, logger="sneakerd.cluster.limits"):
        for _ in range(5):
            await limiter.check(("ip", "a"))  # far past the limit of 1, and let through
    assert limiter.stats().failures == 5
    assert [r.getMessage() for r in caplog.records if "failing open" in r.getMessage()] != []
    assert len(caplog.records) == 1


async def test_a_redis_that_never_answers_costs_a_request_about_the_timeout() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # take the command, answer nothing, until the client goes
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = RedisRateLimiter(
        f"redis://127.0.0.1:{port}", "p:", 1, 60.0, name="auth", what="attempts", timeout=0.2
    )
    try:
        started = time.perf_counter()
        await limiter.check(("ip", "a"))
        elapsed = time.perf_counter() - started
        assert limiter.stats().failures == 1
        assert elapsed < 0.6, f"a check took {elapsed:.2f} s against a hung Redis"
    finally:
        await limiter.close()
        server.close()
        await server.wait_closed()
