"""/metrics on a real server: the standard collectors, the watchers gauge, bounded labels, and
per-drop series that go away with their drop (deleted, or ended); METRICS_PORT.

prometheus_client's own text parser reads every scrape, so a malformed exposition fails too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from loadtest.servers import free_port
from tests.api.conftest import Api

DEADLINE_S = 10.0


async def scrape(api: Api, url: str | None = None) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name of each sample → [(labels, value)]."""
    async with api.http.get(url or api.server.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain"), dict(resp.headers)
        text = await resp.text()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def drop_series(samples: dict[str, list[tuple[dict[str, str], float]]], drop_id: int) -> list[str]:
    return sorted(
        name
        for name, found in samples.items()
        for labels, _ in found
        if labels.get("drop") == str(drop_id)
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an async condition until it holds (the server lets go of a socket or an actor
    just after it answered)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def watchers(samples: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    return sum(v for labels, v in samples["sneakerd_websockets_open"] if labels["kind"] == "drop")


async def test_metrics_has_the_standard_collectors_and_the_gc_probe(api: Api) -> None:
    samples = await scrape(api)
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_info",
        "python_gc_collections_total",
        "python_gc_objects_collected_total",
        "sneakerd_gc_pause_seconds_count",
        "sneakerd_http_requests_total",
        "sneakerd_read_gate_held_total",
        "sneakerd_read_gate_waiting",
    ):
        assert name in samples, (name, sorted(samples))
    assert any(labels == {"kind": "drop"} for labels, _ in samples["sneakerd_websockets_open"])


async def test_the_watchers_gauge_follows_open_websockets(start_api: Callable[..., Api]) -> None:
    api = start_api()
    admin = await api.admin()
    drop = await api.drop(admin)
    assert watchers(await scrape(api)) == 0
    url = api.server.url.replace("http", "ws") + f"/api/drops/{drop['id']}/ws"
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(url) for _ in range(3)]
        for ws in sockets:
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        assert watchers(await scrape(api)) == 3
        for ws in sockets[:2]:
            await ws.close()

        async def one_left() -> bool:
            return watchers(await scrape(api)) == 1

        await eventually(one_left, "two closed sockets still counted")
        await sockets[2].close()


async def test_a_deleted_drops_series_are_removed(api: Api) -> None:
    admin = await api.admin()
    drop = await api.drop(admin)
    _, token = await api.register()
    status, body, _ = await api.call(
        "POST", "/api/reservations", token=token, json={"dropId": drop["id"]}
    )
    assert status == 201, body
    before = drop_series(await scrape(api), drop["id"])
    assert {"sneakerd_actor_batch_size_count", "sneakerd_actor_commit_seconds_count"} <= set(
        before
    ), before
    assert "sneakerd_actor_mailbox_depth" in before, before
    status, body, _ = await api.call("DELETE", f"/api/drops/{drop['id']}", token=admin)
    assert status == 204, body

    async def gone() -> bool:
        return drop_series(await scrape(api), drop["id"]) == []

    await eventually(gone, "a deleted drop still has series")


async def test_an_ended_drops_series_are_removed(api: Api) -> None:
    admin = await api.admin()
    ends = datetime.now(UTC) + timedelta(seconds=2)
    drop = await api.drop(
        admin, endsAt=ends.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    _, token = await api.register()
    status, body, _ = await api.call(
        "POST", "/api/reservations", token=token, json={"dropId": drop["id"]}
    )
    assert status == 201, body
    assert "sneakerd_actor_batch_size_count" in drop_series(await scrape(api), drop["id"])

    async def gone() -> bool:
        return drop_series(await scrape(api), drop["id"]) == []

    await eventually(gone, "an ended drop still has series")
    assert datetime.now(UTC) >= ends


async def test_labels_stay_bounded_whatever_the_clients_send(api: Api) -> None:
    marker = uuid.uuid4().hex
    for i in range(20):
        await api.call("GET", f"/nowhere/{marker}{i}")
        await api.call("GET", f"/api/drops/{900_000 + i}")
    async with api.http.request("BREW", api.server.url + f"/{marker}") as resp:
        assert resp.status in (400, 404, 405)
    async with api.http.get(api.server.url + "/metrics") as resp:
        text = await resp.text()
    assert marker not in text and "/api/drops/900001" not in text and "BREW" not in text
    samples = await scrape(api)
    routes = {labels["route"] for labels, _ in samples["sneakerd_http_requests_total"]}
    assert "unmatched" in routes and r"/api/drops/{id}" in routes, routes
    methods = {labels["method"] for labels, _ in samples["sneakerd_http_requests_total"]}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "OTHER"}


async def test_metrics_port_serves_metrics_alone(start_api: Callable[..., Api]) -> None:
    port = free_port()
    api = start_api(METRICS_PORT=str(port))
    samples = await scrape(api, f"http://127.0.0.1:{port}/metrics")
    assert "sneakerd_gc_pause_seconds_count" in samples and "process_open_fds" in samples
    async with api.http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        assert resp.status == 404
