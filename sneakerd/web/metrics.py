"""Prometheus metrics, in a registry of the application's own (tests start many apps).

Request counts and latencies by route; reservations by outcome; per drop: mailbox depth (read at
scrape time from the actors), batch size and commit latency (told by the actors after each
commit), and expiry lag (deadline to commit of the expiry); open WebSockets by kind (read at
scrape time from the hub and the peer server). Garbage collector pauses come from the
process's one probe (`gcprobe`), which each registry exports once `watch_gc` is called; the
process (`process_*`), platform (`python_info`) and collector (`python_gc_*`) metrics are
prometheus_client's own collectors, and /metrics is its aiohttp handler.

No label grows without bound: methods are the known ones or OTHER, routes are the router's
patterns (or `unmatched`), statuses are HTTP's, `node` is this node. `drop` is the one label
that moves: its series are only those of drops whose actor runs here and which have not ended,
so a deleted or ended drop's series are removed before the next scrape (`prune`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
)
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sneakerd.actors.registry import Registry
from sneakerd.clock import Clock, SystemClock
from sneakerd.domain.model import DropStatus
from sneakerd.web import gcprobe
from sneakerd.web.problems import Handler

if TYPE_CHECKING:
    from sneakerd.cluster.ownership import ClusterRegistry

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
"""Any other method a client invents is counted as OTHER, so labels stay bounded."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, clock: Clock | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            # prometheus_client's process-wide instances: they keep no state of their own
            r.register(standard)
        self._clock = clock or SystemClock()
        self._actors: Registry | None = None
        self._expose = make_aiohttp_handler(r)
        self.requests = Counter(
            "sneakerd_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sneakerd_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reservations = Counter(
            "sneakerd_reservations", "Reservation requests by outcome", ["outcome"], registry=r
        )
        self.batch_size = Histogram(
            "sneakerd_actor_batch_size",
            "Messages decided per committed batch",
            ["drop"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 500),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "sneakerd_actor_commit_seconds",
            "Time to commit one batch",
            ["drop"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.expiry_lag = Histogram(
            "sneakerd_expiry_lag_seconds",
            "From a hold's deadline to its expiry's commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=r,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._drop_labels: set[str] = set()
        """The `drop` labels the batch and commit histograms have series for."""

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Resolve each label combination's children once: `labels()` takes a lock and
        builds a key on every call, and this runs for every request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # ActorObserver
    def batch_committed(self, drop_id: int, size: int, commit_seconds: float) -> None:
        label = str(drop_id)
        self._drop_labels.add(label)
        self.batch_size.labels(label).observe(size)
        self.commit_seconds.labels(label).observe(commit_seconds)

    def hold_expired(self, drop_id: int, lag_ms: int) -> None:
        self.expiry_lag.observe(lag_ms / 1000)

    def watch(self, actors: Registry) -> None:
        self._actors = actors
        self.registry.register(_ActorCollector(actors, self.current_drops))

    def watch_websockets(self, *kinds: tuple[str, Callable[[], int]]) -> None:
        """Export open WebSockets by kind (`drop`: watchers; `peer`: other nodes' links)."""
        self.registry.register(_SocketCollector(kinds))

    def watch_fanout(self, send_path: str) -> None:
        """Say how the hub's fan-out thread sends (`c`: the extension; `python`: os.write per
        socket, the slower fallback of an install built without a C compiler)."""
        Info(
            "sneakerd_ws_fanout",
            "How the fan-out thread writes to a crowded drop's watchers",
            registry=self.registry,
        ).info({"send_path": send_path})

    def current_drops(self) -> set[int]:
        """The drops whose per-drop series are exported: running here, not deleted or ended."""
        if self._actors is None:
            return set()
        now = self._clock.now_ms()
        current = set()
        for actor in self._actors.running():
            state = actor.state
            if state is None or state.drop.deleted or state.drop.status(now) is DropStatus.ENDED:
                continue
            current.add(actor.drop_id)
        return current

    def prune(self) -> None:
        """Remove the batch and commit series of every drop that is not current."""
        gone = self._drop_labels - {str(drop_id) for drop_id in self.current_drops()}
        for label in gone:
            self.batch_size.remove(label)
            self.commit_seconds.remove(label)
        self._drop_labels -= gone

    def watch_read_gate(self, held: Callable[[], int], waiting: Callable[[], int]) -> None:
        """Refused connections held while buyers' writes ran (`web/read_gate.py`): how many
        times in all, and how many wait now."""
        self.registry.register(_ReadGateCollector(held, waiting))

    def watch_cluster(self, nodes: ClusterRegistry, peers: PeerStats | None = None) -> None:
        """This node's part of the cluster: leases held, takeovers, hand-backs, forwards."""
        self.registry.register(_ClusterCollector(nodes, peers))

    def watch_gc(self) -> None:
        """Export the process's GC pauses (installing the probe if this is the first app)."""
        probe = gcprobe.install()
        self.registry.register(probe.pauses)
        self.registry.register(probe.longest)

    def middleware(self) -> web.middleware:  # type: ignore[valid-type]
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                info = request.match_info.route.resource
                route = info.canonical if info is not None else "unmatched"
                method = request.method if request.method in METHODS else "OTHER"
                self.count_request(method, route, status, time.perf_counter() - started)

        return measure

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """prometheus_client's own aiohttp handler, after the ended drops' series are gone."""
        self.prune()
        return await self._expose(request)


class _SocketCollector(Collector):
    def __init__(self, kinds: tuple[tuple[str, Callable[[], int]], ...]) -> None:
        self._kinds = kinds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "sneakerd_websockets_open", "Open WebSockets, by kind", labels=["kind"]
        )
        for kind, count in self._kinds:
            gauge.add_metric([kind], count())
        yield gauge


class _ReadGateCollector(Collector):
    def __init__(self, held: Callable[[], int], waiting: Callable[[], int]) -> None:
        self._held = held
        self._waiting = waiting

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield CounterMetricFamily(
            "sneakerd_read_gate_held",
            "Times a just-refused connection was held unread while buyers' writes ran",
            value=self._held(),
        )
        yield GaugeMetricFamily(
            "sneakerd_read_gate_waiting",
            "Refused connections held unread now",
            value=self._waiting(),
        )


class _ActorCollector(Collector):
    def __init__(self, actors: Registry, current: Callable[[], set[int]]) -> None:
        self._actors = actors
        self._current = current

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "sneakerd_actor_mailbox_depth", "Messages waiting in a drop's mailbox", labels=["drop"]
        )
        last = GaugeMetricFamily(
            "sneakerd_actor_last_batch_size", "Size of a drop's latest batch", labels=["drop"]
        )
        current = self._current()
        for actor in self._actors.running():
            if actor.drop_id not in current:
                continue
            depth.add_metric([str(actor.drop_id)], actor.mailbox_depth)
            last.add_metric([str(actor.drop_id)], actor.stats.last_batch_size)
        yield depth
        yield last


class PeerStats(Protocol):
    """What the peer connections count (`cluster.peers.Peers.stats()`: a dataclass)."""

    def stats(self) -> Any: ...


class _ClusterCollector(Collector):
    def __init__(self, nodes: ClusterRegistry, peers: PeerStats | None) -> None:
        self._nodes, self._peers = nodes, peers

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        node = self._nodes.node_id
        stats = self._nodes.cluster_stats
        held = GaugeMetricFamily(
            "sneakerd_cluster_leases_held", "Drops this node owns", labels=["node"]
        )
        held.add_metric([node], len(self._nodes.owned()))
        yield held
        for name, value, text in (
            ("takeovers", stats.takeovers, "Drop leases taken over from another node"),
            ("handoffs", stats.handoffs, "Drops handed back to the node the hash prefers"),
            ("leases_lost", stats.lost, "Leases this node found lost on renewal"),
            ("forwards", stats.forwards, "Requests this node forwarded to a drop's owner"),
        ):
            counter = CounterMetricFamily(f"sneakerd_cluster_{name}", text, labels=["node"])
            counter.add_metric([node], value)
            yield counter
        if self._peers is not None:
            for key, reading in sorted(dataclasses.asdict(self._peers.stats()).items()):
                gauge = GaugeMetricFamily(
                    f"sneakerd_peer_{key}", f"Peer connections: {key}", labels=["node"]
                )
                gauge.add_metric([node], reading)
                yield gauge
