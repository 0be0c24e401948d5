"""The operator CLI as an operator runs it: a real `sneakerd` process on a real database."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sneakerd.store import SCHEMA_VERSION
from tests.conftest import _admin_connection


def sneakerd(
    *args: str, stdin: str = "", cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    return subprocess.run(
        [sys.executable, "-m", "sneakerd", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**clean, "BCRYPT_ROUNDS": "4", **(env or {})},
    )


def corrupt(url: str, statement: str) -> None:
    """Change a row by hand behind every check, as a careless operator could."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute(statement)
        conn.commit()
        conn.close()
        return
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f"USE `{url.rsplit('/', 1)[1]}`")
        cur.execute("SET SESSION check_constraint_checks = OFF")
        cur.execute(statement)
    conn.commit()
    conn.close()


def test_db_init_is_idempotent_and_check_names_a_corrupted_drop(store_url: str) -> None:
    for _ in range(2):
        done = sneakerd("db", "init", "--db", store_url, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"ok": True, "schemaVersion": SCHEMA_VERSION}
    created = sneakerd(
        "drops",
        "create",
        "--db",
        store_url,
        "--json",
        "--name",
        "Samba OG",
        "--price",
        "120",
        "--stock",
        "40",
        "--brand",
        "adidas",
    )
    assert created.returncode == 0, created.stderr
    drop = json.loads(created.stdout)["drop"]
    assert (drop["price"], drop["stock"], drop["status"]) == ("120.00", 40, "live")
    healthy = sneakerd("db", "check", "--db", store_url)
    assert healthy.returncode == 0 and "ok" in healthy.stdout

    corrupt(store_url, f"UPDATE drops SET stock = stock + 1 WHERE id = {drop['id']}")
    broken = sneakerd("db", "check", "--db", store_url)
    assert broken.returncode == 1
    assert (
        f"drop {drop['id']} (Samba OG): stock 41 + reserved 0 + sold 0 != initialStock 40"
        in broken.stdout
    )
    corrupt(store_url, f"UPDATE drops SET stock = stock - 2, reserved = 1 WHERE id = {drop['id']}")
    report = json.loads(sneakerd("db", "check", "--db", store_url, "--json").stdout)
    assert report["ok"] is False
    assert any(
        f"drop {drop['id']}" in b and "1 holds are active" not in b and "reserved is 1" in b
        for b in report["breaches"]
    )


def test_users_drops_and_stats_commands(store_url: str) -> None:
    assert sneakerd("db", "init", "--db", store_url).returncode == 0
    admin = sneakerd(
        "users",
        "create-admin",
        "--db",
        store_url,
        "--json",
        "--email",
        "Boss@Example.com",
        "--username",
        "boss",
        stdin="correct horse\n",
    )
    assert admin.returncode == 0, admin.stderr
    user = json.loads(admin.stdout)["user"]
    assert (user["email"], user["role"]) == ("boss@example.com", "admin")
    assert "password" not in admin.stdout and "hash" not in admin.stdout
    again = sneakerd(
        "users",
        "create-admin",
        "--db",
        store_url,
        "--email",
        "boss@example.com",
        "--username",
        "boss2",
        stdin="correct horse\n",
    )
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "already registered" in again.stderr
    short = sneakerd(
        "users",
        "create-admin",
        "--db",
        store_url,
        "--email",
        "x@example.com",
        "--username",
        "xx1",
        stdin="short\n",
    )
    assert short.returncode == 1 and "8 to 128" in short.stderr
    missing = sneakerd("users", "promote", "--db", store_url, "nobody@example.com")
    assert missing.returncode == 1 and "no user" in missing.stderr

    made = sneakerd(
        "drops",
        "create",
        "--db",
        store_url,
        "--json",
        "--name",
        "Foamposite",
        "--price",
        "230.5",
        "--stock",
        "7",
        "--per-user-limit",
        "2",
        "--starts-at",
        "2030-01-01T10:00:00Z",
        "--ends-at",
        "2030-01-02T10:00:00Z",
    )
    drop = json.loads(made.stdout)["drop"]
    assert (drop["status"], drop["startsAt"], drop["perUserLimit"], drop["price"]) == (
        "upcoming",
        "2030-01-01T10:00:00.000Z",
        2,
        "230.50",
    )
    listed = json.loads(sneakerd("drops", "list", "--db", store_url, "--json").stdout)
    assert [d["id"] for d in listed["drops"]] == [drop["id"]]
    table = sneakerd("drops", "list", "--db", store_url).stdout
    assert "Foamposite" in table and "upcoming" in table
    shown = json.loads(
        sneakerd("drops", "show", str(drop["id"]), "--db", store_url, "--json").stdout
    )
    assert shown["drop"] == drop
    stats = json.loads(sneakerd("stats", "--db", store_url, "--json").stdout)
    assert stats["drops"][0]["expiringNextMinute"] == 0
    bad_prices = ("abc", "1.001", "1e3", "-0", "1_000", "\u0663", " 12 ")
    for bad in [["--price", price] for price in bad_prices] + [["--stock", "-1"]]:
        args = ["drops", "create", "--db", store_url, "--name", "x", "--price", "1", "--stock", "1"]
        args[args.index(bad[0]) + 1] = bad[1]
        failed = sneakerd(*args)
        assert failed.returncode == 1 and failed.stderr.startswith("sneakerd: error:")
    assert sneakerd("drops", "show", "999", "--db", store_url).returncode == 1


def test_an_unreachable_database_is_one_line_not_a_traceback() -> None:
    done = sneakerd("db", "check", "--db", "mysql://root@127.0.0.1:1/nothing")
    assert done.returncode == 1
    assert done.stderr.startswith("sneakerd: error:") and "Traceback" not in done.stderr
    bad = sneakerd("db", "check", "--db", "postgres://x")
    assert bad.returncode == 1 and "DATABASE_URL" in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_on_the_embedded_default_with_no_setup(tmp_path: Path) -> None:
    """No DATABASE_URL, no JWT_SECRET, nothing but a folder: it serves and stops cleanly."""
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST", "JWT_SECRET")
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sneakerd", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not come up"
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            assert r.status == 200
        assert (tmp_path / "sneakerd.db").is_file()
        assert (tmp_path / "sneakerd.db.jwt-secret").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert f"listening on http://127.0.0.1:{port}" in out


@pytest.mark.parametrize("flag", ["--help"])
def test_help_lists_every_command(flag: str) -> None:
    text = sneakerd(flag).stdout
    for command in ("serve", "db", "users", "drops", "stats"):
        assert command in text
