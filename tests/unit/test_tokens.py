"""Token verification, including the cache of verified tokens (no I/O)."""

from __future__ import annotations

import jwt
import pytest

from sneakerd.clock import ManualClock, SystemClock
from sneakerd.domain.model import Role, User
from sneakerd.web.auth import Tokens
from sneakerd.web.problems import ApiError

SECRET = "unit-secret-" + "k" * 60
USER = User(7, "ana", "ana@example.com", Role.CUSTOMER, 0)


def test_a_cached_token_still_expires_on_time() -> None:
    # Started at the system time, so that PyJWT (which reads the system time itself) would
    # still take the token: only the injected clock can refuse it.
    clock = ManualClock(SystemClock().now_ms() // 1000 * 1000)  # on a whole second, as `exp`
    tokens = Tokens(SECRET, 1, clock=clock)
    token = tokens.issue(USER)
    assert tokens.verify(token).user_id == 7
    clock.advance(999)
    assert tokens.verify(token).role is Role.CUSTOMER  # from the cache, a ms before `exp`
    clock.advance(1)
    with pytest.raises(ApiError) as refused:
        tokens.verify(token)
    assert refused.value.status == 401
    with pytest.raises(ApiError):  # and it is not cached again
        tokens.verify(token)


@pytest.mark.parametrize(
    "bad",
    [
        jwt.encode(
            {"sub": "7", "role": "admin", "iat": 1, "exp": 2**40}, "x" * 40, algorithm="HS256"
        ),
        jwt.encode({"sub": "7", "role": "admin", "iat": 1, "exp": 2**40}, key="", algorithm="none"),
        jwt.encode(
            {"sub": "7", "role": "admin", "iat": 1, "exp": 2**40}, SECRET, algorithm="HS512"
        ),
        jwt.encode({"sub": "7", "role": "admin", "iat": 1}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": "0", "role": "admin", "iat": 1, "exp": 2**40}, SECRET, algorithm="HS256"
        ),
        "not-a-token",
    ],
)
def test_refusals_are_never_cached(bad: str) -> None:
    tokens = Tokens(SECRET, 60, clock=SystemClock())
    for _ in range(2):
        with pytest.raises(ApiError):
            tokens.verify(bad)


def test_the_cache_is_bounded() -> None:
    tokens = Tokens(SECRET, 60, clock=SystemClock(), cache_size=3)
    issued = [tokens.issue(User(i, f"u{i}", f"u{i}@e.com", Role.CUSTOMER, 0)) for i in range(1, 6)]
    for token in issued:
        tokens.verify(token)
    assert len(tokens._verified) == 3
    assert tokens.verify(issued[0]).user_id == 1  # evicted, verified again
