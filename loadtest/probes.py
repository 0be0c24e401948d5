"""Outside views of a server under load: event-loop lag (a /healthz prober), machine and process
CPU from /proc, and a few of sneakerd's own /metrics (batch size, commit time)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from pathlib import Path

import aiohttp
import pymysql

from loadtest.client import connect
from loadtest.servers import HOST, mysql_admin, proc_cpu_seconds
from loadtest.stats import Summary


class HealthProbe:
    """GET /healthz every `interval` s on one keep-alive connection. The handler does no I/O,
    so its latency is how long the server's event loop took to get round to it."""

    def __init__(self, port: int, interval: float = 0.02) -> None:
        self.port = port
        self.interval = interval
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await connect(self.port)
        request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()
        try:
            while True:
                started = time.monotonic()
                try:
                    await conn.request(request)
                except ConnectionError:
                    return  # the server is gone (stopped, or the run was interrupted)
                self.latencies.append(time.monotonic() - started)
                await asyncio.sleep(self.interval)
        finally:
            conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> Summary:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task
        return Summary.of(self.latencies)


STALL_MS = 50.0
"""A probe commit slower than this is a stall of the database (its disk), not of the server."""


class CommitProbe:
    """A tiny commit to the run's MariaDB database every `interval` s, on a thread of its own
    with its own connection: what a commit costs the database itself at that moment, apart
    from any server. On a shared disk a commit now and then waits hundreds of milliseconds for
    its log write (seen: 19 of 39,000 one-row commits over 50 ms in 20 s, the slowest 555 ms,
    with nothing else running), and a phase's p99 of 760 holds is its eighth slowest: a stall
    in a phase shows there whatever the server does."""

    def __init__(self, database: str, interval: float = 0.05) -> None:
        self.database = database
        self.interval = interval
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        conn = mysql_admin(self.database)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS loadtest_probe (id INT PRIMARY KEY, n INT)")
            cur.execute("REPLACE INTO loadtest_probe VALUES (1, 0)")
        conn.autocommit(False)
        self._thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
        self._thread.start()

    def _run(self, conn: pymysql.connections.Connection) -> None:
        try:
            with conn.cursor() as cur:
                while not self._stop.wait(self.interval):
                    started = time.monotonic()
                    cur.execute("UPDATE loadtest_probe SET n = n + 1 WHERE id = 1")
                    conn.commit()
                    self.latencies.append(time.monotonic() - started)
        finally:
            conn.close()

    def stop(self) -> Summary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return Summary.of(self.latencies)

    @property
    def stalls(self) -> int:
        """Probe commits slower than `STALL_MS`."""
        return sum(1 for s in self.latencies if s * 1000 > STALL_MS)


def mariadb_pid() -> int | None:
    for name in ("mariadbd", "mysqld"):
        done = subprocess.run(["pidof", name], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.split():
            return int(done.stdout.split()[0])
    return None


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


class CpuMeter:
    """CPU used between start() and stop(): the machine (cores busy) and named processes."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}
        self._t0 = 0.0
        self._m0 = (0, 0)
        self._p0: dict[str, float] = {}
        self.result: dict[str, float] = {}

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._m0 = machine_jiffies()
        self._p0 = {k: proc_cpu_seconds(p) for k, p in self.pids.items()}

    def stop(self) -> dict[str, float]:
        """Cores busy on average: 'machine' (of nproc), and each process."""
        wall = max(1e-9, time.monotonic() - self._t0)
        busy, total = machine_jiffies()
        cores = (busy - self._m0[0]) / max(1, total - self._m0[1]) * (len(self._cpus()))
        self.result = {"machine": cores}
        for k, p in self.pids.items():
            self.result[k] = (proc_cpu_seconds(p) - self._p0[k]) / wall
        self.result["other"] = max(
            0.0, cores - sum(v for k, v in self.result.items() if k != "machine")
        )
        return self.result

    @staticmethod
    def _cpus() -> list[str]:
        return [
            line
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("cpu") and line[3:4].isdigit()
        ]

    def line(self) -> str:
        parts = [f"{k} {v:.2f}" for k, v in self.result.items()]
        return "  CPU (cores busy, avg over the load): " + ", ".join(parts)


async def scrape(base_url: str) -> dict[str, float]:
    """sneakerd /metrics as {sample line name with labels: value}."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url + "/metrics") as response,
    ):
        text = await response.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def actor_figures(metrics: dict[str, float], drop_id: int) -> str:
    label = f'{{drop="{drop_id}"}}'
    batches = metrics.get(f"sneakerd_actor_batch_size_count{label}", 0.0)
    size = metrics.get(f"sneakerd_actor_batch_size_sum{label}", 0.0)
    commit = metrics.get(f"sneakerd_actor_commit_seconds_sum{label}", 0.0)
    if not batches:
        return "  actor: no batches recorded"
    return (
        f"  actor (server /metrics): {batches:.0f} batches, mean size {size / batches:.1f}, "
        f"mean commit {commit / batches * 1e3:.2f} ms"
    )


async def wait_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (at most `max_wait` s) until the machine is nearly idle over one second: another
    job's tests or builds on the same 2 cores skew every figure. Returns the last busy level
    seen (cores)."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_jiffies()
        await asyncio.sleep(1.0)
        b1, t1 = machine_jiffies()
        busy = (b1 - b0) / max(1, t1 - t0) * len(CpuMeter._cpus())
        if busy < threshold or time.monotonic() >= deadline:
            return busy
