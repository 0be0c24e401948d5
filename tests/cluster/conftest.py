"""The real Redis for the cluster tests, and a key prefix of each test's own.

The server comes from SNEAKERD_TEST_REDIS (default redis://127.0.0.1:6379). Each test gets a
unique REDIS_PREFIX, so tests (and other runs sharing the server) never meet, and its keys are
deleted afterwards. Without a server these tests are skipped, unless SNEAKERD_REQUIRE_REDIS=1,
where a missing server fails them (as SNEAKERD_REQUIRE_MYSQL does for MySQL).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_SERVER = os.environ.get("SNEAKERD_TEST_REDIS", "redis://127.0.0.1:6379")
REQUIRE_REDIS = os.environ.get("SNEAKERD_REQUIRE_REDIS") == "1"


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        with redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        reason = f"no Redis at {REDIS_SERVER}: {exc}"
        if REQUIRE_REDIS:
            pytest.fail(reason + " (SNEAKERD_REQUIRE_REDIS=1)")
        pytest.skip(reason)
    return REDIS_SERVER


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A REDIS_PREFIX no other test uses; every key under it is deleted afterwards."""
    name = f"sneakerd-test-{uuid.uuid4().hex[:12]}:"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=name + "*", count=1000))
        if keys:
            client.delete(*keys)
