"""`python -m loadtest sustained` end to end, shortened (2 rounds of 1 s, 300 responses each):
wrk drives real servers, the report has its rounds and ratios, and every check passes. Keeps
the scenario from rotting; its figures here mean nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_wrk

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_sustained_runs_and_its_checks_pass(store: str, request: pytest.FixtureRequest) -> None:
    require_wrk()  # skipped, or failed under SNEAKERD_REQUIRE_WRK=1, without wrk
    if store == "mysql":
        request.getfixturevalue("mysql_server")  # skipped, or failed when required, without it
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    short = ["-r", "2", "-d", "1", "--users", "40", "-c", "4", "--requests", "300"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "--wait-quiet",
            "0",
            "sustained",
            "--store",
            store,
            *short,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    checks = re.findall(r"^  \[(PASS|FAIL)\] (.*)$", out, re.M)
    assert len(checks) == 7 and all(status == "PASS" for status, _ in checks), out
    # Two rounds per server, each with a rate and latencies.
    rows = re.findall(r"^ +([12]) +([0-9,]+) +([0-9.]+) +([0-9.]+) +([0-9.]+) ", out, re.M)
    assert [r[0] for r in rows] == ["1", "2", "1", "2"], out
    # Every 201 of both rounds had its id checked (how many there are depends on the
    # machine's speed: a round is 1 s, capped at 300 answers).
    told = re.search(r"every 201 id is an active hold of the drop: ([0-9,]+) ids", out)
    assert told is not None, out
    checked = int(told.group(1).replace(",", ""))
    table = [line.split() for line in out.splitlines() if re.match(r"^ +2 +[0-9,]+ ", line)]
    assert checked == int(table[0][9].replace(",", "")) > 2 * 4, out
    assert all(float(r[3]) > 0 for r in rows), out
    for ratio in (
        r"round 2 p99 / round 1 p99 = .* = [0-9.]+ x",
        r"round 2 throughput / round 1 = .* = [0-9.]+ x",
        r"worst full-GC pause",
        r"median sustained holds/s / ceiling = .* = [0-9.]+ x",
        r"memory per live hold = RSS growth / holds = .* bytes",
    ):
        assert re.search(ratio, out), (ratio, out)
