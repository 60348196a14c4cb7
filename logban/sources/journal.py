"""The systemd journal as a log source, and ``logban test-filter --journal``.

Each entry becomes one syslog-shaped line that the shipped filters already understand::

    2026-12-03T10:00:01.123456+00:00 mx1 postfix/smtpd[123]: warning: unknown[192.0.2.1]: ...
    2026-12-03T10:00:02.000000+00:00 mx1 kernel: SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 ...

The stamp is the entry's ``__REALTIME_TIMESTAMP`` in local time *with its UTC offset*, so it is
unambiguous even in the repeated hour when daylight saving time ends, and the matcher reads it
like any rsyslog RFC 3339 stamp. The daemon and ``test-filter`` use the very same lines, so what
``test-filter --journal`` shows is what the daemon counts. Each daemon chunk holds one entry and
also carries the entry time (naive local) as ``Chunk.time``, which the stamp makes redundant but
keeps the chunk honest for anything else that looks at it.

Threads: sd-journal objects must only be used by one thread at a time, and ``Reader.wait``
blocks. So a ``JournalSource`` owns two Readers. The *waiter* Reader belongs to the waiter
thread alone: it polls its inotify fd, calls ``process()`` (which consumes the events, so the fd
stops being readable and the loop cannot spin) and calls ``wake()`` on APPEND or INVALIDATE.
The *reading* Reader belongs to the daemon's main thread alone: ``read()`` calls its own
``process()`` (so it notices journal files created by rotation, or removed by vacuuming) and then
``next()`` until the end. The two never share a Reader, so no lock is needed; the only thing
crossing threads is ``wake()``, which the protocol allows from any thread.

systemd-python is imported only when a journal is opened, so file sources work without it.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from logban.sources.base import Chunk, StopPipe, Wake

if TYPE_CHECKING:
    from collections.abc import Iterable

    from logban.filters import Filter

log = logging.getLogger("logban.source.journal")

MISSING_MESSAGE = ("the journal source needs systemd-python (python3-systemd); "
                   "install it or remove the journal source")
READ_BATCH = 5000        # entries per read(); more waiting means another wake, not a huge list
COALESCE = 0.1           # seconds the waiter rests after a wake, folding a burst into one
_NOT_HOSTNAME = frozenset(b" \t\r\n:[]")  # would break the filters' optional hostname token


class JournalUnavailable(ImportError):
    """systemd-python is not installed; the message says what to do."""


class JournalError(ValueError):
    """A journal path or option that cannot be used; the message names it."""


def _journal_module() -> Any:
    try:
        from systemd import journal
    except ImportError:
        raise JournalUnavailable(MISSING_MESSAGE) from None
    return journal


def journal_matches(filters: Iterable[Filter]) -> list[str]:
    """The union of the filters' ``journal`` matches, in order; [] means "every entry".

    A filter without journal matches would see nothing if the others' matches were applied, so
    one such filter makes the whole journal wanted.
    """
    out: list[str] = []
    for f in filters:
        if not f.journal:
            return []
        out.extend(m for m in f.journal if m not in out)
    return out


def _check_match(m: str) -> None:
    name, eq, _ = m.partition("=")
    if not eq or not name or not all(c.isupper() or c.isdigit() or c == "_" for c in name):
        raise JournalError(f"journal match {m!r} is not FIELD=value with an upper-case field name "
                           "(for example SYSLOG_IDENTIFIER=postfix/smtpd)")


def open_reader(path: str | None, matches: list[str]) -> Any:
    """A Reader on the system journal (None), a journal directory or one journal file, with
    ``matches`` OR-ed together."""
    journal = _journal_module()
    for m in matches:
        _check_match(m)
    try:
        if path is None:
            # System services and the kernel only: user journals hold no mail daemon.
            reader = journal.Reader(flags=journal.LOCAL_ONLY | journal.SYSTEM_ONLY)
        elif os.path.isdir(path):
            reader = journal.Reader(path=path)
        elif os.path.exists(path):
            reader = journal.Reader(files=[path])
        else:
            raise JournalError(f"journal {path}: no such file or directory")
    except OSError as e:
        raise JournalError(f"journal {path or '(system)'}: cannot open: {e.strerror or e}") from None
    # Each match in its own OR-ed group: sd-journal would AND matches on different fields.
    for m in matches:
        reader.add_match(m)
        reader.add_disjunction()
    return reader


# ---- one entry -> one line -----------------------------------------------------------------

def _field(reader: Any, name: str) -> bytes | None:
    try:
        value = reader._get(name)
    except KeyError:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def entry_times(usec: int) -> tuple[str, datetime]:
    """(ISO 8601 local time with offset, naive local datetime) for a realtime in microseconds."""
    aware = datetime.fromtimestamp(usec // 1_000_000, timezone.utc).astimezone()
    aware = aware + timedelta(microseconds=usec % 1_000_000)
    return aware.isoformat(timespec="microseconds"), aware.replace(tzinfo=None)


def one_line(data: bytes) -> bytes:
    """Embedded line breaks become spaces: one entry must stay one line."""
    if b"\n" in data or b"\r" in data:
        data = data.replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")
    return data


def format_entry(usec: int, message: bytes, ident: bytes | None, pid: bytes | None,
                 hostname: bytes | None, kernel: bool) -> tuple[bytes, datetime]:
    """The synthesized line (with its newline) and the naive local entry time."""
    stamp, t = entry_times(usec)
    parts = [stamp.encode()]
    if hostname and not _NOT_HOSTNAME.intersection(hostname):
        parts.append(hostname)
    if kernel:
        tag = b"kernel"
    else:
        tag = one_line(ident or b"unknown")
        if pid:
            tag += b"[" + one_line(pid) + b"]"
    parts.append(tag + b":")
    return b" ".join(parts) + b" " + one_line(message) + b"\n", t


def current_line(reader: Any) -> tuple[bytes, datetime, int]:
    """(line, naive local time, realtime usec) of the entry the reader stands on."""
    usec = int(reader._get_realtime())
    transport = _field(reader, "_TRANSPORT")
    line, t = format_entry(
        usec,
        _field(reader, "MESSAGE") or b"",
        _field(reader, "SYSLOG_IDENTIFIER") or _field(reader, "_COMM"),
        # journalctl prefers the trusted _PID and falls back to what the sender claimed.
        _field(reader, "_PID") or _field(reader, "SYSLOG_PID"),
        _field(reader, "_HOSTNAME"),
        kernel=transport == b"kernel",
    )
    return line, t, usec


# ---- the daemon's source -------------------------------------------------------------------

@dataclass
class _Position:
    cursor: str | None = None
    realtime: int | None = None      # usec of the entry at ``cursor``


class JournalSource:
    """Follow the journal; checkpoint ``{"cursor": str, "realtime": usec}``.

    On restart the saved cursor is sought and the entry standing there is skipped if it is the
    saved one. If it is not (the file holding it was vacuumed, or the matches changed), we fall
    back to the saved time: seek there and skip entries at or before it.
    """

    id: str

    def __init__(self, path: str | None, matches: list[str], checkpoint: dict[str, Any] | None = None,
                 start_at: Literal["end", "start"] = "end") -> None:
        if start_at not in ("end", "start"):
            raise JournalError(f"start_at must be 'end' or 'start', not {start_at!r}")
        self.path = path or None
        self.matches = list(dict.fromkeys(matches))
        self.start_at = start_at
        self.id = f"journal:{path}" if path else "journal:system"
        self._journal = _journal_module()
        self._reader = open_reader(self.path, self.matches)
        # Allocate the reading Reader's inotify watches now, so process() in read() learns
        # about journal files created after this moment (rotation).
        self._reader.fileno()
        self._pos = _Position()
        self._verify_cursor: str | None = None   # first entry read must be this one, or skipped
        self._skip_through: int | None = None     # skip entries at or before this realtime
        self._entries = 0
        self._wakes = 0
        self._cursor_lost = False
        self._errors = 0
        self._last_error: str | None = None
        self._stop: StopPipe | None = None
        self._thread: threading.Thread | None = None
        self._seek_start(checkpoint)

    def _seek_start(self, cp: dict[str, Any] | None) -> None:
        r = self._reader
        cursor = cp.get("cursor") if cp else None
        realtime = cp.get("realtime") if cp else None
        if isinstance(cursor, str) and cursor:
            try:
                r.seek_cursor(cursor)
            except (ValueError, OSError):
                cursor = None  # unparsable: only the time can help
            else:
                self._verify_cursor = cursor
                self._pos = _Position(cursor, realtime if isinstance(realtime, int) else None)
                return
        if isinstance(realtime, int):
            self._seek_time(realtime)
            self._pos = _Position(None, realtime)
            return
        if self.start_at == "start":
            r.seek_head()
            return
        r.seek_tail()
        # Stand on the last entry, so next() continues after it and a checkpoint taken before
        # anything new arrives already names it.
        if r._next(-1):
            self._pos = _Position(r._get_cursor(), int(r._get_realtime()))

    def _seek_time(self, realtime: int) -> None:
        self._reader.seek_realtime(int(realtime))  # an int is microseconds
        self._skip_through = realtime

    # ---- Source protocol ----

    def start(self, wake: Wake) -> None:
        if self._thread is not None:
            return
        self._stop = StopPipe()
        waiter = open_reader(self.path, [])  # matches do not matter: it only waits
        self._thread = threading.Thread(target=self._wait_loop, args=(waiter, wake),
                                        name=f"logban-{self.id}", daemon=True)
        self._thread.start()
        wake()  # whatever is already there (start at "start", a checkpoint) is read at once

    def _wait_loop(self, waiter: Any, wake: Wake) -> None:
        """Runs in the waiter thread; the only user of ``waiter``."""
        journal = self._journal
        try:
            fd = waiter.fileno()
            events = waiter.get_events()
            poller = select.poll()
            poller.register(fd, events)
            stop = self._stop
            assert stop is not None
            stop.register(poller)
            while not stop.event.is_set():
                # On file systems without reliable inotify sd-journal asks to be polled anyway.
                deadline = waiter.get_timeout()
                timeout_ms = None
                if deadline is not None:
                    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
                    timeout_ms = max(0, (deadline - now_us + 999) // 1000)
                ready = poller.poll(timeout_ms)
                if stop.stopping(ready):
                    break
                change = waiter.process()   # consumes the inotify events: no spinning
                if change in (journal.APPEND, journal.INVALIDATE):
                    # INVALIDATE (files added or removed: rotation, vacuum) may hide new entries
                    # too; read() sorts it out.
                    self._wakes += 1
                    wake()
                    stop.event.wait(COALESCE)
        except Exception as e:  # pragma: no cover - reported in status, the daemon polls on
            log.exception("%s: waiting for the journal failed: %s", self.id, e)
            self._last_error = f"waiter: {e}"
        finally:
            waiter.close()

    def read(self) -> list[Chunk]:
        r = self._reader
        chunks: list[Chunk] = []
        try:
            r.process()  # new or vacuumed journal files; cheap when nothing changed
            while len(chunks) < READ_BATCH:
                if not r._next():
                    break
                cursor = r._get_cursor()
                if self._verify_cursor is not None:
                    saved, self._verify_cursor = self._verify_cursor, None
                    if r.test_cursor(saved):
                        continue  # the entry the checkpoint was taken after
                    # The saved entry is gone (or no longer matches): resume by time instead.
                    self._cursor_lost = True
                    if self._pos.realtime is not None:
                        log.info("%s: saved cursor not found; resuming after %s", self.id,
                                 entry_times(self._pos.realtime)[0])
                        self._seek_time(self._pos.realtime)
                        continue
                try:
                    line, t, usec = current_line(r)
                except OSError as e:  # a damaged entry: skip it, keep going
                    self._errors += 1
                    self._last_error = f"entry {cursor}: {e}"
                    continue
                if self._skip_through is not None:
                    if usec <= self._skip_through:
                        continue
                    self._skip_through = None
                self._pos = _Position(cursor, usec)
                self._entries += 1
                chunks.append(Chunk(self.id, line, t))
        except OSError as e:
            self._errors += 1
            self._last_error = str(e)
            log.warning("%s: reading the journal failed: %s", self.id, e)
        return chunks

    def checkpoint(self) -> dict[str, Any] | None:
        if self._pos.cursor is None and self._pos.realtime is None:
            return None
        return {"cursor": self._pos.cursor, "realtime": self._pos.realtime}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "journal",
            "path": self.path,
            "matches": self.matches,
            "cursor": self._pos.cursor,
            "time": entry_times(self._pos.realtime)[0] if self._pos.realtime else None,
            "entries": self._entries,
            "wakes": self._wakes,
            "cursor_lost": self._cursor_lost,
            "errors": self._errors,
            "last_error": self._last_error,
            "waiting": self._thread is not None and self._thread.is_alive(),
        }

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.stop(self._thread)
            self._stop = self._thread = None
        self._reader.close()


# ---- test-filter --journal -----------------------------------------------------------------

_RELATIVE = re.compile(r"-?\s*(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)"
                       r"(?:\s+ago)?")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> int:
    """``--since`` in microseconds: ISO 8601 or "YYYY-MM-DD HH:MM:SS" (naive is local time),
    or as journalctl takes it: "today", "yesterday", "-1h", "2h ago", "30 min ago"."""
    t0 = time.time() if now is None else now
    word = text.strip().lower()
    if word in ("now", "today", "yesterday"):
        day = datetime.fromtimestamp(t0).replace(hour=0, minute=0, second=0, microsecond=0)
        start = {"now": datetime.fromtimestamp(t0), "today": day,
                 "yesterday": day - timedelta(days=1)}[word]
        return int(start.timestamp() * 1_000_000)
    m = _RELATIVE.fullmatch(word)
    if m and (word.startswith("-") or word.endswith("ago")):
        return int((t0 - int(m[1]) * _UNIT_SECONDS[m[2][0]]) * 1_000_000)
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise JournalError(f"--since {text!r} is not a time such as 2026-12-03T10:00:00, "
                           "'2026-12-03 10:00:00', today, yesterday, -1h or '2h ago'") from None
    return int(t.timestamp()) * 1_000_000 + t.microsecond


class JournalLines:
    """A binary stream (``read(n)``) of the synthesized lines, from the start (or ``since``) to
    the end of the journal as it is now."""

    def __init__(self, path: str | None, since: str | None, matches: list[str]) -> None:
        start = parse_since(since) if since else None
        self._reader = open_reader(path, matches)
        if start is not None:
            self._reader.seek_realtime(start)
        else:
            self._reader.seek_head()
        self._start = start
        self._buf = bytearray()
        self._done = False
        self.entries = 0

    def _fill(self, want: int) -> None:
        r = self._reader
        while not self._done and (want < 0 or len(self._buf) < want):
            if not r._next():
                self._done = True
                break
            try:
                line, _t, usec = current_line(r)
            except OSError:
                continue  # a damaged entry; journalctl skips them too
            if self._start is not None and usec < self._start:
                continue
            self.entries += 1
            self._buf += line

    def read(self, n: int = -1) -> bytes:
        self._fill(n if n is not None else -1)
        if n is None or n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> JournalLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def journal_lines(path: str | None, since: str | None, filters: list[Filter]) -> JournalLines:
    """What ``logban test-filter --journal [PATH] [--since TIME]`` reads."""
    return JournalLines(path or None, since, journal_matches(filters))
