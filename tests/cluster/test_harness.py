"""The cluster harness itself: nodes start on one database and Redis prefix, answer, stop, and
can be killed, paused and continued by pid. (The nodes are not cluster-aware yet; this tests
only that the harness does what the cluster tests will rely on.)"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, Node, delete_prefixed, process_state, redis_client

pytestmark = pytest.mark.mysql


def health(node: Node, timeout: float = 5) -> int:
    with urllib.request.urlopen(node.url + "/healthz", timeout=timeout) as answer:
        json.loads(answer.read())
        return int(answer.status)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def test_nodes_share_one_database_and_prefix_and_each_has_its_own_identity(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(3)
    assert [health(node) for node in cluster.nodes] == [200, 200, 200]
    pids = {node.pid for node in cluster.nodes}
    assert len(pids) == 3
    envs = [environ_of(node.pid) for node in cluster.nodes]
    assert len({e["NODE_ID"] for e in envs}) == 3
    assert [e["NODE_ID"] for e in envs] == [node.node_id for node in cluster.nodes]
    assert [e["NODE_URL"] for e in envs] == [node.url for node in cluster.nodes]
    for key in ("DATABASE_URL", "JWT_SECRET", "REDIS_URL", "REDIS_PREFIX"):
        assert len({e[key] for e in envs}) == 1, key
    assert envs[0]["REDIS_PREFIX"] == cluster.redis_prefix
    assert envs[0]["DATABASE_URL"] == cluster.db_url

    cluster.stop_all()
    assert not any(node.running for node in cluster.nodes)
    assert all("listening on" in node.output for node in cluster.nodes)
    assert all("shutting down" in node.output for node in cluster.nodes)


def test_a_node_can_be_paused_continued_and_killed(
    start_cluster: Callable[..., Cluster],
) -> None:
    cluster = start_cluster(2)
    frozen, other = cluster.nodes

    frozen.pause()
    assert process_state(frozen.pid) == "T"
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        health(frozen, timeout=0.5)
    assert health(other) == 200

    frozen.resume()
    assert health(frozen) == 200

    assert frozen.kill() == -9
    assert not frozen.running
    with pytest.raises(urllib.error.URLError):
        health(frozen, timeout=1)
    assert health(other) == 200
    late = cluster.add_node()  # a node can join later
    assert health(late) == 200 and late.node_id not in {frozen.node_id, other.node_id}


def test_a_paused_node_still_stops(start_cluster: Callable[..., Cluster]) -> None:
    (node,) = start_cluster(1).nodes
    node.pause()
    node.stop()  # continued first: a stopped process cannot act on SIGTERM
    assert not node.running
    assert "shutting down" in node.output


def test_only_the_tests_own_prefix_is_deleted(redis_url: str, redis_prefix: str) -> None:
    other = redis_prefix.replace("sneakerd-test-", "sneakerd-test-other-")
    with redis_client(redis_url) as client:
        client.set(redis_prefix + "lease:1", "n0")
        client.set(redis_prefix + "nodes", "n0")
        client.set(other + "lease:1", "n9")
        try:
            assert delete_prefixed(redis_url, redis_prefix) == 2
            assert client.exists(redis_prefix + "lease:1", redis_prefix + "nodes") == 0
            assert client.get(other + "lease:1") == b"n9"
        finally:
            client.delete(other + "lease:1")
