"""Structured logs: one line per event, naming the board, task, attempt and worker.

Usage::

    from kanban_redis.logs import configure, event_logger

    configure()                                   # once, in a program's main
    log = event_logger("workers", board="default", worker="w1")
    log.info("claimed", task="12", attempt=1)
    log.bind(task="12").error("failed", error="timed out")

gives lines such as::

    ts=2026-12-03T14:00:00.123Z level=info logger=kanban.workers event=claimed board=default task=12 attempt=1 worker=w1

``KANBAN_LOG_FORMAT=json`` (or ``configure(fmt="json")``) writes one JSON
object per line instead; ``KANBAN_LOG_LEVEL`` sets the level. Values with
spaces, quotes or newlines are quoted and escaped, so an event never spans
two lines (a traceback travels as one escaped ``exc`` field).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: Root of the loggers this module configures.
ROOT = "kanban"
#: Fields that lead every line, in this order, when present.
LEADING = ("event", "board", "task", "attempt", "worker")
FORMAT_ENV = "KANBAN_LOG_FORMAT"
LEVEL_ENV = "KANBAN_LOG_LEVEL"
_FIELDS = "kanban_fields"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    extra: dict[str, Any] = dict(getattr(record, _FIELDS, None) or {})
    if not extra.get("event"):
        extra["event"] = record.getMessage()
    elif record.msg:
        extra.setdefault("msg", record.getMessage())
    for name in LEADING:
        if extra.get(name) is not None:
            base[name] = extra.pop(name)
    base.update((k, v) for k, v in extra.items() if v is not None)
    if record.exc_info:
        base["exc"] = logging.Formatter().formatException(record.exc_info)
    return base


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    if text and not any(c in text for c in ' "=\\\n\r\t'):
        return text
    return json.dumps(text)


class LogfmtFormatter(logging.Formatter):
    """``key=value`` pairs on one line; the event fields lead."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False, separators=(",", ":"))


def configure(level: str | int | None = None, fmt: str | None = None, stream: TextIO | None = None) -> None:
    """Send ``kanban.*`` loggers to ``stream`` (stderr) in ``fmt`` (``logfmt`` or ``json``).

    Defaults come from KANBAN_LOG_LEVEL (info) and KANBAN_LOG_FORMAT (logfmt).
    Calling it again replaces the handler rather than adding a second one.

    Raises:
        ValueError: an unknown format or level.
    """
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "logfmt").lower()
    formatters: dict[str, type[logging.Formatter]] = {"logfmt": LogfmtFormatter, "json": JsonFormatter}
    if fmt not in formatters:
        raise ValueError(f"log format {fmt!r}: use logfmt or json")
    level = level or os.environ.get(LEVEL_ENV) or "INFO"
    logger = logging.getLogger(ROOT)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatters[fmt]())
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.propagate = False


class EventLogger:
    """A logger with bound fields; each call logs one event with more fields."""

    def __init__(self, logger: logging.Logger, fields: dict[str, Any]) -> None:
        self.logger = logger
        self.fields = fields

    def bind(self, **fields: Any) -> EventLogger:
        """A logger that adds ``fields`` to every event (e.g. the task being run)."""
        return EventLogger(self.logger, {**self.fields, **fields})

    def log(self, level: int, event: str, msg: str = "", *, exc_info: Any = None, **fields: Any) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, msg, exc_info=exc_info,
                            extra={_FIELDS: {**self.fields, "event": event, **fields}})

    def debug(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(logging.DEBUG, event, msg, **fields)

    def info(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(logging.INFO, event, msg, **fields)

    def warning(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(logging.WARNING, event, msg, **fields)

    def error(self, event: str, msg: str = "", **fields: Any) -> None:
        self.log(logging.ERROR, event, msg, **fields)

    def exception(self, event: str, msg: str = "", **fields: Any) -> None:
        """An error event carrying the current exception's traceback (as one field)."""
        self.log(logging.ERROR, event, msg, exc_info=True, **fields)


def event_logger(name: str, **fields: Any) -> EventLogger:
    """The ``kanban.<name>`` logger with ``fields`` (board, worker, ...) bound."""
    return EventLogger(logging.getLogger(f"{ROOT}.{name}"), fields)
