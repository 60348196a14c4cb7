"""A steady log writer for source tests: it appends numbered lines the way a syslog daemon does
(O_APPEND, one write() per line) and reopens its path only when told to (``hup()``), so after a
rename or unlink it keeps writing to the old inode exactly like rsyslog before logrotate's HUP."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NUM = re.compile(rb"line (\d+)$")


def line(i: int) -> bytes:
    return (b"Dec  3 12:00:00 mx postfix/smtpd[4242]: warning: unknown[192.0.2.7]: "
            b"SASL LOGIN authentication failed: line %06d\n" % i)


def numbers(data: bytes) -> list[int]:
    """The numbers of the writer's lines in data (which must be whole lines)."""
    assert data.endswith(b"\n"), data[-80:]
    out = []
    for ln in data.splitlines():
        m = _NUM.search(ln)
        assert m, ln[:120]
        out.append(int(m.group(1)))
    return out


def append(path: Path, nums: range | list[int]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(line(i) for i in nums))


class LogWriter(threading.Thread):
    """Write lines ``start .. start+count-1`` to path, sleeping ``interval`` between them."""

    def __init__(self, path: Path, count: int, interval: float = 0.001, start: int = 0) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.path = path
        self.count = count
        self.interval = interval
        self.start_at = start
        self.written = 0  # lines written so far
        self.reopened = 0
        self._hup = threading.Event()
        self._pause = threading.Event()
        self._paused = threading.Event()
        self._progress = threading.Condition()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def run(self) -> None:
        fd = self._open()
        try:
            for i in range(self.start_at, self.start_at + self.count):
                if self._hup.is_set():
                    os.close(fd)
                    fd = self._open()
                    self._hup.clear()
                    with self._progress:
                        self.reopened += 1
                        self._progress.notify_all()
                while self._pause.is_set():
                    self._paused.set()
                    time.sleep(0.001)
                self._paused.clear()
                os.write(fd, line(i))
                with self._progress:
                    self.written += 1
                    self._progress.notify_all()
                time.sleep(self.interval)
        finally:
            os.close(fd)

    def wait_written(self, n: int, timeout: float = 10.0) -> None:
        with self._progress:
            assert self._progress.wait_for(lambda: self.written >= n, timeout), (self.written, n)

    def hup(self, timeout: float = 10.0) -> None:
        """Make the writer reopen its path (creating it if missing) before its next line;
        returns once it has (or at once when it has already finished)."""
        with self._progress:
            before = self.reopened
            self._hup.set()
            self._progress.wait_for(
                lambda: self.reopened > before or not self.is_alive(), timeout)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the writer between two lines (a precise copytruncate window)."""
        self._pause.set()
        try:
            assert self._paused.wait(10) or not self.is_alive()
            yield
        finally:
            self._pause.clear()
