"""Structured logs: one line per event, event fields first, escaped values."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from kanban_redis.logs import configure, event_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    yield buf
    logging.getLogger("kanban").handlers.clear()


def test_logfmt_line_leads_with_the_event_fields(stream: io.StringIO) -> None:
    configure("INFO", "logfmt", stream)
    log = event_logger("workers", worker="w1", board="default")
    log.bind(task="12").info("claimed", attempt=2, queue="gpu")
    line = stream.getvalue()
    assert line.count("\n") == 1
    fields = line.split()
    assert fields[0].startswith("ts=") and fields[1] == "level=info" and fields[2] == "logger=kanban.workers"
    assert fields[3:] == ["event=claimed", "board=default", "task=12", "attempt=2", "worker=w1", "queue=gpu"]


def test_values_are_quoted_and_an_event_never_spans_lines(stream: io.StringIO) -> None:
    configure("INFO", "logfmt", stream)
    log = event_logger("snapshot", board="b")
    try:
        raise RuntimeError("disk\nfull")
    except RuntimeError:
        log.exception("publish_failed", "could not publish", path="/my dir/kanban.db")
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert 'path="/my dir/kanban.db"' in line and 'msg="could not publish"' in line
    assert 'exc="Traceback' in line and "RuntimeError: disk\\nfull" in line


def test_json_format_and_level(stream: io.StringIO) -> None:
    configure("WARNING", "json", stream)
    log = event_logger("workers", board="b")
    log.info("claimed", task="1")
    log.warning("lease_lost", task="1", attempt=1, extra={"a": [1, 2]})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert (doc["event"], doc["board"], doc["task"], doc["attempt"], doc["extra"]) == ("lease_lost", "b", "1", 1,
                                                                                       {"a": [1, 2]})


def test_configure_replaces_its_handler_and_plain_records_work(stream: io.StringIO) -> None:
    configure("INFO", "logfmt", io.StringIO())
    configure("INFO", "logfmt", stream)
    logging.getLogger("kanban.x").info("plain message %d", 7)
    assert stream.getvalue().count("\n") == 1 and 'event="plain message 7"' in stream.getvalue()
    with pytest.raises(ValueError, match="log format"):
        configure(fmt="xml")
