"""What every command shares: its one-line error, the clock, a store opened for the command, and
output as a table for people or JSON for scripts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import orjson

from sneakerd import errors
from sneakerd.clock import SystemClock
from sneakerd.config import Settings
from sneakerd.store import Store, open_store

CLOCK = SystemClock()


class CliError(Exception):
    """A one-line reason to exit with status 1; `code` names it under `--json`."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


class NoDatabase(Exception):
    """The database a command was pointed at is not there: exit 3, and create nothing."""


Command = Callable[[argparse.Namespace, Settings], Awaitable[Any]]


def refuse(what: str, problems: Sequence[str]) -> None:
    """Exit naming every reason the domain gave for refusing `what` (the same as a 422's)."""
    if problems:
        reasons = " ".join(problems)
        raise CliError(f"{what} is refused: {reasons[:1].lower()}{reasons[1:]}")


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], out: TextIO) -> None:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def emit(args: argparse.Namespace, data: Any, human: Callable[[TextIO], None]) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        human(sys.stdout)


def require_database(url: str) -> None:
    """`NoDatabase` when `url` names a SQLite file that does not exist: opening it would make
    a new empty database, and a mistyped `--db` would then report "no drops" rather than
    the mistake."""
    if url.startswith("sqlite:"):
        from sneakerd.store.sqlite import sqlite_path

        path = sqlite_path(url)
        if not path.is_file():
            raise NoDatabase(f"no database at {path} (make one with `sneakerd db init`)")


async def with_store(
    settings: Settings, work: Callable[[Store], Awaitable[Any]], *, create: bool = False
) -> Any:
    """Run `work` on the store `settings` names, closed afterwards. Only `create` commands
    (`db init`) may make a new SQLite file."""
    if not create:
        require_database(settings.database_url)
    try:
        store = await open_store(settings.database_url, create=create)
    except errors.DatabaseMissing as exc:
        raise NoDatabase(str(exc)) from None
    try:
        return await work(store)
    finally:
        await store.close()


async def require_schema(store: Store) -> None:
    if await store.schema_version() is None:
        raise CliError("the database has no sneakerd schema yet: run `sneakerd db init`")
