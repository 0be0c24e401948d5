"""Commands, replies, errors and events as JSON, losslessly, for messages between nodes.

A write forwarded to a drop's owner must come back as exactly what a local ask would have
given: the same record (Decimal prices, int ms times), the same `Rejection` (its error class,
message and field), the same exception class. So every value is written with an explicit tag
and read back strictly: anything the codec did not write is a `WireError`, never a half-built
value or a KeyError deep inside a handler. orjson does the bytes.

Two layers: `*_to_json` / `*_from_json` build and read plain JSON values (the peer protocol
nests them in its frames), and `encode_*` / `decode_*` are the same as bytes.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, assert_never

import orjson

from sneakerd import errors
from sneakerd.cluster import wire_raffle
from sneakerd.cluster.wire_queue import ticket_from_json, ticket_to_json
from sneakerd.domain.book import Reply
from sneakerd.domain.commands import (
    Cancel,
    Command,
    DeleteDrop,
    Enter,
    Expire,
    JoinQueue,
    Purchase,
    RequestKey,
    Reserve,
    UpdateDrop,
)
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.queue import QueueTicket, TicketRef
from sneakerd.domain.raffle import EntryRecord
from sneakerd.domain.rules import Rejection

Json = Any
"""A JSON value as orjson reads and writes it."""


class WireError(ValueError):
    """A message that is not one this codec writes (a bug, or a peer of another version)."""


class RemoteFailure(errors.SneakerdError):
    """The owner failed in a way that has no class of its own here: a bug there, or a message
    it could not read. Deliberately not `Unavailable`: a bug is answered as a bug (500) on the
    node that forwarded, as it would be on the owner, not as "retry later"."""


# -- reading, strictly -----------------------------------------------------------------------


class Obj:
    """A JSON object being read: each getter checks the type it returns."""

    __slots__ = ("_data", "_what")

    def __init__(self, value: Json, what: str) -> None:
        if not isinstance(value, dict):
            raise WireError(f"{what}: expected an object")
        self._data: dict[str, Json] = value
        self._what = what

    def _get(self, key: str) -> Json:
        try:
            return self._data[key]
        except KeyError:
            raise WireError(f"{self._what}: missing {key!r}") from None

    def _bad(self, key: str, kind: str) -> WireError:
        return WireError(f"{self._what}: {key!r} must be {kind}")

    def integer(self, key: str) -> int:
        value = self._get(key)
        if type(value) is not int:  # a bool is an int to isinstance, not here
            raise self._bad(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self._get(key) is None else self.integer(key)

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self._get(key) is None else self.text(key)

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return value

    def amount(self, key: str) -> Decimal:
        text = self.text(key)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise self._bad(key, "a decimal string") from None
        if not amount.is_finite():
            raise self._bad(key, "a finite decimal")
        return amount

    def opt_amount(self, key: str) -> Decimal | None:
        return None if self._get(key) is None else self.amount(key)

    def items(self, key: str) -> list[Json]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def raw(self, key: str) -> Json:
        return self._get(key)


def _decimal(amount: Decimal) -> str:
    """A Decimal as its exact text (`str` keeps every digit and the exponent)."""
    if not amount.is_finite():
        raise WireError(f"not a finite amount: {amount}")
    return str(amount)


def _opt_decimal(amount: Decimal | None) -> str | None:
    return None if amount is None else _decimal(amount)


def loads(data: bytes | str) -> Json:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None


# -- commands --------------------------------------------------------------------------------


def _key_to_json(key: RequestKey | None) -> Json:
    if key is None:
        return None
    return {"scope": key.scope, "key": key.key, "fingerprint": key.fingerprint}


def _key_from_json(value: Json) -> RequestKey | None:
    if value is None:
        return None
    obj = Obj(value, "request key")
    return RequestKey(obj.text("scope"), obj.text("key"), obj.text("fingerprint"))


def command_to_json(command: Command) -> dict[str, Json]:
    match command:
        case Reserve():
            return {
                "k": "reserve",
                "user": command.user_id,
                "key": _key_to_json(command.key),
                "admitted": command.admitted,
            }
        case Enter():
            return wire_raffle.enter_to_json(command)
        case Cancel():
            return {"k": "cancel", "user": command.user_id, "reservation": command.reservation_id}
        case Purchase():
            return {
                "k": "purchase",
                "user": command.user_id,
                "reservation": command.reservation_id,
                "username": command.username,
                "key": _key_to_json(command.key),
            }
        case Expire():
            return {"k": "expire", "reservations": list(command.reservation_ids)}
        case UpdateDrop():
            return {
                "k": "update",
                "name": command.name,
                "price": _opt_decimal(command.price),
                "brand": command.brand,
                "description": command.description,
                "image_url": command.image_url,
                "per_user_limit": command.per_user_limit,
                "holds_per_user": command.holds_per_user,
                "starts_at": command.starts_at,
                "ends_at": command.ends_at,
                "clear": sorted(command.clear),
                "initial_stock": command.initial_stock,
                "paused": command.paused,
                "actor": command.actor,
                "available": command.available,
                "queue": command.queue,
                **wire_raffle.update_to_json(command),
            }
        case DeleteDrop():
            return {"k": "delete", "actor": command.actor}
        case JoinQueue():
            return {"k": "join_queue", "user": command.user_id, "join": command.join}
        case _:
            assert_never(command)


def command_from_json(value: Json) -> Command:
    obj = Obj(value, "command")
    kind = obj.text("k")
    if kind == "reserve":
        return Reserve(obj.integer("user"), _key_from_json(obj.raw("key")), obj.flag("admitted"))
    if kind == "enter":
        return wire_raffle.enter_from_json(obj)
    if kind == "cancel":
        return Cancel(obj.integer("user"), obj.integer("reservation"))
    if kind == "purchase":
        return Purchase(
            obj.integer("user"),
            obj.integer("reservation"),
            obj.text("username"),
            _key_from_json(obj.raw("key")),
        )
    if kind == "expire":
        ids = obj.items("reservations")
        if not all(type(i) is int for i in ids):
            raise WireError("command: 'reservations' must be integers")
        return Expire(tuple(ids))
    if kind == "update":
        clear = obj.items("clear")
        if not all(isinstance(name, str) for name in clear):
            raise WireError("command: 'clear' must be strings")
        return UpdateDrop(
            name=obj.opt_text("name"),
            price=obj.opt_amount("price"),
            brand=obj.opt_text("brand"),
            description=obj.opt_text("description"),
            image_url=obj.opt_text("image_url"),
            per_user_limit=obj.opt_integer("per_user_limit"),
            holds_per_user=obj.opt_integer("holds_per_user"),
            starts_at=obj.opt_integer("starts_at"),
            ends_at=obj.opt_integer("ends_at"),
            clear=frozenset(clear),
            initial_stock=obj.opt_integer("initial_stock"),
            paused=None if obj.raw("paused") is None else obj.flag("paused"),
            actor=obj.text("actor"),
            available=obj.opt_integer("available"),
            queue=None if obj.raw("queue") is None else obj.flag("queue"),
            **wire_raffle.update_from_json(obj),
        )
    if kind == "delete":
        return DeleteDrop(obj.text("actor"))
    if kind == "join_queue":
        return JoinQueue(obj.integer("user"), obj.flag("join"))
    raise WireError(f"command: unknown kind {kind!r}")


def encode_command(command: Command) -> bytes:
    return orjson.dumps(command_to_json(command))


def decode_command(data: bytes | str) -> Command:
    return command_from_json(loads(data))


# -- replies ---------------------------------------------------------------------------------


def _info_to_json(info: DropInfo) -> dict[str, Json]:
    return {
        "name": info.name,
        "price": _decimal(info.price),
        "brand": info.brand,
        "description": info.description,
        "image_url": info.image_url,
        "per_user_limit": info.per_user_limit,
        "holds_per_user": info.holds_per_user,
        "starts_at": info.starts_at,
        "ends_at": info.ends_at,
        **wire_raffle.info_to_json(info),
        "paused": info.paused,
        "queue": info.queue,
    }


def _info_from_json(value: Json) -> DropInfo:
    obj = Obj(value, "drop info")
    return DropInfo(
        name=obj.text("name"),
        price=obj.amount("price"),
        brand=obj.opt_text("brand"),
        description=obj.opt_text("description"),
        image_url=obj.opt_text("image_url"),
        per_user_limit=obj.integer("per_user_limit"),
        holds_per_user=obj.integer("holds_per_user"),
        starts_at=obj.integer("starts_at"),
        ends_at=obj.opt_integer("ends_at"),
        **wire_raffle.info_from_json(obj),
        paused=obj.flag("paused"),
        queue=obj.flag("queue"),
    )


def drop_to_json(drop: Drop) -> dict[str, Json]:
    return {
        "id": drop.id,
        "info": _info_to_json(drop.info),
        "initial_stock": drop.initial_stock,
        "stock": drop.stock,
        "reserved": drop.reserved,
        "sold": drop.sold,
        "version": drop.version,
        "created_at": drop.created_at,
        "updated_at": drop.updated_at,
        "deleted": drop.deleted,
        "raffle": wire_raffle.raffle_to_json(drop),
    }


def drop_from_json(value: Json) -> Drop:
    obj = Obj(value, "drop")
    return Drop(
        id=obj.integer("id"),
        info=_info_from_json(obj.raw("info")),
        initial_stock=obj.integer("initial_stock"),
        stock=obj.integer("stock"),
        reserved=obj.integer("reserved"),
        sold=obj.integer("sold"),
        version=obj.integer("version"),
        created_at=obj.integer("created_at"),
        updated_at=obj.integer("updated_at"),
        deleted=obj.flag("deleted"),
        raffle=wire_raffle.raffle_from_json(obj.raw("raffle"), Obj),
    )


def _domain_code(cls: type[errors.DomainError]) -> str:
    """The code of a DomainError class that the other side can map back to the same class."""
    if errors.DOMAIN_ERRORS.get(cls.code) is not cls:
        raise WireError(f"{cls.__name__} is not a registered domain error")
    return cls.code


def _domain_class(code: str) -> type[errors.DomainError]:
    try:
        return errors.DOMAIN_ERRORS[code]
    except KeyError:
        raise WireError(f"unknown domain error code {code!r}") from None


def reply_to_json(reply: Reply) -> Json:
    match reply:
        case None:
            return None
        case ReservationRecord():
            return {
                "t": "reservation",
                "id": reply.id,
                "drop_id": reply.drop_id,
                "user_id": reply.user_id,
                "status": reply.status.value,
                "expires_at": reply.expires_at,
                "created_at": reply.created_at,
            }
        case PurchaseRecord():
            return {
                "t": "purchase",
                "id": reply.id,
                "drop_id": reply.drop_id,
                "user_id": reply.user_id,
                "reservation_id": reply.reservation_id,
                "price": _decimal(reply.price),
                "created_at": reply.created_at,
            }
        case Drop():
            return {"t": "drop", "drop": drop_to_json(reply)}
        case EntryRecord():
            return wire_raffle.entry_to_json(reply)
        case Rejection():
            return {
                "t": "rejection",
                "code": _domain_code(reply.error),
                "message": reply.message,
                "field": reply.field,
            }
        case QueueTicket():
            return ticket_to_json(reply)
        case TicketRef():  # the actor answers the ticket itself, never this
            raise WireError("a ticket reference is not an answer")
        case _:
            assert_never(reply)


def reply_from_json(value: Json) -> Reply:
    if value is None:
        return None
    obj = Obj(value, "reply")
    kind = obj.text("t")
    if kind == "reservation":
        status = obj.text("status")
        try:
            parsed = ReservationStatus(status)
        except ValueError:
            raise WireError(f"reply: unknown reservation status {status!r}") from None
        return ReservationRecord(
            obj.integer("id"),
            obj.integer("drop_id"),
            obj.integer("user_id"),
            parsed,
            obj.integer("expires_at"),
            obj.integer("created_at"),
        )
    if kind == "purchase":
        return PurchaseRecord(
            obj.integer("id"),
            obj.integer("drop_id"),
            obj.integer("user_id"),
            obj.integer("reservation_id"),
            obj.amount("price"),
            obj.integer("created_at"),
        )
    if kind == "drop":
        return drop_from_json(obj.raw("drop"))
    if kind == "entry":
        return wire_raffle.entry_from_json(obj)
    if kind == "rejection":
        error = _domain_class(obj.text("code"))
        return Rejection(error, obj.text("message"), obj.opt_text("field"))
    if kind == "ticket":
        return ticket_from_json(obj)
    raise WireError(f"reply: unknown kind {kind!r}")


def encode_reply(reply: Reply) -> bytes:
    return orjson.dumps(reply_to_json(reply))


def decode_reply(data: bytes | str) -> Reply:
    return reply_from_json(loads(data))


# -- errors raised by the owner's ask --------------------------------------------------------


def error_to_json(exc: BaseException) -> dict[str, Json]:
    """What the caller needs to raise the same error: its kind, code and message.

    Anything without a class of its own here (a bug on the owner) becomes a `failure` that
    names only the exception's type: its text may hold internals that no client should see.
    """
    if isinstance(exc, errors.DomainError) and errors.DOMAIN_ERRORS.get(exc.code) is type(exc):
        body: dict[str, Json] = {"kind": "domain", "code": exc.code, "message": exc.message}
        if isinstance(exc, errors.InvalidDrop):
            body["field"] = exc.field
        return body
    if isinstance(exc, errors.ActorStopped):
        return {"kind": "actor_stopped", "message": str(exc)}
    if isinstance(exc, errors.RowRefused):
        return {"kind": "row_refused", "message": str(exc)}
    if isinstance(exc, errors.Unavailable):
        return {"kind": "unavailable", "message": str(exc)}
    if isinstance(exc, RemoteFailure):
        return {"kind": "failure", "message": str(exc)}
    return {"kind": "failure", "message": f"the owner failed with {type(exc).__name__}"}


def error_from_json(value: Json) -> Exception:
    """The exception to raise on the caller: the same class, code, message (and field)."""
    obj = Obj(value, "error")
    kind = obj.text("kind")
    message = obj.text("message")
    if kind == "domain":
        cls = _domain_class(obj.text("code"))
        if cls is errors.InvalidDrop:
            return errors.InvalidDrop(message, obj.text("field"))
        return cls(message)
    if kind == "actor_stopped":
        return errors.ActorStopped(message)
    if kind == "row_refused":
        return errors.RowRefused(message)
    if kind == "unavailable":
        return errors.Unavailable(message)
    if kind == "failure":
        return RemoteFailure(message)
    raise WireError(f"error: unknown kind {kind!r}")


def encode_error(exc: BaseException) -> bytes:
    return orjson.dumps(error_to_json(exc))


def decode_error(data: bytes | str) -> Exception:
    return error_from_json(loads(data))
