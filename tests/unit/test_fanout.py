"""The actors' sink on one node: the hub, then every other feed, and no feed's bug in between."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sneakerd.actors.sink import RecordingSink
from sneakerd.domain.events import DropEvent, Reserved, StockChanged
from sneakerd.web.fanout import Fanout
from sneakerd.web.hub import Hub


class Broken:
    def publish(self, events: Sequence[DropEvent]) -> None:
        raise RuntimeError("a feed's bug")


def test_every_feed_hears_each_batch_and_a_failing_one_stops_no_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub(lambda drop: {})
    watcher = hub.subscribe(7)
    after = RecordingSink()
    fanout = Fanout(hub, [Broken(), after])
    batch = [StockChanged(7, 2, 4, 1, 0), Reserved(7, 2, 40, 3)]
    fanout.publish(batch)  # does not raise into the actor that called it
    assert after.events == batch
    assert "a live feed failed" in caplog.text
    hub.flush()
    # The hub's own feed is unchanged: the side event is not in it.
    assert [seq for seq, _ in watcher.outbox] == [2]
    assert b"reservationCreated" not in b"".join(frame for _, frame in watcher.outbox)
