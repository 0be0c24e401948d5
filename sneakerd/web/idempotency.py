"""`Idempotency-Key` on reserve and purchase: the same key from the same user gets the first
answer again and never acts twice.

The rules (strict, as payment APIs have them):
- A key is compared byte for byte (`abc` and `ABC` are two keys) on every store.
- A key names one attempt at one request: the same key with another body, or on the other
  endpoint, is refused with 422 `idempotency_key_reused` rather than answered with the first
  request's answer (which would, say, tell a client that its purchase was a hold).
- A key whose first request is still running answers 409 `request_in_progress`; the client
  retries later and gets the first answer.
- 401, 403, 429 and 503 answers did nothing and are never kept, so a retry with the same key
  acts. Keys are forgotten `IDEMPOTENCY_TTL` seconds after their first answer.

The first answer is kept in the `idempotency_keys` table. A success is recorded by the drop's
actor in the very commit that made the hold or the sale (`RequestKey`), so no crash can separate
the act from its key; it is replayed by rebuilding the answer from that record. A refusal changed
nothing, so it is saved after the fact, whole, as `problems.problem` made it: its status, its
envelope and, beside the envelope's `error`, the headers it carried (a Retry-After), which a
replay sends again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from sneakerd import errors
from sneakerd.clock import Clock
from sneakerd.domain.commands import RequestKey
from sneakerd.store import Store, StoredAnswer
from sneakerd.web.jsonio import JSON
from sneakerd.web.problems import ApiError, Problem, problem

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"[ -~]{1,255}")
KEY_HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = "headers"
"""Where a kept refusal's headers sit in its stored body, beside the envelope's `error`."""


class Answer(NamedTuple):
    status: int
    body: dict[str, Any]
    recorded: bool = False
    """True when the act recorded itself under the key (in the commit that made it)."""


Act = Callable[[RequestKey | None], Awaitable[Answer]]
Rebuild = Callable[[int], Awaitable[dict[str, Any] | None]]


SWEEP_SECONDS = 300.0
"""How often expired keys are deleted at most."""

NEVER_KEPT = frozenset({401, 403, 429, 503})
"""Answers that did nothing the client asked for: a retry with the same key must act."""


def fingerprint(request_line: str, body: bytes) -> str:
    """A digest of what the request asks: its endpoint and its JSON body, with keys sorted
    and spacing dropped, so a client that re-encodes the same body is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(request_line.encode() + b"\n" + canonical).hexdigest()


class Idempotency:
    def __init__(self, store: Store, clock: Clock, ttl_ms: int) -> None:
        self._store = store
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._inflight: set[tuple[int, str]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start forgetting keys past their time to live, now and then (an owned task)."""
        self._sweeper = asyncio.create_task(self._sweep(), name="idempotency-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        # Lookups ignore expired keys themselves; this only keeps the table from growing.
        period = min(max(self._ttl_ms / 1000, 1.0), SWEEP_SECONDS)
        while True:
            await asyncio.sleep(period)
            try:
                await self.forget_expired()
            except errors.Unavailable:
                log.info("could not forget expired idempotency keys; will try again")

    async def run(
        self, request: web.Request, user_id: int, act: Act, rebuild: Rebuild
    ) -> web.Response:
        """`act` does the work (with the key to record a success under); `rebuild` gives the
        body of a recorded success from its `ref_id` again."""
        given = request.headers.getall(KEY_HEADER, [])
        if not given:
            status, body, _ = await act(None)
            return _response(status, body)
        if len(given) > 1:  # which answer would it want back? (a proxy would join them)
            raise ApiError(
                422,
                "validation_error",
                "Send one Idempotency-Key header, not several",
                {KEY_HEADER: ["Must be sent once."]},
            )
        key = given[0]
        if not KEY_PATTERN.fullmatch(key):
            raise ApiError(
                422,
                "validation_error",
                "Idempotency-Key must be 1-255 visible ASCII characters",
                {KEY_HEADER: ["Must be 1-255 visible ASCII characters or spaces."]},
            )
        request_line = f"{request.method} {request.path}"
        digest = fingerprint(request_line, await request.read())
        slot = (user_id, key)
        if slot in self._inflight:
            raise _in_progress()
        # Claimed before any await, so a concurrent twin is refused above instead of racing us.
        self._inflight.add(slot)
        try:
            kept = await self._kept(user_id, key)
            if kept is not None:
                return await _replay(kept, digest, rebuild)
            try:
                status, body, recorded = await act(RequestKey(request_line, key, digest))
            except errors.RowRefused:
                # Most often the key's own row: a twin through another node recorded it first.
                kept = await self._kept(user_id, key)
                if kept is not None:
                    return await _replay(kept, digest, rebuild)
                raise
            except Exception as exc:
                refused = _keepable(exc)
                if refused is None:
                    raise
                answer = refused
            else:
                if recorded:
                    return _response(status, body)
                answer = Problem(status, body, {})
            stored = StoredAnswer(request_line, answer.status, _stored(answer), None, digest)
            kept = await self._store.save_idempotent_answer(
                user_id, key, stored, self._clock.now_ms()
            )
            if kept is not stored:
                return await _replay(kept, digest, rebuild)
            return answer.response()
        finally:
            self._inflight.discard(slot)

    async def _kept(self, user_id: int, key: str) -> StoredAnswer | None:
        """The key's kept answer, unless its time to live is over (then it is forgotten)."""
        kept = await self._store.idempotent_answer(user_id, key)
        if kept is None:
            return None
        cutoff = self._clock.now_ms() - self._ttl_ms
        if kept.created_at < cutoff:
            await self._store.forget_idempotent_answer(user_id, key, cutoff)
            return None
        return kept

    async def forget_expired(self) -> int:
        """Drop every key past its time to live; the app's sweeper calls this now and then."""
        return await self._store.forget_idempotent_answers(self._clock.now_ms() - self._ttl_ms)


def _keepable(exc: Exception) -> Problem | None:
    """The answer to keep for an act that raised; None when it must not be kept (raise it on):
    a bug, an answer that did nothing (`NEVER_KEPT`), or a twin's `request_in_progress` in the
    same batch (the first request's answer is the key's)."""
    refused = problem(exc)
    if refused is None or refused.status in NEVER_KEPT or refused.code == "request_in_progress":
        return None
    return refused


def _stored(answer: Problem) -> str:
    """The body column of a kept answer: the body, with a refusal's headers beside `error`."""
    if not answer.headers:
        return orjson.dumps(answer.body).decode()
    return orjson.dumps({**answer.body, KEPT_HEADERS: dict(answer.headers)}).decode()


def _unstored(text: str) -> tuple[bytes, dict[str, str]]:
    """A kept body and headers as `_stored` wrote them (a success's body is sent as it is)."""
    doc = orjson.loads(text)
    if not isinstance(doc, dict) or "error" not in doc or KEPT_HEADERS not in doc:
        return text.encode(), {}
    headers = doc.pop(KEPT_HEADERS)
    return orjson.dumps(doc), {str(k): str(v) for k, v in headers.items()}


def _in_progress() -> ApiError:
    return ApiError(
        409,
        "request_in_progress",
        "A request with this Idempotency-Key is still running; retry shortly for its answer",
        headers={"Retry-After": "1"},
    )


def _response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


async def _replay(answer: StoredAnswer, digest: str, rebuild: Rebuild) -> web.Response:
    if answer.fingerprint and answer.fingerprint != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used for another request; use a new key for this one",
        )
    if answer.ref_id is None:
        body, headers = _unstored(answer.body)
    else:
        rebuilt = await rebuild(answer.ref_id)
        if rebuilt is None:  # the record is gone (its drop was deleted): say what is true now
            raise ApiError(404, "not_found", "No such reservation")
        body, headers = orjson.dumps(rebuilt), {}
    return web.Response(
        body=body,
        status=201 if answer.status is None else answer.status,  # None: recorded with its act
        content_type=JSON,
        headers={**headers, REPLAYED: "true"},
    )
