"""Which user ids exist, for the hot path, looked up in batches.

A validly signed token for a user this database does not have (another environment's token, a
deleted account) must be refused before it reaches a drop's batch, so reserve and purchase
check the user exists. Most checks hit the in-memory map. The misses come in a crowd: when a
drop opens, thousands of shoppers send their first request within a second, and one `SELECT`
each would queue on the read pool and cost an aiomysql round trip of CPU per request. So misses
are collected and one loader task asks for all the ids wanted so far with `WHERE id IN (...)`;
while that query runs, the next crowd gathers for the next one. Nothing waits for a timer: a
lone miss is asked for on the loop's next turn.

The loader task belongs to the application's lifecycle (`start` in its cleanup context,
`stop` when it ends); stopping fails whoever still waits with `Unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict

from sneakerd import errors
from sneakerd.domain.model import User
from sneakerd.store import Store
from sneakerd.web.auth import unauthorized

log = logging.getLogger(__name__)

MAX_LOOKUP = 500


class KnownUsers:
    def __init__(self, store: Store, capacity: int = 200_000) -> None:
        self._store = store
        self._names: OrderedDict[int, str] = OrderedDict()
        self._capacity = capacity
        self._wanted: dict[int, asyncio.Future[str | None]] = {}
        self._wake = asyncio.Event()
        self._loader: asyncio.Task[None] | None = None
        self.lookups = 0
        """Queries sent (for tests and metrics: far fewer than misses under a crowd)."""

    def start(self) -> None:
        if self._loader is None:
            self._loader = asyncio.get_running_loop().create_task(
                self._load_forever(), name="known-users-loader"
            )

    async def stop(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
        self._settle(self._wanted, errors.Unavailable("the server is shutting down"))
        self._wanted = {}

    async def username(self, user_id: int) -> str:
        """The user's name; 401 if the user does not exist, 503 if the store cannot say."""
        name = self._names.get(user_id)
        if name is not None:
            return name
        if self._loader is None:
            raise errors.Unavailable("the server is not serving")
        wanted = self._wanted.get(user_id)
        if wanted is None:
            wanted = self._wanted[user_id] = asyncio.get_running_loop().create_future()
            self._wake.set()
        # Shielded: one caller giving up must not cancel the answer its twins wait for.
        name = await asyncio.shield(wanted)
        if name is None:
            raise unauthorized("The token's user does not exist")
        return name

    def remember(self, user: User) -> None:
        self._remember(user.id, user.username)

    def _remember(self, user_id: int, username: str) -> None:
        self._names[user_id] = username
        if len(self._names) > self._capacity:
            self._names.popitem(last=False)

    async def _load_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._wanted:
                batch = dict(itertools.islice(self._wanted.items(), MAX_LOOKUP))
                for user_id in batch:
                    del self._wanted[user_id]
                try:
                    self.lookups += 1
                    found = await self._store.usernames_by_ids(list(batch))
                except errors.Unavailable as exc:
                    self._settle(batch, exc)
                    continue
                except Exception:
                    # Not a database outage but a failure nobody planned for: this batch's
                    # callers get 503, and the loader goes on. Ending it here left `_loader`
                    # set, so every later miss waited for an answer that never came.
                    log.exception("the user lookup failed; its %d callers get 503", len(batch))
                    self._settle(batch, errors.Unavailable("the user lookup failed"))
                    continue
                except BaseException:  # cancelled (stop): its waiters are told, then it ends
                    self._settle(batch, errors.Unavailable("the user lookup failed"))
                    raise
                for user_id, username in found.items():
                    self._remember(user_id, username)
                for user_id, future in batch.items():
                    if not future.done():
                        future.set_result(found.get(user_id))

    @staticmethod
    def _settle(batch: dict[int, asyncio.Future[str | None]], exc: BaseException) -> None:
        for future in batch.values():
            if not future.done():
                future.set_exception(exc)
                # Every waiter may have gone (a disconnect): do not log it as unretrieved.
                future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[str | None]) -> None:
    if not future.cancelled():
        future.exception()
