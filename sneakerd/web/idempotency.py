"""`Idempotency-Key` on reserve and purchase: the same key from the same user gets the first
answer again and never acts twice.

A key is scoped to its endpoint: clients commonly derive keys from a per-checkout id, so the
same key on POST /api/reservations and then POST /api/purchases are two different attempts,
and replaying the hold as the purchase's answer would tell the client it had paid.

The first answer (success or a refusal, never a 429 or 503, which did nothing) is kept in the
`idempotency_keys` table. A success is recorded by the drop's actor in the very commit that
made the hold or the sale (`RequestKey`), so no crash can separate the act from its key; it is
replayed by rebuilding the answer from that record. A refusal changed nothing, so it is saved
after the fact. Requests with a key already in flight in this process wait for the first one
instead of racing it, so a client that retries on a timeout cannot make two holds.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from sneakerd.clock import Clock
from sneakerd.domain.commands import RequestKey
from sneakerd.store import Store, StoredAnswer
from sneakerd.web.jsonio import JSON
from sneakerd.web.problems import ApiError, error_body, to_api_error

KEY_PATTERN = re.compile(r"[ -~]{1,255}")
REPLAYED = "Idempotent-Replayed"


class Answer(NamedTuple):
    status: int
    body: dict[str, Any]
    recorded: bool = False
    """True when the act recorded itself under the key (in the commit that made it)."""


Act = Callable[[RequestKey | None], Awaitable[Answer]]
Rebuild = Callable[[int], Awaitable[dict[str, Any] | None]]


class Idempotency:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._inflight: dict[tuple[int, str, str], asyncio.Future[None]] = {}

    async def run(
        self, request: web.Request, user_id: int, act: Act, rebuild: Rebuild
    ) -> web.Response:
        """`act` does the work (with the key to record a success under); `rebuild` gives the
        body of a recorded success from its `ref_id` again."""
        key = request.headers.get("Idempotency-Key")
        if key is None:
            status, body, _ = await act(None)
            return _response(status, body)
        if not KEY_PATTERN.fullmatch(key):
            raise ApiError(
                422,
                "validation_error",
                "Idempotency-Key must be 1-255 visible ASCII characters",
                {"Idempotency-Key": ["Must be 1-255 visible ASCII characters or spaces."]},
            )
        request_line = f"{request.method} {request.path}"
        slot = (user_id, request_line, key)
        while (waiting := self._inflight.get(slot)) is not None:
            await asyncio.shield(waiting)
        # Claimed before any await, so a concurrent twin waits above instead of racing us.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[slot] = done
        try:
            kept = await self._store.idempotent_answer(user_id, request_line, key)
            if kept is not None:
                return await _replay(kept, rebuild)
            try:
                status, body, recorded = await act(RequestKey(request_line, key))
                if recorded:
                    return _response(status, body)
            except Exception as exc:
                api_error = to_api_error(exc)
                if api_error is None or api_error.status in (429, 503):
                    raise
                status = api_error.status
                body = error_body(api_error.code, api_error.message, api_error.details)
            answer = StoredAnswer(request_line, status, orjson.dumps(body).decode())
            kept = await self._store.save_idempotent_answer(
                user_id, key, answer, self._clock.now_ms()
            )
            if kept is not answer:
                return await _replay(kept, rebuild)
            return _response(status, body)
        finally:
            del self._inflight[slot]
            done.set_result(None)


def _response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


async def _replay(answer: StoredAnswer, rebuild: Rebuild) -> web.Response:
    body = answer.body.encode()
    if answer.ref_id is not None:
        rebuilt = await rebuild(answer.ref_id)
        if rebuilt is None:  # the record is gone (its drop was deleted): say what is true now
            raise ApiError(404, "not_found", "No such reservation")
        body = orjson.dumps(rebuilt)
    return web.Response(
        body=body,
        status=answer.status,
        content_type=JSON,
        headers={REPLAYED: "true"},
    )
