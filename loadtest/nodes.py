"""Cluster-aware sneakerd processes for the load runs: `serve --workers N` on one port, or
separate nodes on ports of their own, all on one database and one Redis prefix of the run's own.

Every key the run's nodes write to Redis is under that prefix (`loadtest-<hex>:`), and the run
deletes them afterwards, so runs never meet each other or the tests' prefixes.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.request
from pathlib import Path

import redis

from loadtest.servers import HOST, ServerProcess, free_port_run, sneakerd_server

REDIS_URL = os.environ.get("LOADTEST_REDIS", "redis://127.0.0.1:6379")


def redis_prefix() -> str:
    return f"loadtest-{secrets.token_hex(5)}:"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (hex digits and `-` only: no glob characters)."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def cluster_env(prefix: str, node_id: str, lease_ms: int | None = None) -> dict[str, str]:
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "NODE_ID": node_id}
    if lease_ms is not None:
        env["LEASE_TTL"] = str(lease_ms)
    return env


def workers_server(
    db_url: str, wd: Path, workers: int, prefix: str, *, hold_ms: int = 60_000
) -> ServerProcess:
    """`sneakerd serve --workers N`: with N > 1 the process is a supervisor and the workers are
    its children; `--workers 1` is one cluster-aware server, which is then its own NODE_URL."""
    server = sneakerd_server(db_url, wd, hold_ms=hold_ms, extra=cluster_env(prefix, f"w{workers}"))
    server.name = f"sneakerd-{workers}w"
    server.argv = [*server.argv, "--workers", str(workers)]
    server.port = free_port_run(workers)
    if workers == 1:
        server.env["NODE_URL"] = server.url
    return server


def start_workers(server: ServerProcess, workers: int, timeout: float = 60.0) -> list[int]:
    """Start it and wait until every worker answers /readyz on its peer port; their pids."""
    server.start(timeout=timeout)
    if workers == 1:
        return [server.pid]
    deadline = time.monotonic() + timeout
    for i in range(workers):
        url = f"http://{HOST}:{server.port + 1 + i}/readyz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"worker {i} never became ready:\n{server.log_tail()}")
            time.sleep(0.05)
    pids = children(server.pid)
    if len(pids) != workers:
        raise RuntimeError(f"expected {workers} worker processes, found {pids}")
    return pids


def node_server(
    db_url: str, wd: Path, node_id: str, prefix: str, *, hold_ms: int = 60_000, lease_ms: int
) -> ServerProcess:
    """One node on a port of its own; its NODE_URL is that port."""
    server = sneakerd_server(
        db_url, wd, hold_ms=hold_ms, extra=cluster_env(prefix, node_id, lease_ms)
    )
    server.name = f"sneakerd-{node_id}"
    server.env["NODE_URL"] = server.url
    return server


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return sorted(out)
