"""Settings, read as the original backend read them: the environment, then a `.env` file.

Precedence: command-line flags > environment > `.env` in the working folder > defaults.
The variable names are API.md's (and the original's), so an existing deployment's environment
works unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dotenv import dotenv_values

from sneakerd.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///sneakerd.db"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    database_url: str = DEFAULT_DATABASE_URL
    jwt_secret: str | None = None
    jwt_ttl: int = 86_400
    client_url: str | None = None
    reservation_duration_ms: int = 60_000
    bcrypt_rounds: int = 12
    rate_limit_auth: int = 30
    rate_limit_reserve: int = 10
    max_body_bytes: int = 65_536
    idempotency_ttl: int = 86_400
    """Seconds an Idempotency-Key's first answer is kept (IDEMPOTENCY_TTL)."""

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Settings from `environ` (default: the process environment) over a `.env` file."""
        values: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: int, low: int, high: int = 2**31) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
            return value

        d = cls()
        settings = cls(
            host=text("HOST") or d.host,
            port=number("PORT", d.port, 0, 65_535),
            database_url=text("DATABASE_URL") or _url_from_parts(env) or DEFAULT_DATABASE_URL,
            jwt_secret=text("JWT_SECRET"),
            jwt_ttl=number("JWT_TTL", d.jwt_ttl, 1),
            client_url=text("CLIENT_URL"),
            reservation_duration_ms=number("RESERVATION_DURATION", d.reservation_duration_ms, 1),
            bcrypt_rounds=number("BCRYPT_ROUNDS", d.bcrypt_rounds, 4, 31),
            rate_limit_auth=number("RATE_LIMIT_AUTH", d.rate_limit_auth, 0),
            rate_limit_reserve=number("RATE_LIMIT_RESERVE", d.rate_limit_reserve, 0),
            max_body_bytes=number("MAX_BODY_BYTES", d.max_body_bytes, 1),
            idempotency_ttl=number("IDEMPOTENCY_TTL", d.idempotency_ttl, 1),
        )
        if settings.jwt_secret is not None:
            check_secret(settings.jwt_secret)
        return settings

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed (command-line flags use this)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite:")

    def with_jwt_secret(self) -> Settings:
        """Settings whose `jwt_secret` is set, or `ConfigError`.

        On MySQL a secret must be given: several servers must share it. On the embedded default
        one is made once and kept beside the database file, so tokens survive restarts.
        """
        if self.jwt_secret is not None:
            return self
        if not self.embedded:
            raise ConfigError("JWT_SECRET is required with a MySQL DATABASE_URL (32+ bytes)")
        from sneakerd.store.sqlite import sqlite_path

        path = sqlite_path(self.database_url).with_name(
            sqlite_path(self.database_url).name + ".jwt-secret"
        )
        if path.is_file():
            secret = path.read_text().strip()
        else:
            secret = secrets.token_urlsafe(48)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secret + "\n")
            log.warning("JWT_SECRET is not set: made one and kept it in %s", path)
        check_secret(secret)
        return self.replace(jwt_secret=secret)


def check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")


def _url_from_parts(env: Mapping[str, str]) -> str | None:
    """The original's DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD as a mysql:// URL."""
    host = env.get("DB_HOST", "").strip()
    if not host:
        return None
    user = quote(env.get("DB_USER", "root").strip() or "root", safe="")
    password = quote(env.get("DB_PASSWORD", ""), safe="")
    port = env.get("DB_PORT", "3306").strip() or "3306"
    name = env.get("DB_NAME", "sneakerd").strip() or "sneakerd"
    auth = f"{user}:{password}" if password else user
    return f"mysql://{auth}@{host}:{port}/{name}"
