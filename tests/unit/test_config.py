"""Settings come from docs/API.md's variables, with the original's DB_* names honoured."""

from __future__ import annotations

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
