"""The operator CLI: `sneakerd serve | db | users | drops | stats`.

Every command takes `--db URL` (else DATABASE_URL and the rest of the environment) and `--json`,
prints a table for people or JSON for scripts, and exits non-zero with a one-line reason on
error. `drops create` adds a new row (a running server starts its actor on first use), the user
commands touch only users, and `drops pause` / `unpause` change a drop with its own rules and
its actor's version-checked commit (`operator_commands`); every CLI write to a drop leaves an
audit entry (`actor: cli`).

The commands only parse their arguments and call the domain's rules (`sneakerd.domain`), the
same ones the REST schemas call. `parser` names every command and flag; `runtime` has what they
share; the commands live by what they touch (`store_commands`, `account_commands`,
`drop_commands`, `operator_commands`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

from sneakerd import errors
from sneakerd.cli.parser import build_parser
from sneakerd.cli.runtime import CliError, Command
from sneakerd.config import Settings

__all__ = ["CliError", "build_parser", "main"]


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
            if args.workers is not None:
                settings = settings.replace(workers=args.workers)
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
