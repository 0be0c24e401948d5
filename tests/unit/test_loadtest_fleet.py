"""The watcher fleet's frame splitting and its two times per frame (`loadtest/wsfleet.py`)."""

from __future__ import annotations

import socket

import orjson

from loadtest.wsfleet import FleetResult, Watcher


def text(obj: object) -> bytes:
    payload = orjson.dumps(obj)
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload


def live_watcher() -> Watcher:
    a, b = socket.socketpair()
    b.close()
    watcher = Watcher(a, b"", 0.0)
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    snapshot = text({"type": "snapshot", "seq": 1, "drop": {"stock": 10}})
    assert watcher.feed(upgrade + snapshot, 1.0, 1.5)
    return watcher


def test_each_frame_keeps_its_arrival_and_its_read() -> None:
    watcher = live_watcher()
    assert watcher.feed(text({"type": "stockUpdate", "seq": 2, "newStock": 9}), 2.0, 2.25)
    assert watcher.observations() == [(1.0, "snapshot", 1, 10), (2.0, "stockUpdate", 2, 9)]
    assert watcher.observations(by_read=True)[1] == (2.25, "stockUpdate", 2, 9)
    assert watcher.shared == 0
    watcher.sock.close()


def test_frames_read_together_are_counted_as_sharing_a_stamp() -> None:
    watcher = live_watcher()
    two = text({"type": "stockUpdate", "seq": 2, "newStock": 9}) + text(
        {"type": "stockUpdate", "seq": 3, "newStock": 8}
    )
    assert watcher.feed(two, 3.0, 3.1)
    assert [o[2] for o in watcher.observations()] == [1, 2, 3]
    assert watcher.shared == 1  # the snapshot came with its upgrade, alone
    watcher.sock.close()


def test_a_refused_upgrade_ends_the_watcher() -> None:
    a, b = socket.socketpair()
    watcher = Watcher(a, b"", 0.0)
    assert not watcher.feed(b"HTTP/1.1 403 Forbidden\r\n\r\n", 1.0, 1.0)
    assert watcher.answered and not watcher.upgraded
    a.close()
    b.close()


def test_a_result_timed_by_reads_swaps_the_times_only() -> None:
    arrival = [[(1.0, "snapshot", 1, 10)]]
    read = [[(1.5, "snapshot", 1, 10)]]
    result = FleetResult(arrival, [None], 0, read, 0)
    assert result.as_read().observations == read
    assert result.as_read().close_codes == [None]
