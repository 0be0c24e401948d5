"""`python -m loadtest hotdrop --report FILE.html --json FILE` (short settings) writes one
self-contained page with its charts and checks, and the same run as JSON; `--json` alone puts
the JSON on stdout and the text report on stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--store", "sqlite", "--users", "200", "--stock", "50", "-c", "4"]


def _loadtest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "loadtest", "--wait-quiet", "0", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hotdrop_writes_a_self_contained_html_report_and_json(tmp_path: Path) -> None:
    page, data = tmp_path / "r.html", tmp_path / "r.json"
    done = _loadtest(
        "hotdrop", *SHORT, "--requests", "1500", "--report", str(page), "--json", str(data),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    checks = re.findall(r"^  \[(PASS|FAIL)\] (.*)$", done.stdout, re.M)
    assert len(checks) == 3 and all(status == "PASS" for status, _ in checks), done.stdout

    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert len(re.findall(r"<svg ", html)) >= 2
    assert "Throughput per second, by outcome" in html
    assert "Latency per second, by outcome" in html
    assert html.count("<polyline ") >= 3  # a line per outcome, at least 201 and one 409
    assert "PASS: 3 of 3 checks pass" in html
    for _, text in checks:
        assert text.split(":")[0] in html

    run = json.loads(data.read_text())
    assert run["scenario"] == "hotdrop" and run["passed"] is True
    assert [c["ok"] for c in run["checks"]] == [True, True, True]
    answered = sum(o["count"] for row in run["perSecond"] for o in row["outcomes"].values())
    assert answered == 1500
    outcomes = {o for row in run["perSecond"] for o in row["outcomes"]}
    assert "201" in outcomes and any(o.startswith("409 ") for o in outcomes), outcomes
    assert all(
        v["p99Ms"] is not None and v["p99Ms"] >= v["p50Ms"] > 0
        for row in run["perSecond"]
        for v in row["outcomes"].values()
    )


def test_json_alone_goes_to_stdout_and_the_text_to_stderr(tmp_path: Path) -> None:
    done = _loadtest("hotdrop", *SHORT, "--requests", "300", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert run["passed"] is True and run["report"].startswith("== hotdrop ==")
    assert "== hotdrop ==" in done.stderr
