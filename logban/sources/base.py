"""What every source gives the daemon: chunks of whole lines, a position to save, a status."""

from __future__ import annotations

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
