"""Reserve's and purchase's bodies load the same with the shortcut as through marshmallow.

`OneIdRequest.load` answers a plainly valid body itself; this compares it with marshmallow's
own `Schema.load` on arbitrary bodies: the same value, or the same refusal and messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import EXCLUDE, Schema, ValidationError

from sneakerd.web.compat import bodies as compat_bodies
from sneakerd.web.schemas import bodies
from sneakerd.web.schemas.fields import MAX_ID

SCHEMAS: list[bodies.OneIdRequest] = [
    bodies.RESERVE,
    bodies.PURCHASE,
    compat_bodies.RESERVE,
    compat_bodies.PURCHASE,
    bodies.ReserveRequest(unknown=EXCLUDE),
]

values = st.one_of(
    st.integers(min_value=-3, max_value=5),
    st.integers(min_value=MAX_ID - 2, max_value=MAX_ID + 2),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
)
keys = st.sampled_from(["dropId", "reservationId", "drop_id", "x", ""])


def bodies_for(schema: bodies.OneIdRequest) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly the schema's own key alone (the shortcut's case), else anything."""
    own = st.builds(lambda v: {schema.KEY: v}, values)
    return st.one_of(own, own, st.dictionaries(keys, values, max_size=3))


def outcome(load: Any, data: Any) -> tuple[str, Any]:
    try:
        return ("loaded", load(data))
    except ValidationError as refused:
        return ("refused", refused.messages)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{type(s).__module__}:{s.unknown}")
@given(draw=st.data())
def test_the_shortcut_loads_and_refuses_as_marshmallow_does(
    schema: bodies.OneIdRequest, draw: st.DataObject
) -> None:
    data = draw.draw(bodies_for(schema))
    fast = outcome(schema.load, data)
    reference = outcome(lambda d: Schema.load(schema, d), data)
    assert fast == reference


@pytest.mark.parametrize("data", [[{"dropId": 1}], "dropId", 7, None])
def test_a_body_that_is_not_an_object_goes_to_marshmallow(data: Any) -> None:
    assert outcome(bodies.RESERVE.load, data) == outcome(
        lambda d: Schema.load(bodies.RESERVE, d), data
    )


def test_the_shortcut_is_taken_for_a_plain_body() -> None:
    assert bodies.RESERVE.load({"dropId": 12}) == {"drop_id": 12}
    assert bodies.PURCHASE.load({"reservationId": MAX_ID}) == {"reservation_id": MAX_ID}
