"""The operator CLI: `sneakerd serve | db | users | drops | stats`.

Every command takes `--db URL` (else DATABASE_URL and the rest of the environment) and `--json`,
prints a table for people or JSON for scripts, and exits non-zero with a one-line reason on
error. No command here rewrites a drop that a server may own: `drops create` adds a new row (a
running server starts its actor on first use) and the user commands touch only users.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TextIO

import orjson

from sneakerd import errors
from sneakerd.clock import SystemClock, iso, parse_iso
from sneakerd.config import Settings
from sneakerd.domain.accounts import EMAIL_MAX_LENGTH, InvalidEmail, normalize_email
from sneakerd.domain.model import Drop, DropInfo, Role
from sneakerd.domain.money import PriceError, parse_price
from sneakerd.passwords import hash_password_sync, password_problem
from sneakerd.store import MAX_PAGE, PageKey, Store, open_store
from sneakerd.views import drop_view, money, user_view

CLOCK = SystemClock()
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CliError(Exception):
    """A one-line reason to exit with status 1."""


Command = Callable[[argparse.Namespace, Settings], Awaitable[Any]]


# -- output ---------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _emit(args: argparse.Namespace, data: Any, human: Callable[[TextIO], None]) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        human(sys.stdout)


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[Any]]) -> Any:
    store = await open_store(settings.database_url)
    try:
        return await work(store)
    finally:
        await store.close()


async def _require_schema(store: Store) -> None:
    if await store.schema_version() is None:
        raise CliError("the database has no sneakerd schema yet: run `sneakerd db init`")


# -- commands -------------------------------------------------------------------------------


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from sneakerd.web.app import serve

    try:
        await serve(settings.with_jwt_secret())
    except OSError as exc:  # the port is taken, the address is not ours, ...
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    return 0


async def cmd_db_init(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> int | None:
        await store.init_schema()
        return await store.schema_version()

    version = await _with_store(settings, work)
    _emit(
        args,
        {"ok": True, "schemaVersion": version},
        lambda out: print(f"schema ready (version {version})", file=out),
    )
    return 0


async def cmd_db_check(args: argparse.Namespace, settings: Settings) -> int:
    breaches: list[str] = await _with_store(settings, lambda s: s.check(CLOCK.now_ms()))

    def human(out: TextIO) -> None:
        if not breaches:
            print("ok: every invariant holds", file=out)
        for breach in breaches:
            print(f"BREACH: {breach}", file=out)

    _emit(args, {"ok": not breaches, "breaches": breaches}, human)
    return 1 if breaches else 0


def _read_password(args: argparse.Namespace) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CliError("the two passwords differ")
    if not 8 <= len(password) <= 128:
        raise CliError("the password must be 8 to 128 characters long")
    problem = password_problem(password)
    if problem is not None:
        raise CliError(f"the password is refused: {problem.lower()}")
    return password


def _email_identity(raw: str) -> str:
    """The account identity of an email given on the command line (as the API forms it)."""
    try:
        return normalize_email(raw)
    except InvalidEmail as exc:
        raise CliError(f"not an email address: {raw!r}: {str(exc).lower()}") from None


async def cmd_users_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    if not USERNAME.match(args.username):
        raise CliError("the username must be 3-32 characters of letters, digits, _ . -")
    email = _email_identity(args.email)
    if len(email) > EMAIL_MAX_LENGTH or not EMAIL.match(email):
        raise CliError(f"not an email address: {args.email!r}")
    password_hash = await asyncio.to_thread(
        hash_password_sync, _read_password(args), settings.bcrypt_rounds
    )

    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await store.create_user(
            args.username, email, password_hash, Role.ADMIN, CLOCK.now_ms()
        )

    user = await _with_store(settings, work)
    _emit(args, {"user": user_view(user)}, lambda out: print(f"admin {user.id} created", file=out))
    return 0


async def cmd_users_promote(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await store.set_role(_email_identity(args.email), Role.ADMIN)

    user = await _with_store(settings, work)
    if user is None:
        raise CliError(f"no user with email {args.email}")
    _emit(
        args,
        {"user": user_view(user)},
        lambda out: print(f"{user.email} is now an admin", file=out),
    )
    return 0


DROP_HEADERS = ("id", "name", "status", "price", "stock", "reserved", "sold", "initial", "starts")


def _drop_row(view: dict[str, Any]) -> list[object]:
    return [
        view["id"],
        view["name"],
        view["status"],
        view["price"],
        view["stock"],
        view["reserved"],
        view["sold"],
        view["initialStock"],
        view["startsAt"],
    ]


async def _every_drop(store: Store, now: int) -> list[Drop]:
    """Every drop, newest first, read a page at a time as the API serves them."""
    drops: list[Drop] = []
    after: PageKey | None = None
    while True:
        page = await store.list_drops(now=now, limit=MAX_PAGE, after=after)
        drops += page.items
        if page.next is None:
            return drops
        after = page.next


async def cmd_drops_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await _every_drop(store, CLOCK.now_ms())

    now = CLOCK.now_ms()
    views = [drop_view(d, now) for d in await _with_store(settings, work)]
    _emit(
        args, {"drops": views}, lambda out: _table([_drop_row(v) for v in views], DROP_HEADERS, out)
    )
    return 0


async def cmd_drops_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await store.get_drop(args.id)

    drop = await _with_store(settings, work)
    if drop is None:
        raise CliError(f"no drop {args.id}")
    view = drop_view(drop, CLOCK.now_ms())
    _emit(
        args,
        {"drop": view},
        lambda out: _table([(k, v) for k, v in view.items()], ("field", "value"), out),
    )
    return 0


def _price(text: str) -> Decimal:
    """The REST API's rule (`sneakerd.domain.money`), so both refuse the same prices."""
    try:
        return parse_price(text)
    except PriceError as refused:
        raise CliError(f"--price {text!r}: {refused}") from None


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise CliError(f"{name} is not an ISO 8601 time: {text!r}") from None


async def cmd_drops_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.stock < 0:
        raise CliError("--stock must be 0 or more")
    if args.per_user_limit < 1:
        raise CliError("--per-user-limit must be 1 or more")
    now = CLOCK.now_ms()
    starts_at = _time(args.starts_at, "--starts-at")
    ends_at = _time(args.ends_at, "--ends-at")
    starts = now if starts_at is None else starts_at
    if ends_at is not None and ends_at <= starts:
        raise CliError("--ends-at must be after --starts-at")
    info = DropInfo(
        name=args.name,
        price=_price(args.price),
        brand=args.brand,
        per_user_limit=args.per_user_limit,
        starts_at=starts,
        ends_at=ends_at,
    )

    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await store.create_drop(info, args.stock, now)

    drop = await _with_store(settings, work)
    view = drop_view(drop, CLOCK.now_ms())
    _emit(args, {"drop": view}, lambda out: print(f"drop {drop.id} created", file=out))
    return 0


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    async def work(store: Store) -> Any:
        await _require_schema(store)
        return await store.stats(CLOCK.now_ms())

    now = CLOCK.now_ms()
    stats = await _with_store(settings, work)
    data = [
        {
            "id": s.drop.id,
            "name": s.drop.info.name,
            "status": s.drop.status(now).value,
            "stock": s.drop.stock,
            "reserved": s.drop.reserved,
            "sold": s.drop.sold,
            "price": money(s.drop.info.price),
            "expiringNextMinute": s.expiring_soon,
        }
        for s in stats
    ]
    _emit(
        args,
        {"drops": data, "at": iso(now)},
        lambda out: _table(
            [
                [
                    d["id"],
                    d["name"],
                    d["status"],
                    d["stock"],
                    d["reserved"],
                    d["sold"],
                    d["expiringNextMinute"],
                ]
                for d in data
            ],
            ("id", "name", "status", "stock", "reserved", "sold", "expiring<1m"),
            out,
        ),
    )
    return 0


# -- parsing --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="sqlite:///PATH or mysql://USER:PASS@HOST:PORT/DB "
        "(default: DATABASE_URL, DB_HOST..., or sqlite:///sneakerd.db)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON for scripts instead of a table",
    )

    parser = argparse.ArgumentParser(
        prog="sneakerd",
        parents=[common],
        description="sneakerd: limited-stock sneaker drops (operator CLI)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    serve.add_argument("--host", default=None, help="listen address (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default: PORT or 5000)")
    serve.set_defaults(run=cmd_serve)

    db = sub.add_parser("db", help="schema and invariants").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    db.add_parser("init", parents=[common], help="create the schema (idempotent)").set_defaults(
        run=cmd_db_init
    )
    db.add_parser(
        "check", parents=[common], help="verify every invariant; non-zero exit naming each breach"
    ).set_defaults(run=cmd_db_check)

    users = sub.add_parser("users", help="accounts").add_subparsers(
        dest="users_command", required=True, metavar="COMMAND"
    )
    admin = users.add_parser(
        "create-admin",
        parents=[common],
        help="create an admin (password from stdin, or prompted twice)",
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--username", required=True)
    admin.set_defaults(run=cmd_users_create_admin)
    promote = users.add_parser("promote", parents=[common], help="make a user an admin")
    promote.add_argument("email")
    promote.set_defaults(run=cmd_users_promote)

    drops = sub.add_parser("drops", help="drops").add_subparsers(
        dest="drops_command", required=True, metavar="COMMAND"
    )
    drops.add_parser("list", parents=[common], help="every drop").set_defaults(run=cmd_drops_list)
    show = drops.add_parser("show", parents=[common], help="one drop")
    show.add_argument("id", type=int)
    show.set_defaults(run=cmd_drops_show)
    create = drops.add_parser("create", parents=[common], help="create a drop")
    create.add_argument("--name", required=True)
    create.add_argument("--price", required=True)
    create.add_argument("--stock", type=int, required=True)
    create.add_argument("--brand")
    create.add_argument("--per-user-limit", type=int, default=1)
    create.add_argument("--starts-at", help="ISO 8601 (default: now)")
    create.add_argument("--ends-at", help="ISO 8601 (default: no end)")
    create.set_defaults(run=cmd_drops_create)

    stats = sub.add_parser(
        "stats",
        parents=[common],
        help="per drop: stock, reserved, sold, holds expiring within a minute",
    )
    stats.set_defaults(run=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        settings = Settings.load()
        if getattr(args, "db", None):
            settings = settings.replace(database_url=args.db)
        if args.command == "serve":
            if args.host:
                settings = settings.replace(host=args.host)
            if args.port is not None:
                settings = settings.replace(port=args.port)
        run: Command = args.run
        code = _run(run(args, settings))
    except (CliError, errors.SneakerdError) as exc:
        message = exc.message if isinstance(exc, errors.DomainError) else str(exc)
        print(f"sneakerd: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(code)


def _run(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
