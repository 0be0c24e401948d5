"""Settings, read as the original backend read them: the environment, then a `.env` file.

Precedence: command-line flags > environment > `.env` in the working folder > defaults.
The variable names are docs/API.md's (and the original's), so an existing deployment's environment
works unchanged.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from dotenv import dotenv_values

from sneakerd.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///sneakerd.db"
MIN_SECRET_BYTES = 32
MAX_WORKERS = 64
MIN_LEASE_TTL_MS = 500
DEFAULT_REDIS_PREFIX = "sneakerd:"
NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A node id names lease rows and Redis keys: letters, digits, `.`, `_`, `-`, at most 64."""
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


def new_node_id() -> str:
    """A random 12-hex node id, made once per process start when NODE_ID is not given."""
    return secrets.token_hex(6)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    raffle_draw_delay_ms: int = 0
    """Milliseconds a raffle's draw waits after its entries' digest is due (RAFFLE_DRAW_DELAY):
    time for anyone to record the entries and the digest before the seed is published."""
    header_timeout: float = 10.0
    """Seconds a connection may take to send a complete request head before it is closed."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive connection stays open: longer than the 60 s idle timeout of
    common load balancers, so that the balancer, not sneakerd, closes a pooled connection."""
    max_connections_per_ip: int = 256
    max_websockets_per_ip: int = 64
    trusted_proxies: tuple[Network, ...] = ()
    workers: int = 1
    """Processes on this machine sharing the port (WORKERS, `serve --workers N`)."""
    redis_url: str | None = None
    """Where the nodes of one database meet (REDIS_URL); required for more than one process."""
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    """Prefix of every Redis key and channel (REDIS_PREFIX), so deployments can share a Redis."""
    explicit_node_url: str | None = None
    """NODE_URL as given; `node_url` derives it from HOST and PORT when it is not."""
    node_id: str = field(default_factory=new_node_id)
    """This node's id (NODE_ID): given, or random per start, so a restart is a new node."""
    lease_ttl_ms: int = 5000
    """Milliseconds a node owns a drop without renewing its lease (LEASE_TTL)."""
    worker_index: int | None = None
    """Set by the `--workers` supervisor in each worker's environment (SNEAKERD_WORKER_INDEX):
    this process is worker N of a supervised group, not a supervisor itself."""
    webhook_timeout_ms: int = 10_000
    """Milliseconds one webhook delivery attempt may take (WEBHOOK_TIMEOUT)."""
    webhook_retry_base_ms: int = 1_000
    """The longest wait before the first retry; each failure doubles it, up to an hour
    (WEBHOOK_RETRY_BASE)."""
    webhook_deliver: bool = True
    """Whether `serve` delivers webhooks itself (WEBHOOK_DELIVER=0: a separate
    `sneakerd webhooks deliver` process does; the server still writes the events)."""
    webhook_retry_for_ms: int = 86_400_000
    """How long a failing delivery is retried before it is dead (WEBHOOK_RETRY_FOR)."""
    peer_port: int | None = None
    """The private 127.0.0.1 port a worker also listens on (SNEAKERD_PEER_PORT), for its
    peers; the public port is shared by every worker."""
    log_level: str = "INFO"
    """The least severe log records written (LOG_LEVEL: DEBUG, INFO, WARNING, ERROR,
    CRITICAL); INFO includes the access line of every request."""
    log_format: str = "text"
    """LOG_FORMAT: `text` (one readable line a record) or `json` (one JSON object a line)."""
    metrics_port: int | None = None
    """METRICS_PORT: also serve /metrics on 127.0.0.1 at this port (worker N of `--workers`
    at METRICS_PORT + N), for a scraper that must not reach the public port."""

    def __post_init__(self) -> None:
        # CLIENT_URL names the front-end's origin, which a browser's Origin header writes
        # without a trailing slash; `http://shop.example/` is the same front-end. Every check
        # (the native CORS, the /compat mount's, Socket.IO's) compares the bare origin.
        if self.client_url is not None:
            object.__setattr__(self, "client_url", self.client_url.rstrip("/") or None)

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

        def seconds(name: str, default: float, high: float = 86_400.0) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
            if not (math.isfinite(value) and 0 < value <= high):
                raise ConfigError(f"{name} must be above 0 and at most {high:g} seconds, not {raw}")
            return value

        def optional_number(name: str, low: int, high: int) -> int | None:
            return None if text(name) is None else number(name, low, low, high)

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
            raffle_draw_delay_ms=number("RAFFLE_DRAW_DELAY", d.raffle_draw_delay_ms, 0),
            header_timeout=seconds("HEADER_TIMEOUT", d.header_timeout),
            keepalive_timeout=seconds("KEEPALIVE_TIMEOUT", d.keepalive_timeout),
            max_connections_per_ip=number(
                "MAX_CONNECTIONS_PER_IP", d.max_connections_per_ip, 0, 1_000_000
            ),
            max_websockets_per_ip=number(
                "MAX_WEBSOCKETS_PER_IP", d.max_websockets_per_ip, 0, 1_000_000
            ),
            trusted_proxies=parse_networks("TRUSTED_PROXIES", text("TRUSTED_PROXIES") or ""),
            workers=number("WORKERS", d.workers, 1, MAX_WORKERS),
            redis_url=check_redis_url(text("REDIS_URL")),
            redis_prefix=text("REDIS_PREFIX") or d.redis_prefix,
            explicit_node_url=check_node_url(text("NODE_URL")),
            node_id=check_node_id(text("NODE_ID")) or new_node_id(),
            lease_ttl_ms=number("LEASE_TTL", d.lease_ttl_ms, MIN_LEASE_TTL_MS),
            worker_index=optional_number("SNEAKERD_WORKER_INDEX", 0, MAX_WORKERS - 1),
            peer_port=optional_number("SNEAKERD_PEER_PORT", 1, 65_535),
            log_level=choice("LOG_LEVEL", text("LOG_LEVEL"), d.log_level, LOG_LEVELS),
            log_format=choice("LOG_FORMAT", text("LOG_FORMAT"), d.log_format, LOG_FORMATS),
            metrics_port=optional_number("METRICS_PORT", 1, 65_535),
            webhook_timeout_ms=number("WEBHOOK_TIMEOUT", d.webhook_timeout_ms, 100, 120_000),
            webhook_retry_base_ms=number("WEBHOOK_RETRY_BASE", d.webhook_retry_base_ms, 1),
            webhook_retry_for_ms=number("WEBHOOK_RETRY_FOR", d.webhook_retry_for_ms, 1),
            webhook_deliver=bool(number("WEBHOOK_DELIVER", 1, 0, 1)),
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

    @property
    def node_url(self) -> str:
        """The address other nodes reach this one at: NODE_URL, else `http://HOST:PORT`.

        A wildcard HOST (`0.0.0.0`, `::`) is no address a peer can dial, so the machine's
        host name stands in for it.
        """
        if self.explicit_node_url is not None:
            return self.explicit_node_url
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def check_workers(self) -> None:
        """`ConfigError` when `serve` cannot run `workers` processes with these settings.

        Checked when serving, not when loading: WORKERS in a `.env` must not stop `db init`.
        """
        n = self.workers
        if n == 1:
            return
        if self.embedded:
            raise ConfigError(
                f"SQLite serves one process only: use a MySQL DATABASE_URL for --workers {n}"
            )
        if self.redis_url is None:
            raise ConfigError(
                f"REDIS_URL is required for --workers {n}: the workers share events through Redis"
            )
        if self.port == 0:
            raise ConfigError(f"PORT 0 cannot be shared by --workers {n}: give a port number")
        if self.worker_index is None and self.port + n > 65_535:
            raise ConfigError(
                f"PORT {self.port} leaves no room for the peer ports PORT+1..PORT+{n} "
                f"of --workers {n}"
            )

    def with_jwt_secret(self) -> Settings:
        """Settings whose `jwt_secret` is set, or `ConfigError`.

        On MySQL a secret must be given: several servers must share it. On the embedded default
        one is made once and kept beside the database file, so tokens survive restarts.
        """
        if self.jwt_secret is not None:
            return self
        if not self.embedded:
            raise ConfigError("JWT_SECRET is required with a MySQL DATABASE_URL (32+ bytes)")
        path = secret_path(self.database_url)
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


def secret_path(database_url: str) -> Path:
    """Where `serve` keeps the JWT secret it made for an embedded database: beside its file."""
    from sneakerd.store.sqlite import sqlite_path

    path = sqlite_path(database_url)
    return path.with_name(path.name + ".jwt-secret")


def address_path(database_url: str) -> Path:
    """Where a server on an embedded database writes the address it answers at while it runs
    (beside the database file), so that the CLI's drop changes find it (`cli/server_link`)."""
    from sneakerd.store.sqlite import sqlite_path

    path = sqlite_path(database_url)
    return path.with_name(path.name + ".server")


def choice(name: str, raw: str | None, default: str, options: tuple[str, ...]) -> str:
    """One of `options`, matched without regard to case (and spelt as `options` spell it)."""
    if raw is None:
        return default
    for option in options:
        if option.lower() == raw.lower():
            return option
    raise ConfigError(f"{name} must be one of {', '.join(options)}, not {raw!r}")


def parse_networks(name: str, raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs (`10.0.0.0/8, 192.168.1.7, fd00::/8`)."""
    networks: list[Network] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR") from None
    return tuple(networks)


def check_redis_url(url: str | None) -> str | None:
    if url is not None and urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not {url!r}")
    return url


def check_node_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ConfigError(f"NODE_URL must be http://HOST:PORT (or https://), not {url!r}")
    return url.rstrip("/")


def check_node_id(node_id: str | None) -> str | None:
    if node_id is not None and not NODE_ID_PATTERN.fullmatch(node_id):
        raise ConfigError(f"NODE_ID must be 1-64 letters, digits, '.', '_' or '-', not {node_id!r}")
    return node_id


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
