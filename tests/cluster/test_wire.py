"""The codec between nodes loses nothing: decode(encode(x)) == x for every kind, and anything
it did not write is a WireError, never another exception from deep inside."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakerd import errors
from sneakerd.cluster import wire, wire_events
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
from sneakerd.domain.events import (
    DropDeleted,
    DropEvent,
    DropUpdated,
    Expired,
    Purchased,
    StockChanged,
)
from sneakerd.domain.model import (
    Drop,
    DropInfo,
    DropMode,
    PurchaseRecord,
    ReservationRecord,
    ReservationStatus,
)
from sneakerd.domain.queue import QueueTicket
from sneakerd.domain.raffle import EntryRecord, Raffle
from sneakerd.domain.rules import Rejection

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
"""Ids, counts and ms times: anything a 64-bit column holds."""
opt_ints = st.none() | ints
texts = st.text()
opt_texts = st.none() | texts
amounts = st.decimals(allow_nan=False, allow_infinity=False)
"""Any finite Decimal, with any exponent: "1.0" and "1.00" must stay apart."""

keys = st.none() | st.builds(RequestKey, texts, texts, texts)

commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(Reserve, ints, keys, st.booleans()),
    st.builds(Enter, ints),
    st.builds(JoinQueue, ints, st.booleans()),
    st.builds(Cancel, ints, ints),
    st.builds(Purchase, ints, ints, texts, keys),
    st.builds(Expire, st.lists(ints).map(tuple)),
    st.builds(
        UpdateDrop,
        name=opt_texts,
        price=st.none() | amounts,
        brand=opt_texts,
        description=opt_texts,
        image_url=opt_texts,
        per_user_limit=opt_ints,
        holds_per_user=opt_ints,
        starts_at=opt_ints,
        ends_at=opt_ints,
        clear=st.frozensets(texts),
        initial_stock=opt_ints,
        mode=st.none() | st.sampled_from(list(DropMode)),
        entries_open_at=opt_ints,
        entries_close_at=opt_ints,
        claim_seconds=opt_ints,
        seed=st.none() | st.binary(min_size=32, max_size=32),
        paused=st.none() | st.booleans(),
        actor=texts,
        queue=st.none() | st.booleans(),
    ),
    st.builds(DeleteDrop, texts),
)

infos = st.builds(
    DropInfo,
    name=texts,
    price=amounts,
    brand=opt_texts,
    description=opt_texts,
    image_url=opt_texts,
    per_user_limit=ints,
    holds_per_user=ints,
    starts_at=ints,
    ends_at=opt_ints,
    mode=st.sampled_from(list(DropMode)),
    entries_open_at=opt_ints,
    entries_close_at=opt_ints,
    claim_seconds=ints,
    paused=st.booleans(),
    queue=st.booleans(),
)
raffles = st.none() | st.builds(
    Raffle,
    st.binary(min_size=32, max_size=32),
    st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    opt_ints,
    ints,
    ints,
)
drops = st.builds(
    Drop, ints, infos, ints, ints, ints, ints, ints, ints, ints, st.booleans(), raffles
)
domain_classes = st.sampled_from(sorted(errors.DOMAIN_ERRORS.values(), key=lambda c: c.code))

replies = st.one_of(
    st.none(),
    st.builds(
        ReservationRecord, ints, ints, ints, st.sampled_from(list(ReservationStatus)), ints, ints
    ),
    st.builds(PurchaseRecord, ints, ints, ints, ints, amounts, ints),
    st.builds(EntryRecord, ints, ints, ints, ints),
    drops,
    st.builds(Rejection, domain_classes, texts, opt_texts),
    st.builds(
        QueueTicket, ints, ints, opt_ints, ints, st.booleans(), opt_ints, st.booleans(), opt_ints
    ),
)

events: st.SearchStrategy[DropEvent] = st.one_of(
    st.builds(StockChanged, ints, ints, ints, ints, ints),
    st.builds(Expired, ints, ints, ints),
    st.builds(Purchased, ints, ints, ints, texts),
    st.builds(DropUpdated, ints, ints, drops),
    st.builds(DropDeleted, ints, ints),
)

json_values = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400)
@given(commands)
def test_every_command_round_trips(command: Command) -> None:
    decoded = wire.decode_command(wire.encode_command(command))
    assert decoded == command
    if isinstance(command, UpdateDrop) and command.price is not None:
        assert isinstance(decoded, UpdateDrop)
        assert repr(decoded.price) == repr(command.price)


@settings(max_examples=400)
@given(replies)
def test_every_reply_round_trips(reply: object) -> None:
    decoded = wire.decode_reply(wire.encode_reply(reply))  # type: ignore[arg-type]
    assert decoded == reply
    # Equal Decimals may differ in exponent ("1.0" == "1.00"); the reprs show it.
    assert repr(decoded) == repr(reply)


@settings(max_examples=300)
@given(st.lists(events, max_size=8))
def test_every_event_batch_round_trips_in_order(batch: list[DropEvent]) -> None:
    decoded = wire_events.decode_events(wire_events.encode_events(batch))
    assert decoded == batch
    assert repr(decoded) == repr(batch)


@given(domain_classes, texts, texts)
def test_a_domain_error_comes_back_as_its_own_class(
    cls: type[errors.DomainError], message: str, field: str
) -> None:
    exc = errors.InvalidDrop(message, field) if cls is errors.InvalidDrop else cls(message)
    decoded = wire.decode_error(wire.encode_error(exc))
    assert type(decoded) is cls
    assert isinstance(decoded, errors.DomainError)
    assert decoded.message == exc.message
    assert decoded.code == exc.code
    if isinstance(exc, errors.InvalidDrop):
        assert isinstance(decoded, errors.InvalidDrop)
        assert decoded.field == field


@given(st.sampled_from([errors.Unavailable, errors.ActorStopped, errors.RowRefused]), texts)
def test_unavailable_and_actor_stopped_keep_their_class_and_message(
    cls: type[errors.Unavailable], message: str
) -> None:
    decoded = wire.decode_error(wire.encode_error(cls(message)))
    assert type(decoded) is cls
    assert str(decoded) == message


def test_a_rejection_maps_its_code_back_to_the_error_class() -> None:
    rejection = Rejection(errors.InvalidDrop, "endsAt must be after startsAt", "endsAt")
    decoded = wire.decode_reply(wire.encode_reply(rejection))
    assert isinstance(decoded, Rejection)
    assert decoded.error is errors.InvalidDrop
    error = decoded.to_error()
    assert isinstance(error, errors.InvalidDrop) and error.field == "endsAt"


def test_an_unexpected_exception_becomes_a_failure_that_hides_its_text() -> None:
    decoded = wire.decode_error(wire.encode_error(RuntimeError("password=hunter2 at 0x7f")))
    assert type(decoded) is wire.RemoteFailure
    assert "hunter2" not in str(decoded)
    assert "RuntimeError" in str(decoded)


def test_a_prices_exact_text_survives() -> None:
    record = PurchaseRecord(1, 2, 3, 4, Decimal("199.90"), 1_700_000_000_000)
    decoded = wire.decode_reply(wire.encode_reply(record))
    assert isinstance(decoded, PurchaseRecord)
    assert str(decoded.price) == "199.90"


def test_an_unregistered_domain_error_class_is_refused_on_encode() -> None:
    class Homemade(errors.DomainError):
        code = "out_of_stock"  # borrows a code: decoding would give another class

    with pytest.raises(wire.WireError):
        wire.encode_reply(Rejection(Homemade, "no"))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"k": "launch"}',
        b'{"k": "reserve"}',
        b'{"k": "reserve", "user": true, "key": null}',
        b'{"k": "reserve", "user": "1", "key": null}',
        b'{"k": "cancel", "user": 1, "reservation": 2.0}',
        b'{"k": "expire", "reservations": [1, "2"]}',
        b'{"k": "update", "clear": [1]}',
        b'{"k": "purchase", "user": 1, "reservation": 2, "username": 3, "key": null}',
        b'{"k": "reserve", "user": 1, "key": {"scope": "s", "key": "k"}}',
    ],
)
def test_a_malformed_command_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_command(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"t": "purchase", "id": 1, "drop_id": 1, "user_id": 1, "reservation_id": 1,'
        b' "price": "NaN", "created_at": 1}',
        b'{"t": "purchase", "id": 1, "drop_id": 1, "user_id": 1, "reservation_id": 1,'
        b' "price": "cheap", "created_at": 1}',
        b'{"t": "reservation", "id": 1, "drop_id": 1, "user_id": 1, "status": "lost",'
        b' "expires_at": 1, "created_at": 1}',
        b'{"t": "rejection", "code": "no_such_code", "message": "m", "field": null}',
        b'{"t": "drop", "drop": []}',
        b'{"t": "boot"}',
    ],
)
def test_a_malformed_reply_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_reply(data)


@pytest.mark.parametrize(
    "data",
    [b'{"kind": "domain", "code": "nope", "message": "m"}', b'{"kind": "x", "message": "m"}'],
)
def test_a_malformed_error_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_error(data)


def test_malformed_events_are_a_wire_error() -> None:
    with pytest.raises(wire.WireError):
        wire_events.decode_events(b'{"t": "stock"}')
    with pytest.raises(wire.WireError):
        wire_events.decode_events(b'[{"t": "stock", "drop_id": 1, "seq": 2}]')


@settings(max_examples=400)
@given(json_values)
def test_any_json_decodes_to_a_value_or_a_wire_error(value: object) -> None:
    """Whatever a peer sends, the reader answers with a value or a WireError: never a
    KeyError, TypeError or AttributeError from inside."""
    for read in (
        wire.command_from_json,
        wire.reply_from_json,
        wire.error_from_json,
        wire_events.event_from_json,
    ):
        with contextlib.suppress(wire.WireError):
            read(value)
