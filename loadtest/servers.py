"""Server processes on loopback (start, wait for /readyz, RSS and CPU from /proc, stop) and the
throwaway databases they use (MariaDB `loadtest_*` databases, or SQLite files in a temp dir)."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")
            time.sleep(0.05)

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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
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
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_AUTH": "0",
        "RATE_LIMIT_RESERVE": "0",
        # Every simulated client comes from this one address: the per-IP caps would refuse
        # the crowd (the load tests measure the server, not its abuse limits).
        "MAX_CONNECTIONS_PER_IP": "0",
        "MAX_WEBSOCKETS_PER_IP": "0",
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
        return done.returncode == 0, (done.stdout + done.stderr).strip()

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
