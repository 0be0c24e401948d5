"""A raffle drop in a real headless Chromium: two shoppers enter the draw on the shop page, see
the seed's commitment, then the digest and the seed as the draw is published live; the winner
buys the held pair from the page and the other is told they were not drawn. Any console error
fails the test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Console, call, chromium, screenshots_dir
from tests.e2e.test_browser import (
    admin_token,
    create_drop,
    customer_session,
    iso_in,
    new_page,
    shot,
    signed_in,
)
from tests.serverproc import Server

pytestmark = pytest.mark.timeout(90)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_shoppers_enter_a_draw_and_the_winner_buys_from_the_page(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'sneakerd.db'}", {}, tmp_path).start()
    try:
        admin = admin_token(server)
        drop = create_drop(
            server,
            admin,
            name="Air Max 1 '86 'Big Bubble'",
            brand="Nike",
            price="160",
            initialStock=1,
            mode="raffle",
            entriesOpenAt=iso_in(-2),
            entriesCloseAt=iso_in(600),
            claimSeconds=120,
        )
        console = Console()
        results: dict[str, str] = {}
        with chromium() as browser:
            pages = {}
            for name in ("alice", "bob"):
                context, page = new_page(browser, console, name)
                signed_in(context, customer_session(server, name))
                page.goto(f"{server.url}/drops/{drop}")
                expect(page.locator("#raffle")).to_be_visible()
                expect(page.locator("#reserve-btn")).to_be_hidden()
                expect(page.locator("#raffle-commitment")).to_have_text(HEX64)
                expect(page.locator("#raffle-seed")).to_have_attribute("data-published", "false")
                page.click("#enter-btn")
                expect(page.locator("#raffle-entry")).to_be_visible()
                expect(page.locator("#enter-btn")).to_be_hidden()
                pages[name] = (context, page)
            shot(pages["alice"][1], screenshots_dir() / "20-raffle-entered.png")
            # Both are in: the admin closes the entries a second from now (however slow the
            # machine was to get here), and the draw follows on its own.
            status, body = call(
                server, "PUT", f"/api/drops/{drop}", {"entriesCloseAt": iso_in(1)}, admin
            )
            assert status == 200, body

            for name, (_, page) in pages.items():
                # The draw arrives over the drop's WebSocket: no reload.
                expect(page.locator("#raffle-seed")).to_have_text(HEX64, timeout=20_000)
                expect(page.locator("#raffle-digest")).to_have_text(HEX64)
                result = page.locator("#raffle-result")
                expect(result).to_have_attribute("data-result", re.compile("won|lost"))
                results[name] = str(result.get_attribute("data-result"))
            assert sorted(results.values()) == ["lost", "won"], results

            winner = next(n for n, r in results.items() if r == "won")
            loser = next(n for n, r in results.items() if r == "lost")
            page = pages[winner][1]
            expect(page.locator("#hold")).to_be_visible()
            shot(page, screenshots_dir() / "21-raffle-won.png")
            page.click("#buy-btn")
            expect(page.locator("#owned")).to_be_visible()
            expect(pages[loser][1].locator("#raffle-result")).to_contain_text("Not this time")
            shot(pages[loser][1], screenshots_dir() / "22-raffle-lost.png")
            for context, _ in pages.values():
                context.close()
        status, body = call(server, "GET", f"/api/drops/{drop}")
        assert status == 200 and body["drop"]["sold"] == 1, body
        assert console.errors == []
    finally:
        out = server.stop()
        assert "Traceback" not in out, out
