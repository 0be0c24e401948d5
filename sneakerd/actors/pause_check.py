"""Reading a paused drop again: how an actor learns of a write it did not make.

The operator CLI pauses and unpauses a drop in the database, with the same version-checked
commit an actor uses, not through the running server's actor. A pause is found by the actor's
next commit (the version check refuses it and the actor reloads). An unpause is not: a paused
drop refuses every reserve and purchase, so its actor commits nothing and would keep refusing
from memory for ever. So while its drop is paused, an actor reads the drop again before a
batch, at most once every `RECHECK_MS`, and does not trust its early refusal of a paused drop
when such a read is due (the request goes to a batch, which reads first). A burst against a
paused drop costs at most one read a second.

Whatever such a read (or a version conflict's reload) finds changed by another writer is told
to watchers as the `dropUpdated` it was, with the stored version as its seq.
"""

from __future__ import annotations

from sneakerd.clock import Clock
from sneakerd.domain.events import DropEvent, DropUpdated
from sneakerd.domain.model import Drop, DropState

RECHECK_MS = 1_000


class PauseRecheck:
    def __init__(self, clock: Clock, every_ms: int = RECHECK_MS) -> None:
        self._clock = clock
        self._every_ms = every_ms
        self._at: int | None = None

    def due(self, state: DropState | None) -> bool:
        """True when the drop is paused and was not read again within the last `every_ms`."""
        if state is None or not state.drop.info.paused:
            return False
        return self._at is None or self._clock.now_ms() - self._at >= self._every_ms

    def mark(self) -> None:
        self._at = self._clock.now_ms()


def written_elsewhere(before: Drop, after: Drop) -> tuple[DropEvent, ...]:
    """The `dropUpdated` for a change of the drop's description that a reload found (another
    writer's commit), or nothing if the reload found no such change."""
    if after.version > before.version and after.info != before.info and not after.deleted:
        return (DropUpdated(after.id, after.version, after),)
    return ()
