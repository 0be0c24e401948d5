"""Types of the C extension built from _sendmany.c (see sendmany.py)."""

from array import array

def send_each(
    data: bytes,
    fds: array[int],
    inodes: array[int],
    results: array[int],
    stop: array[int] | None = None,
    longest: float = 0.0,
    /,
) -> int:
    """Send all of `data` to each descriptor without the GIL; `results[i]` gets the bytes it
    took or -errno (-EBADF when it no longer names the socket of inode `inodes[i]`). The first
    time `stop[0]` is not 0 before a send, wait until it is 0 or `longest` s have passed."""
