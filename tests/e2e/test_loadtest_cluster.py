"""The cluster scenarios of `python -m loadtest` end to end with tiny settings: `workers`
(serve --workers 1 and 2 under wrk), `failover` (kill -9 the owner mid-burst) and
`cluster-watchers` (watchers on two nodes). Real MariaDB, Redis and processes; each run checks
its own invariants. Keeps the scenarios from rotting; their figures here mean nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import redis_url  # noqa: F401  (the fixture: Redis or a skip)
from tests.conftest import require_wrk

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.mysql


@pytest.fixture(autouse=True)
def _servers(mysql_server: object, redis_url: str) -> None:  # noqa: F811
    """Skipped, or failed when required, without MariaDB or Redis."""


def run_scenario(*argv: str, timeout: float = 150) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    done = subprocess.run(
        [sys.executable, "-m", "loadtest", "--wait-quiet", "0", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def checks_of(out: str) -> dict[str, str]:
    return {text: status for status, text in re.findall(r"^  \[(PASS|FAIL)\] (.*)$", out, re.M)}


def test_workers_runs_both_counts_and_every_answer_is_what_its_load_asks_for() -> None:
    require_wrk()
    out = run_scenario(
        "workers",
        *("-r", "1", "-d", "1", "--requests", "200", "-c", "4", "--wrk-users", "40"),
        *("--users", "300", "--md-duration", "1", "--drops", "4"),
    )
    checks = checks_of(out)
    correctness = [t for t in checks if t.startswith("(")]
    assert len(correctness) == 3 and all(checks[t] == "PASS" for t in correctness), out
    assert len(re.findall(r"^  round 1, [12] worker\(s\):$", out, re.M)) == 2, out
    # wrk stops a thread after its 200th answer, but answers already read in that turn of its
    # loop are counted too: at most one more per connection (-c 4).
    for status in ("409", "201"):
        counts = [int(n) for n in re.findall(rf"\[{status}: (\d+); socket errors 0\]", out)]
        assert len(counts) == 2 and all(200 <= n <= 204 for n in counts), out
    for figure in (
        r"\(a\) refusals/s.*2w / 1w = [0-9.]+ x",
        r"\(b\) grants/s.*2w / 1w = [0-9.]+ x",
    ):
        assert re.search(figure, out), (figure, out)
    assert re.search(r"\(c\) quiet p99 .* 1w [0-9.]+ x, 2w [0-9.]+ x", out), out
    assert re.search(r"without a database stall in either phase .*: 1w [01] of 1", out), out


def test_workers_only_ab_skips_multidrop_and_shows_who_answered_the_grants() -> None:
    require_wrk()
    out = run_scenario(
        "workers",
        *("-r", "1", "-d", "1", "--requests", "200", "-c", "4", "--wrk-users", "40"),
        *("--users", "300", "--only", "ab"),
    )
    checks = checks_of(out)
    correctness = [t for t in checks if t.startswith("(")]
    assert len(correctness) == 2 and all(checks[t] == "PASS" for t in correctness), out
    assert "(c)" not in out and "multidrop" not in out, out
    # Under 2 workers every 201 was answered by one worker or the other (wrk stops counting
    # at 200, while up to one request per connection may still be answered), and the drop's
    # batches were the owner's alone.
    split = re.search(r"answered: w0 ([0-9,]+) 201s(.*), w1 ([0-9,]+) 201s(.*)$", out, re.M)
    assert split is not None, out
    assert 200 <= sum(int(split.group(n).replace(",", "")) for n in (1, 3)) <= 204, out
    assert ("owner:" in split.group(2)) != ("owner:" in split.group(4)), out
    assert re.search(r"\(workers [0-9.]+ \+ [0-9.]+\)", out), out


def test_failover_moves_the_drop_and_keeps_every_acknowledged_hold() -> None:
    out = run_scenario(
        "failover",
        *("--lease-ms", "1000", "-c", "4", "--users", "40", "--kill-after", "1", "--after", "0.5"),
        timeout=90,
    )
    checks = checks_of(out)
    assert len(checks) == 6 and set(checks.values()) == {"PASS"}, out
    took = re.search(r"time from the kill to the survivor's first 201: ([0-9.]+) s", out)
    assert took is not None and float(took.group(1)) <= 3.0, out
    # The lease row is polled, so when it was seen to move can trail the first 201 a little;
    # that it moved, and to whom, is one of the PASS lines above.
    moved = re.search(r"the lease row named the survivor ([0-9.]+) s after the kill", out)
    assert moved is not None, out


def test_cluster_watchers_deliver_on_both_nodes_in_order() -> None:
    out = run_scenario(
        "cluster-watchers",
        *("-n", "20", "--stock", "200", "-c", "2", "--rate", "40", "-d", "1"),
        timeout=90,
    )
    checks = checks_of(out)
    assert len(checks) == 6 and set(checks.values()) == {"PASS"}, out
    assert re.search(r"node a \((owner|relayed)\) from the 201 +[0-9,]+ ", out), out
    assert re.search(r"node b \((owner|relayed)\) from the 201 +[0-9,]+ ", out), out
