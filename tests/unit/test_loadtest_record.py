"""The run recorder's per-second samples and the HTML page drawn from them (no I/O)."""

from __future__ import annotations

import math

from loadtest import htmlreport
from loadtest.record import Recorder


def test_answers_are_bucketed_by_the_second_they_came_in_with_quiet_seconds_kept() -> None:
    rec = Recorder(scenario="x", t0=100.0, wall0=1000.0)
    rec.request("201", 0.002, done=100.2)
    rec.request("201", 0.004, done=100.9)
    rec.request("409 out_of_stock", 0.001, done=100.5)
    rec.request("201", 0.010, done=103.1)
    rec.counts(1001.5, {"201": 7})
    rows = rec.per_second()
    assert [row["t"] for row in rows] == [0, 1, 2, 3]
    assert rows[0]["outcomes"]["201"]["count"] == 2
    assert rows[0]["outcomes"]["201"]["p50Ms"] == 2.1  # 0.1 ms buckets, upper edge
    assert rows[0]["outcomes"]["409 out_of_stock"]["count"] == 1
    assert rows[1]["outcomes"] == {"201": {"count": 7, "p50Ms": None, "p99Ms": None, "maxMs": None}}
    assert rows[2]["outcomes"] == {}
    assert rows[3]["outcomes"]["201"]["maxMs"] == 10.0


def test_the_verdict_is_every_check_and_a_failure_shows_as_such() -> None:
    rec = Recorder(scenario="hotdrop")
    rec.check(True, "  [PASS] one")
    assert rec.passed
    rec.check(False, "  [FAIL] two <b>")
    assert not rec.passed
    page = htmlreport.render(rec)
    assert "FAIL: 1 of 2 checks pass" in page
    assert '<span class="bad">FAIL</span> two &lt;b&gt;' in page
    assert "no samples" in page  # no answers recorded: said, not drawn empty


def test_a_chart_spanning_decades_gets_a_log_axis_and_nan_points_are_left_out() -> None:
    svg = htmlreport.line_chart(
        "latency", [("a", [(0, 0.5), (1, 900.0), (2, math.nan)], "", "a")], "s", "ms"
    )
    assert "ms (log)" in svg and svg.count("<polyline ") == 1
    assert "nan" not in svg.lower()
    linear = htmlreport.line_chart("rate", [("a", [(0, 10.0), (1, 20.0)], "", "a")], "s", "n")
    assert "(log)" not in linear


def test_nice_steps_are_one_two_or_five_times_a_power_of_ten() -> None:
    assert htmlreport.nice_step(10) == 2
    assert htmlreport.nice_step(1000) == 200
    assert htmlreport.nice_step(7) == 2
    assert htmlreport.nice_step(0) == 1.0
