"""Reading ahead in a thread, so reading one side overlaps writing the other.

A snapshot reads Redis while it writes SQLite; a restore reads SQLite while
Redis loads. SQLite and socket waits release the GIL, so the two sides run
at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def prefetched(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, produced by a thread up to ``depth`` ahead; its errors are raised here.

    The producer is told to stop (and its generator closed) when the consumer stops early.
    """
    out: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def send(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                out.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not send("item", item):
                    return
            send("end", None)
        except BaseException as e:  # handed to the consumer, raised there
            send("error", e)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = out.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()
