"""Server processes on loopback (start, wait for /readyz, RSS and CPU from /proc, stop) and the
throwaway databases they use (MariaDB `loadtest_*` databases, or SQLite files in a temp dir).

This is the one home of starting a server process and stopping it: `tests/serverproc.py` (the
test tiers' `sneakerd serve`) uses `free_port`, `QUIET_ENV`, `wait_ready` and `stop_process`."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

HOST = "127.0.0.1"
MYSQL_SERVER = "mysql://root@127.0.0.1:3306"
JWT_SECRET = "loadtest-secret-" + "k" * 40
CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
"""Where `loadtest` is importable from: the baseline servers run with their cwd elsewhere."""


def raise_nofile() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; children started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port_run(n: int) -> int:
    """A port P with P..P+n free on 127.0.0.1: the public port and the peer ports of
    `serve --workers n` (worker i listens on P + 1 + i).

    The run is taken below the kernel's range for outgoing connections: a port of that range
    that is free now can be taken, before a worker binds it, by a connection another worker
    opens to the database (seen: "address already in use" on a peer port, twice in six runs)."""
    top = min(_ephemeral_low(), 65_536) - n - 1
    for _ in range(200):
        port = random.randrange(10_000, max(top, 10_001))
        try:
            for p in range(port, port + n + 1):
                with socket.socket() as s:
                    s.bind((HOST, p))
        except OSError:
            continue
        return port
    raise RuntimeError("no run of free ports")


QUIET_ENV = {
    "BCRYPT_ROUNDS": "4",
    "RATE_LIMIT_AUTH": "0",
    "RATE_LIMIT_RESERVE": "0",
    # Every simulated client comes from this one address: the per-IP caps would refuse the
    # crowd (load tests measure the server, tests of these caps set them themselves).
    "MAX_CONNECTIONS_PER_IP": "0",
    "MAX_WEBSOCKETS_PER_IP": "0",
    # No access line per request: the tiers keep a server's output in a pipe they read only
    # when it stops (thousands of lines would fill it and stall the server), and the load
    # numbers are measured without it. Tests of the access log set LOG_LEVEL themselves.
    "LOG_LEVEL": "WARNING",
}
"""The environment of a server that one process drives as a crowd: cheap hashes, no limits."""


def wait_ready(
    proc: subprocess.Popen[Any],
    url: str,
    *,
    name: str,
    timeout: float,
    output: Callable[[], str],
    stop: Callable[[], object],
) -> None:
    """Poll `url` until it answers 200. If the process exits first, or the deadline passes (it
    is then stopped), raise naming `name` with the `output` it left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{output()}")
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"{name} did not become ready:\n{output()}")
        time.sleep(0.05)


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20.0
) -> tuple[int, Any]:
    """Send `sig`, wait up to `timeout`, then kill: (exit code, what it printed to a pipe)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


def proc_status(pid: int, key: str) -> int:
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise KeyError("Max open files")


@dataclass
class ServerProcess:
    """One server child process listening on 127.0.0.1:port."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 60.0, ready_path: str = "/readyz") -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.argv, "--port", str(self.port)],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_ready(
            self.proc,
            self.url + ready_path,
            name=self.name,
            timeout=timeout,
            output=self.log_tail,
            stop=self.stop,
        )
        return self

    def rss_kib(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        code, _ = stop_process(self.proc, timeout=timeout)
        self.proc = None
        return code


def sneakerd_server(
    db_url: str,
    workdir: Path,
    *,
    hold_ms: int = 60_000,
    extra: dict[str, str] | None = None,
    profile: Path | None = None,
) -> ServerProcess:
    env = {
        "DATABASE_URL": db_url,
        "JWT_SECRET": JWT_SECRET,
        "RESERVATION_DURATION": str(hold_ms),
        **QUIET_ENV,
        **(extra or {}),
    }
    wrap = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    return ServerProcess("sneakerd", [*wrap, "-m", "sneakerd", "serve"], env, workdir)


# -- databases ----------------------------------------------------------------------------------


def mysql_admin(db: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=HOST, port=3306, user="root", password="", database=db, autocommit=True
    )


@dataclass
class Database:
    """A fresh database for one run: `loadtest_<hex>` on MariaDB, or a SQLite file."""

    kind: str  # "mysql" | "sqlite"
    workdir: Path
    name: str = field(default_factory=lambda: f"loadtest_{secrets.token_hex(4)}")

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / (self.name + '.db')}"
        return f"{MYSQL_SERVER}/{self.name}"

    def init(self) -> None:
        """Create the database and sneakerd's schema with the operator CLI."""
        done = subprocess.run(
            [sys.executable, "-m", "sneakerd", "db", "init", "--db", self.url],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sneakerd db init failed: {done.stderr.strip()}")

    def check(self) -> tuple[bool, str]:
        """`python -m sneakerd db check`: (passed, its output)."""
        done = subprocess.run(
            [sys.executable, "-m", "sneakerd", "db", "check", "--db", self.url],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Its answer is on stdout (progress lines of a big check go to stderr); an error, on
        # stderr alone.
        return done.returncode == 0, done.stdout.strip() or done.stderr.strip()

    def drop(self) -> None:
        if self.kind == "mysql":
            conn = mysql_admin()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            finally:
                conn.close()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="loadtest-") as d:
        yield Path(d)
