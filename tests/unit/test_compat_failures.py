"""The /compat mount's one table of refusals, and its views' readings of a hold, without I/O:
sneakerd's codes move to the original's statuses, its own refusals keep theirs (503 with
Retry-After), and a hold's status and seconds read as the original's front-end expects."""

from __future__ import annotations

from decimal import Decimal

import orjson
from aiohttp import web
from marshmallow import ValidationError

from sneakerd import errors
from sneakerd.domain.model import ReservationRecord, ReservationStatus
from sneakerd.web.compat import failures, views
from sneakerd.web.problems import ApiError, error_body, problem


def said(exc: BaseException, act: str = "") -> tuple[int, dict[str, object], dict[str, str]]:
    response = failures.answer(exc, act)
    assert response is not None and isinstance(response.body, bytes)
    return response.status, orjson.loads(response.body), dict(response.headers)


def test_the_originals_statuses_and_words() -> None:
    assert said(errors.OutOfStock("No units left right now"))[:2] == (
        400,
        {"success": False, "message": "Out of stock"},
    )
    assert said(errors.LimitReached("You already hold"))[0] == 400
    assert said(errors.DropNotLive("This drop has not started yet"))[0] == 400
    assert said(errors.ReservationExpired("gone"))[:2] == (
        400,
        {"success": False, "message": "This reservation has expired"},
    )
    assert said(errors.ReservationNotActive("This reservation is cancelled"))[0] == 404
    assert said(errors.EmailTaken("taken"))[0] == 409
    assert said(errors.NotFound("No such drop"))[:2] == (
        404,
        {"success": False, "message": "No such drop"},
    )
    wrong = ApiError(401, "invalid_credentials", "Wrong email or password")
    assert said(wrong)[1]["message"] == "Invalid email or password"


def test_cancelling_a_hold_that_ended_is_404_whichever_way_it_ended() -> None:
    for exc in (errors.ReservationExpired("x"), errors.ReservationNotActive("y")):
        status, body, _ = said(exc, failures.CANCEL)
        assert (status, body["message"]) == (404, "This reservation is no longer active")


def test_sneakerds_own_refusals_keep_their_status_and_headers() -> None:
    status, body, headers = said(errors.Unavailable())
    assert status == 503 and headers["Retry-After"] == "1" and body["success"] is False
    limited = ApiError(429, "rate_limited", "Too many", headers={"Retry-After": "3"})
    status, _, headers = said(limited)
    assert status == 429 and headers["Retry-After"] == "3"
    assert said(ApiError(403, "forbidden", "Only an admin may do this"))[0] == 403
    assert said(errors.DropHasSales("has sales"))[0] == 409
    assert said(web.HTTPMethodNotAllowed("PATCH", ["GET"]))[0] == 405
    assert said(web.HTTPNotFound())[1]["message"] == failures.ROUTE_MISSING
    assert failures.answer(RuntimeError("a bug")) is None


def test_validation_errors_name_each_field() -> None:
    status, body, _ = said(ValidationError({"password": ["Too short."], "email": ["Bad."]}))
    assert status == 400
    assert body["errors"] == [
        {"field": "password", "message": "Too short."},
        {"field": "email", "message": "Bad."},
    ]
    assert body["message"] == "password: Too short.; email: Bad."


def test_a_native_envelope_in_a_response_is_recognised() -> None:
    found = problem(errors.OutOfStock("No units left right now"))
    native = found.response()
    again = failures.native_failure(native)
    assert again is not None and again.body == error_body("out_of_stock", "No units left right now")
    assert failures.native_failure(web.json_response({"success": True})) is None
    assert failures.native_failure(web.Response(status=400, body=b"plain")) is None


def hold(status: ReservationStatus, expires_at: int = 10_000) -> ReservationRecord:
    return ReservationRecord(1, 2, 3, status, expires_at, 0)


def test_a_holds_status_and_seconds_as_the_original_read_them() -> None:
    active = views.reservation_view(hold(ReservationStatus.ACTIVE), 8_500, None)
    assert (active["status"], active["is_active"], active["is_expired"]) == ("active", True, False)
    assert active["remaining_seconds"] == 2  # 1.5 s left: a started second counts
    due = views.reservation_view(hold(ReservationStatus.ACTIVE), 10_000, None)
    assert (due["is_active"], due["is_expired"], due["remaining_seconds"]) == (False, True, 0)
    cancelled = views.reservation_view(hold(ReservationStatus.CANCELLED), 0, None)
    assert (cancelled["status"], cancelled["is_expired"]) == ("expired", True)
    assert cancelled["remaining_seconds"] == 0
    done = views.reservation_view(hold(ReservationStatus.COMPLETED), 0, None)
    assert (done["status"], done["is_active"], done["is_expired"]) == ("completed", False, False)
    assert views.number(Decimal("199.99")) == 199.99
