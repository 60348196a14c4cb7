"""The /dev/kmsg source against real kernel records written by this test (root can write them).

The kernel log is shared with everything else on the machine, so each test uses its own random
marker and asserts only about records that carry it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from conftest import require, require_root
from logban.filters import load_filters
from logban.matcher import Matcher
from logban.sources.base import Chunk
from logban.sources.kmsg import KmsgSource, parse_record

KMSG = "/dev/kmsg"


def _strike(dst: str, marker: str) -> str:
    # The kernel-smtp filter's strike line, with the marker in a field the pattern ignores.
    return (f"SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.1 DST={dst} LEN=73 TOS=0x00 "
            f"PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=50000 URGP=0 {marker}")


def kwrite(text: str | bytes, level: int = 6) -> None:
    """One record, as the kernel stores a write to /dev/kmsg (facility user)."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(KMSG, os.O_WRONLY)
    try:
        os.write(fd, b"<%d>" % level + data + b"\n")
    finally:
        os.close(fd)


@pytest.fixture
def marker() -> str:
    require_root()
    require(os.path.exists(KMSG) and os.access(KMSG, os.R_OK | os.W_OK), "needs /dev/kmsg")
    return f"logban-test-{secrets.token_hex(6)}"


@pytest.fixture
def sources() -> Iterator[list[KmsgSource]]:
    made: list[KmsgSource] = []
    yield made
    for s in made:
        s.stop()


def mine(chunks: list[Chunk], marker: str) -> list[bytes]:
    return [c.data for c in chunks if marker.encode() in c.data]


def body(line: bytes) -> bytes:
    """The line after its stamp."""
    return line.split(b" ", 1)[1]


def test_parse_record() -> None:
    rec = parse_record(b"14,812,6745001234,-;logban: a\\x5cb \\xff\\x0ac\n SUBSYSTEM=net\n DEVICE=+net:eth0\n")
    assert rec is not None
    assert (rec.prio, rec.facility, rec.level, rec.seq, rec.usec) == (14, 1, 6, 812, 6745001234)
    # Escapes decoded; the decoded line break became a space; continuation lines dropped.
    assert rec.message == b"logban: a\\b \xff c"
    assert parse_record(b"6,1,2,-,caller=T1;x\n").message == b"x"  # type: ignore[union-attr]
    assert parse_record(b"garbage") is None
    assert parse_record(b"a,b,c;x\n") is None


def test_reads_a_record_written_now(marker: str, sources: list[KmsgSource]) -> None:
    s = KmsgSource()
    sources.append(s)
    assert s.id == "kmsg"
    assert s.checkpoint() is not None  # started at the end, yet knows where that is
    before = time.time()
    kwrite(_strike("203.0.113.9", marker), level=4)
    kwrite(b"logban: " + marker.encode() + b" binary \xff\xfe back\\slash")
    after = time.time()
    chunks = [c for c in s.read() if marker.encode() in c.data]
    assert [body(c.data) for c in chunks] == [
        b"kernel: " + _strike("203.0.113.9", marker).encode() + b"\n",
        b"kernel: logban: " + marker.encode() + b" binary \xff\xfe back\\slash\n",
    ]
    for c in chunks:
        assert c.source == "kmsg"
        assert c.time is not None
        # The record's own time, from the kernel's clock: close to when we wrote it.
        assert before - 2 <= c.time.timestamp() <= after + 0.5
        # The stamp on the line is the same time.
        assert datetime.fromisoformat(c.data.split(b" ", 1)[0].decode()).replace(tzinfo=None) == c.time

    # The kernel-smtp filter takes the offender from the line, at the record's time.
    m = Matcher(load_filters(["kernel-smtp"]))
    got = [res.failure for c in chunks for _, _, res in m.scan(c.data, datetime.now(), c.time)
           if res.failure]
    assert [(f.filter, f.host) for f in got] == [("kernel-smtp", "203.0.113.9")]
    assert abs(got[0].ts - chunks[0].time.timestamp()) < 1e-6  # type: ignore[union-attr]


def test_checkpoint_resumes_by_sequence_number(marker: str, sources: list[KmsgSource]) -> None:
    a = KmsgSource()
    sources.append(a)
    kwrite(f"logban: {marker} one")
    assert [body(x) for x in mine(a.read(), marker)] == [f"kernel: logban: {marker} one\n".encode()]
    cp = a.checkpoint()
    assert cp is not None and set(cp) == {"seq", "boot_id"}
    with open("/proc/sys/kernel/random/boot_id") as f:
        assert cp["boot_id"] == f.read().strip()

    kwrite(f"logban: {marker} two")
    kwrite(f"logban: {marker} three")
    b = KmsgSource(checkpoint=cp)
    sources.append(b)
    assert [body(x) for x in mine(b.read(), marker)] == [
        f"kernel: logban: {marker} two\n".encode(), f"kernel: logban: {marker} three\n".encode()]
    assert b.checkpoint()["seq"] > cp["seq"]  # type: ignore[index]
    assert mine(b.read(), marker) == []

    # A checkpoint from another boot: everything in the buffer is new.
    other = KmsgSource(checkpoint={"seq": cp["seq"], "boot_id": "00000000-0000-0000-0000-000000000000"})
    sources.append(other)
    assert [body(x) for x in mine(other.read(), marker)] == [
        f"kernel: logban: {marker} {n}\n".encode() for n in ("one", "two", "three")]
    # start_at="start" without a checkpoint: the same.
    start = KmsgSource(start_at="start")
    sources.append(start)
    assert len(mine(start.read(), marker)) == 3


def _thread_cpu_seconds(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_wakes_on_new_records_without_spinning(marker: str, sources: list[KmsgSource]) -> None:
    s = KmsgSource()
    sources.append(s)
    woke = threading.Event()
    s.start(woke.set)
    s.read()
    thread = s._thread
    assert thread is not None and thread.native_id is not None

    for n in range(3):
        woke.clear()
        kwrite(f"logban: {marker} n={n}")
        assert woke.wait(5), "no wake for a new record"
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            got = mine(s.read(), marker)
        assert [body(x) for x in got] == [f"kernel: logban: {marker} n={n}\n".encode()]

    # Not reading while records wait must not make the waiter spin either: it waits for read().
    woke.clear()
    kwrite(f"logban: {marker} unread")
    assert woke.wait(5)
    cpu0 = _thread_cpu_seconds(thread.native_id)
    wakes0 = s.status()["wakes"]
    time.sleep(1.0)
    assert _thread_cpu_seconds(thread.native_id) - cpu0 < 0.2, "the waiter thread is spinning"
    assert s.status()["wakes"] == wakes0
    assert any(b"unread" in x for x in mine(s.read(), marker))
    s.stop()
    assert s.status()["waiting"] is False
