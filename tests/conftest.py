"""Fixtures shared by every tier: real databases, never mocks.

The MySQL/MariaDB server comes from SNEAKERD_TEST_MYSQL (default mysql://root@127.0.0.1:3306);
each test gets a database of its own, dropped afterwards. Without a server the MySQL variants are
skipped, unless SNEAKERD_REQUIRE_MYSQL=1 (as in CI), where a missing server fails them.

The same goes for the tools some tests drive (`require_tool`): Apache Bench (`ab`,
SNEAKERD_REQUIRE_AB=1) and wrk (SNEAKERD_REQUIRE_WRK=1); Chromium and Redis have theirs in
tests/e2e/browser.py and tests/cluster/conftest.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pymysql
import pytest

from sneakerd.store import Store, open_store

MYSQL_SERVER = os.environ.get("SNEAKERD_TEST_MYSQL", "mysql://root@127.0.0.1:3306").rstrip("/")
REQUIRE_MYSQL = os.environ.get("SNEAKERD_REQUIRE_MYSQL") == "1"


def require_tool(name: str, variable: str, install: str) -> str:
    """The path of the program `name`; without it the test is skipped, saying why, unless
    `variable` is 1 (CI sets it), where it fails instead."""
    found = shutil.which(name)
    if found is not None:
        return found
    reason = f"no `{name}` on PATH ({install})"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1)")
    pytest.skip(reason)


def require_ab() -> str:
    return require_tool("ab", "SNEAKERD_REQUIRE_AB", "apt-get install apache2-utils")


def require_wrk() -> str:
    return require_tool("wrk", "SNEAKERD_REQUIRE_WRK", "apt-get install wrk")


def _admin_connection() -> pymysql.connections.Connection:  # type: ignore[type-arg]
    from sneakerd.store.mysql import MySQLParams

    params = MySQLParams.from_url(MYSQL_SERVER + "/mysql")
    return pymysql.connect(
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        connect_timeout=3,
    )


def _mysql_reason() -> str | None:
    try:
        _admin_connection().close()
    except pymysql.err.MySQLError as exc:
        return f"no MySQL/MariaDB at {MYSQL_SERVER}: {exc}"
    return None


@pytest.fixture(scope="session")
def mysql_server() -> str:
    reason = _mysql_reason()
    if reason:
        if REQUIRE_MYSQL:
            pytest.fail(reason + " (SNEAKERD_REQUIRE_MYSQL=1)")
        pytest.skip(reason)
    return MYSQL_SERVER


def _fresh_mysql_database(server: str) -> Iterator[str]:
    name = f"sneakerd_t_{uuid.uuid4().hex[:12]}"
    yield f"{server}/{name}"
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    yield from _fresh_mysql_database(mysql_server)


@pytest.fixture(scope="module")
def module_mysql_url(mysql_server: str) -> Iterator[str]:
    yield from _fresh_mysql_database(mysql_server)


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sneakerd.db'}"
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """One database per test module and store kind, for tests that share a running server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'sneakerd.db'}"
    return str(request.getfixturevalue("module_mysql_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    await opened.init_schema()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """Put the root logger's level and handlers back after each test. A test that runs the CLI
    in-process (`cli.main`) configures logging as the command would: it sets the root to INFO and
    replaces its handlers. Left so, every later test in that worker captured INFO records it
    never expected (the malformed-request tests saw the hub's start-up line beside their own)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for handler in list(root.handlers):
        if handler not in saved[0]:
            root.removeHandler(handler)
    for handler in saved[0]:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(saved[1])
