"""Signatures, the retry schedule and registration checks: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sneakerd.clock import ManualClock
from sneakerd.webhooks.registrations import BadWebhook, check_events, check_url
from sneakerd.webhooks.schedule import DAY_MS, RetryPolicy
from sneakerd.webhooks.signing import header, new_secret, verify


def test_the_signature_is_hmac_sha256_of_t_dot_body_keyed_by_the_secret_string() -> None:
    secret, body = "whsec_abc", b'{"id":1}'
    value = header(secret, 1_700_000_000, body)
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert value == f"t=1700000000,v1={expected}"
    assert verify(secret, value, body, now=1_700_000_010)
    assert not verify(secret, value, body + b" ", now=1_700_000_010)
    assert not verify("whsec_other", value, body, now=1_700_000_010)
    assert not verify(secret, value, body, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify(secret, "v1=abc", body, now=1_700_000_000)


def test_secrets_are_fresh_and_long() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40


def test_backoff_doubles_with_full_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_ms=1_000, cap_ms=60_000)
    clock = ManualClock()
    now = clock.now_ms()
    assert [policy.ceiling(n) for n in (1, 2, 3, 4, 7, 8, 100)] == [
        1_000,
        2_000,
        4_000,
        8_000,
        60_000,
        60_000,
        60_000,
    ]
    assert policy.next_attempt(3, now, now, lambda: 0.0) == now  # full jitter: from 0 ...
    assert policy.next_attempt(3, now, now, lambda: 0.999) == now + 3_996  # ... to the ceiling
    assert policy.next_attempt(3, now, now, lambda: 0.5) == now + 2_000


def test_a_delivery_is_retried_for_a_day_then_dead() -> None:
    policy = RetryPolicy()
    clock = ManualClock()
    since = clock.now_ms()
    attempts, at = 0, since
    while True:  # the receiver fails every attempt; time moves to each scheduled retry
        clock.advance(at - clock.now_ms())
        attempts += 1
        retry = policy.next_attempt(attempts, since, clock.now_ms(), lambda: 1.0)
        if retry is None:
            break
        at = retry
    assert clock.now_ms() - since >= DAY_MS  # tried for at least 24 h
    assert clock.now_ms() - since < DAY_MS + policy.cap_ms  # and not much longer
    assert 30 < attempts < 60


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "example.com/hook",
        "http://",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "javascript:alert(1)",
        "https://example.com/" + "x" * 2048,
        # Each of these was taken and then failed every delivery for a day: the sender
        # (aiohttp) refuses what is not a dotted-quad address, a backslash in the authority,
        # and no connection goes to port 0.
        "http://127.1:5617/short",
        "http://2130706433/",
        "http://017.0.0.1/",
        "http://127.0.0.1:5612\\@127.0.0.1:5617/bs",
        "https://127.0.0.1:0/",
        # Credentials in the URL would show in every list and in the audit log.
        "http://user:pw@shop.example/h",
        "http://user@shop.example/h",
    ],
)
def test_a_webhook_url_must_be_http_or_https_with_a_host(url: str) -> None:
    with pytest.raises(BadWebhook) as caught:
        check_url(url)
    assert caught.value.field == "url"


def test_good_urls_and_event_filters() -> None:
    assert (
        check_url(" https://shop.example:8443/hooks?x=1 ") == "https://shop.example:8443/hooks?x=1"
    )
    assert check_url("http://127.0.0.1/h") == "http://127.0.0.1/h"
    assert check_url("http://[::1]:8080/h") == "http://[::1]:8080/h"
    assert check_url("https://hooks.shop.example/h?a=b#x") == "https://hooks.shop.example/h?a=b#x"
    assert check_events(["purchase.completed", "drop.sold_out", "purchase.completed"]) == (
        "purchase.completed",
        "drop.sold_out",
    )
    assert check_events([]) == ()
    with pytest.raises(BadWebhook, match=r"purchase\.done"):
        check_events(["purchase.done"])
