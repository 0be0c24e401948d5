"""The original front-end's calls from a real browser on its own origin: headless Chromium
enforces CORS, so this proves that `/compat` lets `CLIENT_URL` in (preflights, bearer tokens,
JSON bodies) and that the front-end can read the message of every failure, a 404 and a 405
included, as its axios calls read `error.response.data.message`.

The page comes from a small server of its own on another loopback port (another origin; on
loopback, since Chromium keeps pages from other address spaces off loopback ones), and calls
the sneakerd server with `fetch`, as axios does in a browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import Console, call, chromium
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(90)

PAGE = "<!doctype html><html><head><title>front</title></head><body>front-end</body></html>"

FLOW = """
async ([api, name, dropId]) => {
  const send = async (method, path, body, token) => {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(api + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return [response.status, await response.json()];
  };
  const out = {};
  out.register = await send("POST", "/users/register",
    {username: name, email: name + "@example.com", password: "hunter2hunter2"});
  const token = out.register[1].data.token;
  out.short = await send("POST", "/users/register",
    {username: name + "x", email: name + "x@example.com", password: "short"});
  out.profile = await send("GET", "/users/profile", undefined, token);
  out.drops = await send("GET", "/drops?page=1&limit=5");
  out.reserve = await send("POST", "/reservations", {dropId}, token);
  out.again = await send("POST", "/reservations", {dropId}, token);
  out.mine = await send("GET", "/reservations/user?status=active", undefined, token);
  out.buy = await send("POST", "/purchases",
    {reservationId: out.reserve[1].data.reservation.id}, token);
  out.drop = await send("GET", "/drops/" + dropId);
  out.missing = await send("GET", "/no/such/route");
  out.patch = await send("PATCH", "/drops", {});
  out.forbidden = await send("POST", "/drops", {name: "x", price: 1, stock: 1}, token);
  return out;
}
"""


class _Front(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        raw = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def front() -> Iterator[str]:
    """The front-end's origin: a server of the test's own, stopped after it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Front)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.fixture
def server(tmp_path: Path, front: str) -> Iterator[Server]:
    srv = Server(f"sqlite:///{tmp_path / 'sneakerd.db'}", {"CLIENT_URL": front}, tmp_path)
    srv.start()
    yield srv
    srv.stop()


def _admin_drop(server: Server) -> int:
    server.admin_token_cli("boss@example.com", "boss", "hunter2hunter2")
    status, body = call(
        server,
        "POST",
        "/api/users/login",
        {"email": "boss@example.com", "password": "hunter2hunter2"},
    )
    assert status == 200, body
    status, body = call(
        server,
        "POST",
        "/compat/api/drops",
        {"name": "Air Max 1", "price": 140, "stock": 3},
        token=body["token"],
    )
    assert status == 201, body
    return int(body["data"]["drop"]["id"])


def test_the_front_end_on_its_own_origin_reads_every_answer(server: Server, front: str) -> None:
    drop_id = _admin_drop(server)
    console = Console()
    with chromium() as browser:
        context = browser.new_context()
        page = console.watch(context.new_page(), "front")
        page.goto(f"{front}/")
        out: dict[str, Any] = page.evaluate(FLOW, [f"{server.url}/compat/api", "shopper", drop_id])
        context.close()

    def status(name: str) -> int:
        return int(out[name][0])

    def body(name: str) -> dict[str, Any]:
        return dict(out[name][1])

    assert status("register") == 201 and body("register")["data"]["user"]["username"] == "shopper"
    assert status("short") == 400 and "password" in body("short")["message"]
    assert body("profile")["data"]["user"]["email"] == "shopper@example.com"
    assert body("drops")["total"] == 1 and body("drops")["data"]["drops"][0]["id"] == drop_id
    assert status("reserve") == 201 and body("reserve")["data"]["drop"]["stock"] == 2
    assert status("again") == 400 and "limit 1" in body("again")["message"]
    assert body("mine")["count"] == 1
    assert status("buy") == 201
    assert body("drop")["data"]["drop"]["purchases"][0]["user"]["username"] == "shopper"
    assert (status("missing"), body("missing")["message"]) == (404, "Route not found")
    assert status("patch") == 405 and body("patch")["success"] is False
    assert (status("forbidden"), body("forbidden")["message"]) == (403, "Only an admin may do this")
    # Failures are answers the page could read, not blocked requests; the browser logs a
    # failed status as a resource error, so only uncaught errors and CORS refusals count.
    blocked = [e for e in console.errors if "CORS" in e or "uncaught" in e]
    assert blocked == [], console.errors
