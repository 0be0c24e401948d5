"""What every command shares: its one-line error, the clock, a store opened for the command, and
output as a table for people or JSON for scripts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import orjson

from sneakerd.clock import SystemClock
from sneakerd.config import Settings
from sneakerd.store import Store, open_store

CLOCK = SystemClock()


class CliError(Exception):
    """A one-line reason to exit with status 1."""


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


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[Any]]) -> Any:
    store = await open_store(settings.database_url)
    try:
        return await work(store)
    finally:
        await store.close()


async def require_schema(store: Store) -> None:
    if await store.schema_version() is None:
        raise CliError("the database has no sneakerd schema yet: run `sneakerd db init`")
