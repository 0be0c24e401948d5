"""The operator CLI as an operator runs it: a real `sneakerd` process on a real database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sneakerd import cli
from sneakerd.store import SCHEMA_VERSION
from tests.conftest import _admin_connection
from tests.serverproc import Server


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
    row = stats["drops"][0]  # also under the REST stats' names
    assert row["holdsExpiringNextMinute"] == 0 and row["dropId"] == row["id"]
    assert row["initialStock"] == row["stock"] + row["reserved"] + row["sold"]
    bad_prices = ("abc", "1.001", "1e3", "-0", "1_000", "\u0663", " 12 ")
    for bad in [["--price", price] for price in bad_prices] + [["--stock", "-1"]]:
        args = ["drops", "create", "--db", store_url, "--name", "x", "--price", "1", "--stock", "1"]
        args[args.index(bad[0]) + 1] = bad[1]
        failed = sneakerd(*args)
        assert failed.returncode == 1 and failed.stderr.startswith("sneakerd: error:")
    assert sneakerd("drops", "show", "999", "--db", store_url).returncode == 1


def test_an_unreachable_database_is_one_line_not_a_traceback() -> None:
    done = sneakerd("db", "check", "--db", "mysql://root@127.0.0.1:1/nothing")
    assert done.returncode == 3
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
                    assert json.loads(r.read())["status"] == "ok"
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


# -- the CLI and the API refuse the same inputs for the same reasons -------------------------

GOOD_USER = {"username": "", "email": "", "password": "hunter2hunter2"}
GOOD_DROP = {"name": "Air Max 1", "price": "150", "initialStock": 5}
CLI_FLAG = {
    "name": "--name",
    "price": "--price",
    "initialStock": "--stock",
    "perUserLimit": "--per-user-limit",
    "brand": "--brand",
    "startsAt": "--starts-at",
    "endsAt": "--ends-at",
}
BAD_ACCOUNTS = [
    ("username", "ab"),
    ("username", "x" * 33),
    ("username", "bad name"),
    ("username", "ab!"),
    ("username", "abc\n"),
    ("username", "ünï"),
    ("email", "not-an-email"),
    ("email", "a@b.c"),
    ("email", "a@b"),
    ("email", "x@example.com\u200b"),
    ("email", "   "),
    ("email", "a" * 1100 + "@example.com"),
    ("password", "short"),
    ("password", "x" * 129),
    ("password", "hunter2\x00hunter2"),
    ("password", "hunter2\thunter2"),
]
BAD_DROPS = [
    *[({"price": p}, "price") for p in ("abc", "1.001", "1e3", "-0", "1_000", "\u0663", " 12 ")],
    ({"price": "99999999999"}, "price"),
    ({"initialStock": -1}, "initialStock"),
    ({"initialStock": 10_000_001}, "initialStock"),
    ({"perUserLimit": 0}, "perUserLimit"),
    ({"perUserLimit": 1001}, "perUserLimit"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"brand": ""}, "brand"),
    ({"brand": "x" * 101}, "brand"),
    ({"startsAt": "soon"}, "startsAt"),
    ({"startsAt": "1969-12-31T23:59:59Z"}, "startsAt"),
    ({"endsAt": "10000-01-01T00:00:00Z"}, "endsAt"),
    ({"startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"}, "endsAt"),
    ({"startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-02T00:00:00Z"}, "endsAt"),
]


@pytest.fixture(scope="module")
def rules_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """One API on SQLite (the rules do not depend on the store) and an admin's token."""
    cwd = tmp_path_factory.mktemp("rules")
    server = Server(f"sqlite:///{cwd / 'rules.db'}", {}, cwd).start()
    try:
        server.admin_token_cli("rules@example.com", "rules", "hunter2hunter2")
        _, body = _post(
            server, "/api/users/login", {"email": "rules@example.com", "password": "hunter2hunter2"}
        )
        yield server, body["token"]
    finally:
        server.stop()


def _post(server: Server, path: str, body: Any, token: str = "") -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _cli(
    argv: list[str],
    password: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    """The CLI in this process (a process per case would cost a second each)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _same_reasons(api: tuple[int, Any], cli_run: tuple[int, str], field: str) -> None:
    status, body = api
    assert status == 422, body
    reasons = body["error"]["details"][field]
    code, stderr = cli_run
    assert code == 1 and stderr.startswith("sneakerd: error:") and stderr.count("\n") == 1, stderr
    for reason in reasons:
        assert reason.lower() in stderr.lower(), (reasons, stderr)


@pytest.mark.parametrize(("field", "bad"), BAD_ACCOUNTS, ids=lambda v: repr(v)[:24])
def test_the_cli_refuses_the_accounts_the_api_refuses_for_the_same_reasons(
    rules_server: tuple[Server, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    field: str,
    bad: str,
) -> None:
    server, _ = rules_server
    name = f"u{uuid.uuid4().hex[:10]}"
    body = {**GOOD_USER, "username": name, "email": f"{name}@example.com", field: bad}
    api = _post(server, "/api/users/register", body)
    argv = ["users", "create-admin", "--db", server.db_url]
    argv += ["--email", body["email"], "--username", body["username"]]
    _same_reasons(api, _cli(argv, body["password"], monkeypatch, capsys), field)


@pytest.mark.parametrize(("change", "field"), BAD_DROPS, ids=lambda v: repr(v)[:24])
def test_the_cli_refuses_the_drops_the_api_refuses_for_the_same_reasons(
    rules_server: tuple[Server, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    field: str,
) -> None:
    server, token = rules_server
    body = {**GOOD_DROP, **change}
    api = _post(server, "/api/drops", body, token)
    argv = ["drops", "create", "--db", server.db_url]
    for key, value in body.items():
        argv += [CLI_FLAG[key], str(value)]
    _same_reasons(api, _cli(argv, "", monkeypatch, capsys), field)


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """`sneakerd drops list | head -1`: the reader closes the pipe before the table is out.
    The command stops quietly, as a Unix tool does, instead of printing BrokenPipeError's
    traceback (twice: once more as the interpreter flushes stdout at exit)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert sneakerd("db", "init", "--db", url).returncode == 0
    made = sneakerd(
        "drops", "create", "--name", "Dunk " + "x" * 60, "--price", "120", "--stock", "5",
        "--db", url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    conn = sqlite3.connect(tmp_path / "shop.db")  # 500 copies: a table beyond a pipe's buffer
    conn.execute(
        "INSERT INTO drops (name, price, initial_stock, stock, starts_at, created_at, updated_at)"
        " SELECT name || ' copy ' || d.n, price, initial_stock, stock, starts_at, created_at,"
        " updated_at FROM drops, (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c"
        " WHERE n < 500) SELECT n FROM c) AS d WHERE drops.id = 1"
    )
    conn.commit()
    conn.close()
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sneakerd", "drops", "list", "--db", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # `head -1` has what it wanted
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode != 0


def test_a_file_that_is_no_database_is_one_line_and_an_exit(tmp_path: Path) -> None:
    """It said why and then never exited: the connection that failed kept its thread."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database\n" * 100)
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    for args in (["drops", "list"], ["db", "init"], ["--json", "stats"]):
        done = subprocess.run(
            [sys.executable, "-m", "sneakerd", *args, "--db", f"sqlite:///{garbage}"],
            capture_output=True,
            text=True,
            timeout=20,
            env=clean,
        )
        assert done.returncode == 3, (args, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "not a database" in done.stdout + done.stderr


NEW_DROP = ["drops", "create", "--name", "X", "--price", "10", "--stock", "1"]


@pytest.mark.parametrize(
    "args",
    [
        ["drops", "show", "99999999999999999999999"],
        ["drops", "show", "0"],
        ["drops", "pause", "99999999999999999999999"],
        ["purchases", "export", "--drop", "99999999999999999999999"],
        ["webhooks", "remove", "99999999999999999999999"],
        ["webhooks", "deliveries", "--limit", "0"],
        ["webhooks", "deliveries", "--limit", "201"],
        ["serve", "--port", "99999"],
        ["serve", "--port", "65536"],
        [*NEW_DROP, "--claim-seconds", "-5"],
        [*NEW_DROP, "--claim-seconds", "999999999999"],
    ],
)
def test_out_of_range_numbers_are_a_usage_error_not_a_traceback(
    tmp_path: Path, args: list[str]
) -> None:
    """A huge id crashed the SQLite driver (OverflowError), a port above 65535 wrapped round
    to another port, a claim time was taken unchecked: each is refused as the API refuses it."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert sneakerd("db", "init", "--db", url).returncode == 0
    for extra in ([], ["--json"]):
        done = sneakerd(*args, *extra, "--db", url)
        assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout, done.stderr


def _at_the_prompt(url: str, key: bytes) -> tuple[int, str]:
    """`users create-admin` on a terminal: wait for its password prompt, press `key`, and
    return how it exited (its status, or -1 if it did not within 10 s) and what it printed."""
    import pty
    import select

    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_HOST")}
    argv = [sys.executable, "-m", "sneakerd", "users", "create-admin", "--email",
            "boss@example.com", "--username", "boss", "--db", url]  # fmt: skip
    pid, master = pty.fork()
    if pid == 0:  # the child: its own session, the pty its controlling terminal
        os.execve(sys.executable, argv, clean)
    seen = b""
    deadline = time.monotonic() + 20
    try:
        while b"Password:" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        os.write(master, key)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                with contextlib.suppress(OSError):
                    while select.select([master], [], [], 0.1)[0]:
                        seen += os.read(master, 4096)
                return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")
            with contextlib.suppress(OSError):
                if select.select([master], [], [], 0.1)[0]:
                    seen += os.read(master, 4096)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return -1, seen.decode(errors="replace")
    finally:
        os.close(master)


@pytest.mark.parametrize(("key", "code"), [(b"\x03", 130), (b"\x04", 1)], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_password_prompt_ends_the_command(
    tmp_path: Path, key: bytes, code: int
) -> None:
    """Ctrl-C was ignored (the prompt blocked the event loop, which only asks the command to
    stop), and Ctrl-D printed EOFError's traceback and hung; now each ends it, nothing made."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert sneakerd("db", "init", "--db", url).returncode == 0
    status, printed = _at_the_prompt(url, key)
    assert status == code, (status, printed)
    assert "Traceback" not in printed, printed
    assert json.loads(sneakerd("drops", "list", "--json", "--db", url).stdout)["drops"] == []
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)


@pytest.mark.parametrize("port", ["abc", "99999", "-1"])
def test_a_database_url_with_a_bad_port_is_one_line(port: str) -> None:
    done = sneakerd("drops", "list", "--db", f"mysql://root@127.0.0.1:{port}/x")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "port" in done.stderr.lower(), done.stderr


def test_an_empty_db_flag_is_refused_not_the_default_database(tmp_path: Path) -> None:
    """`--db "$URL"` with URL unset fell back to sqlite:///sneakerd.db in the current folder."""
    done = sneakerd("drops", "list", "--db", "", cwd=tmp_path)
    assert done.returncode == 1 and "--db" in done.stderr, (done.returncode, done.stderr)
    assert not (tmp_path / "sneakerd.db").exists()


def test_db_check_names_a_row_it_cannot_read(tmp_path: Path) -> None:
    """A price set to 'abc' by hand (SQLite keeps what it is given) crashed `db check` with
    decimal.InvalidOperation, hiding every other breach; it is named as a breach."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert sneakerd("db", "init", "--db", url).returncode == 0
    for name in ("Samba", "Gazelle"):
        made = sneakerd("drops", "create", "--name", name, "--price", "90", "--stock", "5",
                        "--db", url)  # fmt: skip
        assert made.returncode == 0, made.stderr
    corrupt(url, "UPDATE drops SET price = 'abc' WHERE id = 1")
    corrupt(url, "UPDATE drops SET stock = stock + 1 WHERE id = 2")
    done = sneakerd("db", "check", "--json", "--db", url)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    breaches = json.loads(done.stdout)["breaches"]
    assert any(b.startswith("drop 1: a row that cannot be read") for b in breaches), breaches
    assert any(b.startswith("drop 2 (Gazelle): stock 6") for b in breaches), breaches
