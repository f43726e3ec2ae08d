"""Ctrl-C and SIGTERM during training stop the loop between chunks, never inside a write.

A KeyboardInterrupt raised wherever the main thread happens to be can land inside a library's
half-done operation. One such place hangs the process for good: tensorboardX writes through a
multiprocessing queue whose feeder thread starts on the first event, and an interrupt that
lands while that thread is starting leaves the queue unable to deliver anything, so closing the
writer waits forever. So, while a loop trains, the first signal only asks it to stop; the loop
looks at the request after each chunk (and its checkpoint and evaluation) and stops there. A
second signal raises at once, for a user who will not wait for an evaluation to end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt here, at a point where stopping leaves everything whole."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def deferred_stop() -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM mark `requested` instead of raising; the previous
    handlers come back at its end. Outside the main thread (where Python runs no signal
    handler) nothing changes."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = [signal.signal(s, stop.handle) for s in SIGNALS]
    try:
        yield stop
    finally:
        for s, handler in zip(SIGNALS, previous, strict=True):
            signal.signal(s, handler)
