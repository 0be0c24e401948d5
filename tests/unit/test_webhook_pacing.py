"""The deliverer's pacing: when it yields to a burst, how much it still sends, when it stops."""

from __future__ import annotations

from sneakerd.webhooks.pacing import Pacer


def _burst(pacer: Pacer, *, rate: float, start: int = 0, until: int = 1_000) -> int:
    """Observe an outbox growing at `rate` events a second from `start` to `until` (ms), one
    reading every 300 ms (the head is `rate` x the time since 0); returns the last reading's
    time."""
    t = start
    while t <= until:
        pacer.observe(t, int(rate * t / 1000))
        t += 300
    return t - 300


def test_a_quiet_outbox_never_holds_delivery_back() -> None:
    pacer = Pacer(busy_rate=200, trickle=100)
    now = _burst(pacer, rate=150)
    assert pacer.rate == 150 and not pacer.yielding(now)
    assert all(pacer.may_send(now) for _ in range(10_000))
    assert pacer.share(now, 500) == 500


def test_a_burst_leaves_only_the_trickle_and_its_end_restores_full_speed() -> None:
    pacer = Pacer(busy_rate=200, trickle=100, period_ms=200)
    assert not pacer.yielding(0)
    now = _burst(pacer, rate=2_000)
    assert pacer.rate == 2_000 and pacer.yielding(now)
    # One pass's worth at once (a fifth of a second: 20), then 100 a second.
    assert sum(pacer.may_send(now) for _ in range(1_000)) == 20
    assert not pacer.may_send(now)
    sent = 0
    for t in range(now + 10, now + 2_010, 10):  # two more seconds, asked every 10 ms
        sent += sum(pacer.may_send(t) for _ in range(100))
    assert 195 <= sent <= 201
    assert pacer.share(now, 500) == 40 and pacer.share(now, 10) == 10
    # The burst ends: the next reading (the head stands still) lifts every limit.
    pacer.observe(now + 2_300, 2 * now)
    assert pacer.rate == 0 and not pacer.yielding(now + 2_300)
    assert all(pacer.may_send(now + 2_300) for _ in range(1_000))


def test_readings_closer_than_the_sample_interval_do_not_decide() -> None:
    pacer = Pacer(busy_rate=200)
    pacer.observe(0, 0)
    pacer.observe(10, 1_000)  # 100,000/s over 10 ms: too short to tell
    assert pacer.rate == 0 and not pacer.yielding(10)
    pacer.observe(300, 1_000)
    assert pacer.yielding(300)


def test_a_sustained_load_is_yielded_to_for_a_bounded_time_only() -> None:
    pacer = Pacer(busy_rate=200, trickle=100, longest_yield_ms=30_000)
    now = _burst(pacer, rate=5_000, until=29_700)  # busy from the reading at 300 ms on
    assert pacer.yielding(now)
    now = _burst(pacer, rate=5_000, start=now + 300, until=now + 900)
    assert not pacer.yielding(now)
    assert all(pacer.may_send(now) for _ in range(1_000))
    # Once the rate falls and rises again, a new burst is yielded to again.
    head = 5 * now
    pacer.observe(now + 300, head)
    assert not pacer.yielding(now + 300)
    pacer.observe(now + 600, head + 1_000)
    assert pacer.yielding(now + 600)


def test_while_yielding_a_pass_takes_one_periods_share() -> None:
    pacer = Pacer(busy_rate=200, trickle=20)  # the default period: one pass a second
    now = _burst(pacer, rate=2_000)
    assert pacer.yielding(now)
    assert sum(pacer.may_send(now) for _ in range(100)) == 20
    assert pacer.share(now, 500) == 40
    assert sum(pacer.may_send(now + 1_000) for _ in range(100)) == 20


def test_the_first_pass_into_a_burst_already_yields() -> None:
    """Passes come 200 ms apart: the reading taken 200 ms into a burst decides at once."""
    pacer = Pacer(busy_rate=200)
    pacer.observe(0, 0)  # the pass before the burst
    pacer.observe(200, 400)  # 2,000 a second since
    assert pacer.yielding(200)
