"""The multi-process harness: K real `sneakerd serve` nodes on one database and one Redis prefix.

- `redis_url`: the Redis server (SNEAKERD_TEST_REDIS, default redis://127.0.0.1:6379). Without
  one the tests that need it are skipped, unless SNEAKERD_REQUIRE_REDIS=1 (as in CI), where a
  missing server fails them.
- `redis_prefix`: a REDIS_PREFIX of the test's own; every key under it is deleted afterwards.
- `start_cluster(k, **env)`: a fresh MariaDB database (schema created once, so the nodes never
  race to create it) and K nodes on it, each on its own port with its own NODE_ID and NODE_URL,
  the same JWT_SECRET, REDIS_URL and REDIS_PREFIX. `Cluster.add_node()` starts one more.
  Every node is stopped after the test (continued first if it was paused).
- `Node.kill()` (SIGKILL), `Node.pause()` (SIGSTOP) and `Node.resume()` (SIGCONT) act on the
  node's process by its pid.

Each node is a `tests.serverproc.Server`, the one harness of server processes.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.serverproc import Server

REDIS_SERVER = os.environ.get("SNEAKERD_TEST_REDIS", "redis://127.0.0.1:6379")
REQUIRE_REDIS = os.environ.get("SNEAKERD_REQUIRE_REDIS") == "1"


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        with redis_client(REDIS_SERVER) as client:
            client.ping()
    except redis.RedisError as exc:
        reason = f"no Redis at {REDIS_SERVER}: {exc}"
        if REQUIRE_REDIS:
            pytest.fail(reason + " (SNEAKERD_REQUIRE_REDIS=1)")
        pytest.skip(reason)
    return REDIS_SERVER


def delete_prefixed(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (a prefix of hex digits and `-`, no glob characters)."""
    with redis_client(url) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        return int(client.delete(*keys)) if keys else 0


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    """The same prefix, by the shorter name the bus and limiter tests use."""
    return redis_prefix


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"sneakerd-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_prefixed(redis_url, prefix)


def process_state(pid: int) -> str:
    """The state letter of /proc/PID/stat: R running, S sleeping, T stopped, Z zombie..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_state(pid: int, wanted: Callable[[str], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not wanted(state := process_state(pid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} stayed in state {state}")
        time.sleep(0.01)


@dataclass
class Node:
    """One node: a `sneakerd serve` process with its NODE_ID."""

    node_id: str
    server: Server
    paused: bool = False
    output: str = ""
    """What the node printed, once it has been stopped or killed."""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        assert self.server.proc is not None, f"node {self.node_id} is not running"
        return self.server.proc.pid

    @property
    def running(self) -> bool:
        return self.server.proc is not None and self.server.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL: the node dies at once, mid-whatever. Returns its exit status."""
        proc = self.server.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.paused = False
        self.output = self.server.stop()
        return proc.returncode

    def pause(self) -> None:
        """SIGSTOP: the node is frozen (a GC pause, a stalled VM) but keeps its sockets.
        Returns once the kernel shows it stopped (a signal is delivered asynchronously)."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True
        wait_state(self.pid, lambda state: state == "T")

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False
        wait_state(self.pid, lambda state: state != "T")

    def stop(self) -> str:
        """SIGTERM and wait (a paused node is continued first, or it could not hear it)."""
        if self.server.proc is None:
            return self.output
        if self.paused:
            self.resume()
        self.output = self.server.stop()
        return self.output


@dataclass
class Cluster:
    db_url: str
    redis_url: str
    redis_prefix: str
    workdir: Path
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def add_node(self, **env: str) -> Node:
        """Start one more node and wait until it answers /readyz."""
        node_id = f"n{next(self._numbers)}-{uuid.uuid4().hex[:6]}"
        server = Server(self.db_url, {}, self.workdir)
        server.env = {
            "NODE_ID": node_id,
            "NODE_URL": server.url,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            **self.env,
            **env,
        }
        node = Node(node_id, server)
        self.nodes.append(node)
        server.start()
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()


def init_schema(db_url: str, cwd: Path) -> None:
    """Create the schema once with the operator CLI, before any node starts."""
    done = subprocess.run(
        [sys.executable, "-m", "sneakerd", "db", "init", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sneakerd db init failed: {done.stderr.strip()}")


@pytest.fixture
def start_cluster(
    mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def start(k: int, **env: str) -> Cluster:
        assert not clusters, "one cluster per test (they would share its database)"
        init_schema(mysql_url, tmp_path)
        cluster = Cluster(mysql_url, redis_url, redis_prefix, tmp_path, dict(env))
        clusters.append(cluster)
        for _ in range(k):
            cluster.add_node()
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop_all()
