"""The HS256 fast path accepts only what PyJWT accepts, with the same claims (differential),
and takes every token the server issues (or it would save nothing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import jwt
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakerd.clock import ManualClock, SystemClock
from sneakerd.domain.model import Role, User
from sneakerd.web.auth import Tokens
from sneakerd.web.hs256 import FastHS256

CLOCK = SystemClock()  # PyJWT reads the system time, so the differential test does too
SECRET = "unit-secret-" + "k" * 60
OTHER = "other-secret-" + "q" * 60
NOW = CLOCK.now_ms() // 1000
REQUIRE = {"require": ["sub", "role", "iat", "exp"]}

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([NOW - 10, NOW, NOW + 1, NOW + 3600, 0, True, False, None]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["7", "admin", "customer", str(NOW + 3600)]),
)
VALID = {"sub": "7", "role": "customer", "iat": NOW - 5, "exp": NOW + 3600}
DELETE = object()
# Mostly valid payloads with zero to two claims changed, added or removed, so that the cases
# where one detail decides are found, not drowned in obviously bad tokens.
edits = st.dictionaries(
    st.sampled_from([*VALID, "nbf", "aud", "jti", "iss"]),
    st.one_of(st.just(DELETE), scalars),
    max_size=2,
)
claims = edits.map(
    lambda changes: {k: v for k, v in {**VALID, **changes}.items() if v is not DELETE}
)
headers = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"kid": scalars, "typ": scalars, "cty": scalars}),
)


def mutate(token: str, how: int, where: int, char: str) -> str:
    if how == 0 or not token:
        return token
    i = where % len(token)
    if how == 1:
        return token[:i] + char + token[i + 1 :]
    if how == 2:
        return token[:i] + char + token[i:]
    if how == 3:
        return token + "="
    if how == 4:
        return token[:i] + token[i + 1 :]
    return ".".join(reversed(token.split(".")))


def resigned(token: str) -> str:
    """The token's first two segments, as mutated, signed again with our secret: what a holder
    of the secret could mint, so only the checks after the signature can refuse it."""
    head, _, rest = token.partition(".")
    payload = rest.partition(".")[0]
    signing_input = f"{head}.{payload}".encode()
    mac = hmac.digest(SECRET.encode(), signing_input, hashlib.sha256)
    return f"{head}.{payload}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def pyjwt_claims(token: str) -> dict[str, Any] | None:
    try:
        return dict(jwt.decode(token, SECRET, algorithms=["HS256"], options=REQUIRE))
    except jwt.PyJWTError:
        return None


@settings(max_examples=600, deadline=None)
@given(
    payload=claims,
    header=headers,
    key=st.sampled_from([SECRET, SECRET, OTHER]),
    algorithm=st.sampled_from(["HS256", "HS256", "HS384", "none"]),
    how=st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5]),
    where=st.integers(0, 500),
    char=st.sampled_from(list("A_-=+/.!é0z ")),
    resign=st.booleans(),
)
def test_the_fast_path_accepts_only_what_pyjwt_accepts(
    payload: dict[str, Any],
    header: dict[str, Any] | None,
    key: str,
    algorithm: str,
    how: int,
    where: int,
    char: str,
    resign: bool,
) -> None:
    try:
        token = jwt.encode(
            payload, key if algorithm != "none" else "", algorithm=algorithm, headers=header
        )
    except (TypeError, ValueError, OverflowError, jwt.PyJWTError):
        return  # not encodable as a JWT at all
    token = mutate(token, how, where, char)
    if resign and token.count(".") >= 1:
        token = resigned(token)
    fast = FastHS256(SECRET, CLOCK).claims(token)
    if fast is not None:
        assert pyjwt_claims(token) == fast, token


def test_every_token_the_server_issues_takes_the_fast_path() -> None:
    tokens = Tokens(SECRET, 3600, clock=CLOCK)
    for role in Role:
        token = tokens.issue(User(41, "ana", "ana@example.com", role, 0))
        fast = FastHS256(SECRET, CLOCK).claims(token)
        assert fast == pyjwt_claims(token)
        assert fast is not None and fast["sub"] == "41" and fast["role"] == role.value


def test_an_expired_or_future_token_is_left_to_pyjwt() -> None:
    issued = 1_900_000_000_000
    token = Tokens(SECRET, 60, clock=ManualClock(issued)).issue(
        User(41, "ana", "ana@example.com", Role.CUSTOMER, 0)
    )
    assert FastHS256(SECRET, ManualClock(issued)).claims(token) is not None
    assert FastHS256(SECRET, ManualClock(issued + 59_999)).claims(token) is not None
    assert FastHS256(SECRET, ManualClock(issued + 60_000)).claims(token) is None  # at `exp`
    assert FastHS256(SECRET, ManualClock(issued - 1)).claims(token) is None  # before `iat`
    assert FastHS256(OTHER, ManualClock(issued)).claims(token) is None


def test_a_non_canonical_payload_encoding_is_left_to_pyjwt() -> None:
    """Signed by us but encoded oddly: characters the decoder would skip, padding, or spare
    bits set in the last character. PyJWT refuses the first and last; the fast path takes none."""
    token = Tokens(SECRET, 3600, clock=CLOCK).issue(
        User(41, "ana", "ana@example.com", Role.CUSTOMER, 0)
    )
    head, payload, _ = token.split(".")
    assert len(payload) % 4 != 0  # so the last character has spare bits to set
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(payload[-1])
    spare = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    variants = [
        payload[:5] + "!" + payload[5:],
        payload[:5] + "\n" + payload[5:],
        payload + "=" * (-len(payload) % 4),
        payload[:-1] + spare,
    ]
    for odd in variants:
        assert odd != payload
        signed = resigned(f"{head}.{odd}.x")
        assert FastHS256(SECRET, CLOCK).claims(signed) is None, odd
    assert pyjwt_claims(resigned(f"{head}.{variants[0]}.x")) is None
    assert pyjwt_claims(resigned(f"{head}.{variants[3]}.x")) is None
