"""`sneakerd serve --workers N`: real supervisor and worker processes on MariaDB and Redis."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadtest.servers import QUIET_ENV, free_port_run
from sneakerd.cluster.busy_board import board_path
from sneakerd.cluster.workers import BACKOFF_MAX, backoff, worker_env, worker_specs
from sneakerd.config import Settings
from tests.cluster.conftest import process_state
from tests.serverproc import JWT_SECRET

SERVE = (sys.executable, "-m", "sneakerd", "serve")
WORKER_LINE = re.compile(r"sneakerd worker (\d+): node (\S+) pid (\d+) peer (\S+)")


def test_each_worker_is_told_its_node_id_peer_port_and_the_flags() -> None:
    settings = Settings.from_mapping(
        {"NODE_ID": "web", "REDIS_URL": "redis://r:6379", "JWT_SECRET": "j" * 32}
    ).replace(workers=3, port=7000, database_url="mysql://root@db/shop")
    specs = worker_specs(settings)
    assert [(s.index, s.node_id, s.peer_port) for s in specs] == [
        (0, "web-0", 7001),
        (1, "web-1", 7002),
        (2, "web-2", 7003),
    ]
    env = worker_env(settings, specs[2], {"PATH": "/bin", "PORT": "5000"})
    assert env["PATH"] == "/bin"
    assert (env["PORT"], env["DATABASE_URL"], env["WORKERS"]) == (
        "7000",
        "mysql://root@db/shop",
        "3",
    )
    assert (env["NODE_ID"], env["NODE_URL"]) == ("web-2", "http://127.0.0.1:7003")
    assert (env["SNEAKERD_WORKER_INDEX"], env["SNEAKERD_PEER_PORT"]) == ("2", "7003")
    worker = Settings.from_mapping(env)
    assert (worker.node_id, worker.node_url, worker.worker_index) == (
        "web-2",
        "http://127.0.0.1:7003",
        2,
    )
    assert (worker.jwt_secret, worker.redis_url, worker.port) == ("j" * 32, "redis://r:6379", 7000)


def test_the_restart_backoff_doubles_and_is_capped() -> None:
    delays = [backoff(n) for n in range(12)]
    assert delays[0] > 0
    assert all(b == min(2 * a, BACKOFF_MAX) for a, b in itertools.pairwise(delays))
    assert delays[-1] == BACKOFF_MAX


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a listening TCP socket on 127.0.0.1:`port` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and local == f"0100007F:{port:04X}":
            inodes.add(f"socket:[{inode}]")
    held = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:  # the process has exited
        return False
    for fd in fds:
        try:
            held.add(os.readlink(fd))
        except OSError:
            continue
    return bool(inodes & held)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return process_state(pid) == "Z"


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return int(answer.status)


class Supervised:
    """`sneakerd serve --workers N` as a child process, its output read line by line."""

    def __init__(self, db_url: str, redis_url: str, prefix: str, cwd: Path, workers: int) -> None:
        self.port = free_port_run(workers)
        env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST", "WORKERS")
        }
        env.update(
            {
                **QUIET_ENV,
                "JWT_SECRET": JWT_SECRET,
                "REDIS_URL": redis_url,
                "REDIS_PREFIX": prefix,
                "NODE_ID": "sup",
            }
        )
        self.proc = subprocess.Popen(
            [*SERVE, "--workers", str(workers), "--port", str(self.port), "--db", db_url],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, timeout: float = 40) -> list[str]:
        """The first `count` lines matching `pattern` (waiting for them)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if pattern.search(line)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {count} lines like {pattern.pattern}:\n{self.lines}")
                self._changed.wait(min(left, 0.5))

    def workers(self) -> dict[int, int]:
        """The latest pid of each worker, by index, from their first lines."""
        pids: dict[int, int] = {}
        with self._changed:
            for line in self.lines:
                if m := WORKER_LINE.search(line):
                    pids[int(m[1])] = int(m[3])
        return pids

    def wait_ready(self, pid: int, timeout: float = 40) -> None:
        """Until worker `pid` listens on the public port."""
        deadline = time.monotonic() + timeout
        while not listens(pid, self.port):
            assert time.monotonic() < deadline, f"worker {pid} never listened:\n{self.output()}"
            assert not gone(pid), f"worker {pid} died:\n{self.output()}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `sig` and wait (then kill). The reader thread alone reads the pipe, to its end."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def supervised(
    mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[Callable[[int], Supervised]]:
    started: list[Supervised] = []

    def start(workers: int = 2) -> Supervised:
        sup = Supervised(mysql_url, redis_url, redis_prefix, tmp_path, workers)
        started.append(sup)
        return sup

    yield start
    for sup in started:
        if sup.proc.poll() is None:
            sup.stop()


@pytest.mark.mysql
def test_two_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(
    supervised: Callable[[int], Supervised],
) -> None:
    sup = supervised(2)
    lines = sup.wait_for(WORKER_LINE, 2)
    assert {m[2] for line in lines if (m := WORKER_LINE.search(line))} == {"sup-0", "sup-1"}
    first = sup.workers()
    assert sorted(first) == [0, 1] and len(set(first.values())) == 2
    for index, pid in first.items():
        sup.wait_ready(pid)  # each worker binds the public port (SO_REUSEPORT) ...
        assert listens(pid, sup.port + 1 + index)  # ... and its own peer port
        assert not listens(pid, sup.port + 2 - index)
    assert get(f"http://127.0.0.1:{sup.port}/healthz") == 200
    assert get(f"http://127.0.0.1:{sup.port + 1}/healthz") == 200
    assert get(f"http://127.0.0.1:{sup.port + 2}/healthz") == 200
    board = board_path(sup.proc.pid)  # where they share their writes in flight
    assert board.stat().st_size == 2 * 8

    os.kill(first[0], signal.SIGKILL)
    sup.wait_for(re.compile(r"worker 0 \(node sup-0, pid \d+\) exited unexpectedly.*restarting"))
    sup.wait_for(WORKER_LINE, 3)
    again = sup.workers()
    assert again[1] == first[1] and again[0] != first[0]
    sup.wait_ready(again[0])
    assert get(f"http://127.0.0.1:{sup.port}/readyz") == 200

    assert sup.stop(signal.SIGTERM) == 0
    assert all(gone(pid) for pid in again.values())
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", sup.port)):
        pass  # nothing holds the public port any more
    assert "every worker has stopped" in sup.output()
    assert not board.exists()


@pytest.mark.mysql
def test_workers_stop_when_their_supervisor_is_killed(
    supervised: Callable[[int], Supervised],
) -> None:
    sup = supervised(2)
    sup.wait_for(WORKER_LINE, 2)
    pids = sup.workers()
    for pid in pids.values():
        sup.wait_ready(pid)
    assert sup.stop(signal.SIGKILL) == -9
    deadline = time.monotonic() + 30
    while not all(gone(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.1)


def test_two_workers_on_sqlite_exit_with_the_one_line_reason(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SERVE, "--workers", "2", "--db", f"sqlite:///{tmp_path / 'one.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "REDIS_URL": "redis://127.0.0.1:6379"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "sneakerd: error: SQLite serves one process only: use a MySQL DATABASE_URL for --workers 2"
    ]
    assert "listening" not in done.stdout
    assert not (tmp_path / "one.db").exists()


def test_a_bad_workers_flag_names_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "--workers: must be between 1 and 64, not 0" in done.stderr
