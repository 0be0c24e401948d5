"""The command line: every command, its flags, and which function runs it."""

from __future__ import annotations

import argparse

from sneakerd.cli import webhook_commands
from sneakerd.cli.account_commands import cmd_users_create_admin, cmd_users_promote
from sneakerd.cli.cluster_commands import cmd_cluster_status
from sneakerd.cli.drop_commands import cmd_drops_create, cmd_drops_list, cmd_drops_show
from sneakerd.cli.store_commands import cmd_db_check, cmd_db_init, cmd_serve, cmd_stats
from sneakerd.config import MAX_WORKERS


def workers_count(raw: str) -> int:
    """`--workers N`, refused as WORKERS is: a whole number from 1 to MAX_WORKERS."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {raw!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}, not {value}")
    return value


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
    serve.add_argument(
        "--workers",
        type=workers_count,
        default=None,
        metavar="N",
        help="processes sharing the port, each a node (default: WORKERS or 1; "
        "more than 1 needs MySQL and REDIS_URL)",
    )
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

    cluster = sub.add_parser("cluster", help="nodes and drop ownership").add_subparsers(
        dest="cluster_command", required=True, metavar="COMMAND"
    )
    cluster.add_parser(
        "status", parents=[common], help="the live nodes and which node owns each drop"
    ).set_defaults(run=cmd_cluster_status)

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
    webhook_commands.add_parsers(sub, common)
    return parser
