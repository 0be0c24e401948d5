"""A real headless browser for the e2e tier: Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (the machine may have no internet): Chromium
comes from the distribution (`apt-get install chromium`, as `.ci/run` does). Without it the
browser tests are skipped, unless SNEAKERD_REQUIRE_BROWSER=1 (as in CI), where they fail.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from tests.serverproc import Server

CHROMIUM = Path(os.environ.get("SNEAKERD_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("SNEAKERD_REQUIRE_BROWSER") == "1"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The network is closed: without these Chromium keeps calling home and logs each refusal.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_BROWSER:
        pytest.fail(reason + " (SNEAKERD_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def screenshots_dir() -> Path:
    """$SNEAKERD_SCREENSHOTS, else artifacts/screenshots at the repository root."""
    path = Path(os.environ.get("SNEAKERD_SCREENSHOTS") or REPO_ROOT / "artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=20_000
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """Every console error and uncaught exception of the pages it watches."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page, name: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                self.errors.append(f"[{name}] console.error: {message.text} ({where})")

        def on_page_error(error: Error) -> None:
            self.errors.append(f"[{name}] uncaught: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page


def call(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One REST call with the standard library, as a script would make it."""
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as failed:
        raw = failed.read()
        failed.close()
        return failed.code, json.loads(raw) if raw else None
