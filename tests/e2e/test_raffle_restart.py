"""A raffle survives a crash between the close and the draw: a real server is killed once the
entries' digest is committed and before the seed is published; the next server draws from the
stored seed and entries, and the published draw checks out, by hand here and with
`sneakerd raffle verify`. An entry slipped into the database after the digest is caught."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import re
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.test_cli import corrupt, sneakerd
from tests.serverproc import Server

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "fair-drops.md"


def _guide_snippet(base: str, drop_id: int) -> str:
    """docs/fair-drops.md's check-by-hand snippet, pointed at this server and drop."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert code is not None, "the guide has its snippet"
    line = 'base, drop_id = "http://127.0.0.1:5000", 7'
    assert line in code.group(1)
    return code.group(1).replace(line, f"base, drop_id = {base!r}, {drop_id}")


def _at(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _call(server: Server, method: str, path: str, body: Any = None, token: str = "") -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _record(server: Server, drop_id: int) -> dict[str, Any]:
    return dict(_call(server, "GET", f"/api/drops/{drop_id}/raffle")["raffle"])


def _wait(server: Server, drop_id: int, key: str, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        record = _record(server, drop_id)
        if record[key] is not None:
            return record
        time.sleep(0.1)
    raise AssertionError(f"{key} was not published in time")


def test_a_crash_between_the_digest_and_the_draw_changes_nothing(
    store_url: str, tmp_path: Path
) -> None:
    first = Server(store_url, {"RAFFLE_DRAW_DELAY": "600000"}, tmp_path).start()
    try:
        first.admin_token_cli("boss@example.com", "boss", "hunter2hunter2")
        admin = _call(
            first,
            "POST",
            "/api/users/login",
            {"email": "boss@example.com", "password": "hunter2hunter2"},
        )["token"]
        tokens = [
            _call(
                first,
                "POST",
                "/api/users/register",
                {"username": f"fan{i}", "email": f"fan{i}@example.com", "password": "p" * 10},
            )["token"]
            for i in range(6)
        ]
        drop = _call(
            first,
            "POST",
            "/api/drops",
            {
                "name": "Raffle",
                "price": "120",
                "initialStock": 2,
                "mode": "raffle",
                "entriesOpenAt": _at(-1),
                "entriesCloseAt": _at(600),
            },
            admin,
        )["drop"]
        for token in tokens:
            _call(first, "POST", f"/api/drops/{drop['id']}/entries", {}, token)
        # Everyone is in: the entries close a second from now, however long that took.
        _call(first, "PUT", f"/api/drops/{drop['id']}", {"entriesCloseAt": _at(1)}, admin)
        closed = _wait(first, drop["id"], "entriesDigest")
        assert closed["seed"] is None and closed["winners"] is None, "the draw waits"
    finally:
        first.stop(signal.SIGKILL)  # a crash: nothing is flushed or handed over

    second = Server(store_url, {}, tmp_path).start()
    try:
        drawn = _wait(second, drop["id"], "seed")
        for key in ("seedCommitment", "entriesDigest", "entries"):
            assert drawn[key] == closed[key], key
        seed = bytes.fromhex(drawn["seed"])
        assert hashlib.sha256(seed).hexdigest() == drawn["seedCommitment"]
        order = sorted(
            drawn["entries"],
            key=lambda i: hmac.new(seed, str(i).encode(), hashlib.sha256).hexdigest(),
        )
        assert drawn["winners"] == order[:2]

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(_guide_snippet(second.url, drop["id"]), {})  # the guide's own code
        assert "the draw checks out" in printed.getvalue()

        by_url = sneakerd("raffle", "verify", str(drop["id"]), "--url", second.url, "--json")
        assert by_url.returncode == 0, by_url.stderr
        assert json.loads(by_url.stdout)["ok"] is True
        by_db = sneakerd("raffle", "verify", str(drop["id"]), "--db", store_url)
        assert by_db.returncode == 0 and "verified" in by_db.stdout, by_db.stdout + by_db.stderr
    finally:
        second.stop()

    # An entry written behind the server's back after the digest: the record no longer holds.
    corrupt(
        store_url,
        "INSERT INTO raffle_entries (id, drop_id, user_id, created_at) "
        f"SELECT 999999, {drop['id']}, id, created_at FROM users WHERE username = 'boss'",
    )
    tampered = sneakerd("raffle", "verify", str(drop["id"]), "--db", store_url)
    assert tampered.returncode == 1, tampered.stdout
    assert "FAIL  digest matches entries" in tampered.stdout
