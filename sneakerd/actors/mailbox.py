"""An actor's mailbox: callers `tell` or `ask`, the actor takes everything waiting as one batch.

Taking the whole queue at once is what makes the single writer fast: one decision pass and one
transaction serve every caller that arrived while the previous batch was committing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sneakerd import errors

M = TypeVar("M")
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class ReplyTo(Protocol[R_contra]):
    """Where an answer goes: an `asyncio.Future` (`ask`), or anything that takes the answer
    the moment the actor gives it (`post`: a forwarded command's reply goes straight into its
    peer connection's next frame, with no task woken in between)."""

    def done(self) -> bool: ...

    def set_result(self, result: R_contra, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


@dataclass(slots=True)
class Envelope(Generic[M, R]):
    """A message and, for an `ask` or a `post`, where its reply goes."""

    message: M
    reply: ReplyTo[R] | None = None

    def answer(self, value: R) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(value)

    def fail(self, exc: BaseException) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(exc)


class Mailbox(Generic[M, R]):
    """An unbounded FIFO with batch take; closing it fails every later `ask` at once."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: deque[Envelope[M, R]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop of the first ask, kept: CPython 3.11's `get_running_loop()` makes a
        `getpid` syscall on every call, 2.8 % of the server's CPU in a burst when done per ask.
        A mailbox (its actor) lives and dies in one loop."""

    def tell(self, message: M) -> None:
        """Post without waiting for an answer (timers use this)."""
        if not self._closed:
            self._put(Envelope(message))

    def ask(self, message: M) -> asyncio.Future[R]:
        """Post and return the future of the reply."""
        if self._closed:
            raise errors.ActorStopped(f"{self._name} is stopped")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._put(Envelope(message, future))
        return future

    def post(self, message: M, reply: ReplyTo[R]) -> None:
        """Post with `reply` to answer (as `ask`, without making a future)."""
        if self._closed:
            raise errors.ActorStopped(f"{self._name} is stopped")
        self._put(Envelope(message, reply))

    def _put(self, envelope: Envelope[M, R]) -> None:
        self._queue.append(envelope)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def take_batch(self, limit: int) -> list[Envelope[M, R]]:
        """Wait for at least one message, then take up to `limit` of those waiting.

        Returns an empty list once the mailbox is closed and drained.
        """
        while not self._queue:
            if self._closed:
                return []
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        queue = self._queue
        take = min(limit, len(queue))
        return [queue.popleft() for _ in range(take)]

    def close(self) -> None:
        """Refuse new asks; what is queued is still handed out, then `take_batch` returns []."""
        self._closed = True
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    @property
    def depth(self) -> int:
        """Messages waiting (the metrics' mailbox depth)."""
        return len(self._queue)
