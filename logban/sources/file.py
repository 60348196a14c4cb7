"""Follow one log file through rotation, with a checkpoint that resumes exactly where we stopped.

Everything is decided by ``stat`` inside ``read()``: watchdog events on the parent directory and a
small poll timer only make the daemon call ``read()`` sooner. So a lost or coalesced event costs
at most ``poll_interval`` of latency, never a line.

Rotation kinds and how each is seen:

* rename-and-create (``maillog`` -> ``maillog.1`` / ``maillog-20261203``, new ``maillog``): the
  path names a new inode. The syslog daemon keeps writing to the old inode until it is HUP'd, so
  we read the old fd to EOF, switch to the new file, and keep the old fd "retiring": it is drained
  on every ``read()`` until it has been quiet for a grace period, and only then closed.
* delete-and-recreate: the same, except that for a while the path does not exist at all. While it
  is missing we keep reading the (unlinked) old inode, which the writer may still be filling.
* copytruncate: our inode shrinks below our position, or its first bytes change (a writer with
  O_APPEND may already have refilled it past our position before we looked); we restart at 0.
  Lines appended between the copy and the truncate are lost - inherent to copytruncate.
* missing file: wait for it; a file that appears after we started is read from its beginning.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from logban.sources.base import Chunk, Wake

log = logging.getLogger("logban.source.file")

FP_LEN = 256                 # bytes at the start of a file that identify it (with dev+ino)
MAX_PARTIAL = 1024 * 1024    # a line without newline longer than this is dropped
BLOCK = 4 * 1024 * 1024      # read size; each block's whole lines become one chunk
READ_BUDGET = 32 * 1024 * 1024  # per read() call, so one huge backlog cannot starve other sources
ROTATED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z")  # compressed: never our inode


@dataclass(eq=False)
class _Open:
    """One open inode we read from: the current file, or a rotated one still being drained."""

    name: str             # the path it was opened by, for messages
    fd: int
    dev: int
    ino: int
    pos: int = 0          # next byte to read
    offset: int = 0       # just after the last whole line handed out (or dropped)
    size: int = 0         # at the last fstat
    pending: bytes = b""  # read, but its newline has not arrived yet
    skipping: bool = False  # discarding up to the next newline (an oversized line)
    head: bytes = b""     # the first FP_LEN bytes as last seen: identity, and rewrite detection
    quiet_until: float = 0.0  # retiring files: close once nothing arrived before this time
    fp_of: bytes | None = None  # the head bytes ``fp`` was computed from
    fp: str = ""

    @property
    def ident(self) -> tuple[int, int]:
        return (self.dev, self.ino)


@dataclass(frozen=True)
class _StartHint:
    """Where to start when the path's first open finds this inode; resolved when it is opened,
    since the file may be unreadable (or missing) when we are constructed."""

    dev: int
    ino: int
    offset: int | None            # None: at the end
    fingerprint: str | None = None
    fp_len: int = 0


@dataclass
class _Counters:
    lines_read: int = 0
    bytes_read: int = 0
    rotations: int = 0
    dropped_partial_lines: int = 0


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def _matches(fd: int, size: int, cp: _StartHint) -> bool:
    """Does this open inode hold the checkpointed content (same first bytes, long enough)?"""
    if cp.offset is None or size < cp.offset or size < cp.fp_len:
        return False
    return _fingerprint(os.pread(fd, cp.fp_len, 0)) == cp.fingerprint


class _DirHandler(FileSystemEventHandler):
    """watchdog handler: wake the daemon for any change to our file or its rotated siblings."""

    def __init__(self, name: str, wake: Wake) -> None:
        super().__init__()
        self.name = name
        self.wake = wake

    def dispatch(self, event: FileSystemEvent) -> None:
        # Our own opens/reads of the file produce events too; they are never news.
        if event.event_type in ("opened", "closed_no_write"):
            return
        for p in (event.src_path, getattr(event, "dest_path", "")):
            if p and os.path.basename(os.fsdecode(p)).startswith(self.name):
                try:
                    self.wake()
                except Exception:  # the daemon's wake must not kill the observer thread
                    log.exception("wake() failed")
                return


class FileSource:
    """A log file followed across rotations; see the module docstring."""

    def __init__(self, path: str | Path, checkpoint: dict[str, Any] | None = None,
                 start_at: Literal["end", "start"] = "end", poll_interval: float = 1.0,
                 *, rotate_grace: float | None = None) -> None:
        self.id = f"file:{path}"
        self.path = str(path)
        self.poll_interval = poll_interval
        # How long a rotated file must stay quiet before we close it. The writer switches on
        # HUP (logrotate's postrotate), normally within milliseconds; seconds are generous.
        self.rotate_grace = (rotate_grace if rotate_grace is not None
                             else max(5.0, 5 * poll_interval))
        self.counters = _Counters()
        self._cur: _Open | None = None
        self._retiring: list[_Open] = []   # oldest first: drained before the current file
        self._hint: _StartHint | None = None
        self._problem: str | None = None   # the condition last logged, so each is logged once
        self._missing = False              # the problem is only that the file is not there
        self._wake: Wake | None = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._observer: Any = None
        self._watch_retry_at = 0.0

        if checkpoint is not None:
            self._resume(checkpoint)
        elif start_at == "end":
            st = self._stat_path()
            if st is not None and stat.S_ISREG(st.st_mode):
                self._hint = _StartHint(st.st_dev, st.st_ino, None)
        elif start_at != "start":
            raise ValueError(f"start_at must be 'end' or 'start', not {start_at!r}")
        if self._cur is None:
            self._open_path()

    # -- the Source protocol ---------------------------------------------------------------

    def start(self, wake: Wake) -> None:
        self._wake = wake
        self._stop.clear()
        self._watch(first=True)
        self._timer = threading.Thread(target=self._tick, name=f"logban-poll:{self.path}",
                                       daemon=True)
        self._timer.start()
        wake()  # whatever is there already

    def read(self) -> list[Chunk]:
        out: list[Chunk] = []
        try:
            self._read(out)
        except Exception as e:  # never take the daemon's main loop down; retry next time
            self._report(f"unexpected error reading {self.path}: {e!r}", logging.ERROR,
                         exc_info=True)
        return out

    def checkpoint(self) -> dict[str, Any] | None:
        """The current file only: late lines a retiring file might still get are not covered
        (they would come within seconds of a rotation; a restart in that window loses them)."""
        f = self._cur
        if f is None:
            return None
        head = f.head
        if len(head) < FP_LEN:
            try:
                head = os.pread(f.fd, FP_LEN, 0)
            except OSError:
                pass
        if head != f.fp_of:  # hashed once per content seen, not at every checkpoint
            f.fp_of, f.fp = head, _fingerprint(head)
        return {"dev": f.dev, "ino": f.ino, "offset": f.offset,
                "fingerprint": f.fp, "fp_len": len(head)}

    def status(self) -> dict[str, Any]:
        f = self._cur
        c = self.counters
        return {
            "path": self.path,
            "state": "reading" if f else ("waiting" if self._missing or not self._problem
                                          else "error"),
            "file": f.name if f else None,
            "dev": f.dev if f else None,
            "inode": f.ino if f else None,
            "offset": f.offset if f else None,
            "size": f.size if f else None,
            "lines_read": c.lines_read,
            "bytes_read": c.bytes_read,
            "rotations": c.rotations,
            "dropped_partial_lines": c.dropped_partial_lines,
            "draining_rotated": len(self._retiring),
            "problem": self._problem,
        }

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:  # first: it may start an observer
            self._timer.join(timeout=5)
            self._timer = None
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                log.exception("stopping the watcher of %s", self.path)
            self._observer = None
        for f in self._retiring:
            os.close(f.fd)
        self._retiring.clear()
        if self._cur is not None:
            os.close(self._cur.fd)
            self._cur = None

    # -- internals ---------------------------------------------------------------------------

    def _watch(self, first: bool = False) -> None:
        """Watch the parent directory (so creates, renames and deletes of the file are seen)."""
        assert self._wake is not None
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            observer = Observer()
            observer.schedule(_DirHandler(os.path.basename(self.path), self._wake), parent,
                              recursive=False)
            # A symlinked log: writes and rotation happen in the target's directory, which
            # the link's directory never hears about (only the poll timer would see them).
            target_dir, target = self._target()
            if target_dir != parent:
                try:
                    observer.schedule(_DirHandler(target, self._wake), target_dir,
                                      recursive=False)
                except Exception as e:
                    log.warning("cannot watch %s (%s), where %s points; polling every %gs",
                                target_dir, e, self.path, self.poll_interval)
            observer.daemon = True
            observer.start()
            self._observer = observer
            if not first:
                log.info("watching %s", parent)
        except Exception as e:  # no inotify, no directory yet, ...: the poll timer still works
            self._watch_retry_at = time.monotonic() + 10.0
            if first:
                log.warning("cannot watch %s (%s); polling every %gs until it can be watched",
                            parent, e, self.poll_interval)

    def _tick(self) -> None:
        # The safety net: read() finds everything by stat, this only makes sure it runs.
        while not self._stop.wait(self.poll_interval):
            if self._observer is None and time.monotonic() >= self._watch_retry_at:
                self._watch()
            if self._wake is not None:
                try:
                    self._wake()
                except Exception:
                    log.exception("wake() failed")

    def _report(self, msg: str, level: int = logging.WARNING, exc_info: bool = False,
                missing: bool = False) -> None:
        """Log a problem once, however often read() meets it again."""
        self._missing = missing
        if msg != self._problem:
            log.log(level, "%s", msg, exc_info=exc_info)
            self._problem = msg

    def _stat_path(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as e:
            self._report(f"cannot stat {self.path}: {e.strerror}")
            return None

    def _resume(self, checkpoint: dict[str, Any]) -> None:
        try:
            cp = _StartHint(int(checkpoint["dev"]), int(checkpoint["ino"]),
                            int(checkpoint["offset"]), str(checkpoint["fingerprint"]),
                            int(checkpoint["fp_len"]))
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring malformed checkpoint for %s: %r; reading it from its start",
                        self.path, checkpoint)
            return
        st = self._stat_path()
        if st is not None and (st.st_dev, st.st_ino) == (cp.dev, cp.ino):
            self._hint = cp  # same inode: verified (fingerprint, size) when opened
            return
        # The file was rotated while we were down: finish the rotated copy first, then the
        # current file from its start (read() switches once the rotated one is at EOF).
        sibling = self._find_rotated(cp)
        if sibling is not None:
            self._cur = sibling
            log.info("%s was rotated while stopped; finishing %s from offset %d first",
                     self.path, sibling.name, sibling.pos)
        # Otherwise no file we know holds our position: the file at path is new since the
        # checkpoint (rotated and the old one compressed or deleted, or replaced), so every
        # line in it is unread - start at its beginning rather than skip them.

    def _target(self) -> tuple[str, str]:
        """(directory, name) of the file the path resolves to (itself unless a symlink)."""
        real = os.path.realpath(self.path)
        return os.path.dirname(real), os.path.basename(real)

    def _find_rotated(self, cp: _StartHint) -> _Open | None:
        here = (os.path.dirname(os.path.abspath(self.path)), os.path.basename(self.path))
        for directory, base in dict.fromkeys([here, self._target()]):
            f = self._find_rotated_in(cp, directory, base)
            if f is not None:
                return f
        return None

    def _find_rotated_in(self, cp: _StartHint, directory: str, base: str) -> _Open | None:
        try:
            names = os.listdir(directory)
        except OSError:
            return None
        for name in sorted(names):
            if not (name.startswith(base + ".") or name.startswith(base + "-")):
                continue
            if name.endswith(ROTATED_SUFFIXES):
                continue
            full = os.path.join(directory, name)
            try:
                st = os.stat(full)
                if (st.st_dev, st.st_ino) != (cp.dev, cp.ino) or not stat.S_ISREG(st.st_mode):
                    continue
                fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == (cp.dev, cp.ino) and _matches(fd, st.st_size, cp):
                    assert cp.offset is not None
                    f = _Open(full, fd, st.st_dev, st.st_ino, pos=cp.offset, offset=cp.offset,
                              size=st.st_size, head=os.pread(fd, FP_LEN, 0))
                    self._align(f)
                    return f
            except OSError:
                pass
            os.close(fd)
        return None

    def _align(self, f: _Open) -> None:
        """A position not just after a newline is mid-line: skip to the next line start."""
        if f.pos > 0 and os.pread(f.fd, 1, f.pos - 1) != b"\n":
            f.skipping = True

    def _open_path(self) -> _Open | None:
        """Open the file at path as the current file, or report why not (once)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            self._report(f"waiting for {self.path} to appear", logging.INFO, missing=True)
            return None
        except OSError as e:
            self._report(f"cannot open {self.path}: {e.strerror}; retrying")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._report(f"{self.path} is not a regular file; waiting for one")
                os.close(fd)
                return None
            f = _Open(self.path, fd, st.st_dev, st.st_ino, size=st.st_size,
                      head=os.pread(fd, FP_LEN, 0))
            hint, self._hint = self._hint, None
            if hint is not None and (hint.dev, hint.ino) == f.ident:
                if hint.offset is None:
                    self._start_at_end(f)
                elif _matches(fd, st.st_size, hint):
                    f.pos = f.offset = hint.offset
                    self._align(f)
                else:
                    log.info("%s: same inode as the checkpoint but other content or shorter; "
                             "reading it from its start", self.path)
        except OSError as e:
            os.close(fd)
            self._report(f"cannot read {self.path}: {e.strerror}; retrying")
            return None
        if self._problem is not None:
            log.info("reading %s", self.path)
            self._problem, self._missing = None, False
        self._cur = f
        return f

    def _start_at_end(self, f: _Open) -> None:
        # Start after the last complete line, so a line being written as we start is not cut.
        tail_start = max(0, f.size - 64 * 1024)
        tail = os.pread(f.fd, f.size - tail_start, tail_start)
        nl = tail.rfind(b"\n")
        if nl >= 0 or tail_start == 0:
            f.pos = f.offset = tail_start + nl + 1
        else:
            f.pos = f.offset = f.size
            f.skipping = True

    def _read(self, out: list[Chunk]) -> None:
        budget = READ_BUDGET
        now = time.monotonic()
        for old in list(self._retiring):
            got, budget = self._pull(old, budget, out)
            if got:
                old.quiet_until = now + self.rotate_grace
            elif now >= old.quiet_until and budget > 0:
                self._close_retired(old, out)

        f = self._cur or self._open_path()
        if f is None:
            return
        if self._rewritten(f):
            log.info("%s was truncated or rewritten in place (copytruncate?); reading it from "
                     "its start", self.path)
            self.counters.rotations += 1
            f.pos = f.offset = 0
            f.pending, f.skipping, f.head = b"", False, b""
        _, budget = self._pull(f, budget, out)

        st = self._stat_path()
        if st is not None and (st.st_dev, st.st_ino) != f.ident and budget > 0:
            # The path names another file now. The old one was read to EOF just above, but the
            # writer may not have reopened yet: keep its fd and drain it for a while.
            log.info("%s rotated (inode %d -> %d)", self.path, f.ino, st.st_ino)
            self.counters.rotations += 1
            f.quiet_until = now + self.rotate_grace
            self._retiring.append(f)
            self._cur = None
            new = self._open_path()
            if new is not None:
                _, budget = self._pull(new, budget, out)
        # Deleted (st is None): keep reading the unlinked inode until a new file appears.

        if budget <= 0 and self._wake is not None:
            self._wake()  # more is waiting; come back after the other sources had their turn

    def _rewritten(self, f: _Open) -> bool:
        size = os.fstat(f.fd).st_size
        if size < f.pos:
            return True
        # A writer with O_APPEND may have refilled a truncated file past our position already;
        # then only its first bytes tell.
        return bool(f.head) and os.pread(f.fd, len(f.head), 0) != f.head

    def _pull(self, f: _Open, budget: int, out: list[Chunk]) -> tuple[bool, int]:
        """Append f's whole lines up to its current size to out; (got any bytes, budget left)."""
        f.size = os.fstat(f.fd).st_size
        got = False
        while budget > 0 and f.pos < f.size:
            try:
                data = os.pread(f.fd, min(BLOCK, f.size - f.pos, budget), f.pos)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.EAGAIN):
                    break
                raise
            if not data:
                break
            got = True
            f.pos += len(data)
            budget -= len(data)
            if f.skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data = data[nl + 1:]
                f.skipping = False
                f.offset = f.pos - len(data)
            buf = f.pending + data if f.pending else data
            cut = buf.rfind(b"\n") + 1
            if cut:
                self._emit(buf[:cut], out)
                f.offset = f.pos - (len(buf) - cut)
            f.pending = buf[cut:]
            if len(f.pending) > MAX_PARTIAL:
                # Bound memory: no mail log line is this long. The checkpoint stays before it.
                log.warning("%s: dropping a line longer than %d bytes at offset %d",
                            f.name, MAX_PARTIAL, f.offset)
                self.counters.dropped_partial_lines += 1
                f.pending = b""
                f.skipping = True
        if len(f.head) < FP_LEN and f.size > len(f.head):
            f.head = os.pread(f.fd, FP_LEN, 0)
        return got, budget

    def _emit(self, data: bytes, out: list[Chunk]) -> None:
        self.counters.lines_read += data.count(b"\n")
        self.counters.bytes_read += len(data)
        out.append(Chunk(self.id, data))

    def _close_retired(self, f: _Open, out: list[Chunk]) -> None:
        # The writer has moved on; a last line without newline is as complete as it will get.
        if f.pending and not f.skipping:
            self._emit(f.pending + b"\n", out)
        self._retiring.remove(f)
        os.close(f.fd)
