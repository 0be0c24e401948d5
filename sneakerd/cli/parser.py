"""The command line: every command, its flags (each with its help), and which function runs it."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from sneakerd.cli import webhook_commands
from sneakerd.cli.account_commands import (
    ask_password,
    cmd_users_create_admin,
    cmd_users_promote,
)
from sneakerd.cli.arg_types import claim_seconds, port_number, record_id, workers_count
from sneakerd.cli.cluster_commands import cmd_cluster_status
from sneakerd.cli.drop_commands import cmd_drops_create, cmd_drops_list, cmd_drops_show
from sneakerd.cli.exits import EPILOG, Parser
from sneakerd.cli.migrate_commands import cmd_db_migrate
from sneakerd.cli.operator_commands import (
    cmd_audit,
    cmd_drops_pause,
    cmd_drops_unpause,
    cmd_purchases_export,
)
from sneakerd.cli.raffle_commands import cmd_raffle_verify
from sneakerd.cli.store_commands import cmd_db_check, cmd_db_init, cmd_serve, cmd_stats
from sneakerd.domain.raffle import DEFAULT_CLAIM_SECONDS


def package_version() -> str:
    """The installed package's version (its metadata, so it is the one pip installed)."""
    try:
        return version("sneakerd")
    except PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
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

    parser = Parser(
        prog="sneakerd",
        parents=[common],
        description="sneakerd: limited-stock sneaker drops (operator CLI)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"sneakerd {package_version()}",
        help="print the installed version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    serve.add_argument("--host", default=None, help="listen address (default: HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=None, help="listen port (default: PORT or 5000)"
    )
    serve.add_argument(
        "--workers",
        type=workers_count,
        default=None,
        metavar="N",
        help="processes sharing the port, each a node (default: WORKERS or 1; "
        "more than 1 needs MySQL and REDIS_URL)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="on an empty database first make an admin (its password printed once) and three "
        "demo drops; on any other database change nothing",
    )
    serve.set_defaults(run=cmd_serve)

    db = sub.add_parser("db", help="schema and invariants").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    db.add_parser("init", parents=[common], help="create the schema (idempotent)").set_defaults(
        run=cmd_db_init
    )
    db.add_parser(
        "check", parents=[common], help="verify every invariant; exit 1 naming each breach"
    ).set_defaults(run=cmd_db_check)
    db.add_parser(
        "migrate",
        parents=[common],
        help="upgrade a database of an older schema version (forward only); says from and to",
    ).set_defaults(run=cmd_db_migrate)

    users = sub.add_parser("users", help="accounts").add_subparsers(
        dest="users_command", required=True, metavar="COMMAND"
    )
    admin = users.add_parser(
        "create-admin",
        parents=[common],
        help="create an admin (password from stdin, or prompted twice)",
    )
    admin.add_argument("--email", required=True, help="the admin's email (their login)")
    admin.add_argument("--username", required=True, help="3-32 letters, digits, '_', '.' or '-'")
    admin.set_defaults(run=cmd_users_create_admin, prepare=ask_password)
    promote = users.add_parser("promote", parents=[common], help="make a user an admin")
    promote.add_argument("email", help="the email of the account to make an admin")
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
    show.add_argument("id", type=record_id, help="the drop's id")
    show.set_defaults(run=cmd_drops_show)
    create = drops.add_parser("create", parents=[common], help="create a drop")
    create.add_argument("--name", required=True, help="the drop's name (1-200 characters)")
    create.add_argument("--price", required=True, help="a decimal with up to two places: 199.99")
    create.add_argument("--stock", type=int, required=True, help="units for sale (initialStock)")
    create.add_argument("--brand", help="the brand shown beside the name (optional)")
    create.add_argument(
        "--per-user-limit",
        type=int,
        default=1,
        help="holds plus purchases one user may have in the drop (default 1)",
    )
    create.add_argument(
        "--queue", action="store_true", help="a waiting room: shoppers reserve once admitted"
    )
    create.add_argument("--starts-at", help="ISO 8601 (default: now)")
    create.add_argument("--ends-at", help="ISO 8601 (default: no end)")
    create.add_argument(
        "--mode",
        choices=("fcfs", "raffle"),
        default="fcfs",
        help="fcfs (first come, first served: the default) or raffle",
    )
    create.add_argument("--entries-open-at", help="a raffle's entries open (ISO 8601)")
    create.add_argument("--entries-close-at", help="a raffle's entries close (ISO 8601)")
    create.add_argument(
        "--claim-seconds", type=claim_seconds, default=DEFAULT_CLAIM_SECONDS, help="a winner's hold"
    )
    create.set_defaults(run=cmd_drops_create)
    for name, run, says in (
        ("pause", cmd_drops_pause, "refuse reserve and purchase (409 drop_paused)"),
        ("unpause", cmd_drops_unpause, "open a paused drop's sale again"),
    ):
        flip = drops.add_parser(name, parents=[common], help=says)
        flip.add_argument("id", type=record_id, help="the drop's id")
        flip.add_argument(
            "--server",
            metavar="URL",
            help="the running server to make the change through (default: the one HOST and "
            "PORT name, if it answers; with no server running the change is written directly)",
        )
        flip.set_defaults(run=run)

    purchases = sub.add_parser("purchases", help="a drop's buyers").add_subparsers(
        dest="purchases_command", required=True, metavar="COMMAND"
    )
    export = purchases.add_parser(
        "export", parents=[common], help="every buyer of a drop, with emails (CSV or --json)"
    )
    export.add_argument("--drop", type=record_id, required=True, metavar="ID", help="the drop's id")
    export.add_argument("--csv", action="store_true", help="CSV (the default)")
    export.set_defaults(run=cmd_purchases_export)

    audit = sub.add_parser(
        "audit", parents=[common], help="the audit log: every admin and CLI write to a drop"
    )
    audit.add_argument("--drop", type=record_id, default=None, metavar="ID", help="one drop only")
    audit.set_defaults(run=cmd_audit)

    raffle = sub.add_parser("raffle", help="raffle drops").add_subparsers(
        dest="raffle_command", required=True, metavar="COMMAND"
    )
    verify = raffle.add_parser(
        "verify", parents=[common], help="recompute a draw from its public values (exit 1: no)"
    )
    verify.add_argument("id", type=record_id, help="the raffle drop's id")
    verify.add_argument("--url", help="read the record from this server's API instead of --db")
    verify.set_defaults(run=cmd_raffle_verify)

    stats = sub.add_parser(
        "stats",
        parents=[common],
        help="per drop: stock, reserved, sold, holds expiring within a minute",
    )
    stats.set_defaults(run=cmd_stats)
    webhook_commands.add_parsers(sub, common)
    return parser
