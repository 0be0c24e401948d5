"""The one front of the two customer writes, reserve and purchase: every step, once, in order.

1. who is asking: the bearer token (401);
2. their request rate (429);
3. the body, read and loaded by the route's schema (400/422);
4. whether the user exists here (401, `KnownUsers`: a cached, batched lookup), so that a token
   of a user this database does not have never reaches a drop's batch;
5. the Idempotency-Key: a kept answer is replayed, a key in flight is a 409 (`Idempotency`);
6. the act, through the drop's actor.

The order keeps refusals cheap: a step refuses before the costlier steps after it run. One
shortcut, for reserve: a refusal that the drop's committed state already shows (sold out, limit
reached, not live, no such drop) is read from the drop's actor before step 4 (`refusal`) and is
the answer, without the user check; in a burst nearly every request is one. A request with an
Idempotency-Key still gets the check, since its answer is kept under the user, who must exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web
from marshmallow import Schema
from prometheus_client import Counter

from sneakerd import errors
from sneakerd.domain.commands import RequestKey
from sneakerd.web import keys, read_gate
from sneakerd.web.idempotency import KEY_HEADER, Act, Answer, Rebuild
from sneakerd.web.jsonio import read_object
from sneakerd.web.routes.common import principal


@dataclass(frozen=True, slots=True)
class Customer:
    """Who asks, known to exist here."""

    user_id: int
    username: str


CustomerAct = Callable[[Customer, Any, RequestKey | None], Awaitable[Answer]]
"""The act: who asks, the loaded body, and the key to record a success under."""

Refusal = Callable[[int, Any], Awaitable[errors.DomainError | None]]
"""A refusal known before the act (from the user id and the loaded body), or None."""


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Where a route counts how its acts end: `success`, an error code, or "unavailable"."""

    counter: Counter
    success: str

    def count(self, outcome: str) -> None:
        self.counter.labels(outcome).inc()

    def around(self, act: Act) -> Act:
        """`act`, counting how each call of it ends."""

        async def counted(key: RequestKey | None) -> Answer:
            try:
                answer = await act(key)
            except errors.DomainError as exc:
                self.count(exc.code)
                raise
            except errors.Unavailable:
                self.count("unavailable")
                raise
            self.count(self.success)
            return answer

        return counted


async def customer_write(
    request: web.Request,
    schema: Schema,
    act: CustomerAct,
    rebuild: Rebuild,
    *,
    refusal: Refusal | None = None,
    outcomes: Outcomes | None = None,
) -> web.Response:
    """Answer a customer's write through the steps of the module docstring. `rebuild` gives a
    recorded success's body again (see `Idempotency.run`); `outcomes` counts how each act
    ends (a refusal `refusal` found included), never a refusal of steps 1-4 nor a replay."""
    app = request.app
    who = principal(request)
    await app[keys.RESERVE_LIMIT].check(who.user_id)
    data = schema.load(await read_object(request))
    try:
        refused = None if refusal is None else await refusal(who.user_id, data)
    except errors.Unavailable:
        if outcomes is not None:
            outcomes.count("unavailable")
        raise
    read_gate.note(request, refused is not None)  # a refused crowd waits to be read (see there)
    known = app[keys.KNOWN_USERS].username

    async def answer(do: Act) -> web.Response:
        if outcomes is not None:
            do = outcomes.around(do)
        return await app[keys.IDEMPOTENCY].run(request, who.user_id, do, rebuild)

    if refused is not None:
        if KEY_HEADER in request.headers:
            await known(who.user_id)  # the answer is kept under the user, who must exist
        return await answer(_refusing(refused))
    # The rest takes several loop turns (the user check, the act's batch and commit): a crowd's
    # refusals decided meanwhile make room for it (`sneakerd.pacer`).
    with app[keys.SERVICE].other_work():
        return await answer(partial(act, Customer(who.user_id, await known(who.user_id)), data))


def _refusing(refused: errors.DomainError) -> Act:
    """An act that answers `refused` (known before the act) and does nothing."""

    async def refuse(key: RequestKey | None) -> Answer:
        raise refused

    return refuse
