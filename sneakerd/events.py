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


class NullSink:
    """Publishes nowhere: for the CLI and for servers with no watchers yet."""

    def publish(self, events: Sequence[DropEvent]) -> None:
        return None


class RecordingSink:
    """Keeps every event, in order; tests read `events`."""

    def __init__(self) -> None:
        self.events: list[DropEvent] = []

    def publish(self, events: Sequence[DropEvent]) -> None:
        self.events.extend(events)
