"""The operators' page (/admin) in a real headless Chromium against a real `sneakerd serve`.

A customer who opens it is told it is for admins; an admin signs in through the page, pauses a
drop (the shop's page shows "Paused" with its buttons disabled), unpauses and restocks it, opens
its buyers and downloads their CSV (its content checked, a formula-looking username defused),
and reads the audit log. The webhooks panel lists the server's webhooks (none here).
Every step is screenshotted under the test's tmp dir, with a copy in /tmp/shots/admin-*.png.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Console, call, chromium
from tests.e2e.test_browser import (
    PASSWORD,
    admin_token,
    create_drop,
    customer_session,
    hold,
    new_page,
    shot,
    signed_in,
)
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(90)

SHARED_SHOTS = Path("/tmp/shots")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(f"sqlite:///{tmp_path / 'sneakerd.db'}", {}, tmp_path).start()
    yield srv
    out = srv.stop()
    assert "Traceback" not in out, out


class Shots:
    """Screenshots under the test's tmp dir, each copied to /tmp/shots for a person to see."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "shots"
        self.dir.mkdir()
        SHARED_SHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str) -> Path:
        path = self.dir / f"admin-{name}.png"
        shot(page, path)
        shutil.copyfile(path, SHARED_SHOTS / path.name)
        return path


def unexpected(console: Console, server: Server) -> list[str]:
    """The console's errors but the one a server without webhooks causes (its list is a 404)."""
    webhooks_404 = re.compile(
        r"^\[boss\] console\.error: Failed to load resource: the server responded with a "
        rf"status of 404 \(Not Found\) \({re.escape(server.url)}/api/admin/webhooks\)$"
    )
    return [e for e in console.errors if not webhooks_404.match(e)]


def buy(server: Server, token: str, drop_id: int) -> dict[str, Any]:
    status, body = call(
        server, "POST", "/api/purchases", {"reservationId": hold(server, token, drop_id)}, token
    )
    assert status == 201, body
    return dict(body["purchase"])


def row(page: Page, drop_id: int) -> Any:
    return page.locator(f'#drops-body tr[data-drop-id="{drop_id}"]')


def test_an_admin_pauses_restocks_and_exports_buyers_in_a_real_browser(
    server: Server, tmp_path: Path
) -> None:
    shots = Shots(tmp_path)
    admin = admin_token(server)
    drop_id = create_drop(
        server, admin, name="Dunk Low 'Panda'", brand="Nike", price="110", initialStock=3
    )
    ann = customer_session(server, "ann")
    evil = customer_session(server, "-evil")
    bought = [buy(server, ann["token"], drop_id), buy(server, evil["token"], drop_id)]
    console = Console()

    with chromium() as browser:
        # A customer is told the page is not for them.
        context, page = new_page(browser, console, "customer")
        signed_in(context, ann)
        page.goto(server.url + "/admin")
        expect(page.locator("#gate-text")).to_contain_text("customer account")
        expect(page.locator("#admin-main")).to_be_hidden()
        shots.take(page, "01-customer-refused")
        context.close()

        # The admin signs in through the page's own dialog.
        context, page = new_page(browser, console, "boss")
        page.goto(server.url + "/admin")
        expect(page.locator("#gate-text")).to_contain_text("Sign in with an admin account")
        page.click("#gate-signin")
        page.fill("#auth-email", "boss@example.com")
        page.fill("#auth-password", PASSWORD)
        page.click("#auth-submit")
        expect(page.locator("#admin-main")).to_be_visible()
        mine = row(page, drop_id)
        expect(mine.locator(".badge")).to_have_text("Live")
        expect(mine.locator("td").nth(5)).to_have_text("2")  # sold
        expect(page.locator("#drops-live")).to_have_text("Live")
        expect(page.locator("#webhooks-note")).to_have_text("No webhooks yet.")
        shots.take(page, "02-signed-in")

        # Pause: the API and the shop's page agree.
        mine.locator(".pause-btn").click()
        expect(mine.locator(".badge")).to_have_text("Paused")
        expect(mine.locator(".pause-btn")).to_have_text("Unpause")
        status, body = call(server, "GET", f"/api/drops/{drop_id}")
        assert status == 200 and body["drop"]["paused"] is True
        expect(page.locator("#audit-body tr").first).to_have_attribute("data-action", "pause")
        shots.take(page, "03-paused")

        shop_context, shop = new_page(browser, console, "shopper")
        signed_in(shop_context, customer_session(server, "cara"))
        shop.goto(f"{server.url}/drops/{drop_id}")
        expect(shop.locator("#status-badge")).to_have_text("Paused")
        expect(shop.locator("#reserve-btn")).to_be_disabled()
        expect(shop.locator("#reserve-btn")).to_have_text("Paused")
        shots.take(shop, "04-shop-paused")

        # Unpause, then restock by 5: the shopper's page follows over its WebSocket.
        mine.locator(".pause-btn").click()
        expect(mine.locator(".badge")).to_have_text("Live")
        expect(shop.locator("#reserve-btn")).to_be_enabled()
        mine.locator(".restock-amount").fill("5")
        mine.locator(".restock-btn").click()
        expect(mine.locator("td").nth(6)).to_have_text("8")  # units
        expect(mine.locator("td").nth(3)).to_have_text("6")  # stock
        expect(page.locator("#admin-message")).to_contain_text("restocked: 8 units")
        status, body = call(server, "GET", f"/api/drops/{drop_id}")
        assert (body["drop"]["initialStock"], body["drop"]["stock"]) == (8, 6)
        shop_context.close()

        actions = page.locator("#audit-body tr")
        expect(actions.first).to_have_attribute("data-action", "restock")
        expect(actions.first.locator(".changes")).to_contain_text("initialStock: 3 → 8")
        assert [a.get_attribute("data-action") for a in actions.all()][:4] == [
            "restock",
            "unpause",
            "pause",
            "create",
        ]
        shots.take(page, "05-restocked")

        # Buyers, and their CSV.
        mine.locator(".buyers-btn").click()
        expect(page.locator("#buyers-body tr")).to_have_count(2)
        expect(page.locator("#buyers-body")).to_contain_text("ann@example.com")
        with page.expect_download() as info:
            page.click("#csv-btn")
        download = info.value
        assert download.suggested_filename == f"drop-{drop_id}-purchases.csv"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        rows = list(csv.reader(io.StringIO(saved.read_text("utf-8"))))
        assert rows[0] == [
            "purchaseId",
            "reservationId",
            "price",
            "createdAt",
            "userId",
            "username",
            "email",
        ]
        by_id = {r[0]: r for r in rows[1:]}
        assert set(by_id) == {str(p["id"]) for p in bought}
        for purchase, who in zip(bought, (ann, evil), strict=True):
            line = by_id[str(purchase["id"])]
            assert line[1:5] == [
                str(purchase["reservationId"]),
                "110.00",
                purchase["createdAt"],
                str(who["user"]["id"]),
            ]
        assert by_id[str(bought[0]["id"])][5:] == ["ann", "ann@example.com"]
        assert by_id[str(bought[1]["id"])][5:] == ["'-evil", "'-evil@example.com"]
        shots.take(page, "06-buyers")
        context.close()

    assert unexpected(console, server) == []
    assert sorted(p.name for p in shots.dir.iterdir()) == [
        "admin-01-customer-refused.png",
        "admin-02-signed-in.png",
        "admin-03-paused.png",
        "admin-04-shop-paused.png",
        "admin-05-restocked.png",
        "admin-06-buyers.png",
    ]


def test_typing_into_a_restock_box_survives_the_drops_poll(server: Server) -> None:
    """The table refreshes every 2 s; the box being typed into keeps its focus and its text.

    The refresh used to re-insert every row, which takes the focus from the box inside it: the
    keys typed next went nowhere and a Restock click then added the box's old number.
    """
    admin = admin_token(server)
    drop_id = create_drop(
        server, admin, name="Air Max 1", brand="Nike", price="140", initialStock=3
    )
    console = Console()
    with chromium() as browser:
        context, page = new_page(browser, console, "boss")
        status, session = call(
            server, "POST", "/api/users/login", {"email": "boss@example.com", "password": PASSWORD}
        )
        assert status == 200, session
        signed_in(context, session)
        page.goto(server.url + "/admin")
        box = row(page, drop_id).locator(".restock-amount")
        expect(box).to_be_visible()
        box.fill("")
        box.focus()
        for _ in range(2):
            with page.expect_response(lambda r: "/api/drops?limit=" in r.url):
                pass
            page.wait_for_timeout(50)  # the poll's answer rendered (a task after the response)
            assert page.evaluate("document.activeElement.className") == "restock-amount"
        page.keyboard.type("5")
        expect(box).to_have_value("5")
        row(page, drop_id).locator(".restock-btn").click()
        expect(row(page, drop_id).locator("td").nth(6)).to_have_text("8")
        context.close()
    assert unexpected(console, server) == []
