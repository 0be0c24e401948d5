"""How the fan-out thread sends one frame to a batch of sockets: in C with the GIL released for
the whole batch when the extension (`_sendmany.c`) was built, else with `os.write` per socket.

`os.write` releases the GIL for its syscall and takes it back after, and taking it back waits
while the event loop runs Python: over 10,000 sockets that made a pass 150-320 ms for ~66 ms of
kernel work. The C loop takes the GIL back once a batch instead of once a socket, and sends the
second half of a batch of 32 or more on a helper thread of its own, so that a free core takes
half of the kernel's work (`_sendmany.c` says how; `_sendmany.splits()` counts such batches).

Both paths have the same contract (`Sender`): `send_each(data, fds, inodes, results)` sends all
of `data` to each descriptor with one non-blocking send, stores what each took (bytes, or
-errno: -EAGAIN for a full socket, -EPIPE/-ECONNRESET for a peer gone) and returns how many
took all of it. What a result means for a subscriber is decided by `Subscriber.finish`.

Only the C path checks `inodes`: its batch is sent some time after the sockets were checked,
and the loop may close and reuse a descriptor meanwhile. The fallback sends one socket a batch,
right after its check, under the GIL until the syscall (as before the C path existed), so no
such window is left open.

A compiler is needed only for the speed: `pip install` without one builds no extension
(`optional = true` in pyproject.toml) and the fallback is used.
"""

from __future__ import annotations

import errno
import os
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

Sender = Callable[[bytes, "array[int]", "array[int]", "array[int]"], int]
"""send_each(data, fds, inodes, results) -> how many sockets took all of `data`."""

Waiter = Callable[["array[int]", float], bool]
"""wait_while(flag, longest) -> whether flag[0] is 0: waits while it is not, `longest` seconds
at most (`web/send_thread.py`: the fan-out steps aside for buyers' writes)."""

C_BATCH = 256
"""Sockets per C call: the GIL is taken back once per batch, and a batch's subscribers stay
locked while it is sent (~256 x 6 us), which is the longest the loop can wait in `hold`."""


def send_each_python(data: bytes, fds: array[int], inodes: array[int], results: array[int]) -> int:
    """The fallback: `os.write` per descriptor (it releases the GIL for each syscall only)."""
    del inodes  # see the module's docstring
    whole = 0
    for i, fd in enumerate(fds):
        try:
            sent = os.write(fd, data)
        except OSError as exc:
            results[i] = -(exc.errno or errno.EIO)
            continue
        results[i] = sent
        if sent == len(data):
            whole += 1
    return whole


WAIT_POLL_SECONDS = 0.0001
"""How often the fallback's wait looks at the flag again."""


def wait_while_python(flag: array[int], longest: float) -> bool:
    """The fallback's wait: sleeps (the GIL free meanwhile, taken back at each look)."""
    until = time.monotonic() + longest
    while flag[0] and time.monotonic() < until:
        time.sleep(WAIT_POLL_SECONDS)
    return not flag[0]


C_NICE = 19
"""How much lower the fan-out thread runs than the loop with the C path (Linux, per thread)."""


@dataclass(frozen=True, slots=True)
class SendPath:
    """One way to send: its name (for /metrics and the log), its function, its batch size, the
    thread's niceness while it sends this way (`web/send_thread.py`), and how it waits for
    buyers' writes between batches."""

    name: str
    send_each: Sender
    batch: int
    nice: int = 0
    wait_while: Waiter = wait_while_python


PYTHON = SendPath("python", send_each_python, 1)
"""No lower priority: this thread takes the GIL back after every socket, and each of those
hand-offs waits longer on a busy machine when the kernel runs the thread last."""


def _c_path() -> SendPath | None:
    try:
        from sneakerd.web._sendmany import send_each, wait_while
    except ImportError:  # built without a compiler (or an older build): the fallback
        return None
    return SendPath("c", send_each, C_BATCH, C_NICE, wait_while)


C: SendPath | None = _c_path()
"""The C path, if the extension was built."""

LIVE: SendPath = C or PYTHON
"""The path the fan-out thread uses."""
