"""The operator CLI: `sneakerd serve | db | users | drops | stats`.

Every command takes `--db URL` (else DATABASE_URL and the rest of the environment) and `--json`,
prints a table for people or JSON for scripts, and on error exits with a status that tells the
kind of failure (`exits`: 1 refused or a breach, 2 usage, 3 no database) and a one-line reason
(under `--json`, the API's error envelope on stdout).

`drops create` adds a new row (a running server starts its actor on first use), the user
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
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

from sneakerd import errors, logs
from sneakerd.cli import exits
from sneakerd.cli.parser import build_parser
from sneakerd.cli.runtime import CliError, Command, NoDatabase
from sneakerd.config import Settings

__all__ = ["CliError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(words)
    except exits.UsageError as exc:
        return exits.usage_failure(exc, as_json="--json" in words)
    args.json = getattr(args, "json", False)
    try:
        settings = Settings.load()
        logs.configure(settings.log_level, settings.log_format)
        db = getattr(args, "db", None)
        if db is not None:
            if not db.strip():  # `--db "$URL"` with URL unset: not the default database
                raise errors.ConfigError("--db is empty: give sqlite:///PATH or mysql://...")
            settings = settings.replace(database_url=db)
        if args.command == "serve":
            if args.host:
                settings = settings.replace(host=args.host)
            if args.port is not None:
                settings = settings.replace(port=args.port)
            if args.workers is not None:
                settings = settings.replace(workers=args.workers)
        prepare = getattr(args, "prepare", None)
        if prepare is not None:  # what must not run inside the loop (a password prompt)
            prepare(args)
        run: Command = args.run
        code = _run(run(args, settings))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except Exception as exc:
        return _failure(exc, as_json=args.json)
    return int(code)


def _reader_gone() -> int:
    """`sneakerd drops list | head -1`: the reader closed the pipe; what it did not read
    nobody wants. Stop quietly, with the status of a tool that SIGPIPE ended (128 + 13); stdout
    goes to /dev/null, or the interpreter's own flush at exit would raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _failure(exc: Exception, *, as_json: bool) -> int:
    """The exit status and the one-line reason (or JSON) of a command that failed; a bug of
    ours is not one of these and surfaces with its traceback."""
    if isinstance(exc, NoDatabase):
        return exits.fail("no_database", str(exc), exits.NO_DATABASE, as_json=as_json)
    if isinstance(exc, errors.Unavailable):
        return exits.fail("unavailable", str(exc), exits.NO_DATABASE, as_json=as_json)
    if isinstance(exc, CliError):
        return exits.fail(exc.code, str(exc), exits.REFUSED, as_json=as_json)
    if isinstance(exc, errors.DomainError):
        return exits.fail(exc.code, exc.message, exits.REFUSED, as_json=as_json)
    if isinstance(exc, errors.ConfigError):
        return exits.fail("bad_setting", str(exc), exits.REFUSED, as_json=as_json)
    if isinstance(exc, errors.SneakerdError):
        return exits.fail("refused", str(exc), exits.REFUSED, as_json=as_json)
    raise exc


def _run(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
