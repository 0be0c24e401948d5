"""wrk as the load generator: one run of Debian's `wrk` with `sustained.lua`, and its report.

wrk is C on an epoll loop: one thread drives 64 keep-alive connections at >15,000 requests/s for
a few hundredths of a core, where the Python client (`client.py`) would take a good part of the
core the server needs. The Lua script spreads requests over many users' tokens, counts every
status, writes every 201's reservation id to a file and, in `done`, wrk's own latency
percentiles (microseconds, every response) to JSON.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadtest import record

SCRIPT = Path(__file__).resolve().parent / "sustained.lua"
INSTALL_HINT = "wrk not found: install Debian's package (apt-get install wrk)"


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


@dataclass(frozen=True, slots=True)
class WrkReport:
    """One wrk run, from the script's `done` JSON and its id files."""

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    statuses: dict[int, int]
    ids: list[str] = field(repr=False)
    cpu_seconds: float
    """wrk's own user + system CPU (from the children's rusage: it is the only child that
    ends during a round)."""
    per_second: dict[int, dict[int, int]] = field(default_factory=dict, repr=False)
    """Answers per wall-clock second (Unix time) and status."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def ms(self, key: str) -> float:
        return self.latency_us[key] / 1000.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def not_201(self) -> dict[int, int]:
        return {status: n for status, n in self.statuses.items() if status != 201}


def parse_report(text: str, ids: list[str], cpu_seconds: float) -> WrkReport:
    data: dict[str, Any] = orjson.loads(text)
    return WrkReport(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_us={k: float(v) for k, v in data["latency_us"].items()},
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        ids=ids,
        cpu_seconds=cpu_seconds,
        per_second=_per_second(data.get("per_second", {})),
    )


def _per_second(flat: dict[str, int]) -> dict[int, dict[int, int]]:
    """The script's {"second:status": n} as {second: {status: n}}."""
    seconds: dict[int, dict[int, int]] = {}
    for key, n in flat.items():
        second, status = key.split(":")
        seconds.setdefault(int(second), {})[int(status)] = int(n)
    return seconds


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    url: str,
    *,
    tokens_file: Path,
    drop_id: int,
    out: Path,
    seconds: int,
    connections: int,
    threads: int = 1,
    max_responses: int = 0,
) -> WrkReport:
    """`wrk -t threads -c connections -d seconds` against `url`; `out` is a path prefix for
    the script's report and id files (both are read back and removed)."""
    run = await start_wrk(
        url,
        tokens_file=tokens_file,
        drop_id=drop_id,
        out=out,
        seconds=seconds,
        connections=connections,
        threads=threads,
        max_responses=max_responses,
    )
    return await run.finish()


class WrkRun:
    """A wrk process under way: its pid (for a CPU meter while it runs) and `finish`, which
    waits for it (or first stops it, as its Ctrl-C does: wrk then reports as at its -d end)."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path, threads: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._out = out
        self._threads = threads
        self._cpu0 = children_cpu()

    async def finish(self, *, stop: bool = False) -> WrkReport:
        if stop and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        output, _ = await self.proc.communicate()
        cpu = children_cpu() - self._cpu0
        out = self._out
        report_path = out.with_name(out.name + ".json")
        if self.proc.returncode != 0 or not report_path.exists():
            raise RuntimeError(
                f"wrk failed ({self.proc.returncode}):\n{output.decode(errors='replace')}"
            )
        ids: list[str] = []
        for k in range(1, self._threads + 1):
            path = out.with_name(f"{out.name}.ids.{k}")
            if path.exists():
                ids.extend(path.read_text().split())
                path.unlink()
        text = report_path.read_text()
        report_path.unlink()
        report = parse_report(text, ids, cpu)
        record_run(report)
        return report


async def start_wrk(
    url: str,
    *,
    tokens_file: Path,
    drop_id: int,
    out: Path,
    seconds: int,
    connections: int,
    threads: int = 1,
    max_responses: int = 0,
) -> WrkRun:
    """Start `run_wrk`'s wrk and return while it runs (a load that others are timed against
    starts it, runs its own load beside it, then stops it)."""
    env = {
        **os.environ,
        "SUSTAINED_TOKENS": str(tokens_file),
        "SUSTAINED_DROP": str(drop_id),
        "SUSTAINED_OUT": str(out),
        "SUSTAINED_MAX": str(max_responses),
    }
    argv = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",  # a stalled server shows up as latency, not as wrk giving up on the request
        "-s",
        str(SCRIPT),
        url + "/",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return WrkRun(proc, out, threads)


def record_run(report: WrkReport) -> None:
    """The run's answers per second and status, and its p99 and rate as one sample each at
    its end, into the run's recorder (wrk knows latencies for the whole run only)."""
    recorder = record.current()
    for second, counts in report.per_second.items():
        recorder.counts(second, {str(status): n for status, n in counts.items()})
    recorder.gauge("wrk p99 latency, each wrk run", report.ms("p99"), "ms")
    recorder.gauge("wrk throughput, each wrk run", report.rate, "answers / s")
