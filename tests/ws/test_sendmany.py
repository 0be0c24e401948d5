"""The fan-out thread's batch send (`web/sendmany.py`), the C extension and the os.write
fallback held to one contract: all of the bytes to each socket or what it took (a short count),
-EAGAIN for a full socket, -EPIPE/-ECONNRESET for a peer gone, -EBADF for a closed descriptor;
the others in the batch written all the same.

Real loopback TCP connections, no event loop: the function is called directly.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from array import array
from collections.abc import Iterator

import pytest

from sneakerd.web.sendmany import SendPath
from tests.ws.conftest import c_send_path

FRAME = b"\x81\x05hello"


class Pairs:
    """TCP connections over loopback: `ours[i]` is the server's end (non-blocking, as uvloop's
    sockets are), `theirs[i]` the watcher's."""

    def __init__(self) -> None:
        self.ours: list[socket.socket] = []
        self.theirs: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))

    def make(self, count: int, buffer: int | None = None) -> None:
        for _ in range(count):
            theirs = socket.socket()
            if buffer is not None:
                theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
            theirs.connect(self._listener.getsockname())
            ours, _ = self._listener.accept()
            if buffer is not None:
                ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
            ours.setblocking(False)
            theirs.settimeout(2.0)
            self.ours.append(ours)
            self.theirs.append(theirs)

    def close(self) -> None:
        for sock in [*self.ours, *self.theirs, self._listener]:
            sock.close()


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    made = Pairs()
    yield made
    made.close()


def send(path: SendPath, data: bytes, socks: list[socket.socket]) -> tuple[int, list[int]]:
    fds = array("i", [s.fileno() for s in socks])
    inodes = array("Q", [os.fstat(s.fileno()).st_ino for s in socks])
    results = array("q", bytes(8 * len(socks)))
    whole = path.send_each(data, fds, inodes, results)
    return whole, list(results)


def receive(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = sock.recv(size - len(got))
        assert chunk, "the connection closed early"
        got += chunk
    return got


def fill(sock: socket.socket) -> int:
    """Write to `sock` until it takes nothing more; the bytes it took."""
    taken = 0
    while True:
        try:
            taken += sock.send(b"x" * 65536)
        except BlockingIOError:
            return taken


def test_every_socket_gets_all_of_the_bytes(send_path: SendPath, pairs: Pairs) -> None:
    pairs.make(5)
    whole, results = send(send_path, FRAME, pairs.ours)
    assert (whole, results) == (5, [len(FRAME)] * 5)
    for theirs in pairs.theirs:
        assert receive(theirs, len(FRAME)) == FRAME


def test_a_full_socket_takes_nothing_and_says_eagain(send_path: SendPath, pairs: Pairs) -> None:
    pairs.make(3, buffer=4096)
    fill(pairs.ours[1])
    whole, results = send(send_path, FRAME, pairs.ours)
    assert whole == 2
    assert results == [len(FRAME), -errno.EAGAIN, len(FRAME)]
    assert receive(pairs.theirs[2], len(FRAME)) == FRAME


def test_a_partial_write_says_how_much_went(send_path: SendPath, pairs: Pairs) -> None:
    """A frame larger than the room left: the socket takes the start of it, and the count says
    exactly how much, so the caller can write the rest from there."""
    pairs.make(2, buffer=4096)
    big = bytes(range(256)) * 4096  # 1 MiB: no loopback socket here takes it at once
    whole, results = send(send_path, big, pairs.ours)
    assert whole == 0
    for taken, theirs in zip(results, pairs.theirs, strict=True):
        assert 0 < taken < len(big)
        assert receive(theirs, taken) == big[:taken]


def test_a_socket_closed_by_its_peer_fails_alone(send_path: SendPath, pairs: Pairs) -> None:
    pairs.make(3)
    gone = pairs.theirs[1]
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    gone.close()  # with a zero linger: a reset, as a watcher that vanishes sends
    failure = 0
    deadline = time.monotonic() + 2.0
    while failure == 0 and time.monotonic() < deadline:
        whole, results = send(send_path, FRAME, pairs.ours)
        assert results[0] == results[2] == len(FRAME), results
        failure = min(results[1], 0)
    assert failure in (-errno.EPIPE, -errno.ECONNRESET)
    assert whole == 2
    for theirs in (pairs.theirs[0], pairs.theirs[2]):
        first = receive(theirs, len(FRAME))
        assert first == FRAME


def test_a_closed_descriptor_fails_alone(send_path: SendPath, pairs: Pairs) -> None:
    pairs.make(2)
    closed = socket.socket()
    fds = array("i", [pairs.ours[0].fileno(), closed.fileno(), pairs.ours[1].fileno()])
    inodes = array("Q", [os.fstat(fd).st_ino for fd in fds])
    closed.close()
    results = array("q", bytes(8 * 3))
    assert send_path.send_each(FRAME, fds, inodes, results) == 2
    assert list(results) == [len(FRAME), -errno.EBADF, len(FRAME)]


def test_a_descriptor_now_naming_another_socket_is_not_written(pairs: Pairs) -> None:
    """The C path's batch goes out after its sockets were checked: a number the loop closed and
    reused meanwhile (here: a socket's inode that is not the descriptor's) is left alone. The
    fallback sends right after each check, so only the C path has this window to close."""
    path = c_send_path()
    pairs.make(2)
    fds = array("i", [s.fileno() for s in pairs.ours])
    inodes = array("Q", [os.fstat(pairs.ours[1].fileno()).st_ino] * 2)  # both: the second's
    results = array("q", bytes(16))
    assert path.send_each(FRAME, fds, inodes, results) == 1
    assert list(results) == [-errno.EBADF, len(FRAME)]
    pairs.theirs[0].setblocking(False)
    with pytest.raises(BlockingIOError):
        pairs.theirs[0].recv(1)


def test_the_c_path_refuses_arrays_of_the_wrong_kind() -> None:
    path = c_send_path()
    with pytest.raises(TypeError):
        path.send_each(FRAME, array("q", [1]), array("Q", [0]), array("q", [0]))
    with pytest.raises(ValueError):
        path.send_each(FRAME, array("i", [1, 2]), array("Q", [0]), array("q", [0, 0]))


def test_the_wait_for_writes_in_flight_lasts_at_most_its_bound(send_path: SendPath) -> None:
    began = time.monotonic()
    assert send_path.wait_while(array("q", [1]), 0.2) is False
    assert 0.19 <= time.monotonic() - began < 5.0


def test_the_wait_ends_when_the_writes_in_flight_do(send_path: SendPath) -> None:
    flag = array("q", [2])
    timer = threading.Timer(0.05, flag.__setitem__, (0, 0))  # the loop's writes end
    timer.start()
    began = time.monotonic()
    try:
        assert send_path.wait_while(flag, 30.0) is True
    finally:
        timer.join()
    assert time.monotonic() - began < 10.0  # far from the 30 s bound: it saw the 0


def test_without_writes_in_flight_nothing_waits(send_path: SendPath) -> None:
    began = time.monotonic()
    assert send_path.wait_while(array("q", [0]), 30.0) is True
    assert time.monotonic() - began < 10.0


def test_the_c_wait_refuses_a_flag_of_the_wrong_kind() -> None:
    path = c_send_path()
    with pytest.raises(TypeError):
        path.wait_while(array("i", [1]), 0.1)
    with pytest.raises(ValueError):
        path.wait_while(array("q"), 0.1)


def test_a_big_batch_is_sent_in_two_halves_each_result_in_its_place(pairs: Pairs) -> None:
    """The C path hands the second half of a batch of 32 or more to its helper thread: every
    result lands at its own index, failures in that half included."""
    from sneakerd.web import _sendmany

    path = c_send_path()
    pairs.make(40, buffer=4096)
    fill(pairs.ours[37])  # full: -EAGAIN, in the helper's half
    fds = array("i", [s.fileno() for s in pairs.ours])
    inodes = array("Q", [os.fstat(fd).st_ino for fd in fds])
    inodes[33] = inodes[34]  # names another socket now: -EBADF, in the helper's half
    inodes[3] = inodes[4]  # and one in the caller's half
    results = array("q", bytes(8 * 40))
    before = _sendmany.splits()
    assert path.send_each(FRAME, fds, inodes, results) == 37
    assert _sendmany.splits() == before + 1
    expected = [len(FRAME)] * 40
    expected[3] = expected[33] = -errno.EBADF
    expected[37] = -errno.EAGAIN
    assert list(results) == expected
    for i, theirs in enumerate(pairs.theirs):
        if i not in (3, 33, 37):
            assert receive(theirs, len(FRAME)) == FRAME


def test_a_small_batch_is_sent_by_the_caller_alone(pairs: Pairs) -> None:
    from sneakerd.web import _sendmany

    path = c_send_path()
    pairs.make(31)
    before = _sendmany.splits()
    whole, results = send(path, FRAME, pairs.ours)
    assert (whole, results) == (31, [len(FRAME)] * 31)
    assert _sendmany.splits() == before


def test_two_callers_at_once_both_get_every_result(pairs: Pairs) -> None:
    """The helper serves one caller at a time; another meanwhile sends its batch itself."""
    path = c_send_path()
    pairs.make(128)
    halves = [pairs.ours[:64], pairs.ours[64:]]
    outcomes: list[tuple[int, list[int]]] = []
    rounds = 50

    def caller(socks: list[socket.socket]) -> None:
        for _ in range(rounds):
            outcomes.append(send(path, FRAME, socks))

    threads = [threading.Thread(target=caller, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [(64, [len(FRAME)] * 64)] * (2 * rounds)
    for theirs in pairs.theirs:
        assert receive(theirs, len(FRAME) * rounds) == FRAME * rounds


def test_a_forked_child_splits_with_a_helper_of_its_own(pairs: Pairs) -> None:
    """A fork keeps only the forking thread: the child starts its own helper (else its first
    split would wait for a thread that is not there)."""
    from sneakerd.web import _sendmany

    path = c_send_path()
    pairs.make(40)
    send(path, FRAME, pairs.ours)  # the parent's helper is running
    for theirs in pairs.theirs:
        receive(theirs, len(FRAME))
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, whatever happens
        code = 1
        try:
            whole, results = send(path, FRAME, pairs.ours)
            ok = whole == 40 and results == [len(FRAME)] * 40 and _sendmany.splits() == 1
            code = 0 if ok else 2
        finally:
            os.write(writer, bytes([code]))
            os._exit(code)
    os.close(writer)
    ready: list[int] = []
    try:
        ready, _, _ = select.select([reader], [], [], 10.0)
        assert ready, "the child's split never came back"
        assert os.read(reader, 1) == b"\x00"
    finally:
        os.close(reader)
        if not ready:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    for theirs in pairs.theirs:
        assert receive(theirs, len(FRAME)) == FRAME
