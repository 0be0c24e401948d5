"""Builds the aiohttp application and runs it.

Resources live in one cleanup context (open, yield, close), so start-up and shutdown read as one
function: open the store and create the schema, start the drop actors (recovering their holds),
serve; then stop the actors (each commits and answers what it has queued) and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from aiohttp_apispec import setup_aiohttp_apispec

from sneakerd.actors.registry import Registry
from sneakerd.clock import Clock, SystemClock
from sneakerd.cluster.busy_board import BusyBoard, board_path
from sneakerd.cluster.node import ClusterNode
from sneakerd.cluster.ownership import ClusterRegistry
from sneakerd.cluster.workers import SUPERVISOR_PID, say
from sneakerd.config import Settings, address_path
from sneakerd.passwords import decoy_hash
from sneakerd.service import DropService
from sneakerd.store import Store, open_store
from sneakerd.views import drop_view
from sneakerd.web import (
    access,
    asyncapi,
    compat,
    cors,
    edges,
    keys,
    metrics_port,
    openapi3,
    socketio,
)
from sneakerd.web.apidoc import add_swagger_ui, polish
from sneakerd.web.auth import Tokens
from sneakerd.web.collector import Collector
from sneakerd.web.fanout import Fanout
from sneakerd.web.hub import Hub
from sneakerd.web.idempotency import Idempotency
from sneakerd.web.known_users import KnownUsers
from sneakerd.web.metrics import Metrics
from sneakerd.web.problems import error_middleware
from sneakerd.web.ratelimit import RateLimiter
from sneakerd.web.read_gate import ReadGate
from sneakerd.web.routes import (
    admin,
    drops,
    live,
    ops,
    pages,
    purchases,
    queue,
    raffle,
    reservations,
    users,
    webhooks,
)
from sneakerd.web.transport import GuardedRunner
from sneakerd.webhooks.deliverer import Deliverer
from sneakerd.webhooks.schedule import RetryPolicy

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
LISTEN_BACKLOG = 4096
SWAGGER_JSON = "/api/docs/swagger.json"
OPENAPI_JSON = openapi3.OPENAPI_JSON


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The whole application; `settings.jwt_secret` must be set (see `with_jwt_secret`).

    `clock` (the system clock unless a test passes a `ManualClock`) is the one source of time
    for everything the app builds: holds, tokens, rate limits, WebSocket flood windows.
    """
    if settings.jwt_secret is None:
        raise ValueError("create_app needs settings with a JWT secret")
    clock = clock or SystemClock()
    metrics = Metrics(clock)
    # Before serve()'s settling collection, so even that full pass is on /metrics.
    metrics.watch_gc()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            access.access_middleware,
            metrics.middleware(),
            error_middleware,
            compat.compat_middleware,
            edges.edge_middleware,
        ],
    )
    edges.setup(app)
    access.setup(app)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics
    app[keys.TOKENS] = Tokens(settings.jwt_secret, settings.jwt_ttl, clock=clock)
    node = ClusterNode(settings, clock) if settings.redis_url is not None else None
    app[keys.NODE] = node
    if node is not None:
        # Rate limits that must hold across nodes count in Redis; the forwarded-writes route.
        app[keys.AUTH_LIMIT], app[keys.RESERVE_LIMIT] = node.auth_limit, node.reserve_limit
        # Forwarded writes count as work in flight here, as this node's own clients' do.
        node.add_routes(app, lambda: _cluster_registry(app), lambda: app[keys.SERVICE].other_work())
    else:
        app[keys.AUTH_LIMIT] = RateLimiter(
            settings.rate_limit_auth, 60.0, what="sign-in attempts", clock=clock
        )
        app[keys.RESERVE_LIMIT] = RateLimiter(
            settings.rate_limit_reserve, 1.0, what="reserve and purchase requests", clock=clock
        )
    app[keys.HUB] = hub = Hub(lambda drop: drop_view(drop, clock.now_ms()))
    app[keys.READ_GATE] = gate = ReadGate(clock)
    metrics.watch_read_gate(lambda: gate.holds, lambda: gate.waiting)
    metrics.watch_websockets(*_socket_kinds(hub, node))
    metrics.watch_fanout(hub.send_path.name)
    app[keys.FEEDS] = []
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_close_watchers)
    for module in (
        users,
        drops,
        reservations,
        purchases,
        raffle,
        queue,
        admin,
        webhooks,
        ops,
        live,
        pages,
    ):
        module.add_routes(app)
    _setup_docs(app)
    cors.setup(app, settings.client_url)
    compat.add_routes(app)  # after the native CORS: the /compat mount answers its own
    app[keys.FEEDS].append(socketio.setup(app, settings, clock))  # after CORS: see setup
    return app


def _socket_kinds(hub: Hub, node: ClusterNode | None) -> list[tuple[str, Callable[[], int]]]:
    """What `sneakerd_websockets_open` counts: watchers, and other nodes' forwarding links."""
    kinds: list[tuple[str, Callable[[], int]]] = [("drop", lambda: hub.statistics().subscribers)]
    server = node.peer_server if node is not None else None
    if server is not None:
        kinds.append(("peer", lambda: server.stats().connections))
    return kinds


def _setup_docs(app: web.Application) -> None:
    # aiohttp-apispec keeps its state under string keys, and apispec 3 uses deprecated
    # distutils versions: theirs to fix, and harmless here, so not shown to operators.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        _apispec(app)
    polish(app["swagger_dict"])
    openapi3.add_routes(app)
    asyncapi.add_routes(app)
    add_swagger_ui(app)


def _apispec(app: web.Application) -> None:
    setup_aiohttp_apispec(
        app,
        title="sneakerd",
        version="1.0.0",
        url=SWAGGER_JSON,
        swagger_path=None,  # its bundled Swagger UI 4.1.0 is replaced by apidoc.add_swagger_ui
        in_place=True,
        info={"description": "Limited-stock sneaker drops: holds, purchases, live stock."},
        securityDefinitions={
            "bearer": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "Bearer <JWT>",
            }
        },
        consumes=["application/json"],
        produces=["application/json"],
    )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings, clock = app[keys.SETTINGS], app[keys.CLOCK]
    await asyncio.to_thread(decoy_hash, settings.bcrypt_rounds)
    store = await open_store(settings.database_url)
    try:
        await store.init_schema()
        hub = app[keys.HUB]
        feeds = app[keys.FEEDS]
        watchers = Fanout(hub, feeds)
        node = app[keys.NODE]
        registry: Registry
        if node is not None:
            cluster_registry = await node.open(store, watchers, app[keys.METRICS])
            app[keys.METRICS].watch_cluster(cluster_registry, node.peers)
            registry = cluster_registry
        else:
            registry = Registry(
                store=store,
                sink=watchers,
                clock=clock,
                hold_ms=settings.reservation_duration_ms,
                observer=app[keys.METRICS],
                draw_delay_ms=settings.raffle_draw_delay_ms,
            )
        app[keys.STORE] = store
        app[keys.REGISTRY] = registry
        app[keys.SERVICE] = service = DropService(store=store, registry=registry, clock=clock)
        app[keys.HUB].in_flight = service.in_flight  # the fan-out steps aside for its writes
        app[keys.KNOWN_USERS] = KnownUsers(store)
        app[keys.IDEMPOTENCY] = Idempotency(store, clock, settings.idempotency_ttl * 1000)
        app[keys.METRICS].watch(registry)
        app[keys.DELIVERER] = _deliverer(settings, store, clock, registry)
        # Before any actor decides a batch: whether batches write their webhook events.
        await store.webhooks.refresh()
        hub.start()
        app[keys.KNOWN_USERS].start()
        app[keys.IDEMPOTENCY].start()
        app[keys.DELIVERER].start()
        gate, count = app[keys.READ_GATE], service.in_flight

        def writing_here() -> bool:
            return count[0] != 0

        service.watch_idle(gate.idle)  # held refused connections go on then
        gate.watch(writing_here)
        board = _busy_board(settings)  # closed below, whatever happens from here
        try:
            if board is not None:  # every worker's writes, not only this one's
                service.share_count(board.mine)
                gate.watch(board.busy)
            await registry.start()
            try:
                yield
            finally:
                await registry.stop_all()
        finally:
            await app[keys.DELIVERER].stop()
            await app[keys.IDEMPOTENCY].stop()
            await app[keys.KNOWN_USERS].stop()
            await hub.stop()
            if node is not None:
                await node.close()
            if board is not None:
                gate.watch(writing_here)  # nothing reads the board from here on
                service.share_count(None)
                board.close()
    finally:
        await store.close()


def _busy_board(settings: Settings) -> BusyBoard | None:
    """This worker's place on the machine's board of writes in flight (`serve --workers N`)."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if settings.worker_index is None or not supervisor or not supervisor.isdigit():
        return None
    try:
        return BusyBoard(board_path(int(supervisor)), settings.workers, settings.worker_index)
    except (OSError, ValueError) as exc:  # each worker then looks at its own writes only
        log.warning("no shared board of writes in flight (%s)", exc)
        return None


def _deliverer(settings: Settings, store: Store, clock: Clock, registry: Registry) -> Deliverer:
    """The webhook deliverer; among several nodes it delivers the drops this node owns."""
    policy = RetryPolicy.of(settings)
    owned = registry.owned if isinstance(registry, ClusterRegistry) else None
    return Deliverer(
        store.webhooks,
        clock,
        policy,
        drops=owned,
        node_id=settings.node_id,
        deliver=settings.webhook_deliver,
    )


def _cluster_registry(app: web.Application) -> ClusterRegistry:
    registry = app[keys.REGISTRY]
    assert isinstance(registry, ClusterRegistry)
    return registry


async def _close_watchers(app: web.Application) -> None:
    """On shutdown every WebSocket is closed with 1001 (going away) so its handler ends."""
    app[keys.HUB].close_all(1001)


async def serve(settings: Settings, *, reuse_port: bool = False) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully.

    `reuse_port` binds HOST:PORT with SO_REUSEPORT, so that the workers of `serve --workers N`
    share it (the kernel spreads new connections over them); a worker also listens on its
    private `settings.peer_port` on 127.0.0.1, where its peers reach it alone.
    """
    app = create_app(settings)
    # In-flight requests get SHUTDOWN_GRACE seconds to finish; then the actors drain and commit.
    runner = GuardedRunner(
        app, settings, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE
    )
    await runner.setup()
    ops_runner: web.AppRunner | None = None
    collector: Collector | None = None
    address: tuple[Path, str] | None = None
    try:
        # A drop opens with thousands of connections at once; with aiohttp's default backlog
        # of 128 the kernel drops handshakes whenever the loop is busy, and the clients wait
        # out SYN-ACK retransmits before their first byte is read (the soak run that showed it
        # is in loadtest/README.md). The kernel caps this at net.core.somaxconn.
        site = web.TCPSite(
            runner,
            settings.host,
            settings.port,
            backlog=LISTEN_BACKLOG,
            reuse_port=reuse_port or None,
        )
        await site.start()
        if settings.peer_port is not None:
            await web.TCPSite(
                runner, "127.0.0.1", settings.peer_port, backlog=LISTEN_BACKLOG
            ).start()
        metrics_at = metrics_port.port_of(settings)
        if metrics_at is not None:
            ops_runner = await metrics_port.start(app[keys.METRICS], metrics_at)
            say(f"sneakerd metrics on http://{metrics_port.METRICS_HOST}:{metrics_at}/metrics")
        collector = _collector(app)
        collector.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            say(f"sneakerd listening on http://{host}:{port} (store: {_store_name(settings)})")
        address = _announce_address(settings, runner)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        say("sneakerd: shutting down")
    finally:
        if address is not None:
            _withdraw_address(address)
        if collector is not None:
            collector.stop()
        if ops_runner is not None:
            await ops_runner.cleanup()
        await runner.cleanup()


def _announce_address(settings: Settings, runner: web.AppRunner) -> tuple[Path, str] | None:
    """On the embedded database, write where this server answers beside the database file:
    a CLI drop change finds it there and goes through the drop's actor (`cli/server_link`).
    A server that died leaves it behind; the CLI then finds nobody answering there, or a
    server of another database, and writes to the database itself."""
    if not settings.embedded or not runner.addresses:
        return None
    port = runner.addresses[0][1]
    path = address_path(settings.database_url)
    url = f"http://127.0.0.1:{port}"  # the CLI runs on this machine
    try:
        path.write_text(url + "\n")
    except OSError as exc:
        log.warning("could not write this server's address to %s (%s)", path, exc)
        return None
    return path, url


def _withdraw_address(address: tuple[Path, str]) -> None:
    path, url = address
    with contextlib.suppress(OSError):
        if path.read_text().strip() == url:  # not another server's that started since
            path.unlink()


def _collector(app: web.Application) -> Collector:
    """The serving process's collection policy (`web/collector.py`): full passes keep off the
    burst's latency, and complete ones wait for a moment when no buyer's write is in flight."""
    in_flight = app[keys.SERVICE].in_flight
    return Collector(app[keys.CLOCK], lambda: in_flight[0] > 0)


def _store_name(settings: Settings) -> str:
    url = settings.database_url
    if url.startswith("mysql") and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"  # never print a password
    return url
