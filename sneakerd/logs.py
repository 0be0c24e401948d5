"""How sneakerd writes its logs: the stdlib `logging`, to stderr, as text or one JSON object a line.

`configure(level, format)` is called once by the CLI with LOG_LEVEL and LOG_FORMAT. Every
record gets a UTC timestamp with milliseconds and the id of the request it was logged under
(`REQUEST_ID`, a context variable the web edge sets for each request, so an error logged deep
in a handler names the request it broke, the same id the client got in `X-Request-Id`).
Fields given with `extra=` (the access line's method, path, status, ...) are written as JSON
keys; in text the message says them already.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any, TextIO

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sneakerd_request_id", default=None
)
"""The id of the request being served in this context (None outside a request)."""

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


def utc_timestamp(created: float) -> str:
    """`2026-11-24T10:00:00.123Z`: ISO 8601, UTC, milliseconds, as the API writes times."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's id (or `-`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger [request-id]: message`."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{utc_timestamp(record.created)} {record.levelname} {record.name} "
            f"[{getattr(record, 'request_id', '-')}]: {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, the extras, and the
    traceback as one string (so a line is always one record)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above to `stream` (stderr) in `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
