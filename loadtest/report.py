"""One-screen text reports. Each check and the report itself are also kept by the run's
recorder (`loadtest.record`), for `--report FILE.html` and `--json`."""

from __future__ import annotations

import io
import os
import pstats
import time
from pathlib import Path

from loadtest import record
from loadtest.stats import Outcomes, Summary


def header(title: str, lines: list[str]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    out = [f"== {title} ==  {stamp}  nproc={os.cpu_count()}", *lines]
    record.current().header(title, out)
    return "\n".join(out)


def outcome_table(outcomes: Outcomes, elapsed: float) -> list[str]:
    lines = [f"  {'outcome':<28} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for name, s in outcomes.summaries().items():
        lines.append(f"  {name:<28} {s.count:>7} {s.ms()}")
    total = outcomes.total
    rate = total / elapsed if elapsed > 0 else 0.0
    lines.append(f"  {'all':<28} {total:>7} {outcomes.overall().ms()}")
    lines.append(f"  throughput: {rate:,.0f} requests/s over {elapsed:.2f} s")
    return lines


def summary_line(name: str, s: Summary) -> str:
    return f"  {name:<28} {s.count:>9} {s.ms()}"


def check(ok: bool, text: str) -> str:
    record.current().check(ok, text)
    return f"  [{'PASS' if ok else 'FAIL'}] {text}"


def profile_top(path: Path, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(count)
    return out.getvalue()
