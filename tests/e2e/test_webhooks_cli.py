"""`sneakerd webhooks ...` as an operator runs it: add (secret printed once), list, deliveries,
replay, remove, and one-line refusals with a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sneakerd.store import open_store
from tests.store.helpers import ms, sql


def run(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    return subprocess.run(
        [sys.executable, "-m", "sneakerd", *args, "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


async def test_the_webhooks_commands(store_url: str, tmp_path: Path) -> None:
    assert run(store_url, tmp_path, "db", "init").returncode == 0
    added = run(store_url, tmp_path, "webhooks", "add", "https://shop.example/h")
    assert added.returncode == 0, added.stderr
    assert "secret (shown once" in added.stdout and "whsec_" in added.stdout
    made = json.loads(
        run(
            store_url, tmp_path, "webhooks", "add", "http://127.0.0.1:9/h",
            "--events", "purchase.completed,drop.sold_out", "--json",
        ).stdout
    )  # fmt: skip
    assert made["webhook"]["events"] == ["purchase.completed", "drop.sold_out"]
    listed = json.loads(run(store_url, tmp_path, "webhooks", "list", "--json").stdout)
    assert [w["url"] for w in listed["webhooks"]] == [
        "https://shop.example/h",
        "http://127.0.0.1:9/h",
    ]
    assert "whsec_" not in json.dumps(listed)
    table = run(store_url, tmp_path, "webhooks", "list").stdout
    assert "https://shop.example/h" in table and "all" in table

    for bad, reason in (
        (["webhooks", "add", "ftp://x.example/h"], "http"),
        (["webhooks", "add", "https://x.example/h", "--events", "nope"], "nope"),
        (["webhooks", "remove", "999"], "no webhook 999"),
        (["webhooks", "replay", "999"], "no delivery 999"),
        (["webhooks", "replay"], "--dead"),
    ):
        done = run(store_url, tmp_path, *bad)
        assert done.returncode != 0 and reason in done.stderr, (bad, done.stderr)
        assert "Traceback" not in done.stderr

    # A dead delivery, as the deliverer leaves one, listed and replayed.
    store = await open_store(store_url)
    try:
        now = int(time.time() * 1000)
        hook = made["webhook"]["id"]
        await sql(
            store,
            "INSERT INTO webhook_events (drop_id, drop_version, type, created_at, data) "
            "VALUES (1, 2, 'purchase.completed', %s, '{}')",
            (ms(store, now),),
        )
        [(event_id,)] = await sql(store, "SELECT MAX(id) FROM webhook_events")
        await sql(
            store,
            "INSERT INTO webhook_deliveries (event_id, webhook_id, drop_id, state, attempts, "
            "next_attempt_at, last_error, created_at) VALUES (%s, %s, 1, 'dead', 40, %s, "
            "'HTTP 500', %s)",
            (event_id, hook, ms(store, now), ms(store, now)),
        )
        dead = json.loads(
            run(store_url, tmp_path, "webhooks", "deliveries", "--state", "dead", "--json").stdout
        )["deliveries"]
        assert [(d["eventId"], d["attempts"], d["lastError"]) for d in dead] == [
            (event_id, 40, "HTTP 500")
        ]
        replayed = run(store_url, tmp_path, "webhooks", "replay", "--dead", "--json")
        assert json.loads(replayed.stdout) == {"replayed": 1}
        [row] = await sql(store, "SELECT state, attempts FROM webhook_deliveries")
        assert tuple(row) == ("pending", 0)
        assert "pending" in run(store_url, tmp_path, "webhooks", "deliveries").stdout
    finally:
        await store.close()
    assert run(store_url, tmp_path, "webhooks", "remove", str(hook)).returncode == 0
    listed = json.loads(run(store_url, tmp_path, "webhooks", "list", "--json").stdout)
    assert len(listed["webhooks"]) == 1


def test_every_cli_write_is_in_the_audit_log(store_url: str, tmp_path: Path) -> None:
    """Not only a drop's: adding and removing a webhook, making an admin and promoting a user
    are CLI writes, each in the log with actor `cli` and `dropId` null."""
    assert run(store_url, tmp_path, "db", "init").returncode == 0
    added = json.loads(run(store_url, tmp_path, "webhooks", "add", "https://a.example/h",
                           "--json").stdout)  # fmt: skip
    hook = added["webhook"]["id"]
    assert run(store_url, tmp_path, "webhooks", "remove", str(hook)).returncode == 0
    admin = subprocess.run(
        [sys.executable, "-m", "sneakerd", "users", "create-admin", "--email", "boss@example.com",
         "--username", "boss", "--db", store_url],
        input="hunter2hunter2\n", capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "BCRYPT_ROUNDS": "4"},
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    assert run(store_url, tmp_path, "users", "promote", "boss@example.com").returncode == 0
    done = run(store_url, tmp_path, "audit", "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)["entries"]
    # Promoting an admin changes nothing, so it logs nothing.
    assert [(e["action"], e["actor"], e["dropId"]) for e in entries] == [
        ("create_user", "cli", None),
        ("remove_webhook", "cli", None),
        ("add_webhook", "cli", None),
    ]
    created, removed, made = entries
    assert made["after"]["url"] == "https://a.example/h" and removed["before"] == made["after"]
    assert created["before"] is None and created["after"]["email"] == "boss@example.com"
    assert created["after"]["role"] == "admin" and "password" not in str(created)
    assert "whsec_" not in done.stdout


def test_an_unknown_webhook_or_delivery_is_not_found_as_an_unknown_drop_is(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert run(url, tmp_path, "db", "init").returncode == 0
    for args in (["webhooks", "remove", "99999"], ["webhooks", "replay", "99999"]):
        done = run(url, tmp_path, *args, "--json")
        assert done.returncode == 1, (args, done.stderr)
        assert json.loads(done.stdout)["error"]["code"] == "not_found", done.stdout
