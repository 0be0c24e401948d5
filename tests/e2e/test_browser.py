"""The shop window in a real headless Chromium against a real `sneakerd serve`.

A shopper opens the drop list, picks a live drop, creates an account in the page, reserves
(the big counter drops, in their tab and in another shopper's), buys, and comes back later still
signed in; the other shopper reserves and cancels while the first one watches the counter move.
Then a sold-out drop, an upcoming one, and the page on a phone. Every step is screenshotted,
and any console error or uncaught exception fails the test.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import Console, call, chromium, screenshots_dir
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(60)

PASSWORD = "hunter2hunter2"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ABOUT_A_MINUTE = re.compile(r"^(1:00|0:5\d)$")
"""A fresh hold shows about a minute (RESERVATION_DURATION's default)."""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts `sneakerd serve` on one SQLite file (again on the same port, for a restart)."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None, port: int | None = None) -> Server:
        server = Server(f"sqlite:///{tmp_path / 'sneakerd.db'}", dict(env or {}), tmp_path)
        if port is not None:
            server.port = port
        started.append(server)
        return server.start()

    yield start
    for server in started:
        out = server.stop()
        assert "Traceback" not in out, out


@pytest.fixture
def server(servers: Callable[..., Server]) -> Server:
    return servers()


def admin_token(server: Server) -> str:
    server.admin_token_cli("boss@example.com", "boss", PASSWORD)
    status, body = call(
        server, "POST", "/api/users/login", {"email": "boss@example.com", "password": PASSWORD}
    )
    assert status == 200, body
    return str(body["token"])


def create_drop(server: Server, admin: str, **fields: Any) -> int:
    status, body = call(server, "POST", "/api/drops", fields, admin)
    assert status == 201, body
    return int(body["drop"]["id"])


def customer(server: Server, name: str) -> str:
    return str(customer_session(server, name)["token"])


def customer_session(server: Server, name: str) -> dict[str, Any]:
    """A new customer's `{user, token}`: what the page keeps in localStorage once signed in."""
    status, body = call(
        server,
        "POST",
        "/api/users/register",
        {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert status == 201, body
    return {"user": body["user"], "token": body["token"]}


def signed_in(context: BrowserContext, session: dict[str, Any]) -> None:
    """Start every page of the context signed in, as a returning shopper's browser would."""
    context.add_init_script(
        f"localStorage.setItem('sneakerd.session', {json.dumps(json.dumps(session))});"
    )


def hold(server: Server, token: str, drop_id: int) -> int:
    status, body = call(server, "POST", "/api/reservations", {"dropId": drop_id}, token)
    assert status == 201, body
    return int(body["reservation"]["id"])


def iso_in(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + seconds))


def new_page(
    browser: Browser, console: Console, name: str, **options: Any
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**{"viewport": DESKTOP, **options})
    context.set_default_timeout(10_000)
    page = console.watch(context.new_page(), name)
    return context, page


def shot(page: Page, path: Path) -> None:
    """The whole page, with animations finished (a counter mid-bump reads as a glitch)."""
    page.screenshot(path=path, full_page=True, animations="disabled")


def register_in_page(page: Page, username: str) -> None:
    """Create an account through the page's own dialog (the page calls the REST API)."""
    dialog = page.locator("#auth-dialog")
    expect(dialog).to_be_visible()
    page.click("#tab-register")
    page.fill("#auth-username", username)
    page.fill("#auth-email", f"{username}@example.com")
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")
    expect(dialog).to_be_hidden()
    expect(page.locator("#account-name")).to_contain_text(username)


def test_a_drop_sells_out_live_in_a_real_browser(server: Server) -> None:
    shots = screenshots_dir()
    admin = admin_token(server)
    live = create_drop(
        server,
        admin,
        name="Air Jordan 1 Retro High OG 'Chicago'",
        brand="Jordan",
        price="180",
        initialStock=5,
        perUserLimit=1,
        description="The 1985 colourway, back at last. Full-grain leather, Air in the heel.",
        imageUrl=server.url + "/static/sneaker.svg",
        endsAt=iso_in(3 * 3600),
    )
    gone = create_drop(
        server,
        admin,
        name="Dunk Low 'Panda'",
        brand="Nike",
        price="110.00",
        initialStock=3,
        description="Black and white, as ever.",
    )
    soon = create_drop(
        server,
        admin,
        name="Samba OG 'Cloud White'",
        brand="adidas",
        price=100,
        initialStock=40,
        startsAt=iso_in(26 * 3600 + 125),
    )
    # The Panda sells out before anyone opens a browser: two pairs bought, one still on hold.
    for name in ("early1", "early2"):
        token = customer(server, name)
        status, body = call(
            server, "POST", "/api/purchases", {"reservationId": hold(server, token, gone)}, token
        )
        assert status == 201, body
    hold(server, customer(server, "early3"), gone)

    console = Console()
    with chromium() as browser:
        ctx_a, alice = new_page(browser, console, "alice")
        ctx_b, bob = new_page(browser, console, "bob")

        # The list: three drops, live first, each with its state in words.
        alice.goto(server.url + "/")
        cards = alice.locator("#drops .card")
        expect(cards).to_have_count(3)
        expect(cards.nth(0)).to_contain_text("Air Jordan 1")
        expect(cards.nth(0)).to_contain_text("5 of 5 left")
        expect(alice.locator(f'[data-drop-id="{gone}"]')).to_contain_text("Sold out")
        expect(alice.locator(f'[data-drop-id="{soon}"]')).to_contain_text("Drops in 1d 02:0")
        shot(alice, shots / "01-drop-list.png")

        # Bob is watching the live drop before Alice arrives.
        bob.goto(f"{server.url}/drops/{live}")
        expect(bob.locator("#live-state")).to_have_attribute("data-state", "live")
        expect(bob.locator("#stock-count")).to_have_text("5")

        # Alice opens it from the list and creates an account in the page.
        cards.nth(0).click()
        expect(alice).to_have_url(f"{server.url}/drops/{live}")
        expect(alice.locator("#drop-name")).to_have_text("Air Jordan 1 Retro High OG 'Chicago'")
        expect(alice.locator("#drop-price")).to_have_text("$180.00")
        expect(alice.locator("#stock-count")).to_have_text("5")
        expect(alice.locator("#live-state")).to_have_attribute("data-state", "live")
        expect(alice.locator("#clock-label")).to_have_text("Ends in")
        alice.click("#signin-btn")
        register_in_page(alice, "alice")
        session = json.loads(alice.evaluate("localStorage.getItem('sneakerd.session')"))
        assert session["user"]["username"] == "alice" and session["token"].count(".") == 2
        reserve = alice.locator("#reserve-btn")
        expect(reserve).to_be_enabled()
        expect(reserve).to_have_text("Reserve a pair")
        shot(alice, shots / "02-live-drop-signed-in.png")

        # She reserves: her counter drops, and so does Bob's, live.
        reserve.click()
        expect(alice.locator("#hold")).to_be_visible()
        expect(alice.locator("#stock-count")).to_have_text("4")
        expect(alice.locator("#hold-countdown")).to_have_text(ABOUT_A_MINUTE)
        expect(bob.locator("#stock-count")).to_have_text("4")
        expect(bob.locator("#stock-detail")).to_contain_text("1 on hold")
        shot(alice, shots / "03-reserved-hold-countdown.png")
        shot(bob, shots / "04-watcher-counter-moved.png")

        # She buys: the hold becomes an order, Bob sees the purchase in the activity feed.
        alice.click("#buy-btn")
        expect(alice.locator("#owned")).to_be_visible()
        expect(alice.locator("#message")).to_contain_text("It\u2019s yours! Order #")
        expect(alice.locator("#hold")).to_be_hidden()
        expect(alice.locator("#reserve-btn")).to_be_hidden()  # one pair per customer
        expect(alice.locator("#stock-count")).to_have_text("4")
        expect(alice.locator("#stock-detail")).to_contain_text("1 sold")
        expect(bob.locator("#activity")).to_contain_text("alice just bought a pair")
        shot(alice, shots / "05-bought.png")

        # Back later: the token in localStorage still signs her in, and her pair is still hers.
        alice.reload()
        expect(alice.locator("#account-name")).to_contain_text("alice")
        expect(alice.locator("#owned")).to_be_visible()
        expect(alice.locator("#owned-note")).to_contain_text("$180.00")

        # Bob signs up and reserves: Alice's counter moves; he cancels: it comes back.
        bob.click("#header-register")
        register_in_page(bob, "bob")
        bob.click("#reserve-btn")
        expect(bob.locator("#hold")).to_be_visible()
        expect(alice.locator("#stock-count")).to_have_text("3")
        bob.click("#cancel-btn")
        expect(bob.locator("#message")).to_contain_text("Hold cancelled")
        expect(bob.locator("#reserve-btn")).to_be_enabled()
        expect(alice.locator("#stock-count")).to_have_text("4")
        expect(bob.locator("#stock-count")).to_have_text("4")

        # A restock by the operator reaches every open page at once.
        status, body = call(server, "PUT", f"/api/drops/{live}", {"initialStock": 8}, admin)
        assert status == 200, body
        for page in (alice, bob):
            expect(page.locator("#stock-count")).to_have_text("7")
            expect(page.locator("#stock-label")).to_have_text("pairs left of 8")

        # A sold-out drop says so, and why, and offers nothing to click.
        alice.goto(f"{server.url}/drops/{gone}")
        expect(alice.locator("#stock-count")).to_have_text("0")
        expect(alice.locator("#status-badge")).to_have_text("Sold out")
        expect(alice.locator("#reserve-btn")).to_be_disabled()
        expect(alice.locator("#reserve-btn")).to_have_text("Sold out")
        expect(alice.locator("#stock-detail")).to_contain_text("1 pair on hold")
        expect(alice.locator("#activity li")).to_have_count(2)  # early1 and early2's purchases
        expect(alice.locator("#activity")).to_contain_text("early2 bought a pair")
        shot(alice, shots / "06-sold-out.png")

        # An upcoming drop counts down to its start, and reserving waits for it.
        alice.goto(f"{server.url}/drops/{soon}")
        expect(alice.locator("#clock-label")).to_have_text("Drops in")
        expect(alice.locator("#clock-value")).to_contain_text("day")
        expect(alice.locator("#reserve-btn")).to_be_disabled()
        shot(alice, shots / "07-upcoming.png")

        # On a phone, signed in as Bob: one column, nothing wider than the screen; he reserves.
        ctx_phone, phone = new_page(
            browser,
            console,
            "phone",
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            storage_state=ctx_b.storage_state(),
        )
        phone.goto(f"{server.url}/drops/{live}")
        expect(phone.locator("#stock-count")).to_have_text("7")
        expect(phone.locator("#account-name")).to_contain_text("bob")
        phone.locator("#reserve-btn").tap()
        expect(phone.locator("#hold")).to_be_visible()
        expect(phone.locator("#stock-count")).to_have_text("6")
        expect(bob.locator("#stock-count")).to_have_text("6")  # his desktop tab follows too
        phone.evaluate("window.scrollTo(0, 0)")
        width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        shot(phone, shots / "08-phone.png")
        phone.goto(server.url + "/")
        expect(phone.locator("#drops .card")).to_have_count(3)
        shot(phone, shots / "09-phone-drop-list.png")

        # Every error code of docs/API.md reads as a sentence, never as a code.
        sentences = alice.evaluate(
            """() => ["out_of_stock", "limit_reached", "drop_not_live", "drop_ended",
                "reservation_expired", "reservation_not_active", "rate_limited", "unavailable",
                "network", "invalid_credentials", "email_taken", "username_taken",
                "unauthorized", "forbidden", "not_found", "validation_error", "bad_request",
                "payload_too_large", "internal_error", "something_new"]
              .map((code) => [code, window.sneakerd.messageFor(code,
                {retryAfter: 3, limit: 1, details: {password: ["Too short."]}})])"""
        )
        for code, sentence in sentences:
            assert "_" not in sentence and len(sentence) > 20 and sentence[0].isupper(), (
                code,
                sentence,
            )
        assert len({s for _, s in sentences}) >= len(sentences) - 1  # only the fallback repeats

        for context in (ctx_a, ctx_b, ctx_phone):
            context.close()

    assert console.errors == []


def test_a_hold_that_runs_out_says_so_and_the_pair_goes_back(
    servers: Callable[..., Server],
) -> None:
    server = servers({"RESERVATION_DURATION": "3000"})
    admin = admin_token(server)
    drop = create_drop(
        server, admin, name="Gel-Lyte III 'Salmon Toe'", brand="ASICS", price="150", initialStock=2
    )
    console = Console()
    with chromium() as browser:
        context, page = new_page(browser, console, "carol")
        signed_in(context, customer_session(server, "carol"))
        page.goto(f"{server.url}/drops/{drop}")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        expect(page.locator("#stock-count")).to_have_text("2")
        page.click("#reserve-btn")
        expect(page.locator("#hold")).to_be_visible()
        expect(page.locator("#stock-count")).to_have_text("1")
        # Three seconds later the hold is gone: in words, and the pair is back on sale.
        expect(page.locator("#message")).to_have_text(
            "Your hold ran out before checkout, so the pair went back on sale. "
            "You can try to reserve it again.",
            timeout=6_000,
        )
        expect(page.locator("#hold")).to_be_hidden()
        expect(page.locator("#stock-count")).to_have_text("2")
        expect(page.locator("#activity")).to_contain_text("A hold ran out")
        expect(page.locator("#reserve-btn")).to_be_enabled()
        shot(page, screenshots_dir() / "10-hold-expired.png")
        context.close()
    assert console.errors == []


def test_the_page_rides_out_an_outage_and_resyncs_from_the_snapshot(
    servers: Callable[..., Server],
) -> None:
    """The server goes away: the page says so in words and keeps retrying with backoff; when
    the server is back (and the stock moved meanwhile), the fresh snapshot puts it right.

    While the server is down Chromium itself logs each refused connection as a console error:
    exactly those (to this server's address) are expected here; anything else still fails."""
    server = servers()
    admin = admin_token(server)
    drop = create_drop(
        server, admin, name="Gazelle 'Collegiate Green'", price="90", initialStock=10
    )
    others = [customer(server, f"other{i}") for i in range(3)]
    console = Console()
    with chromium() as browser:
        context, page = new_page(browser, console, "dave")
        signed_in(context, customer_session(server, "dave"))
        page.goto(f"{server.url}/drops/{drop}")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        expect(page.locator("#stock-count")).to_have_text("10")

        out = server.stop()
        assert "Traceback" not in out, out
        expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#netbar")).to_contain_text("reconnecting in")
        page.click("#reserve-btn")
        expect(page.locator("#message")).to_have_text(
            "We can\u2019t reach the store. Check your internet connection and try again."
        )
        shot(page, screenshots_dir() / "11-network-down.png")

        again = servers(port=server.port)
        for token in others:
            hold(again, token, drop)
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=15_000)
        expect(page.locator("#stock-count")).to_have_text("7")
        expect(page.locator("#netbar")).to_be_hidden()
        page.click("#reserve-btn")  # and the shopper carries on
        expect(page.locator("#hold")).to_be_visible()
        expect(page.locator("#stock-count")).to_have_text("6")
        context.close()
    refused = re.compile(
        r"^\[dave\] console\.error: (Failed to load resource: net::ERR_CONNECTION_REFUSED"
        rf"|WebSocket connection to 'ws://127\.0\.0\.1:{server.port}/api/drops/{drop}/ws' failed"
        rf".*) \({re.escape(server.url)}/"
    )
    assert [e for e in console.errors if not refused.match(e)] == []
