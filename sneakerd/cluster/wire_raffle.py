"""The raffle's part of the peers' wire format (`wire`): an entry command and its reply, and
the raffle fields of a drop, of its description and of an admin's change, as JSON.

Kept apart so that `wire` stays one module per concept; `wire` calls these where a command, a
reply or a drop carries raffle fields. The seed travels between nodes only as the drop row
does (the peers are the same deployment, authenticated by `peer_auth`), never to a client.
"""

from __future__ import annotations

from typing import Any, Protocol

from sneakerd.domain.commands import Enter, UpdateDrop
from sneakerd.domain.model import Drop, DropInfo, DropMode
from sneakerd.domain.raffle import EntryRecord, Raffle

Json = Any


class Fields(Protocol):
    """What `wire.Obj` offers: typed reads that raise `WireError` on a bad value."""

    def integer(self, key: str) -> int: ...

    def opt_integer(self, key: str) -> int | None: ...

    def text(self, key: str) -> str: ...

    def opt_text(self, key: str) -> str | None: ...

    def raw(self, key: str) -> Json: ...


def _mode(text: str | None) -> DropMode | None:
    return None if text is None else DropMode(text)


def enter_to_json(command: Enter) -> dict[str, Json]:
    return {"k": "enter", "user": command.user_id}


def enter_from_json(obj: Fields) -> Enter:
    return Enter(obj.integer("user"))


def update_to_json(command: UpdateDrop) -> dict[str, Json]:
    return {
        "mode": None if command.mode is None else command.mode.value,
        "entries_open_at": command.entries_open_at,
        "entries_close_at": command.entries_close_at,
        "claim_seconds": command.claim_seconds,
        "seed": None if command.seed is None else command.seed.hex(),
    }


def update_from_json(obj: Fields) -> dict[str, Any]:
    """The raffle keyword arguments of an `UpdateDrop`."""
    seed = obj.opt_text("seed")
    return {
        "mode": _mode(obj.opt_text("mode")),
        "entries_open_at": obj.opt_integer("entries_open_at"),
        "entries_close_at": obj.opt_integer("entries_close_at"),
        "claim_seconds": obj.opt_integer("claim_seconds"),
        "seed": None if seed is None else bytes.fromhex(seed),
    }


def info_to_json(info: DropInfo) -> dict[str, Json]:
    return {
        "mode": info.mode.value,
        "entries_open_at": info.entries_open_at,
        "entries_close_at": info.entries_close_at,
        "claim_seconds": info.claim_seconds,
    }


def info_from_json(obj: Fields) -> dict[str, Any]:
    """The raffle keyword arguments of a `DropInfo`."""
    return {
        "mode": DropMode(obj.text("mode")),
        "entries_open_at": obj.opt_integer("entries_open_at"),
        "entries_close_at": obj.opt_integer("entries_close_at"),
        "claim_seconds": obj.integer("claim_seconds"),
    }


def raffle_to_json(drop: Drop) -> Json:
    raffle = drop.raffle
    if raffle is None:
        return None
    return {
        "seed": raffle.seed.hex(),
        "digest": raffle.digest,
        "drawn_at": raffle.drawn_at,
        "winners": raffle.winners,
        "entries": raffle.entries,
    }


def raffle_from_json(value: Json, fields: type[Any]) -> Raffle | None:
    """`fields` is `wire.Obj`, passed in so that this module does not import `wire`."""
    if value is None:
        return None
    obj: Fields = fields(value, "raffle")
    return Raffle(
        seed=bytes.fromhex(obj.text("seed")),
        digest=obj.opt_text("digest"),
        drawn_at=obj.opt_integer("drawn_at"),
        winners=obj.integer("winners"),
        entries=obj.integer("entries"),
    )


def entry_to_json(entry: EntryRecord) -> dict[str, Json]:
    return {
        "t": "entry",
        "id": entry.id,
        "drop_id": entry.drop_id,
        "user_id": entry.user_id,
        "created_at": entry.created_at,
    }


def entry_from_json(obj: Fields) -> EntryRecord:
    return EntryRecord(
        obj.integer("id"), obj.integer("drop_id"), obj.integer("user_id"), obj.integer("created_at")
    )
