"""How many buyers' writes each worker of one machine has in flight, in memory they all share.

`serve --workers N` runs N processes on the same cores. A quiet drop's hold crosses two of them
(the worker that read it, the drop's owner) and the database; while a crowd hammers a sold-out
drop, every one of those steps waits for a core that a worker spends on refusals. Each worker
already holds its refused connections while its own writes run (`web/read_gate.py`); with this
board it holds them while any worker's do, so a hold finds the machine's cores free at each
step, not only in the process it is in.

The board is a file in shared memory (`/dev/shm`, else the temporary directory) named after
the supervisor's pid, of one 64-bit slot per worker, which the supervisor creates
(`create_board`) before it starts them: worker i writes its count to slot i (an aligned 8-byte
store, which no reader sees torn) and reads all of them. A worker that died
with writes in flight leaves its count behind until its replacement starts and clears its
slot; meanwhile the others hold their refused connections at most `read_gate.LONGEST` each
time, as they would for a busy drop. The supervisor removes the file when it stops.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

SLOT = 8


def board_path(supervisor_pid: int) -> Path:
    """Where the workers of the supervisor `supervisor_pid` share their board."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"sneakerd-{supervisor_pid}-busy"


def create_board(path: Path, slots: int) -> None:
    """The supervisor's part: a new board of `slots` zeroed slots, readable by this user only.
    Created exclusively and never through a link: `/dev/shm` is everyone's, and a file someone
    else put at this name must not become the workers' board (raises `FileExistsError`)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.ftruncate(fd, slots * SLOT)
    finally:
        os.close(fd)


class BusyBoard:
    """One worker's view of the machine's board: its own slot to write, all of them to read.
    Raises `OSError` or `ValueError` when the board is missing, not this user's, or too small
    (the worker then goes on without it, looking at its own writes only)."""

    def __init__(self, path: Path, slots: int, index: int) -> None:
        if not 0 <= index < slots:
            raise ValueError(f"worker index {index} outside the board's {slots} slots")
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            found = os.fstat(fd)
            if found.st_uid != os.geteuid() or found.st_size < slots * SLOT:
                raise ValueError(f"{path} is not this user's board of {slots} slots")
            self._map = mmap.mmap(fd, slots * SLOT)
        finally:
            os.close(fd)
        self.slots = memoryview(self._map).cast("q")
        self.mine = self.slots[index : index + 1]
        """This worker's count: one item, written by the pacer (`sneakerd.pacer`)."""
        self.mine[0] = 0  # a predecessor that died busy leaves nothing behind

    def busy(self) -> bool:
        """Whether any worker has writes in flight."""
        return any(self.slots)

    def close(self) -> None:
        self.mine[0] = 0
        self.mine.release()
        self.slots.release()
        self._map.close()
