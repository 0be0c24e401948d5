"""How the CLI ends: its exit statuses, and its errors as one line for people or as JSON.

Scripts that drive `sneakerd` (deploy hooks, cron jobs, CI) need to tell "the database is not
there yet, try again" from "you asked for something wrong" from "the data is broken" without
parsing English, so each kind of failure has its own status, and under `--json` its own code
in the API's error envelope on stdout (where the script already reads the answer).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import orjson

OK = 0
"""The command did what it was asked."""
REFUSED = 1
"""A breach was found (`db check`), or the act or a setting was refused."""
USAGE = 2
"""The command line itself is wrong (argparse's own status)."""
NO_DATABASE = 3
"""The database cannot be reached, or is not there."""

EPILOG = """\
exit status:
  0  ok
  1  a breach found (db check), or an act or a setting refused
  2  usage: the command line is wrong
  3  the database is unreachable or missing
With --json an error is {"error": {"code", "message"}} on stdout."""


class UsageError(Exception):
    """What argparse would have printed before exiting 2, kept so that `main` can say it as
    JSON when `--json` was asked for."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are raised, not printed: under `--json` they are
    reported on stdout like every other error. Its subparsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def fail(code: str, message: str, status: int, *, as_json: bool) -> int:
    """Say why the command failed, on stdout as JSON or on stderr as one line; return `status`."""
    if as_json:
        body = {"error": {"code": code, "message": message}}
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
    else:
        print(f"sneakerd: error: {message}", file=sys.stderr)
    return status


def usage_failure(exc: UsageError, *, as_json: bool) -> int:
    if as_json:
        return fail("usage", str(exc), USAGE, as_json=True)
    sys.stderr.write(exc.usage)
    return fail("usage", str(exc), USAGE, as_json=False)


def progress(line: str) -> None:
    """One progress line of a long command, on stderr: stdout stays the command's answer."""
    print(f"sneakerd: {line}", file=sys.stderr, flush=True)
