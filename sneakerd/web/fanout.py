"""The actors' sink on one node: the native WebSocket hub, then every other live feed.

Each committed batch goes to the hub and to each feed in `feeds` (the Socket.IO feed, and
whatever else subscribes to committed events), in that order, from the one `publish` call the
actor (or, on a cluster, the events bus) makes. A feed that raises is logged and skipped: one
feed's bug must never reach the actor that called, nor the feeds after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sneakerd.actors.sink import EventSink
from sneakerd.domain.events import DropEvent
from sneakerd.web.hub import Hub

log = logging.getLogger(__name__)


class Fanout:
    """An `EventSink` (with the hub's `resync`, which the events bus calls on a seq gap)."""

    def __init__(self, hub: Hub, feeds: Sequence[EventSink]) -> None:
        self._hub = hub
        self._feeds = feeds

    def publish(self, events: Sequence[DropEvent]) -> None:
        self._hub.publish(events)
        for feed in self._feeds:
            try:
                feed.publish(events)
            except Exception:
                log.exception("a live feed failed on a batch of events")

    def resync(self, drop_id: int) -> None:
        self._hub.resync(drop_id)
