"""METRICS_PORT: /metrics alone on a 127.0.0.1 port of its own, for a scraper on the machine
(or a sidecar) when the public port must not serve it to the world.

It serves the same registry as the public /metrics, through its own small aiohttp runner: no
other route, no middleware, nothing that needs the store. Worker N of `serve --workers` listens
on METRICS_PORT + N, as each worker has its own registry.
"""

from __future__ import annotations

from aiohttp import web

from sneakerd.config import Settings
from sneakerd.web.metrics import Metrics

METRICS_HOST = "127.0.0.1"


def port_of(settings: Settings) -> int | None:
    if settings.metrics_port is None:
        return None
    return settings.metrics_port + (settings.worker_index or 0)


async def start(metrics: Metrics, port: int) -> web.AppRunner:
    """Serve `metrics` on 127.0.0.1:`port` until the returned runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, METRICS_HOST, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
