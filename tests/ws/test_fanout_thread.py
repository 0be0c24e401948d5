"""The fan-out thread: a drop with many subscribers is written from a thread of its own, and what
each subscriber receives is still complete, in order, and never interleaved with the loop's own
writes to the same socket (its writer, its reader's pongs).

Real sockets (socket pairs, one asyncio transport each), the hub driven directly; every test
runs once per send path (`send_path`: the C extension's batches and the os.write fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import socket
import sys
import threading
from array import array
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import pytest

from sneakerd.domain.events import DropDeleted, Purchased, StockChanged
from sneakerd.web.hub import Hub, wire_frame
from sneakerd.web.send_thread import YIELD_SECONDS, SendThread
from sneakerd.web.sendmany import SendPath
from sneakerd.web.subscriber import Subscriber

DROP = 9
PONG = orjson.dumps({"type": "pong", "dropId": DROP, "seq": 0})


@dataclass
class Peer:
    """The watcher's end: parses every frame strictly (a torn frame fails the parse)."""

    sock: socket.socket
    buffer: bytes = b""
    messages: list[dict[str, object]] = field(default_factory=list)

    def read(self) -> list[dict[str, object]]:
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        while len(self.buffer) >= 2:
            assert self.buffer[0] == 0x81, self.buffer[:4]
            size, start = self.buffer[1], 2
            if size == 126:
                if len(self.buffer) < 4:
                    break
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            if len(self.buffer) < start + size:
                break
            self.messages.append(orjson.loads(self.buffer[start : start + size]))
            self.buffer = self.buffer[start + size :]
        return self.messages

    def seqs(self, kind: str) -> list[int]:
        return [int(str(m["seq"])) for m in self.read() if m["type"] == kind]


@dataclass
class Crowd:
    hub: Hub
    subscribers: list[Subscriber]
    peers: list[Peer]
    transports: list[asyncio.Transport]
    sent: list[int]
    """Every result the send path gave (bytes taken, or -errno), as the thread saw them."""


def recording(path: SendPath, sent: list[int]) -> SendPath:
    def send_each(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
        whole = path.send_each(data, fds, inodes, out)
        sent.extend(out)
        return whole

    return SendPath(path.name, send_each, path.batch, path.nice)


async def make_crowd(count: int, path: SendPath, send_buffer: int | None = None) -> Crowd:
    loop = asyncio.get_running_loop()
    sent: list[int] = []
    hub = Hub(
        lambda drop: {"id": drop.id},
        tick=0.001,
        thread_above=0,
        send_path=recording(path, sent),
    )
    crowd = Crowd(hub, [], [], [], sent)
    for _ in range(count):
        ours, theirs = socket.socketpair()
        if send_buffer is not None:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, send_buffer)
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        subscriber = hub.subscribe(DROP)
        subscriber.go_live(transport)
        crowd.subscribers.append(subscriber)
        crowd.peers.append(Peer(theirs))
        crowd.transports.append(transport)
    return crowd


@pytest.fixture
async def crowds(send_path: SendPath) -> AsyncIterator[Callable[..., object]]:
    made: list[Crowd] = []

    async def make(count: int, send_buffer: int | None = None) -> Crowd:
        crowd = await make_crowd(count, send_path, send_buffer)
        made.append(crowd)
        crowd.hub.start()
        return crowd

    yield make
    for crowd in made:
        await crowd.hub.stop()
        for transport in crowd.transports:
            transport.close()
        for peer in crowd.peers:
            peer.sock.close()


async def settle_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def purchase(seq: int) -> Purchased:
    return Purchased(DROP, seq, 1000 + seq, "buyer")


async def test_the_thread_writes_every_frame_in_order(crowds: Callable[..., object]) -> None:
    crowd: Crowd = await crowds(300)  # type: ignore[misc]
    seq = 0
    for _ in range(20):
        batch = []
        for _ in range(3):
            seq += 1
            batch.append(purchase(seq))
        seq += 1
        batch.append(StockChanged(DROP, seq, stock=100 - seq, reserved=0, sold=seq))
        crowd.hub.publish(batch)
        await asyncio.sleep(0.002)
        for peer in crowd.peers:
            peer.read()
    await settle_until(lambda: all(s.last_seq == seq for s in crowd.subscribers))
    expected = [s for s in range(1, seq + 1) if s % 4 != 0]
    for peer in crowd.peers:
        assert peer.seqs("purchaseCompleted") == expected
        stock_seqs = peer.seqs("stockUpdate")
        assert stock_seqs == sorted(stock_seqs) and stock_seqs[-1] == seq
    assert all(s.owed == 0 and not s.outbox for s in crowd.subscribers)


async def test_the_loops_own_writes_never_tear_a_threads_frame(
    crowds: Callable[..., object],
) -> None:
    """A reader answering pings on the same sockets while the thread fans out: every frame on
    every socket parses, every purchase arrives once and in order, every pong arrives."""
    crowd: Crowd = await crowds(300)  # type: ignore[misc]
    pongs = [0] * len(crowd.subscribers)
    stop = asyncio.Event()
    rng = random.Random(7)

    async def answer_pings() -> None:
        while not stop.is_set():
            i = rng.randrange(len(crowd.subscribers))
            subscriber = crowd.subscribers[i]
            subscriber.hold()
            try:
                crowd.transports[i].write(wire_frame(PONG))
                pongs[i] += 1
            finally:
                subscriber.release()
            await asyncio.sleep(0)

    async def writer(subscriber: Subscriber, transport: asyncio.Transport) -> None:
        """What the WebSocket handler's writer does with the outbox, in short."""
        while True:
            await subscriber.wakeup.wait()
            subscriber.wakeup.clear()
            subscriber.hold()
            try:
                while subscriber.outbox:
                    seq, frame = subscriber.outbox.popleft()
                    if seq > subscriber.last_seq:
                        transport.write(wire_frame(frame))
                        subscriber.last_seq = seq
            finally:
                subscriber.release()

    writers = [
        asyncio.create_task(writer(s, t))
        for s, t in zip(crowd.subscribers, crowd.transports, strict=True)
    ]
    pinger = asyncio.create_task(answer_pings())
    try:
        for seq in range(1, 201):
            crowd.hub.publish([purchase(seq)])
            if seq % 10 == 0:
                await asyncio.sleep(0.003)
                for peer in crowd.peers:
                    peer.read()
        await settle_until(lambda: all(s.last_seq == 200 for s in crowd.subscribers))
    finally:
        stop.set()
        await pinger
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
    await asyncio.sleep(0.05)
    for i, peer in enumerate(crowd.peers):
        peer.read()
        assert peer.buffer == b"", "a torn frame"
        assert peer.seqs("purchaseCompleted") == list(range(1, 201))
        assert len([m for m in peer.messages if m["type"] == "pong"]) == pongs[i]
    assert sum(pongs) > 100, "the loop hardly wrote: the test proved nothing"


async def test_a_full_socket_gets_what_the_thread_skipped_through_its_outbox(
    crowds: Callable[..., object],
) -> None:
    crowd: Crowd = await crowds(40, send_buffer=4096)  # type: ignore[misc]
    stalled = crowd.subscribers[0]  # its peer never reads
    big = "x" * 1000
    for seq in range(1, 61):
        crowd.hub.publish([Purchased(DROP, seq, seq, big)])
        await asyncio.sleep(0.002)
        for peer in crowd.peers[1:]:
            peer.read()
    await settle_until(lambda: all(s.last_seq == 60 for s in crowd.subscribers[1:]))
    await settle_until(lambda: stalled.owed == 0)
    # It took some frames directly, then the rest were owed to its outbox, in order (with no
    # writer task here they stay there; or it was told to resync when they overflowed).
    assert 0 < stalled.last_seq < 60
    queued = [seq for seq, _ in stalled.outbox]
    assert stalled.resync or queued == list(range(stalled.last_seq + 1, 61))
    assert stalled.wakeup.is_set() and stalled.rest is None
    for peer in crowd.peers[1:]:
        assert peer.seqs("purchaseCompleted") == list(range(1, 61))


async def test_a_deleted_drop_closes_its_threaded_subscribers(
    crowds: Callable[..., object],
) -> None:
    crowd: Crowd = await crowds(50)  # type: ignore[misc]
    crowd.hub.publish([purchase(1), DropDeleted(DROP, 2)])
    await settle_until(lambda: all(s.closing == 1000 for s in crowd.subscribers))
    for peer in crowd.peers:
        assert [m["type"] for m in peer.read()] == ["purchaseCompleted", "dropDeleted"]


async def test_a_retired_subscriber_is_never_written_by_the_thread(
    crowds: Callable[..., object],
) -> None:
    crowd: Crowd = await crowds(30)  # type: ignore[misc]
    gone = crowd.subscribers[3]
    gone.retire()
    crowd.hub.publish([purchase(1)])
    await settle_until(lambda: all(s.last_seq == 1 for s in crowd.subscribers if s is not gone))
    await settle_until(lambda: gone.owed == 0)
    assert crowd.peers[3].read() == [] and gone.last_seq == 0


async def read_until(
    peers: list[Peer], condition: Callable[[], bool], seconds: float = 5.0
) -> None:
    """Keep these peers reading (watchers that keep up) until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        for peer in peers:
            peer.read()
        await asyncio.sleep(0.001)


def drained(crowd: Crowd) -> bool:
    """Whether every transport has written all it was given (the rest of a frame included):
    with no writer task here, a frame owed meanwhile would stay in its outbox."""
    return all(t.get_write_buffer_size() == 0 for t in crowd.transports)


def partial(crowd: Crowd) -> bool:
    """Whether the send path ever took part of a frame (the tests below need it to)."""
    return any(0 < sent < 20_000 for sent in crowd.sent)


async def test_a_frame_the_socket_takes_in_part_is_finished_from_the_loop(
    crowds: Callable[..., object],
) -> None:
    crowd: Crowd = await crowds(8, send_buffer=4096)  # type: ignore[misc]
    big = "x" * 40_000  # a frame of ~40 KB: no socket here takes it in one send
    for seq in range(1, 4):
        crowd.hub.publish([Purchased(DROP, seq, seq, big)])
        await read_until(
            crowd.peers,
            lambda s=seq: all(x.last_seq == s for x in crowd.subscribers) and drained(crowd),
        )
    await read_until(
        crowd.peers, lambda: all(p.buffer == b"" and len(p.messages) == 3 for p in crowd.peers)
    )
    assert partial(crowd)
    for peer, subscriber in zip(crowd.peers, crowd.subscribers, strict=True):
        assert peer.seqs("purchaseCompleted") == [1, 2, 3]
        assert subscriber.rest is None and subscriber.owed == 0 and not subscriber.outbox


async def test_a_socket_that_takes_part_of_a_frame_and_reads_later_gets_it_whole(
    crowds: Callable[..., object],
) -> None:
    """A watcher that lags (a phone in a tunnel) for longer than a moment, its socket full in
    the middle of a frame: the thread does not wait for it and does not cut it. The rest of
    the frame goes to its transport from the loop, which writes it as the socket drains, so
    once the watcher reads again it gets every frame whole and in order."""
    crowd: Crowd = await crowds(4, send_buffer=4096)  # type: ignore[misc]
    stalled, its_peer = crowd.subscribers[0], crowd.peers[0]
    crowd.hub.publish([Purchased(DROP, 1, 1, "x" * 40_000)])
    others = list(zip(crowd.peers[1:], crowd.subscribers[1:], strict=True))
    await read_until(crowd.peers[1:], lambda: all(s.last_seq == 1 for _, s in others))
    await settle_until(lambda: stalled.owed == 0)
    assert partial(crowd)
    await asyncio.sleep(0.3)  # far longer than a lap: it still reads nothing
    assert not crowd.transports[0].is_closing()
    await read_until(crowd.peers, lambda: len(its_peer.messages) == 1 and drained(crowd))
    crowd.hub.publish([Purchased(DROP, 2, 2, "y")])  # and it is written to directly again
    await read_until(crowd.peers, lambda: all(s.last_seq == 2 for s in crowd.subscribers))
    await read_until([its_peer], lambda: len(its_peer.messages) == 2)
    assert its_peer.seqs("purchaseCompleted") == [1, 2] and its_peer.buffer == b""
    assert not stalled.outbox and not crowd.transports[0].is_closing()
    for peer, _ in others:
        assert peer.seqs("purchaseCompleted") == [1, 2]


async def test_the_rest_of_a_frame_goes_before_the_loops_own_next_write(
    crowds: Callable[..., object],
) -> None:
    """The reader's pong (a loop write) before the loop has settled the thread's job: the rest
    of the frame the socket took in part goes first, so the pong never lands inside it."""
    crowd: Crowd = await crowds(2, send_buffer=4096)  # type: ignore[misc]
    stalled, its_peer, transport = crowd.subscribers[0], crowd.peers[0], crowd.transports[0]
    thread = crowd.hub._thread
    assert thread is not None
    path, arrived, go, sent = thread.path, threading.Event(), threading.Event(), threading.Event()

    def send_each(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
        arrived.set()
        go.wait(5)
        try:
            return path.send_each(data, fds, inodes, out)
        finally:
            sent.set()

    thread.path = SendPath(path.name, send_each, path.batch, path.nice, path.wait_while)
    crowd.hub.publish([Purchased(DROP, 1, 1, "x" * 40_000)])
    await settle_until(arrived.is_set)  # the job is the thread's, at its send
    go.set()
    # The loop stays blocked from here on, so the thread's job cannot be settled meanwhile.
    assert sent.wait(5)
    threading.Event().wait(0.1)  # the thread is done with `finish` (before: with its wait)
    assert partial(crowd)
    stalled.hold()  # what the reader does before it writes a pong
    try:
        transport.write(b"\x8a\x00")  # an empty pong frame
    finally:
        stalled.release()
    raw = b""
    for _ in range(500):
        with contextlib.suppress(BlockingIOError):
            raw += its_peer.sock.recv(1 << 16)
        if raw.endswith(b"\x8a\x00"):
            break
        await asyncio.sleep(0.01)
    assert raw[:2] == b"\x81\x7e", raw[:4]  # one text frame with a 16-bit length
    size = int.from_bytes(raw[2:4], "big")
    assert len(raw) == 4 + size + 2, (len(raw), size)
    assert orjson.loads(raw[4 : 4 + size])["seq"] == 1 and raw[4 + size :] == b"\x8a\x00"


async def test_a_socket_closed_by_its_peer_gets_the_rest_by_its_outbox(
    crowds: Callable[..., object],
) -> None:
    crowd: Crowd = await crowds(10)  # type: ignore[misc]
    gone = crowd.subscribers[2]
    crowd.transports[2].pause_reading()  # so the loop does not notice first: the send does
    crowd.peers[2].sock.close()
    for seq in (1, 2):
        crowd.hub.publish([purchase(seq)])
        await settle_until(
            lambda s=seq: all(x.last_seq == s for x in crowd.subscribers if x is not gone)
        )
    await settle_until(lambda: gone.owed == 0 and len(gone.outbox) == 2)
    assert -errno.EPIPE in crowd.sent
    assert gone.fd == -1 and gone.last_seq == 0 and gone.rest is None
    assert [seq for seq, _ in gone.outbox] == [1, 2]  # its writer meets the closed socket
    for i, peer in enumerate(crowd.peers):
        if i != 2:
            assert peer.seqs("purchaseCompleted") == [1, 2]


async def test_a_flush_longer_than_a_tick_is_followed_at_once_by_the_next(
    crowds: Callable[..., object],
) -> None:
    """At most one flush per tick from start to start, but no tick's wait after a flush that
    already took longer: what was committed meanwhile goes out as soon as it is done."""
    crowd: Crowd = await crowds(3)  # type: ignore[misc]
    crowd.hub.tick = 1.0
    first = crowd.subscribers[0]
    first.lock.acquire()  # the thread's pass waits for it: this flush lasts 1.2 s, over a tick
    try:
        crowd.hub.publish([purchase(1)])
        await asyncio.sleep(0.2)
        crowd.hub.publish([purchase(2)])
        await asyncio.sleep(1.0)
    finally:
        first.lock.release()
    loop = asyncio.get_running_loop()
    released = loop.time()
    await settle_until(lambda: all(s.last_seq == 2 for s in crowd.subscribers), seconds=3.0)
    # the old schedule slept a whole tick after every flush: seq 2 a second after the release
    assert loop.time() - released < 0.7
    for peer in crowd.peers:
        assert peer.seqs("purchaseCompleted") == [1, 2]


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own niceness is Linux's")
async def test_the_thread_runs_below_the_loop_by_its_paths_niceness() -> None:
    loop = asyncio.get_running_loop()
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def send_each(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return 0

    thread = SendThread(loop, SendPath("probe", send_each, 8, nice=3))
    thread.start()
    try:
        ours, theirs = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        subscriber = Subscriber(DROP, 16)
        subscriber.go_live(transport)
        assert await thread.write(DROP, [(1, b"x")], [subscriber]) == [subscriber]
    finally:
        await thread.stop()
        transport.close()
        theirs.close()
    assert seen == [min(base + 3, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the loop's own


async def test_the_thread_steps_aside_before_a_batch_while_writes_are_in_flight() -> None:
    """Before each batch, while the service's count of writes in flight is not 0, the thread
    waits (`path.wait_while`, at most `YIELD_SECONDS`), holding no subscriber's lock; with the
    count at 0, or without one, it never waits."""
    loop = asyncio.get_running_loop()
    events: list[str] = []

    def send_each(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
        events.append(f"send {len(fds)}")
        for i in range(len(out)):
            out[i] = len(data)  # as if every socket took the frame: none is owed after
        return len(out)

    def wait_while(flag: array[int], longest: float) -> bool:
        assert longest == YIELD_SECONDS
        events.append(f"wait {flag[0]}, locked {sum(s.lock.locked() for s in crowd)}")
        return False

    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    crowd = [Subscriber(DROP, 16) for _ in range(300)]
    for subscriber in crowd:
        subscriber.go_live(transport)
    try:
        for seq, count in enumerate((1, 0, None), start=1):
            in_flight = None if count is None else array("q", [count])
            path = SendPath("probe", send_each, 256, wait_while=wait_while)
            thread = SendThread(loop, path, in_flight)
            thread.start()
            try:
                assert await thread.write(DROP, [(seq, b"x")], crowd) == []
            finally:
                await thread.stop()
            events.append("-")
    finally:
        transport.close()
        theirs.close()
    assert events == [
        "wait 1, locked 0",
        "send 256",
        "wait 1, locked 0",
        "send 44",
        "-",
        "send 256",
        "send 44",
        "-",
        "send 256",
        "send 44",
        "-",
    ]


def held_at_first_send(
    path: SendPath, sends: list[tuple[bytes, int]], gate: threading.Event
) -> SendPath:
    """`path`, recording each call's data and socket count; its first call returns only once
    `gate` is set (a lap held at its first batch), and says so by `sends` growing."""

    def send_each(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
        sends.append((bytes(data), len(fds)))
        whole = path.send_each(data, fds, inodes, out)
        if len(sends) == 1:
            gate.wait(5)
        return whole

    return SendPath(path.name, send_each, 2, path.nice)


def every_socket_takes_it(data: bytes, fds: array[int], inodes: array[int], out: array[int]) -> int:
    for i in range(len(out)):
        out[i] = len(data)
    return len(out)


async def until_called(sends: list[tuple[bytes, int]]) -> None:
    await settle_until(lambda: len(sends) > 0)


async def test_a_job_that_comes_mid_lap_reaches_the_rest_of_that_lap() -> None:
    """Laps roll: a drop's second job, queued while the thread is in the first one's lap, goes
    to the subscribers that lap has not reached yet in the same send as the first (of the two
    stock updates only the newer), then a second lap takes it to the ones already passed and
    to a subscriber who joined after the first job. One who could not be written owes both
    jobs, and each job's future lists it; the futures resolve in order."""
    loop = asyncio.get_running_loop()
    sends: list[tuple[bytes, int]] = []
    gate = threading.Event()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    crowd = [Subscriber(DROP, 16) for _ in range(6)]
    for subscriber in crowd:
        subscriber.go_live(transport)
    busy = crowd[4]
    busy.hold()  # the loop is writing to it: the thread must not
    probe = SendPath("probe", every_socket_takes_it, 2)
    thread = SendThread(loop, held_at_first_send(probe, sends, gate))
    thread.start()
    try:
        one = thread.write(DROP, [(1, b"P1"), (2, b"S2")], crowd, stock=2)
        await until_called(sends)
        newcomer = Subscriber(DROP, 16)
        newcomer.go_live(transport)
        two = thread.write(DROP, [(3, b"P3"), (4, b"S4")], [*crowd, newcomer], stock=4)
        order: list[str] = []
        one.add_done_callback(lambda _: order.append("one"))
        two.add_done_callback(lambda _: order.append("two"))
        gate.set()
        assert await one == [busy]
        assert await two == [busy]
        await asyncio.sleep(0)  # (an awaited future already done does not yield)
        assert order == ["one", "two"]
    finally:
        await thread.stop()
        transport.close()
        theirs.close()
    assert sends == [
        (b"P1S2", 2),  # the first lap's first batch: only the first job is there yet
        (b"P1P3S4", 2),  # the rest of that lap: both jobs in one send, the stale S2 left out
        (b"P1P3S4", 1),  # (the busy one is not sent to)
        (b"P3S4", 2),  # the second lap: the two the first had passed
        (b"P3S4", 1),  # and the newcomer
    ]
    assert [s.last_seq for s in crowd] == [4, 4, 4, 4, 0, 4] and newcomer.last_seq == 4
    assert busy.owed == 2  # one job each for the hub's settle, in order


@contextlib.asynccontextmanager
async def watched(
    hub: Hub, drops: list[int]
) -> AsyncIterator[tuple[list[Subscriber], list[socket.socket]]]:
    """One live subscriber of `hub` per item of `drops`, each on a socket pair (the watchers'
    ends given with them, not reading); the hub runs inside, then stops, and all is closed."""
    loop = asyncio.get_running_loop()
    pairs = [socket.socketpair() for _ in drops]
    transports: list[asyncio.Transport] = []
    subscribers: list[Subscriber] = []
    for (ours, theirs), drop_id in zip(pairs, drops, strict=True):
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        subscriber = hub.subscribe(drop_id)
        subscriber.go_live(transport)
        transports.append(transport)
        subscribers.append(subscriber)
    hub.start()
    try:
        yield subscribers, [theirs for _, theirs in pairs]
    finally:
        await hub.stop()
        for transport in transports:
            transport.close()
        for _, theirs in pairs:
            theirs.close()


def held_at_first_wait(path: SendPath, waited: threading.Event, gate: threading.Event) -> SendPath:
    """`path`, whose first step aside (before a lap's first batch, holding no lock) sets
    `waited` and lasts until `gate` is set."""

    def wait_while(flag: array[int], longest: float) -> bool:
        if not waited.is_set():
            waited.set()
            gate.wait(5)
        return False

    return SendPath(path.name, path.send_each, path.batch, path.nice, wait_while)


async def test_a_drop_stays_with_the_thread_while_a_job_of_it_is_there(
    send_path: SendPath,
) -> None:
    """A drop whose watchers fall under `thread_above` while the thread still has its last
    flush is flushed by the thread again, not in the loop: a direct write there would reach
    watchers the lap has not reached yet before the older frames (which they would then miss)."""
    waited, gate = threading.Event(), threading.Event()
    hub = Hub(
        lambda drop: {"id": drop.id},
        tick=0.001,
        thread_above=2,
        send_path=held_at_first_wait(send_path, waited, gate),
    )
    hub.in_flight = array("q", [1])  # a buyer's write in flight: the lap steps aside first
    async with watched(hub, [DROP] * 3) as (subscribers, theirs):
        try:
            hub.publish([purchase(1)])
            await settle_until(waited.is_set)  # the lap waits before its first send
            hub.unsubscribe(subscribers.pop())  # two left: not over thread_above any more
            hub.publish([purchase(2)])
            await asyncio.sleep(0.02)  # ticks go by: the loop must not write seq 2 itself
            gate.set()
            peers = [Peer(sock) for sock in theirs[:2]]
            await read_until(peers, lambda: all(s.last_seq == 2 for s in subscribers))
            for peer in peers:
                assert peer.seqs("purchaseCompleted") == [1, 2]
            assert all(s.owed == 0 and not s.outbox for s in subscribers)
        finally:
            gate.set()  # the thread must not wait on it while the hub stops


async def test_a_crowded_drop_flushes_every_thread_tick_and_the_others_every_tick(
    send_path: SendPath,
) -> None:
    """The thread's drops are flushed every `thread_tick` (their jobs roll into the lap under
    way, adding no sends); a drop written in the loop still waits for its `tick`."""
    hub = Hub(
        lambda drop: {"id": drop.id},
        tick=1.0,
        thread_tick=0.01,
        thread_above=1,
        send_path=send_path,
    )
    crowded, small = DROP, DROP + 1
    async with watched(hub, [crowded, crowded, small]) as (subscribers, _):
        hub.publish([purchase(1), Purchased(small, 1, 1, "buyer")])
        await settle_until(lambda: all(s.last_seq == 1 for s in subscribers))  # both at once
        hub.publish([purchase(2), Purchased(small, 2, 2, "buyer")])
        await settle_until(lambda: all(s.last_seq == 2 for s in subscribers[:2]), seconds=0.5)
        assert subscribers[2].last_seq == 1  # the loop's drop: not before its tick
        await settle_until(lambda: subscribers[2].last_seq == 2, seconds=2.0)


async def test_a_watcher_who_joins_a_crowded_drop_gets_its_next_changes(
    send_path: SendPath,
) -> None:
    """The thread's jobs take the drop's watchers from a list kept between changes of who
    watches: one who joins is in the next job, one who leaves is not."""
    loop = asyncio.get_running_loop()
    hub = Hub(lambda drop: {"id": drop.id}, tick=0.001, thread_above=0, send_path=send_path)
    async with watched(hub, [DROP] * 2) as (subscribers, _):
        hub.publish([purchase(1)])
        await settle_until(lambda: all(s.last_seq == 1 for s in subscribers))
        ours, late_end = socket.socketpair()
        late_end.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        try:
            late = hub.subscribe(DROP)
            late.go_live(transport)
            hub.publish([purchase(2)])
            await settle_until(lambda: late.last_seq == 2 and subscribers[0].last_seq == 2)
            leaving = subscribers.pop()
            hub.unsubscribe(leaving)
            hub.publish([purchase(3)])
            await settle_until(lambda: late.last_seq == 3 and subscribers[0].last_seq == 3)
            assert Peer(late_end).seqs("purchaseCompleted") == [2, 3]
            assert leaving.last_seq == 2
        finally:
            transport.close()
            late_end.close()


async def test_a_failure_between_laps_owes_the_jobs_and_keeps_the_thread(
    crowds: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug outside a lap (here in taking the queued jobs) must not end the thread: the jobs
    it held are owed to their subscribers' outboxes, in order, and later ones are still done.
    Before, the thread died there, the drop's jobs never finished and its watchers got nothing
    more (the hub kept waiting on the thread)."""
    crowd: Crowd = await crowds(20)  # type: ignore[misc]
    real = SendThread._take_waiting
    failures = [RuntimeError("a bug between laps")]

    def failing_once(self: SendThread) -> None:
        if failures:
            raise failures.pop()
        real(self)

    monkeypatch.setattr(SendThread, "_take_waiting", failing_once)
    crowd.hub.publish([purchase(1)])
    await settle_until(lambda: not failures and not crowd.hub._threaded)
    crowd.hub.publish([purchase(2)])

    def received(subscriber: Subscriber, peer: Peer) -> list[int]:
        return peer.seqs("purchaseCompleted") + [seq for seq, _ in subscriber.outbox]

    pairs = list(zip(crowd.subscribers, crowd.peers, strict=True))
    await settle_until(lambda: all(received(s, p) == [1, 2] for s, p in pairs))
    await settle_until(lambda: not crowd.hub._threaded)
    assert all(s.owed == 0 for s in crowd.subscribers)
