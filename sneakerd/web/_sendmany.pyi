"""Types of the C extension built from _sendmany.c (see sendmany.py)."""

from array import array

def send_each(data: bytes, fds: array[int], inodes: array[int], results: array[int], /) -> int:
    """Send all of `data` to each descriptor without the GIL; `results[i]` gets the bytes it
    took or -errno (-EBADF when it no longer names the socket of inode `inodes[i]`)."""

def wait_while(flag: array[int], longest: float, /) -> bool:
    """Wait without the GIL while `flag[0]` is not 0, `longest` seconds at most; whether it is
    0 at the end."""

def splits() -> int:
    """How many batches this process has sent in two halves, the second on the helper thread."""
