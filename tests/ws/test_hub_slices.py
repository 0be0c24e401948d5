"""The hub's fan-out in slices: a flush to many subscribers hands the loop back between slices,
and what each subscriber receives stays in order and complete across slices and flushes.

Real sockets (socket pairs, one asyncio transport each); the hub is driven directly, without a
server, so that the test can stop a flush halfway and look.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
import pytest

from sneakerd.domain.events import StockChanged
from sneakerd.web.hub import Hub
from sneakerd.web.subscriber import Subscriber

DROP = 7


@dataclass
class Peer:
    """The watcher's end of one socket pair: reads whatever the hub wrote to the other end."""

    sock: socket.socket
    buffer: bytes = b""

    def seqs(self) -> list[int]:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        out = []
        while len(self.buffer) >= 2:
            assert self.buffer[0] == 0x81 and self.buffer[1] < 126, self.buffer[:2]
            end = 2 + self.buffer[1]
            out.append(int(orjson.loads(self.buffer[2:end])["seq"]))
            self.buffer = self.buffer[end:]
        return out


@dataclass
class Crowd:
    hub: Hub
    subscribers: list[Subscriber]
    peers: list[Peer]


@pytest.fixture
async def crowd() -> AsyncIterator[Crowd]:
    """A hub whose every flush slices after each clock read, and 200 live subscribers."""
    loop = asyncio.get_running_loop()
    hub = Hub(lambda drop: {}, tick=0.001, slice_seconds=0.0)
    subscribers, peers, transports = [], [], []
    for _ in range(200):
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        subscriber = hub.subscribe(DROP)
        subscriber.transport = transport
        subscribers.append(subscriber)
        peers.append(Peer(theirs))
        transports.append(transport)
    yield Crowd(hub, subscribers, peers)
    await hub.stop()
    for transport in transports:
        transport.close()
    for peer in peers:
        peer.sock.close()


async def until(condition: Callable[[], bool], turns: int = 5000) -> None:
    """Give the loop one turn at a time until `condition` holds."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def stock(seq: int) -> StockChanged:
    return StockChanged(DROP, seq, stock=100 - seq, reserved=seq, sold=0)


async def test_a_flush_to_many_subscribers_yields_to_the_loop(crowd: Crowd) -> None:
    hub = crowd.hub
    hub.start()
    await asyncio.sleep(0)  # the ticker waits for work
    hub.publish([stock(1)])
    written_when_others_ran: list[int] = []
    while len(written_when_others_ran) < 1000:
        await asyncio.sleep(0)
        done = sum(1 for s in crowd.subscribers if s.last_seq == 1)
        written_when_others_ran.append(done)
        if done == len(crowd.subscribers):
            break
    # This task ran while the flush was under way: it saw some subscribers written, not all.
    assert any(0 < done < len(crowd.subscribers) for done in written_when_others_ran)
    assert written_when_others_ran[-1] == len(crowd.subscribers)
    assert all(peer.seqs() == [1] for peer in crowd.peers)


async def test_ordering_holds_when_a_flush_comes_during_a_sliced_one(crowd: Crowd) -> None:
    hub = crowd.hub
    hub.start()
    await asyncio.sleep(0)
    hub.publish([stock(1)])
    await until(lambda: any(s.last_seq == 1 for s in crowd.subscribers))
    assert not all(s.last_seq == 1 for s in crowd.subscribers), "the flush did not slice"
    # Newer events flushed at once, while the ticker is halfway through seq 1.
    hub.publish([stock(2), stock(3)])
    hub.flush()
    assert all(s.last_seq == 3 for s in crowd.subscribers)
    for _ in range(50):  # let the interrupted ticker resume, and run again if it wants to
        await asyncio.sleep(0.002)
    hub.publish([stock(4)])
    for _ in range(100):
        await asyncio.sleep(0.002)
        if all(s.last_seq == 4 for s in crowd.subscribers):
            break
    # Every subscriber got 1, then the coalesced 2-3 (only the latest stock update: 3), then 4.
    assert [peer.seqs() for peer in crowd.peers] == [[1, 3, 4]] * len(crowd.peers)


async def test_a_subscriber_busy_midway_gets_its_frames_through_the_outbox(crowd: Crowd) -> None:
    hub = crowd.hub
    hub.start()
    await asyncio.sleep(0)
    hub.publish([stock(1)])
    await until(lambda: any(s.last_seq == 1 for s in crowd.subscribers))
    late = next(s for s in reversed(crowd.subscribers) if s.last_seq == 0)
    late.busy = True  # its writer is sending from its outbox: a direct write would reorder
    await until(lambda: all(s.last_seq == 1 for s in crowd.subscribers if s is not late))
    assert late.last_seq == 0 and list(late.outbox) and late.outbox[0][0] == 1
    assert late.wakeup.is_set()
