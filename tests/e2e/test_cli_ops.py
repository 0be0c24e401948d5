"""The CLI as scripts drive it: exit statuses by kind of failure, errors as JSON, help on every
option, no database made by a mistyped `--db`, `--version`, and `serve --demo`."""

from __future__ import annotations

import argparse
import json
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from sneakerd.cli import build_parser
from sneakerd.cli.demo import ADMIN_EMAIL
from tests.e2e.test_cli import sneakerd
from tests.serverproc import Server


def _parsers(
    parser: argparse.ArgumentParser, path: str = "sneakerd"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    seen = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"{path} {name}: no help"
            seen += 1
    assert seen > 40  # the walk reached the subcommands' own options


def test_help_documents_the_exit_statuses() -> None:
    text = sneakerd("--help").stdout
    for line in ("0  ok", "1  a breach", "2  usage", "3  the database"):
        assert line in text, text


def test_version_is_the_installed_packages() -> None:
    done = sneakerd("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"sneakerd {version('sneakerd')}"


def test_a_usage_error_exits_2_and_says_so_as_json_under_json() -> None:
    plain = sneakerd("drops", "show", "not-a-number")
    assert plain.returncode == 2 and "usage:" in plain.stderr and plain.stdout == ""
    done = sneakerd("drops", "show", "not-a-number", "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "usage" and "not-a-number" in error["message"]
    assert sneakerd("no-such-command").returncode == 2


# Every command but `db init` and `serve` reads a database that must already be there.
READERS = [
    ["db", "check"],
    ["db", "migrate"],
    ["drops", "list"],
    ["drops", "show", "1"],
    ["drops", "create", "--name", "x", "--price", "1", "--stock", "1"],
    ["stats"],
    ["users", "promote", "a@example.com"],
    ["cluster", "status"],
]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_missing_sqlite_file_is_an_error_not_a_new_database(
    argv: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing" / "path.db"
    done = sneakerd(*argv, "--db", f"sqlite:///{missing}", "--json", stdin="x" * 12 + "\n")
    assert done.returncode == 3, done.stdout + done.stderr
    assert json.loads(done.stdout) == {
        "error": {
            "code": "no_database",
            "message": f"no database at {missing} (make one with `sneakerd db init`)",
        }
    }
    plain = sneakerd(*argv, "--db", f"sqlite:///{missing}", stdin="x" * 12 + "\n")
    assert plain.returncode == 3 and plain.stderr.startswith("sneakerd: error: no database at")
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.mysql
@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_missing_mysql_database_is_an_error_not_a_new_database(
    argv: list[str], mysql_url: str
) -> None:
    """As with a missing SQLite file: a mistyped database name is exit 3, and no database by
    that name is left behind (only `db init` and `serve` make one)."""
    done = sneakerd(*argv, "--db", mysql_url, "--json", stdin="x" * 12 + "\n")
    assert done.returncode == 3, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    name = mysql_url.rsplit("/", 1)[1]
    assert error["code"] == "no_database" and name in error["message"], error
    assert not _mysql_database_exists(name)


def _mysql_database_exists(name: str) -> bool:
    from tests.conftest import _admin_connection

    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
            return bool(cur.fetchall())
    finally:
        conn.close()


def test_db_init_makes_the_missing_file(tmp_path: Path) -> None:
    made = tmp_path / "new" / "path.db"
    assert sneakerd("db", "init", "--db", f"sqlite:///{made}").returncode == 0
    assert made.is_file()


def test_an_unreachable_database_exits_3_with_a_json_error() -> None:
    done = sneakerd("stats", "--db", "mysql://root@127.0.0.1:1/nothing", "--json")
    assert done.returncode == 3
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "unavailable" and "cannot reach MySQL" in error["message"]


def test_a_refused_act_exits_1_with_the_json_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert sneakerd("db", "init", "--db", url).returncode == 0
    missing = sneakerd("drops", "show", "999", "--db", url, "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout) == {"error": {"code": "not_found", "message": "no drop 999"}}
    for argv in (["drops", "pause", "999"], ["purchases", "export", "--drop", "999"]):
        also = sneakerd(*argv, "--db", url, "--json")  # one error, one code, whatever the command
        assert also.returncode == 1 and json.loads(also.stdout)["error"]["code"] == "not_found"
    bad = sneakerd("drops", "create", "--db", url, "--json", "--name", "x", "--price", "1.001",
                   "--stock", "1")  # fmt: skip
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "refused"
    setting = sneakerd("stats", "--db", "postgres://x", "--json")
    assert setting.returncode == 1
    assert json.loads(setting.stdout)["error"]["code"] == "bad_setting"


# -- serve --demo ------------------------------------------------------------------------------


def _get(server: Server, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return json.loads(response.read())


def _login(server: Server, email: str, password: str) -> dict[str, Any]:
    request = urllib.request.Request(
        server.url + "/api/users/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def test_serve_demo_fills_an_empty_database_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    server = Server(url, {"BCRYPT_ROUNDS": "4"}, tmp_path, args=("--demo",)).start()
    try:
        drops = {d["name"]: d for d in _get(server, "/api/drops")["drops"]}
        statuses = sorted(d["status"] for d in drops.values())
        assert statuses == ["live", "live", "upcoming"], drops
        nearly = next(d for d in drops.values() if 0 < d["stock"] < 5)
        assert nearly["sold"] == nearly["initialStock"] - nearly["stock"] and nearly["sold"] > 0
        sold = _get(server, f"/api/purchases/drop/{nearly['id']}")["purchases"]
        assert len(sold) == min(nearly["sold"], 50)
        with urllib.request.urlopen(server.url + "/api-docs", timeout=10) as docs:
            assert docs.status == 200
        first = server.stop()
    finally:
        server.stop()
    said = [line for line in first.splitlines() if line.startswith("demo: admin")]
    assert len(said) == 1, first
    password = said[0].split(" password ")[1].split(" ")[0]
    assert said[0].startswith(f"demo: admin {ADMIN_EMAIL} password ")
    assert sneakerd("db", "check", "--db", url).returncode == 0

    again = Server(url, {"BCRYPT_ROUNDS": "4"}, tmp_path, args=("--demo",)).start()
    try:
        assert len(_get(again, "/api/drops")["drops"]) == 3
        user = _login(again, ADMIN_EMAIL, password)["user"]
        assert user["role"] == "admin"
        second = again.stop()
    finally:
        again.stop()
    assert "not empty: nothing added" in second and "password" not in second


@pytest.mark.mysql
def test_serve_with_an_unreachable_redis_exits_3_naming_it(mysql_url: str, tmp_path: Path) -> None:
    """A node that cannot reach its events bus at start would serve watchers who never get a
    change from another node: it says so and exits, rather than waiting without listening."""
    assert sneakerd("db", "init", "--db", mysql_url).returncode == 0
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "JWT_SECRET": "s" * 40, "NODE_ID": "lonely"}
    done = sneakerd("serve", "--db", mysql_url, "--host", "127.0.0.1", "--port", "0", env=env,
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sneakerd: error:") and "Redis" in last, done.stderr[-2000:]


async def test_a_pause_finds_the_embedded_server_on_its_own(tmp_path: Path) -> None:
    """The server runs on the embedded database at a port the CLI was not told (no --server,
    no PORT): the pause still goes through the drop's actor, so its watcher hears of it at
    once, instead of being written around the server (the watcher told only after the next
    shopper's request, the actor refusing from memory meanwhile)."""
    import asyncio

    import aiohttp

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    server = Server(url, {"JWT_SECRET": ""}, tmp_path).start()
    try:
        server.admin_token_cli("boss@example.com", "boss", "hunter2hunter2")
        made = sneakerd(
            "drops", "create", "--name", "Dunk", "--price", "100", "--stock", "3", "--json",
            "--db", url,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        drop_id = json.loads(made.stdout)["drop"]["id"]
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{server.url}/api/drops/{drop_id}/ws") as ws,
        ):
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
            done = await asyncio.to_thread(
                sneakerd, "drops", "pause", str(drop_id), "--db", url, cwd=tmp_path,
                env={"PORT": "", "HOST": "", "JWT_SECRET": ""},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            frame = await ws.receive_json(timeout=3)
            assert frame["type"] == "dropUpdated" and frame["drop"]["paused"] is True, frame
    finally:
        server.stop()
    assert not (tmp_path / "shop.db.server").exists(), "a stopped server leaves no address"
