"""The running server a CLI command that changes a drop goes through.

A server that runs owns its drops: each has an actor that holds the drop in memory, decides
every act on it and tells its watchers. A CLI write made straight to the database would go
around that actor: the write is safe (the version check makes the actor reload before its
next commit), but nothing tells the watchers until somebody next acts on the drop, and a
paused drop's actor would go on refusing from memory for up to a second after an unpause. So
while a server runs, `drops pause` and `unpause` ask it, through its admin API
(`PUT /api/drops/{id}`), to make the change with the drop's actor; only when no server answers
do they write to the database themselves (then there is no actor to go around).

Which server: `--server URL`, else in turn the node that holds the drop's lease (several nodes
on one database), the one the settings name (`HOST`, `PORT`, as `serve` reads them; a wildcard
host is reached on loopback), and on the embedded database the address its server writes
beside the database file while it runs. One counts only if it serves the same database: its
answer for the drop must be the stored drop (same id and creation time).

How it authenticates: with a short-lived token signed with the server's own `JWT_SECRET`
(the settings', or the one `serve` keeps beside the embedded database), whose `sub` and `act`
claims are `cli`. The server takes it as an admin that is no user, good for admin requests
only, and logs its writes as `cli`, as it logs a CLI write made to the database.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from sneakerd import errors
from sneakerd.cli.runtime import CliError
from sneakerd.clock import iso
from sneakerd.config import Settings, address_path, secret_path
from sneakerd.domain.model import Drop
from sneakerd.store import Store

LOOK_SECONDS = 1.0
"""How long the CLI waits for a server to answer before writing to the database itself."""
ACT_SECONDS = 15.0
"""How long a change through the server may take (a drop's actor answers in milliseconds;
this bounds a server that is overloaded or failing over)."""
TOKEN_SECONDS = 60
CLI = "cli"


@dataclass(frozen=True, slots=True)
class ServerLink:
    url: str
    token: str


def server_url(settings: Settings, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def secret_of(settings: Settings) -> str | None:
    """The server's signing key, if the CLI can know it: never made here (a missing key file
    means no server has run on this embedded database)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret
    if not settings.embedded:
        return None
    key = secret_path(settings.database_url)
    return key.read_text().strip() if key.is_file() else None


def cli_token(secret: str, now_s: int) -> str:
    claims = {"sub": CLI, "act": CLI, "role": "admin", "iat": now_s, "exp": now_s + TOKEN_SECONDS}
    return jwt.encode(claims, secret, algorithm="HS256")


def candidates(settings: Settings, given: str | None, owner: str | None = None) -> list[str]:
    """Where to look for the server: `--server` alone when given; else the address of the
    node that holds the drop's lease (`owner`, among several nodes), the settings' address,
    then the one a server on the embedded database wrote beside it (`address_path`)."""
    if given:
        return [server_url(settings, given)]
    found = [owner.rstrip("/")] if owner else []
    if server_url(settings, None) not in found:
        found.append(server_url(settings, None))
    if settings.embedded:
        with contextlib.suppress(OSError, ValueError):
            written = address_path(settings.database_url).read_text().strip()
            if written.startswith("http://") and written not in found:
                found.append(written)
    return found


async def owner_url(store: Store, drop_id: int, now_ms: int) -> str | None:
    """The address of the node whose lease on the drop is live, if nodes share the database."""
    lease = await store.lease_of(drop_id)
    if lease is None or not lease.owner or lease.until < now_ms:
        return None
    return next((node.url for node in await store.nodes() if node.id == lease.owner), None)


async def find(
    settings: Settings, drop: Drop, given: str | None, owner: str | None = None
) -> ServerLink | None:
    """The running server that owns `drop`'s database, or None when none answers. With
    `--server` (`given`) a server must answer: its absence is an error, not a fallback."""
    secret = secret_of(settings)
    if secret is None:
        if given:
            raise CliError("no JWT_SECRET for the server: set it as the server has it")
        return None
    for url in candidates(settings, given, owner):
        link = await _look(url, drop, secret, given)
        if link is not None:
            return link
    return None


async def _look(url: str, drop: Drop, secret: str, given: str | None) -> ServerLink | None:
    """A link to the server at `url` if it serves `drop`'s database (see `find`)."""
    try:
        timeout = aiohttp.ClientTimeout(total=LOOK_SECONDS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{url}/api/drops/{drop.id}") as response,
        ):
            body: Any = await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        if given:
            raise errors.Unavailable(f"the server at {url} did not answer ({exc})") from None
        return None
    served = body.get("drop") if isinstance(body, dict) else None
    if not isinstance(served, dict) or served.get("createdAt") != iso(drop.created_at):
        if given:
            raise CliError(f"the server at {url} does not serve this database's drop {drop.id}")
        return None  # some other service, or a server on another database
    return ServerLink(url, cli_token(secret, int(time.time())))


async def update_drop(link: ServerLink, drop_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """`PUT /api/drops/{id}` on the server: the drop as it answers it, or the error it gave."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ACT_SECONDS)) as http,
            http.put(
                f"{link.url}/api/drops/{drop_id}",
                json=fields,
                headers={"Authorization": f"Bearer {link.token}"},
            ) as response,
        ):
            body: Any = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise errors.Unavailable(
            f"the server at {link.url} did not answer the change ({exc}); "
            "check `sneakerd drops show` before trying again"
        ) from None
    if status == 200 and isinstance(body, dict) and isinstance(body.get("drop"), dict):
        drop: dict[str, Any] = body["drop"]
        return drop
    problem = body.get("error") if isinstance(body, dict) else None
    code = problem.get("code") if isinstance(problem, dict) else None
    message = problem.get("message") if isinstance(problem, dict) else None
    if status == 503:
        raise errors.Unavailable(f"the server could not make the change now: {message}")
    if status == 404:
        raise CliError(f"no drop {drop_id}", "not_found")
    raise CliError(f"the server refused the change ({status}): {message}", str(code or "refused"))
