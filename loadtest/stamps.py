"""The kernel's receive timestamps on a socket, for the load's clients (the watcher fleet, the
stamped HTTP connection): when bytes reached the socket, apart from when a busy client read them.

`SO_TIMESTAMPNS` stamps each read with CLOCK_REALTIME; the readers keep CLOCK_MONOTONIC (system-
wide on Linux, so stamps compare across processes), so a stamp is moved onto it with an offset
read at the same wakeup. For TCP the kernel stamps a read with its last segment: a stamp errs
towards later, never earlier.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's value (asm-generic); Python's socket module does not name it."""
ANCILLARY = socket.CMSG_SPACE(16)
"""Room for one timestamp in `recvmsg`'s ancillary data."""
_TIMESPEC = struct.Struct("qq")


def enable(sock: socket.socket) -> None:
    """Ask the kernel to stamp every read of `sock`."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def offset_now() -> float:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, now."""
    return time.time() - time.monotonic()


def arrival(ancillary: Iterable[tuple[int, int, bytes]], read: float, offset: float) -> float:
    """The monotonic time a read's bytes reached the socket, from `recvmsg`'s ancillary data;
    `read` (when it was read, also the latest it can be) where the kernel gave no stamp."""
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            seconds, nanos = _TIMESPEC.unpack_from(raw)
            return min(read, float(seconds) + float(nanos) * 1e-9 - offset)
    return read
