"""The sustained load test's readings: GC pauses between two /metrics scrapes, wrk's report."""

from __future__ import annotations

import math

from loadtest.gcpauses import Pauses, between
from loadtest.wrk import parse_report

EDGES = ("0.1", "0.2", "0.3", "0.5", "1.0", "+Inf")


def scrape(count: int, total: float, longest: float, buckets: dict[str, int]) -> dict[str, float]:
    g = '{generation="2"}'
    out = {
        f"sneakerd_gc_pause_seconds_count{g}": float(count),
        f"sneakerd_gc_pause_seconds_sum{g}": total,
        f"sneakerd_gc_pause_longest_seconds{g}": longest,
        # A young generation's figures must not be mixed in.
        'sneakerd_gc_pause_seconds_count{generation="0"}': 999.0,
    }
    for edge in EDGES:
        out[f'sneakerd_gc_pause_seconds_bucket{{generation="2",le="{edge}"}}'] = float(
            buckets.get(edge, count)
        )
    return out


def test_no_full_pass_between_scrapes() -> None:
    s = scrape(3, 0.9, 0.4, {"0.1": 0, "0.2": 1, "0.3": 2, "0.5": 3})
    assert between(s, s) == Pauses(0, 0.0, 0.0, 0.0)
    assert between(s, s).worst_text() == "-"


def test_one_pass_is_known_exactly_from_the_sum() -> None:
    before = scrape(3, 0.9, 0.4, {"0.1": 0, "0.2": 1, "0.3": 2, "0.5": 3})
    after = scrape(4, 1.15, 0.4, {"0.1": 0, "0.2": 1, "0.3": 3, "0.5": 4})
    p = between(before, after)
    assert p.count == 1 and p.exact and math.isclose(p.worst_high, 0.25)
    assert p.worst_text() == "250 ms"


def test_a_new_longest_pause_is_the_worst_of_the_round() -> None:
    before = scrape(3, 0.9, 0.4, {"0.1": 0, "0.2": 1, "0.3": 2, "0.5": 3})
    after = scrape(6, 2.4, 0.62, {"0.1": 0, "0.2": 1, "0.3": 2, "0.5": 5, "1.0": 6})
    p = between(before, after)
    assert (p.count, p.exact, p.worst_high) == (3, True, 0.62)
    assert math.isclose(p.total, 1.5)


def test_otherwise_the_worst_is_known_to_its_bucket() -> None:
    before = scrape(3, 0.9, 0.4, {"0.1": 0, "0.2": 1, "0.3": 2, "0.5": 3})
    after = scrape(5, 1.3, 0.4, {"0.1": 0, "0.2": 2, "0.3": 4, "0.5": 5})
    p = between(before, after)
    assert (p.count, p.worst_low, p.worst_high, p.exact) == (2, 0.2, 0.3, False)
    assert p.worst_text() == "200-300 ms"


def test_a_pause_beyond_the_last_edge_is_open_ended() -> None:
    before = scrape(1, 0.05, 9.0, {"0.1": 1, "0.2": 1, "0.3": 1, "0.5": 1, "1.0": 1})
    after = scrape(3, 4.0, 9.0, {"0.1": 1, "0.2": 1, "0.3": 1, "0.5": 1, "1.0": 1})
    p = between(before, after)
    assert (p.worst_low, p.worst_high) == (1.0, math.inf)
    assert p.worst_text() == ">1000 ms"


def test_wrk_report_is_read_with_its_ids() -> None:
    text = (
        '{"requests":1200,"duration_us":2000000,"bytes":1,'
        '"errors":{"connect":0,"read":1,"write":0,"status":3,"timeout":0},'
        '"latency_us":{"min":100,"mean":700.5,"p50":600,"p90":900,"p99":4200,"p999":9000,'
        '"max":12000},"statuses":{"201":1197,"409":3},"threads":1}'
    )
    r = parse_report(text, ["1", "2"], 0.25)
    assert r.rate == 600.0
    assert r.ms("p99") == 4.2
    assert r.not_201() == {409: 3}
    assert r.error_count == 4
    assert r.ids == ["1", "2"]
    assert r.per_second == {}


def test_wrk_report_reads_its_answers_per_second() -> None:
    text = (
        '{"requests":3,"duration_us":2000000,"bytes":1,'
        '"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},'
        '"latency_us":{"min":1,"mean":1,"p50":1,"p90":1,"p99":1,"p999":1,"max":1},'
        '"statuses":{"201":2,"409":1},"per_second":{"1764583200:201":2,'
        '"1764583201:409":1},"threads":1}'
    )
    r = parse_report(text, [], 0.0)
    assert r.per_second == {1764583200: {201: 2}, 1764583201: {409: 1}}
