"""What every source gives the daemon: chunks of whole lines, a position to save, a status."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Wake = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One or more complete lines from one source, each ending with b"\\n".

    ``time`` is the entry's own time where the source knows it (a journal entry, a kernel
    record); lines with a timestamp of their own keep it, and a line with neither is "now".
    """

    source: str
    data: bytes
    time: datetime | None = None


class Source(Protocol):
    id: str  # stable name used as the checkpoint key, e.g. "file:/var/log/maillog"

    def start(self, wake: Wake) -> None:
        """Begin watching; call ``wake()`` (from any thread) when new data may be there."""

    def read(self) -> list[Chunk]:
        """Non-blocking: the complete lines available now. Called from the daemon's main loop."""

    def checkpoint(self) -> dict[str, Any] | None:
        """JSON-able position just after everything ``read`` returned so far."""

    def status(self) -> dict[str, Any]:
        """Position and counters for ``logban status``."""

    def stop(self) -> None:
        """Stop watching and release files and threads."""


class StopPipe:
    """How a waiter thread blocked in poll() on a source's descriptor is told to stop: the read
    end is polled next to that descriptor, so stopping never waits for a timeout."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.r, self.w = os.pipe()

    def register(self, poller: "select.poll") -> None:
        poller.register(self.r, select.POLLIN)

    def stopping(self, ready: list[tuple[int, int]]) -> bool:
        return self.event.is_set() or any(fd == self.r for fd, _ in ready)

    def stop(self, thread: threading.Thread | None) -> None:
        """Tell the waiter, join it, close the pipe."""
        self.event.set()
        os.write(self.w, b"x")
        if thread is not None:
            thread.join(5)
        os.close(self.r)
        os.close(self.w)
