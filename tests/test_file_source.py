"""FileSource on real files with real threads: every rotation kind under a steady writer, each
line seen exactly once and in order; checkpoints across restarts; partial and oversized lines."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from logban.sources.file import MAX_PARTIAL, FileSource
from writer import LogWriter, append, line, numbers

POLL = 0.05
N = 300  # lines per writer test; at ~1 ms apart a test takes well under a second


class Reader(threading.Thread):
    """The daemon's main loop in miniature: wait for wake(), then read()."""

    def __init__(self, src: FileSource) -> None:
        super().__init__(name="reader", daemon=True)
        self.src = src
        self.nums: list[int] = []
        self.wake = threading.Event()
        self.wakes = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def _on_wake(self) -> None:
        self.wakes += 1
        self.wake.set()

    def run(self) -> None:
        self.src.start(self._on_wake)
        try:
            while not self._halt.is_set():
                self.wake.wait(0.5)
                self.wake.clear()
                for chunk in self.src.read():
                    assert chunk.source == self.src.id
                    with self._lock:
                        self.nums.extend(numbers(chunk.data))
        finally:
            self.src.stop()

    def seen(self) -> list[int]:
        with self._lock:
            return list(self.nums)

    def wait_for(self, cond: Callable[[list[int]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond(self.seen()):
            assert time.monotonic() < deadline, f"timed out; seen {len(self.seen())} lines"
            time.sleep(0.01)

    def finish(self, expect: int) -> list[int]:
        """Wait until ``expect`` lines were seen, then a little more for any duplicate."""
        self.wait_for(lambda s: len(s) >= expect)
        time.sleep(3 * POLL)
        self._halt.set()
        self.wake.set()
        self.join(5)
        return self.seen()


def run_writer(path: Path, rotate: Callable[[LogWriter, Reader], None],
               start_at: str = "start", count: int = N) -> list[int]:
    """A writer writing ``count`` lines, a reader following, ``rotate`` acting in between."""
    writer = LogWriter(path, count)
    if start_at == "start":
        path.touch()
    src = FileSource(path, start_at=start_at, poll_interval=POLL)  # type: ignore[arg-type]
    reader = Reader(src)
    reader.start()
    writer.start()
    try:
        rotate(writer, reader)
        writer.join(20)
        return reader.finish(count)
    finally:
        reader._halt.set()


# -- rotation under a steady writer -------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".1", "-20261203"])
def test_rename_and_create(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "maillog"

    def rotate(w: LogWriter, r: Reader) -> None:
        w.wait_written(N // 3)
        os.rename(path, str(path) + suffix)
        w.wait_written(w.written + 20)      # the writer still fills the renamed file
        path.touch()                        # logrotate "create"
        w.wait_written(w.written + 20)      # ... and still the old one, not yet HUP'd
        w.hup()

    assert run_writer(path, rotate) == list(range(N))
    assert (tmp_path / ("maillog" + suffix)).stat().st_size > 0


def test_two_rename_rotations_in_a_row(tmp_path: Path) -> None:
    path = tmp_path / "maillog"

    def rotate(w: LogWriter, r: Reader) -> None:
        for k in (1, 2):
            w.wait_written(k * N // 3)
            if k == 2:
                os.rename(str(path) + ".1", str(path) + ".2")
            os.rename(path, str(path) + ".1")
            path.touch()
            w.wait_written(w.written + 10)
            w.hup()

    assert run_writer(path, rotate) == list(range(N))


def test_delete_and_recreate_with_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "maillog"

    def rotate(w: LogWriter, r: Reader) -> None:
        w.wait_written(N // 3)
        os.unlink(path)
        w.wait_written(w.written + 20)      # lines into the unlinked inode must still be read
        time.sleep(4 * POLL)                # a gap with no file at all
        w.hup()                             # the writer creates the path anew

    assert run_writer(path, rotate) == list(range(N))


def test_copytruncate_with_the_writer_held(tmp_path: Path) -> None:
    """The writer is held while the file is copied and truncated, after the reader caught up:
    nothing may be lost or repeated."""
    path = tmp_path / "maillog"

    def rotate(w: LogWriter, r: Reader) -> None:
        for _ in range(2):
            w.wait_written(w.written + N // 3)
            with w.paused():
                r.wait_for(lambda s: len(s) >= w.written)
                shutil.copyfile(path, str(path) + ".1")
                os.truncate(path, 0)

    assert run_writer(path, rotate) == list(range(N))


def test_copytruncate_under_load(tmp_path: Path) -> None:
    """Unheld, lines between the reader's last look and the truncate may be lost (they are in
    the copy, or were written in the copy window); nothing after the truncate may be, and
    nothing may be repeated."""
    path = tmp_path / "maillog"
    after_truncate = 0

    def rotate(w: LogWriter, r: Reader) -> None:
        nonlocal after_truncate
        w.wait_written(N // 2)
        shutil.copyfile(path, str(path) + ".1")
        os.truncate(path, 0)
        after_truncate = w.written

    writer = LogWriter(path, N)
    path.touch()
    reader = Reader(FileSource(path, start_at="start", poll_interval=POLL))
    reader.start()
    writer.start()
    rotate(writer, reader)
    writer.join(20)
    reader.wait_for(lambda s: bool(s) and s[-1] == N - 1)
    seen = reader.finish(0)
    assert seen == sorted(set(seen))                      # no duplicates, in order
    assert set(range(after_truncate, N)) <= set(seen)     # nothing after the truncate lost
    copied = set(numbers((tmp_path / "maillog.1").read_bytes()))
    assert set(range(N)) - set(seen) <= copied | set(range(max(copied) + 1, after_truncate))


def test_file_missing_at_start(tmp_path: Path) -> None:
    """With the default start_at="end", a file that appears later is new: read all of it.
    While it is missing there is no busy loop: only the poll timer wakes us."""
    path = tmp_path / "maillog"
    src = FileSource(path, poll_interval=POLL)
    assert src.read() == [] and src.checkpoint() is None
    assert src.status()["state"] == "waiting"
    reader = Reader(src)
    reader.start()
    time.sleep(0.5)
    assert reader.wakes <= 0.5 / POLL + 3
    writer = LogWriter(path, N)
    writer.start()
    writer.join(20)
    assert reader.finish(N) == list(range(N))


def test_directory_missing_at_start(tmp_path: Path) -> None:
    path = tmp_path / "log" / "maillog"
    reader = Reader(FileSource(path, poll_interval=POLL))
    reader.start()
    time.sleep(2 * POLL)
    path.parent.mkdir()
    append(path, range(5))
    assert reader.finish(5) == list(range(5))


# -- rotation step by step (deterministic, no threads) -------------------------------------------

def lines_of(src: FileSource) -> list[int]:
    out = []
    for chunk in src.read():
        out.extend(numbers(chunk.data))
    return out


def test_rename_keeps_draining_the_old_file_then_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    src = FileSource(path, start_at="start", rotate_grace=0.2)
    assert lines_of(src) == list(range(10))
    old = open(path, "ab", buffering=0)
    os.rename(path, tmp_path / "maillog.1")
    old.write(line(10))
    assert lines_of(src) == [10]                 # path missing: still on the old inode
    append(path, [100, 101])                     # new file; the writer is not HUP'd yet
    old.write(line(11))
    assert lines_of(src) == [11, 100, 101]       # old to EOF first, then the new file
    old.write(line(12))                          # late line into the rotated file
    assert lines_of(src) == [12]
    assert src.status()["rotations"] == 1 and src.status()["draining_rotated"] == 1
    old.close()
    time.sleep(0.3)
    assert lines_of(src) == []
    assert src.status()["draining_rotated"] == 0  # quiet for the grace period: closed
    assert src.status()["inode"] == path.stat().st_ino
    src.stop()


def test_last_partial_line_of_a_rotated_file_is_kept_on_close(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    path.touch()
    src = FileSource(path, start_at="start", rotate_grace=0)
    append(path, [0])
    with open(path, "ab") as f:
        f.write(line(1)[:-1])                    # the writer died mid-line
    assert lines_of(src) == [0]
    os.rename(path, tmp_path / "maillog.1")
    append(path, [2])
    assert lines_of(src) == [2]
    assert lines_of(src) == [1]                  # closed after the (zero) grace: line 1 flushed
    assert src.status()["draining_rotated"] == 0
    src.stop()


def test_truncate_refilled_past_our_offset_is_detected(tmp_path: Path) -> None:
    """copytruncate, and the writer writes more than we had read before we look again: the
    size alone cannot tell, the changed first bytes do."""
    path = tmp_path / "maillog"
    append(path, range(5))
    src = FileSource(path, start_at="start")
    assert lines_of(src) == list(range(5))
    os.truncate(path, 0)
    append(path, range(1000, 1020))
    assert lines_of(src) == list(range(1000, 1020))
    assert src.status()["rotations"] == 1
    src.stop()


def test_start_at_end_skips_existing_lines_but_keeps_a_line_in_progress(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(5))
    with open(path, "ab") as f:
        f.write(line(5)[:20])
    src = FileSource(path)
    assert lines_of(src) == []
    with open(path, "ab") as f:
        f.write(line(5)[20:] + line(6))
    assert lines_of(src) == [5, 6]
    src.stop()


# -- checkpoints ---------------------------------------------------------------------------------

def checkpoint_after(path: Path, expect: list[int]) -> dict:
    src = FileSource(path, start_at="start")
    assert lines_of(src) == expect
    cp = src.checkpoint()
    src.stop()
    assert cp is not None
    return json.loads(json.dumps(cp))  # it is stored as JSON


def test_checkpoint_format(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(3))
    with open(path, "ab") as f:
        f.write(b"partial")
    cp = checkpoint_after(path, [0, 1, 2])
    st = path.stat()
    assert set(cp) == {"dev", "ino", "offset", "fingerprint", "fp_len"}
    assert (cp["dev"], cp["ino"]) == (st.st_dev, st.st_ino)
    assert cp["offset"] == 3 * len(line(0))      # after the last whole line, not the partial one
    assert cp["fp_len"] == 256 and len(cp["fingerprint"]) == 64


def test_restart_resumes_exactly(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    append(path, range(10, 15))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == list(range(10, 15))
    append(path, range(15, 17))
    assert lines_of(src) == [15, 16]
    src.stop()


def test_restart_on_a_short_file(tmp_path: Path) -> None:
    """Fingerprint of fewer than 256 bytes: still matches once the file has grown."""
    path = tmp_path / "maillog"
    append(path, [0])
    cp = checkpoint_after(path, [0])
    assert cp["fp_len"] == len(line(0))
    append(path, range(1, 10))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == list(range(1, 10))
    src.stop()


@pytest.mark.parametrize("suffix", [".1", "-20261203"])
def test_restart_across_a_rename_rotation(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    append(path, range(10, 13))
    os.rename(path, str(path) + suffix)
    append(Path(str(path) + suffix), range(13, 15))    # written before the HUP
    append(path, range(15, 19))
    (tmp_path / "maillog.2.gz").write_bytes(b"unrelated")
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == list(range(10, 19))
    append(path, [19])
    assert lines_of(src) == [19]
    assert src.status()["inode"] == path.stat().st_ino
    src.stop()


def test_restart_across_a_rename_before_the_new_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    os.rename(path, tmp_path / "maillog.1")
    append(tmp_path / "maillog.1", range(10, 12))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == [10, 11]
    append(tmp_path / "maillog.1", [12])
    append(path, [13, 14])
    assert lines_of(src) == [12, 13, 14]
    src.stop()


def test_restart_with_an_unrelated_file_starts_at_its_beginning(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    path.unlink()                            # the inode may well be reused for the new file
    append(path, range(500, 530))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == list(range(500, 530))
    src.stop()


def test_restart_with_the_file_rewritten_in_place(tmp_path: Path) -> None:
    """Same inode, longer than the offset, other content (copytruncate while we were down)."""
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    os.truncate(path, 0)
    append(path, range(500, 530))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == list(range(500, 530))
    src.stop()


def test_restart_with_the_file_truncated_shorter(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(10))
    cp = checkpoint_after(path, list(range(10)))
    os.truncate(path, 0)
    append(path, range(2))
    src = FileSource(path, checkpoint=cp)
    assert lines_of(src) == [0, 1]
    src.stop()


def test_malformed_checkpoint_reads_from_the_start(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "maillog"
    append(path, range(3))
    with caplog.at_level(logging.WARNING, "logban.source.file"):
        src = FileSource(path, checkpoint={"offset": "x"})
    assert lines_of(src) == [0, 1, 2]
    assert "malformed checkpoint" in caplog.text
    src.stop()


# -- lines -----------------------------------------------------------------------------------------

def test_partial_line_is_held_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    path.touch()
    src = FileSource(path, start_at="start")
    with open(path, "ab", buffering=0) as f:
        f.write(b"first\nsec")
        assert [c.data for c in src.read()] == [b"first\n"]
        f.write(b"ond part")
        assert src.read() == []
        assert src.checkpoint()["offset"] == 6  # type: ignore[index]
        f.write(b"\nthird\n")
        assert [c.data for c in src.read()] == [b"second part\nthird\n"]
    assert src.status()["lines_read"] == 3
    assert src.status()["bytes_read"] == len(b"first\nsecond part\nthird\n")
    src.stop()


def test_oversized_partial_line_is_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    path.touch()
    src = FileSource(path, start_at="start")
    with open(path, "ab", buffering=0) as f:
        f.write(b"before\n" + b"x" * (MAX_PARTIAL // 2))
        assert [c.data for c in src.read()] == [b"before\n"]
        f.write(b"x" * MAX_PARTIAL)                 # now over the bound, still no newline
        assert src.read() == []
        assert src.status()["dropped_partial_lines"] == 1
        f.write(b"x" * 1000 + b"\nafter\n")
        assert [c.data for c in src.read()] == [b"after\n"]
    assert src.status()["dropped_partial_lines"] == 1
    assert src.checkpoint()["offset"] == path.stat().st_size  # type: ignore[index]
    src.stop()


def test_big_backlog_comes_in_big_whole_line_chunks(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    count = 100_000                                   # ~13 MiB
    append(path, range(count))
    src = FileSource(path, start_at="start")
    chunks = src.read()
    assert 3 <= len(chunks) <= 6
    assert all(c.data.endswith(b"\n") for c in chunks)
    assert [n for c in chunks for n in numbers(c.data)] == list(range(count))
    src.stop()


# -- watching and robustness ------------------------------------------------------------------------

def test_wake_is_called_on_append(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(3))
    src = FileSource(path, poll_interval=60)  # so only the directory watch can wake us
    woke = threading.Event()
    src.start(woke.set)
    try:
        assert woke.wait(1)                  # start() wakes once for what is already there
        assert src.read() == []
        woke.clear()
        append(path, [3])
        assert woke.wait(1)
        assert lines_of(src) == [3]
        woke.clear()
        os.rename(path, tmp_path / "maillog.1")
        assert woke.wait(1)
    finally:
        src.stop()


def test_not_a_regular_file_is_reported_once_and_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "maillog"
    path.mkdir()
    with caplog.at_level(logging.WARNING, "logban.source.file"):
        src = FileSource(path)
        for _ in range(5):
            assert src.read() == []
    assert len([r for r in caplog.records if "not a regular file" in r.getMessage()]) == 1
    assert src.status()["state"] == "error"
    path.rmdir()
    append(path, range(2))
    assert lines_of(src) == [0, 1]
    assert src.status()["state"] == "reading" and src.status()["problem"] is None
    src.stop()


def test_status_fields(tmp_path: Path) -> None:
    path = tmp_path / "maillog"
    append(path, range(4))
    src = FileSource(path, start_at="start")
    lines_of(src)
    st = src.status()
    assert st["path"] == str(path) and st["inode"] == path.stat().st_ino
    assert st["offset"] == st["size"] == path.stat().st_size
    assert (st["lines_read"], st["bytes_read"]) == (4, path.stat().st_size)
    assert (st["rotations"], st["dropped_partial_lines"]) == (0, 0)
    assert src.id == f"file:{path}"
    src.stop()
