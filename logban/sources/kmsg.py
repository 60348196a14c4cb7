"""The kernel log buffer (/dev/kmsg) as a log source, for the in-kernel SMTP AUTH matcher's LOG
lines on hosts without a syslog daemon or journal that would carry them.

Each ``read(2)`` on /dev/kmsg returns exactly one record::

    PRIO,SEQ,USEC,FLAGS[,...];MESSAGE\\n[ KEY=VALUE\\n ...]

where USEC is the kernel's monotonic clock at logging time, and the kernel has escaped every
unprintable byte (and the backslash) of MESSAGE as ``\\xHH``. The continuation lines (device
metadata) are dropped. A record becomes the line::

    2026-12-03T10:08:01.234567+00:00 kernel: SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 ...

stamped like the journal source's lines (see ``logban.sources.journal``), so the kernel-smtp
filter reads both alike, with ``Chunk.time`` holding the same time as naive local time.

Every record is kept whatever its facility (writes from user space arrive as facility user);
the filters decide what matters.

Threads: the daemon's main thread does all reading in ``read()``. A waiter thread polls the same
fd (poll never moves the read position) and calls ``wake()``. /dev/kmsg stays readable until
every record is read, so after a wake the waiter sleeps until ``read()`` reports that it has
drained the buffer: one wake per batch of records, never a spinning loop.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from logban.sources.base import Chunk, StopPipe, Wake
from logban.sources.journal import entry_times, one_line

log = logging.getLogger("logban.source.kmsg")

RECORD_MAX = 8192        # the kernel's own bound on one formatted /dev/kmsg record
READ_BATCH = 5000        # records per read(); more means another wake
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True, slots=True)
class Record:
    prio: int     # facility * 8 + level
    seq: int
    usec: int     # monotonic microseconds since boot
    message: bytes  # unescaped; may hold any byte except line breaks

    @property
    def facility(self) -> int:
        return self.prio >> 3

    @property
    def level(self) -> int:
        return self.prio & 7


def _unescape(m: re.Match[bytes]) -> bytes:
    return bytes((int(m[1], 16),))


def parse_record(raw: bytes) -> Record | None:
    """One /dev/kmsg record, or None if it is not in the documented shape."""
    head, sep, rest = raw.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 3:
        return None
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    message = rest.split(b"\n", 1)[0]  # continuation lines start after the first newline
    if b"\\" in message:
        message = _ESCAPE.sub(_unescape, message)
    return Record(prio, seq, usec, one_line(message))


def current_boot_id(path: str = BOOT_ID_PATH) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def boot_wall_clock() -> float:
    """The wall-clock time the kernel's record clock started at.

    Record times count like CLOCK_MONOTONIC (both stand still during suspend), so the boot time
    is taken as realtime minus monotonic now, not from /proc/uptime, which counts suspend and
    would shift every record after a resume by the time the machine slept.
    """
    return time.time() - time.monotonic()


class KmsgSource:
    """Follow /dev/kmsg; checkpoint ``{"seq": last record read, "boot_id": ...}``."""

    id: str

    def __init__(self, path: str = "/dev/kmsg", checkpoint: dict[str, Any] | None = None,
                 start_at: Literal["end", "start"] = "end") -> None:
        if start_at not in ("end", "start"):
            raise ValueError(f"start_at must be 'end' or 'start', not {start_at!r}")
        self.path = path
        self.id = "kmsg" if path == "/dev/kmsg" else f"kmsg:{path}"
        self.boot_id = current_boot_id()
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise OSError(e.errno, f"cannot open the kernel log {path}: {e.strerror}"
                          + (" (reading it needs root or CAP_SYSLOG)"
                             if e.errno in (errno.EACCES, errno.EPERM) else "")) from None
        self._last_seq: int | None = None   # last record handed out (or skipped as old)
        self._skip_through: int | None = None
        self._records = 0
        self._lost = 0          # records overwritten before we read them
        self._bad = 0
        self._wakes = 0
        self._last_error: str | None = None
        self._drained = threading.Event()
        self._stop: StopPipe | None = None
        self._thread: threading.Thread | None = None
        self._position(checkpoint, start_at)

    def _position(self, cp: dict[str, Any] | None, start_at: str) -> None:
        seq = cp.get("seq") if cp else None
        if cp is not None and isinstance(seq, int) and cp.get("boot_id") == self.boot_id:
            # Same boot: the buffer still holds what we read; read it all again, skipping up to
            # the saved record (SEEK_SET is the oldest record still in the buffer).
            os.lseek(self._fd, 0, os.SEEK_SET)
            self._skip_through = seq
            self._last_seq = seq
        elif cp is not None or start_at == "start":
            # Another boot (or an unusable checkpoint): all of this boot's records are new.
            os.lseek(self._fd, 0, os.SEEK_SET)
        else:
            # At the end - but read our way there rather than SEEK_END, so we know the last
            # record's sequence number and a checkpoint taken before anything new arrives
            # still resumes exactly here.
            os.lseek(self._fd, 0, os.SEEK_SET)
            for rec in self._records_now(limit=None):
                self._last_seq = rec.seq

    def _records_now(self, limit: int | None) -> list[Record]:
        """Records available now, up to ``limit``."""
        out: list[Record] = []
        fd = self._fd
        while limit is None or len(out) < limit:
            try:
                raw = os.read(fd, RECORD_MAX)
            except BlockingIOError:  # EAGAIN: nothing more for now
                break
            except BrokenPipeError:
                # The ring buffer overwrote the record we were due to read; the next read
                # continues with the oldest one left. The sequence gap counts what was lost.
                continue
            except InterruptedError:
                continue
            if not raw:
                break
            rec = parse_record(raw)
            if rec is None:
                self._bad += 1
                continue
            if self._last_seq is not None and rec.seq > self._last_seq + 1:
                self._lost += rec.seq - self._last_seq - 1
            out.append(rec)
            if self._last_seq is None or rec.seq > self._last_seq:
                self._last_seq = rec.seq
        return out

    # ---- Source protocol ----

    def start(self, wake: Wake) -> None:
        if self._thread is not None:
            return
        self._stop = StopPipe()
        self._drained.set()
        self._thread = threading.Thread(target=self._wait_loop, args=(wake,),
                                        name=f"logban-{self.id}", daemon=True)
        self._thread.start()

    def _wait_loop(self, wake: Wake) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLPRI)
        stop = self._stop
        assert stop is not None
        stop.register(poller)
        while not stop.event.is_set():
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            if stop.stopping(ready):
                break
            # Readable (or POLLERR/POLLPRI: records were overwritten under us; read() copes).
            self._drained.clear()
            self._wakes += 1
            wake()
            # Until read() has emptied the buffer the fd stays readable; wait for it instead.
            self._drained.wait()

    def read(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        boot = boot_wall_clock()
        skip = self._skip_through
        now = time.time()
        for rec in self._records_now(limit=READ_BATCH):
            if skip is not None:
                if rec.seq <= skip:
                    continue
                skip = self._skip_through = None
            # Clock drift between the kernel's record clock and CLOCK_MONOTONIC must not put a
            # record in the future.
            usec = min(int((boot * 1_000_000)) + rec.usec, int(now * 1_000_000))
            stamp, t = entry_times(usec)
            self._records += 1
            chunks.append(Chunk(self.id, stamp.encode() + b" kernel: " + rec.message + b"\n", t))
        # Let the waiter poll again: if READ_BATCH left records behind, the fd is still readable
        # and it wakes us for the rest at once.
        self._drained.set()
        return chunks

    def checkpoint(self) -> dict[str, Any] | None:
        if self._last_seq is None:
            return None
        return {"seq": self._last_seq, "boot_id": self.boot_id}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "kmsg",
            "path": self.path,
            "seq": self._last_seq,
            "boot_id": self.boot_id,
            "records": self._records,
            "lost": self._lost,
            "unparsable": self._bad,
            "wakes": self._wakes,
            "last_error": self._last_error,
            "waiting": self._thread is not None and self._thread.is_alive(),
        }

    def stop(self) -> None:
        self._drained.set()
        if self._stop is not None:
            self._stop.stop(self._thread)
            self._stop = self._thread = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
