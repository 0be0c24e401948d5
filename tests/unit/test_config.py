"""Settings come from docs/API.md's variables, with the original's DB_* names honoured."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from sneakerd.config import Settings
from sneakerd.errors import ConfigError

SECRET = "s" * 32


def test_defaults_are_api_md_defaults(tmp_path: Path) -> None:
    s = Settings.load({}, dotenv=tmp_path / "missing.env")
    assert (s.host, s.port, s.database_url) == ("127.0.0.1", 5000, "sqlite:///sneakerd.db")
    assert (s.jwt_ttl, s.reservation_duration_ms, s.bcrypt_rounds) == (86_400, 60_000, 12)
    assert (s.rate_limit_auth, s.rate_limit_reserve, s.max_body_bytes) == (30, 10, 65_536)
    assert s.jwt_secret is None and s.client_url is None


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7000\nCLIENT_URL=http://shop.local\nRESERVATION_DURATION=1000\n")
    s = Settings.load({"PORT": "8000"}, dotenv=dotenv)
    assert (s.port, s.client_url, s.reservation_duration_ms) == (8000, "http://shop.local", 1000)


def test_the_originals_db_variables_make_a_mysql_url() -> None:
    s = Settings.from_mapping(
        {
            "DB_HOST": "db.internal",
            "DB_PORT": "3307",
            "DB_NAME": "drops",
            "DB_USER": "app",
            "DB_PASSWORD": "p@ss:word",
            "JWT_SECRET": SECRET,
        }
    )
    assert s.database_url == "mysql://app:p%40ss%3Aword@db.internal:3307/drops"
    assert not s.embedded
    from sneakerd.store.mysql import MySQLParams

    params = MySQLParams.from_url(s.database_url)
    assert (params.user, params.password, params.port, params.db) == (
        "app",
        "p@ss:word",
        3307,
        "drops",
    )
    explicit = Settings.from_mapping({"DB_HOST": "x", "DATABASE_URL": "sqlite:///a.db"})
    assert explicit.database_url == "sqlite:///a.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("BCRYPT_ROUNDS", "3"),
        ("RESERVATION_DURATION", "0"),
        ("RATE_LIMIT_AUTH", "-1"),
        ("JWT_SECRET", "short"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping({name: value})


def test_rate_limits_can_be_turned_off() -> None:
    s = Settings.from_mapping({"RATE_LIMIT_AUTH": "0", "RATE_LIMIT_RESERVE": "0"})
    assert (s.rate_limit_auth, s.rate_limit_reserve) == (0, 0)


def test_jwt_secret_is_required_on_mysql_and_kept_beside_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.from_mapping({"DATABASE_URL": "mysql://root@h/db"}).with_jwt_secret()
    url = f"sqlite:///{tmp_path / 'data' / 'drops.db'}"
    first = Settings.from_mapping({"DATABASE_URL": url}).with_jwt_secret()
    again = Settings.from_mapping({"DATABASE_URL": url}).with_jwt_secret()
    assert first.jwt_secret and len(first.jwt_secret) >= 32
    assert first.jwt_secret == again.jwt_secret  # tokens survive a restart
    assert (tmp_path / "data" / "drops.db.jwt-secret").stat().st_mode & 0o077 == 0
    given = Settings.from_mapping({"DATABASE_URL": url, "JWT_SECRET": SECRET}).with_jwt_secret()
    assert given.jwt_secret == SECRET


MYSQL = "mysql://root@db/sneakerd"
REDIS = "redis://127.0.0.1:6379/0"


def test_cluster_defaults(tmp_path: Path) -> None:
    s = Settings.load({"PORT": "5100"}, dotenv=tmp_path / "missing.env")
    assert (s.workers, s.redis_url, s.redis_prefix, s.lease_ttl_ms) == (1, None, "sneakerd:", 5000)
    assert s.node_url == "http://127.0.0.1:5100"
    assert re.fullmatch(r"[0-9a-f]{12}", s.node_id)
    assert Settings.from_mapping({}).node_id != s.node_id  # made at each start, not fixed
    assert (s.worker_index, s.peer_port) == (None, None)
    s.check_workers()  # one process on SQLite is the embedded default


def test_cluster_settings_are_read() -> None:
    s = Settings.from_mapping(
        {
            "WORKERS": "4",
            "REDIS_URL": REDIS,
            "REDIS_PREFIX": "shop-a:",
            "NODE_URL": "http://10.0.0.7:6000/",
            "NODE_ID": "web-3",
            "LEASE_TTL": "500",
            "SNEAKERD_WORKER_INDEX": "2",
            "SNEAKERD_PEER_PORT": "6003",
        }
    )
    assert (s.workers, s.redis_url, s.redis_prefix) == (4, REDIS, "shop-a:")
    assert (s.node_url, s.node_id, s.lease_ttl_ms) == ("http://10.0.0.7:6000", "web-3", 500)
    assert (s.worker_index, s.peer_port) == (2, 6003)


def test_node_url_follows_host_and_port_flags() -> None:
    s = Settings.from_mapping({}).replace(host="::1", port=7001)
    assert s.node_url == "http://[::1]:7001"
    wildcard = Settings.from_mapping({"HOST": "0.0.0.0", "PORT": "7002"})
    assert wildcard.node_url == f"http://{socket.gethostname()}:7002"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKERS", "0"),
        ("WORKERS", "65"),
        ("WORKERS", "two"),
        ("LEASE_TTL", "499"),
        ("LEASE_TTL", "5s"),
        ("REDIS_URL", "127.0.0.1:6379"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("NODE_URL", "10.0.0.7:6000"),
        ("NODE_URL", "http://10.0.0.7"),
        ("NODE_URL", "ftp://10.0.0.7:21"),
        ("NODE_ID", "web 3"),
        ("NODE_ID", "x" * 65),
        ("NODE_ID", "sneakerd:*"),
        ("SNEAKERD_WORKER_INDEX", "64"),
        ("SNEAKERD_PEER_PORT", "0"),
    ],
)
def test_bad_cluster_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_mapping({name: value})
    assert "\n" not in str(refused.value)


def test_several_workers_on_sqlite_are_refused_in_the_contracts_words() -> None:
    s = Settings.from_mapping({"WORKERS": "2", "REDIS_URL": REDIS})
    with pytest.raises(ConfigError) as refused:
        s.check_workers()
    assert str(refused.value) == (
        "SQLite serves one process only: use a MySQL DATABASE_URL for --workers 2"
    )


def test_several_workers_need_redis() -> None:
    s = Settings.from_mapping({"WORKERS": "3", "DATABASE_URL": MYSQL})
    with pytest.raises(ConfigError, match="REDIS_URL is required for --workers 3"):
        s.check_workers()
    s.replace(redis_url=REDIS).check_workers()


def test_several_workers_need_a_port_of_their_own_and_room_for_peer_ports() -> None:
    s = Settings.from_mapping({"WORKERS": "2", "DATABASE_URL": MYSQL, "REDIS_URL": REDIS})
    with pytest.raises(ConfigError, match="PORT 0"):
        s.replace(port=0).check_workers()
    with pytest.raises(ConfigError, match="peer ports"):
        s.replace(port=65_534).check_workers()
    s.replace(port=65_533).check_workers()
    # A worker's peer port is given to it, so only the supervisor needs the room.
    s.replace(port=65_534, worker_index=1).check_workers()


def test_workers_in_the_environment_do_not_stop_other_commands(tmp_path: Path) -> None:
    """WORKERS in a `.env` is for `serve`; `db init` on SQLite must still load its settings."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("WORKERS=4\n")
    assert Settings.load({}, dotenv=dotenv).workers == 4
