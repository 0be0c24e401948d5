"""The workers' board of writes in flight: each worker's count is seen by the others at once,
across processes, and a worker that starts in a dead one's place clears what it left."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sneakerd.cluster.busy_board import BusyBoard, board_path, create_board
from sneakerd.cluster.workers import SUPERVISOR_PID
from tests.api.test_read_gate import running_shop, sold_out_drop


def other_process(path: Path, index: int, code: str) -> None:
    """Run `code` in a fresh interpreter with `board`, worker `index`'s view of `path`."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from sneakerd.cluster.busy_board import BusyBoard
        board = BusyBoard(Path({str(path)!r}), 2, {index})
        """
    ) + textwrap.dedent(code)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_a_count_written_by_one_worker_is_seen_by_the_other(tmp_path: Path) -> None:
    path = tmp_path / "board"
    create_board(path, 2)
    mine = BusyBoard(path, 2, 0)
    try:
        assert not mine.busy()
        # Worker 1 dies with a write in flight: its count stays behind ...
        other_process(path, 1, "board.mine[0] = 3\n")
        assert mine.busy() and list(mine.slots) == [0, 3]
        # ... until a worker starts in its place, which clears its slot.
        other_process(path, 1, "assert not board.busy()\n")
        assert not mine.busy()
        mine.mine[0] = 1
        other_process(path, 1, "assert board.busy() and list(board.slots) == [1, 0]\n")
        mine.mine[0] = 0
        other_process(path, 1, "board.mine[0] = 1\nboard.close()\n")
        assert not mine.busy()  # a worker that stops leaves nothing behind
    finally:
        mine.close()


def test_a_worker_index_outside_the_board_is_refused(tmp_path: Path) -> None:
    create_board(tmp_path / "board", 2)
    with pytest.raises(ValueError, match="outside"):
        BusyBoard(tmp_path / "board", 2, 2)


def test_only_a_new_file_of_this_user_becomes_the_board(tmp_path: Path) -> None:
    """`/dev/shm` is everyone's: a file or link already at the board's name is never taken
    for it, and a worker finds no board rather than someone else's."""
    planted = tmp_path / "planted"
    planted.write_bytes(bytes(16))
    with pytest.raises(FileExistsError):
        create_board(planted, 2)
    link = tmp_path / "link"
    link.symlink_to(planted)
    with pytest.raises(FileExistsError):
        create_board(link, 2)
    with pytest.raises(OSError):  # a worker does not follow a link either
        BusyBoard(link, 2, 0)
    with pytest.raises(FileNotFoundError):  # nor make a board of its own
        BusyBoard(tmp_path / "missing", 2, 0)
    small = tmp_path / "small"
    create_board(small, 1)
    with pytest.raises(ValueError, match="not this user's board"):
        BusyBoard(small, 2, 0)


def test_the_board_is_named_after_the_supervisor() -> None:
    assert board_path(4321).name == "sneakerd-4321-busy"
    assert board_path(4321) != board_path(4322)


async def test_a_worker_holds_its_refused_clients_while_another_workers_write_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 0 of two runs here (on SQLite, which is enough for the gate); this test plays
    worker 1 by writing its slot of their board."""
    supervisor = 2**22 + os.getpid()  # no process has this pid: the board is this test's
    monkeypatch.setenv(SUPERVISOR_PID, str(supervisor))
    worker_one = None
    create_board(board_path(supervisor), 2)  # as the supervisor does
    try:
        async with running_shop(tmp_path, workers=2, worker_index=0) as shop:
            worker_one = BusyBoard(board_path(supervisor), 2, 1)
            drop_id = await sold_out_drop(shop)
            token = await shop.user("crowd")
            crowd = await shop.connect()
            refused = await crowd.call("POST", "/api/reservations", {"dropId": drop_id}, token)
            assert refused.status == 409, refused.body
            shop.gate.longest_ms = 60_000  # only the other worker's write ending lets it in

            worker_one.mine[0] = 1  # a buyer's hold in flight on the other worker
            crowd.send("POST", "/api/reservations", {"dropId": drop_id}, token)
            assert await crowd.nothing_within(0.3)
            assert shop.gate.waiting == 1
            assert (await shop.call("GET", f"/api/drops/{drop_id}")).status == 200
            worker_one.mine[0] = 0  # it ended there: this worker sees it at its next look
            again = await crowd.reply()
            assert again.status == 409 and again.json == refused.json
            crowd.close()
    finally:
        if worker_one is not None:
            worker_one.close()
        board_path(supervisor).unlink(missing_ok=True)
