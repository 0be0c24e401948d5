"""`python -m loadtest multidrop` end to end with tiny settings: the closed-loop hot drop driven
by wrk beside the Python client's quiet trickle, on `serve --workers 2` (MariaDB, Redis) and on
one plain process. Keeps the scenario from rotting; its figures here mean nothing."""

from __future__ import annotations

import re

import pytest

from tests.cluster.conftest import redis_url  # noqa: F401  (the fixture: Redis or a skip)
from tests.conftest import require_wrk
from tests.e2e.test_loadtest_cluster import checks_of, run_scenario

pytestmark = pytest.mark.mysql

TINY = ("--hot-rate", "0", "-d", "1", "-r", "1", "--drops", "4", "--users", "400")


@pytest.fixture(autouse=True)
def _servers(mysql_server: object, redis_url: str) -> None:  # noqa: F811
    """Skipped, or failed when required, without MariaDB or Redis."""


@pytest.mark.parametrize("workers", ["2", "0"])
def test_multidrop_with_wrk_on_the_hot_drop_checks_every_answer(workers: str) -> None:
    require_wrk()
    out = run_scenario("multidrop", *TINY, "--hot-stock", "20", "--workers", workers)
    checks = checks_of(out)
    for check in (
        "sneakerd db check, every round: ok: every invariant holds",
        "every quiet request answered 201, every round",
        "hot drop (wrk): 20 answers 201, every other a 409, no socket error, every round",
    ):
        assert checks.get(check) == "PASS", (check, out)
    # wrk's answers and CPU, and the quiet phases' CPU split with wrk's beside the client's.
    assert re.search(r"answers in [0-9.]+ s .*\[201: 20, 409: [0-9,]+; socket errors 0\]", out)
    assert re.search(r"loadtest [0-9.]+, hot-wrk [0-9.]+, other", out), out
    assert re.search(r"quiet p99 ratio, median of 1 rounds: [0-9.]+ x", out), out
    # The database's own commits, probed in each phase: a stall there shows in any p99.
    assert re.search(r"database stalls \(probe commits over 50 ms\) with / alone \d+ / \d+", out)
    assert re.search(r"rounds without a database stall .*: [01] of 1|stalled in every round", out)


def test_multidrop_open_loop_hot_drop_still_runs_in_the_python_client() -> None:
    out = run_scenario(
        "multidrop", "--hot-rate", "300", "-d", "1", "-r", "1", "--drops", "4", "--users", "400"
    )
    checks = checks_of(out)
    assert checks.get("every quiet request answered 201, every round") == "PASS", out
    assert "phase 1, hot drop (the Python client):" in out, out
    assert not any(text.startswith("hot drop (wrk)") for text in checks), out
