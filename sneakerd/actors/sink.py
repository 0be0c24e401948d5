"""Where a drop actor sends the events of each committed batch.

The WebSocket hub implements `EventSink`. `publish` must not block or await: the actor calls it
right after a commit, and a slow subscriber must never slow the drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sneakerd.domain.events import DropEvent


class EventSink(Protocol):
    def publish(self, events: Sequence[DropEvent]) -> None: ...


class ResyncingSink(EventSink, Protocol):
    """A sink that can also be told a drop's events had a gap (the events bus does)."""

    def resync(self, drop_id: int) -> None: ...


class RecordingSink:
    """Keeps every event, in order: an actor without watchers (tests read `events`)."""

    def __init__(self) -> None:
        self.events: list[DropEvent] = []

    def publish(self, events: Sequence[DropEvent]) -> None:
        self.events.extend(events)
