"""The seam between the shared SQL and a database driver: what one transaction offers.

Each adapter wraps its driver's cursor in a `Tx` and turns its driver's unique-key error into
`DuplicateKey`, so the shared code never sees a driver type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sneakerd import errors

Row = Sequence[Any]

Statement = tuple[str, Sequence[Any]]
"""One SQL statement, written with `%s` placeholders (the adapters translate them), and its
parameters."""


class MissingParent(errors.Unavailable):
    """A foreign key refused a row: what it points at (a user, a drop) is not there. To every
    caller an `Unavailable` as before, but a batch's commit, which refuses that caller alone
    (`store/batch.py`), as it does a duplicate key."""


class DuplicateKey(Exception):
    """A unique column refused a row; adapters raise it instead of their driver's error."""

    def __init__(self, column: str) -> None:
        super().__init__(f"duplicate {column}")
        self.column = column


class Tx(Protocol):
    """One open transaction on one connection."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    async def execute_script(self, script: Sequence[Statement]) -> list[int]:
        """Run the statements in order, in as few round trips as the driver allows; return
        each one's changed-row count. A failing statement raises; the caller rolls back."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
