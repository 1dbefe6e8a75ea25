"""One Redis connection used as a conveyor: send a page of commands, read its replies later.

A full snapshot reads three replies per task and a restore sends hundreds of
``restore_load`` calls. redis-py's pipeline spends more time on its
per-command bookkeeping than Redis spends on the commands, and it reads a
page's replies before the next page can be sent. A :class:`Wire` sends
commands packed by hiredis and reads replies when asked, so the caller works
on one page (parsing, SQLite) while Redis runs the next: the two overlap
without a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import hiredis
import redis

from kanban_redis.connection import translate


class Wire:
    """``with Wire(client) as wire``: ``send`` commands, then ``receive`` their replies in order.

    Error replies come back as :class:`redis.ResponseError` values, not raised,
    so a page is always read whole. Leaving the block with replies unread (an
    error, a consumer that stopped early) drops the connection instead of
    returning it to the pool. Nothing is retried: connection failures raise
    RedisUnavailable.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pending = 0

    def __enter__(self) -> Wire:
        with translate(self.client):
            self.conn = self.client.connection_pool.get_connection()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.pending or kind is not None:
            self.conn.disconnect()
        self.client.connection_pool.release(self.conn)

    def send(self, commands: Sequence[Sequence[Any]]) -> None:
        with translate(self.client):
            # a health-check PING would read the replies still pending: only on an idle connection
            self.conn.send_packed_command([b"".join(hiredis.pack_command(tuple(c)) for c in commands)],
                                          check_health=self.pending == 0)
        self.pending += len(commands)

    def receive(self, count: int) -> list[Any]:
        """The next ``count`` replies (as the client decodes them; hashes as the server sends them)."""
        replies: list[Any] = []
        with translate(self.client):
            for _ in range(count):
                try:
                    replies.append(self.conn.read_response())
                except redis.ResponseError as e:
                    replies.append(e)
                self.pending -= 1
        return replies
