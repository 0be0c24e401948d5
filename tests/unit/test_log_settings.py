"""LOG_LEVEL, LOG_FORMAT and METRICS_PORT as the settings read them, the request id rule, and
the two log formats (no I/O: records are formatted in memory)."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from sneakerd.config import Settings
from sneakerd.errors import ConfigError
from sneakerd.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, TextFormatter
from sneakerd.web.access import request_id


def test_the_defaults_are_info_text_and_no_metrics_port() -> None:
    s = Settings.from_mapping({})
    assert (s.log_level, s.log_format, s.metrics_port) == ("INFO", "text", None)


def test_level_and_format_are_read_case_insensitively() -> None:
    s = Settings.from_mapping({"LOG_LEVEL": "debug", "LOG_FORMAT": "JSON", "METRICS_PORT": "9102"})
    assert (s.log_level, s.log_format, s.metrics_port) == ("DEBUG", "json", 9102)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
        ("METRICS_PORT", "70000", "METRICS_PORT must be between 1 and 65535"),
        ("METRICS_PORT", "nine", "METRICS_PORT must be a whole number"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Settings.from_mapping({name: value})


@pytest.mark.parametrize("given", ["abc", "A.b-c_9", "x" * 128, "0f" * 16])
def test_a_sane_request_id_is_kept(given: str) -> None:
    assert request_id({"X-Request-Id": given}) == given


@pytest.mark.parametrize("given", ["", "x" * 129, "a b", "a/b", "ä", "a\tb", "{}", "%0a"])
def test_any_other_request_id_is_replaced_by_a_new_one(given: str) -> None:
    made = request_id({"X-Request-Id": given})
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert request_id({}) != request_id({})


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sneakerd.test", logging.ERROR, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_records_carry_the_current_request_id() -> None:
    token = REQUEST_ID.set("req-7")
    try:
        record = _record("inside")
        RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    outside = _record("outside")
    RequestIdFilter().filter(outside)
    assert (record.request_id, outside.request_id) == ("req-7", "-")  # type: ignore[attr-defined]


def test_text_and_json_formats() -> None:
    record = _record("answered %s", status=200, path="/x", request_id="r1")
    record.args = ("ok",)
    record.created = 1795514400.5
    text = TextFormatter().format(record)
    assert text == "2026-11-24T10:00:00.500Z ERROR sneakerd.test [r1]: answered ok", text
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {
        "time": "2026-11-24T10:00:00.500Z",
        "level": "ERROR",
        "logger": "sneakerd.test",
        "message": "answered ok",
        "request_id": "r1",
        "status": 200,
        "path": "/x",
    }


def test_a_traceback_stays_inside_one_json_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord(
            "sneakerd.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: bad" in json.loads(line)["exception"]


def test_made_ids_never_repeat() -> None:
    assert len({request_id({}) for _ in range(10_000)}) == 10_000
