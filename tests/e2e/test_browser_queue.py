"""The waiting room in a real headless Chromium against a real `sneakerd serve`: a shopper on a
queued drop sees "Join the queue", joins, watches their place move as the shopper ahead finishes,
then gets the reserve button, reserves (the page sends the admission token) and buys. Any
console error or uncaught exception fails the test."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Console, call, chromium, screenshots_dir
from tests.e2e.test_browser import (
    admin_token,
    create_drop,
    customer,
    customer_session,
    new_page,
    server,  # noqa: F401 (a fixture)
    servers,  # noqa: F401 (a fixture)
    shot,
    signed_in,
)
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(60)


def join(srv: Server, token: str, drop_id: int) -> dict[str, object]:
    status, body = call(srv, "POST", f"/api/drops/{drop_id}/queue", None, token)
    assert status == 200, body
    return dict(body["ticket"])


def test_join_the_queue_wait_your_turn_then_reserve_and_buy(server: Server) -> None:  # noqa: F811
    shots = screenshots_dir()
    admin = admin_token(server)
    drop = create_drop(
        server, admin, name="Travis Scott 'Mocha'", price="150", initialStock=1, queue=True
    )
    # Someone was here first: admitted to the only pair's turn.
    first = customer(server, "firstinline")
    ahead = join(server, first, drop)
    assert ahead["admitted"] is True

    console = Console()
    with chromium() as browser:
        context, page = new_page(browser, console, "carol")
        signed_in(context, customer_session(server, "carol"))
        page.goto(f"{server.url}/drops/{drop}")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        expect(page.locator("#queue-btn")).to_be_visible()
        expect(page.locator("#queue-btn")).to_have_text("Join the queue")
        expect(page.locator("#reserve-btn")).to_be_hidden()
        shot(page, shots / "q1-join-the-queue.png")

        page.click("#queue-btn")
        expect(page.locator("#queue-status")).to_contain_text("number 1 in the queue")
        expect(page.locator("#queue-btn")).to_be_hidden()
        expect(page.locator("#reserve-btn")).to_be_hidden()
        shot(page, shots / "q2-in-line.png")

        # The shopper ahead reserves and cancels: their turn is over, Carol's begins.
        status, body = call(
            server,
            "POST",
            "/api/reservations",
            {"dropId": drop},
            first,
            headers={"Admission-Token": str(ahead["admissionToken"])},
        )
        assert status == 201, body
        status, _ = call(
            server, "DELETE", f"/api/reservations/{body['reservation']['id']}", None, first
        )
        assert status == 200
        expect(page.locator("#queue-status")).to_contain_text("your turn")
        expect(page.locator("#reserve-btn")).to_be_visible()
        shot(page, shots / "q3-your-turn.png")

        page.click("#reserve-btn")
        expect(page.locator("#hold")).to_be_visible()
        page.click("#buy-btn")
        expect(page.locator("#owned")).to_be_visible()
        shot(page, shots / "q4-bought.png")
        context.close()
    # Chromium logs every 4xx answer to fetch() as a console error; a 404 from queue/me is how
    # the page learns it is not in the queue yet (before the click), and nothing else may show.
    not_yet = f"404 (Not Found) ({server.url}/api/drops/{drop}/queue/me)"
    assert [e for e in console.errors if not e.endswith(not_yet)] == []
