"""The rest of a frame a socket took in part (`Subscriber.rest`): whenever the fan-out thread
could take the watcher's lock, that rest is either still pending (so nothing else is writable)
or already in the transport, ahead of anything the thread could send next."""

from __future__ import annotations

import threading
from typing import Any

from sneakerd.web.subscriber import Subscriber


class Transport:
    """A stand-in for the watcher's transport: what the loop wrote, in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.writes))

    def get_extra_info(self, name: str) -> Any:
        return None


class WatchedLock:
    """The subscriber's lock, checking the rule each time it is let go (when the thread could
    take it)."""

    def __init__(self, subscriber: Subscriber, transport: Transport) -> None:
        self._lock = threading.Lock()
        self._subscriber, self._transport = subscriber, transport
        self.releases = 0

    def acquire(self) -> bool:
        return self._lock.acquire()

    def release(self) -> None:
        rest_pending = self._subscriber.rest is not None
        assert rest_pending or self._transport.writes, "the rest was taken but not yet written"
        self.releases += 1
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def partly_sent(n_jobs: int = 1) -> tuple[Subscriber, Transport]:
    subscriber, transport = Subscriber(drop_id=1, limit=16), Transport()
    subscriber.go_live(transport)  # type: ignore[arg-type]
    subscriber.fd = 99  # the thread may write to it (no real socket is touched here)
    assert subscriber.claim(first_seq=1, jobs=n_jobs)
    assert not subscriber.finish(last_seq=3, wire=b"0123456789", sent=4, jobs=n_jobs)
    assert subscriber.rest == b"456789" and subscriber.owed == n_jobs
    return subscriber, transport


def test_settle_writes_the_rest_before_it_lets_the_lock_go() -> None:
    subscriber, transport = partly_sent(n_jobs=2)
    lock = WatchedLock(subscriber, transport)
    subscriber.lock = lock  # type: ignore[assignment]
    subscriber.settle([(1, b"frame 1")])
    subscriber.settle([(2, b"frame 2")])  # the second job of the same send: nothing more
    assert transport.writes == [b"456789"] and lock.releases == 2
    assert subscriber.owed == 0 and not subscriber.outbox and subscriber.last_seq == 3


def test_a_loop_write_first_gets_the_rest_out_before_it() -> None:
    subscriber, transport = partly_sent()
    subscriber.lock = WatchedLock(subscriber, transport)  # type: ignore[assignment]
    subscriber.hold()
    transport.write(b"pong")
    subscriber.release()
    subscriber.settle([(1, b"frame 1")])
    assert transport.writes == [b"456789", b"pong"] and not subscriber.outbox


def test_retiring_writes_the_rest_so_a_close_frame_after_it_parses() -> None:
    subscriber, transport = partly_sent()
    subscriber.lock = WatchedLock(subscriber, transport)  # type: ignore[assignment]
    subscriber.retire()
    assert transport.writes == [b"456789"] and subscriber.transport is None
