"""The journal source against real journal files written by systemd-journal-remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import REPO, require, require_tool
from journalfiles import entry, usec, utc, write_journal
from logban.filters import load_filters
from logban.matcher import Matcher
from logban.sources.base import Chunk

FILTERS = load_filters()
T0 = utc(2026, 12, 3, 10, 0, 1, 123456)

FAIL = "warning: unknown[{}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
STRIKE = ("SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.1 DST={} LEN=73 TOS=0x00 "
          "PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=50000 URGP=0 ")


def _systemd_python() -> bool:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def tool() -> str:
    require(_systemd_python(), "needs systemd-python")
    return require_tool("systemd-journal-remote")


def matches() -> list[str]:
    from logban.sources.journal import journal_matches
    return journal_matches(FILTERS)


def stamp(t: datetime) -> str:
    """The stamp the source writes: local time with its offset, microseconds always."""
    return t.astimezone().isoformat(timespec="microseconds")


def naive_local(t: datetime) -> datetime:
    return t.astimezone().replace(tzinfo=None)


def lines(chunks: list[Chunk]) -> list[bytes]:
    return [c.data for c in chunks]


@pytest.fixture
def sources() -> Iterator[list]:
    """Sources a test made; stopped even when it fails."""
    made: list = []
    yield made
    for s in made:
        s.stop()


def source(made: list, path: Path | str, **kw):  # type: ignore[no-untyped-def]
    from logban.sources.journal import JournalSource
    s = JournalSource(str(path), kw.pop("matches", matches()), **kw)
    made.append(s)
    return s


def first_entries() -> list[dict]:
    return [
        entry(FAIL.format("192.0.2.1"), at=T0, pid=1201),
        entry(STRIKE.format("203.0.113.5"), at=T0 + timedelta(seconds=1), transport="kernel"),
        # Not wanted by any shipped filter: the matches keep it out.
        entry("session opened for user root", at=T0 + timedelta(seconds=2), ident="CRON", pid=77),
        # Non-UTF-8 bytes stay as they are; an embedded line break becomes a space.
        entry(b"warning: unknown[198.51.100.7]: SASL PLAIN authentication failed: \xff\xfe\nnext",
              at=T0 + timedelta(seconds=3), ident="postfix/submission/smtpd", pid=1202),
        # No hostname field, no pid.
        entry(FAIL.format("2001:db8::9"), at=T0 + timedelta(seconds=4), pid=None, hostname=None),
    ]


def expected_first() -> list[bytes]:
    return [
        f"{stamp(T0)} mx1 postfix/smtpd[1201]: {FAIL.format('192.0.2.1')}\n".encode(),
        f"{stamp(T0 + timedelta(seconds=1))} mx1 kernel: {STRIKE.format('203.0.113.5')}\n".encode(),
        stamp(T0 + timedelta(seconds=3)).encode()
        + b" mx1 postfix/submission/smtpd[1202]: warning: unknown[198.51.100.7]: SASL PLAIN "
          b"authentication failed: \xff\xfe next\n",
        f"{stamp(T0 + timedelta(seconds=4))} postfix/smtpd: {FAIL.format('2001:db8::9')}\n".encode(),
    ]


def test_entries_become_syslog_lines_with_their_time(tool: str, tmp_path: Path, sources: list) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    s = source(sources, path, start_at="start")
    assert s.id == f"journal:{path}"
    chunks = s.read()
    assert lines(chunks) == expected_first()
    assert [c.time for c in chunks] == [naive_local(T0 + timedelta(seconds=k)) for k in (0, 1, 3, 4)]
    assert all(c.source == s.id for c in chunks)
    assert s.read() == []
    cp = s.checkpoint()
    assert cp is not None and cp["realtime"] == usec(T0 + timedelta(seconds=4))
    assert isinstance(cp["cursor"], str)
    json.dumps(cp)

    # The shipped filters read the lines, and the failure's time is the entry's.
    m = Matcher(FILTERS)
    now = datetime(2026, 12, 3, 12, 0, 0)
    got = [(res.failure.filter, res.failure.host, res.failure.ts)
           for c in chunks for _, _, res in m.scan(c.data, now, c.time) if res.failure]
    assert got == [
        ("postfix-sasl", "192.0.2.1", T0.timestamp()),
        ("kernel-smtp", "203.0.113.5", (T0 + timedelta(seconds=1)).timestamp()),
        ("postfix-sasl", "198.51.100.7", (T0 + timedelta(seconds=3)).timestamp()),
        ("postfix-sasl", "2001:db8::9", (T0 + timedelta(seconds=4)).timestamp()),
    ]


def test_matches_are_a_disjunction_and_empty_means_everything(tool: str, tmp_path: Path,
                                                                sources: list) -> None:
    path = write_journal(tool, tmp_path / "m.journal", first_entries())
    # Different fields: sd-journal would AND them unless each is its own OR-ed group.
    both = source(sources, path, matches=["SYSLOG_IDENTIFIER=postfix/smtpd", "_TRANSPORT=kernel"],
                  start_at="start")
    assert len(both.read()) == 3
    everything = source(sources, path, matches=[], start_at="start")
    assert len(everything.read()) == 5


def test_start_at_end_skips_what_is_there(tool: str, tmp_path: Path, sources: list) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    s = source(sources, path)
    assert s.read() == []
    # The checkpoint already names the last entry: a restart now would not miss what follows.
    cp = s.checkpoint()
    assert cp is not None and cp["realtime"] == usec(T0 + timedelta(seconds=4))
    write_journal(tool, path, [entry(FAIL.format("192.0.2.50"), at=T0 + timedelta(seconds=9))])
    assert lines(s.read()) == [
        f"{stamp(T0 + timedelta(seconds=9))} mx1 postfix/smtpd[1201]: {FAIL.format('192.0.2.50')}\n"
        .encode()]


def _thread_cpu_seconds(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_follows_appends_with_wakes_and_no_busy_loop(tool: str, tmp_path: Path, sources: list) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries()[:1])
    s = source(sources, path)
    woke = threading.Event()
    count = [0]

    def wake() -> None:
        count[0] += 1
        woke.set()

    s.start(wake)
    assert woke.wait(5)   # the initial wake: read whatever is there
    assert s.read() == []
    time.sleep(0.3)
    woke.clear()
    idle_from = count[0]
    thread = s._thread
    assert thread is not None and thread.native_id is not None
    cpu0 = _thread_cpu_seconds(thread.native_id)
    time.sleep(1.5)
    assert count[0] == idle_from, "woken while nothing was written"
    assert _thread_cpu_seconds(thread.native_id) - cpu0 < 0.2, "the waiter thread is spinning"

    for k in range(3):
        woke.clear()
        t = T0 + timedelta(minutes=1, seconds=k)
        write_journal(tool, path, [entry(FAIL.format(f"203.0.113.{10 + k}"), at=t)])
        assert woke.wait(5), "no wake after an append"
        got: list[Chunk] = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            got = s.read()
            if not got:
                time.sleep(0.05)
        assert lines(got) == [
            f"{stamp(t)} mx1 postfix/smtpd[1201]: {FAIL.format(f'203.0.113.{10 + k}')}\n".encode()]
    assert s.status()["waiting"] is True
    assert s.status()["wakes"] <= 10
    s.stop()
    assert s._thread is None


def test_checkpoint_resumes_after_the_last_entry_read(tool: str, tmp_path: Path,
                                                      sources: list) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    a = source(sources, path, start_at="start")
    assert len(a.read()) == 4
    cp = a.checkpoint()
    a.stop()
    sources.remove(a)

    # Nothing new: nothing read, not even the entry the checkpoint names.
    b = source(sources, path, checkpoint=cp)
    assert b.read() == []
    assert b.checkpoint() == cp

    later = [entry(FAIL.format(f"198.51.100.{k}"), at=T0 + timedelta(minutes=5, seconds=k))
             for k in range(1, 4)]
    write_journal(tool, path, later)
    # start_at does not matter when there is a checkpoint.
    c = source(sources, path, checkpoint=cp, start_at="start")
    got = lines(c.read())
    assert got == [
        f"{stamp(T0 + timedelta(minutes=5, seconds=k))} mx1 postfix/smtpd[1201]: "
        f"{FAIL.format(f'198.51.100.{k}')}\n".encode() for k in range(1, 4)]
    assert c.status()["cursor_lost"] is False
    assert c.checkpoint()["realtime"] == usec(T0 + timedelta(minutes=5, seconds=3))  # type: ignore[index]
    assert b.read() != []   # the first resumed source sees them too, exactly once
    assert b.read() == []


def test_lost_cursor_falls_back_to_the_saved_time(tool: str, tmp_path: Path, sources: list) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    old = write_journal(tool, jdir / "system@old.journal", first_entries())
    a = source(sources, jdir, start_at="start")
    assert len(a.read()) == 4
    cp = a.checkpoint()
    assert cp is not None

    # A new journal file (journald rotated), with entries at, before and after the saved
    # time, then the old file is vacuumed away: the saved cursor names nothing any more.
    saved = T0 + timedelta(seconds=4)
    write_journal(tool, jdir / "system.journal", [
        entry(FAIL.format("192.0.2.101"), at=saved - timedelta(seconds=1)),
        entry(FAIL.format("192.0.2.102"), at=saved),
        entry(FAIL.format("192.0.2.103"), at=saved + timedelta(microseconds=1)),
        entry(FAIL.format("192.0.2.104"), at=saved + timedelta(seconds=1)),
    ])
    old.unlink()

    b = source(sources, jdir, checkpoint=cp)
    got = lines(b.read())
    assert [g.split(b"[", 2)[2].split(b"]")[0] for g in got] == [b"192.0.2.103", b"192.0.2.104"]
    assert b.status()["cursor_lost"] is True

    # The running source sees the rotated-in file's entries too (after its own position).
    more = lines(a.read())
    assert [g.split(b"[", 2)[2].split(b"]")[0] for g in more] == [b"192.0.2.103", b"192.0.2.104"]


def test_a_new_journal_file_wakes_and_is_read(tool: str, tmp_path: Path, sources: list) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    write_journal(tool, jdir / "system@1.journal", first_entries()[:1])
    s = source(sources, jdir)
    woke = threading.Event()
    s.start(woke.set)
    assert woke.wait(5)
    assert s.read() == []
    woke.clear()
    t = T0 + timedelta(hours=1)
    write_journal(tool, jdir / "system.journal", [entry(FAIL.format("192.0.2.77"), at=t)])
    assert woke.wait(5), "no wake for a new journal file"
    got: list[Chunk] = []
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        got = s.read()
        time.sleep(0.05)
    assert lines(got) == [f"{stamp(t)} mx1 postfix/smtpd[1201]: {FAIL.format('192.0.2.77')}\n".encode()]


def test_bad_matches_and_paths_are_clear_errors(tmp_path: Path) -> None:
    require(_systemd_python(), "needs systemd-python")
    from logban.sources.journal import JournalError, JournalSource
    with pytest.raises(JournalError, match="FIELD=value"):
        JournalSource(None, ["postfix"])
    with pytest.raises(JournalError, match="no such file"):
        JournalSource(str(tmp_path / "missing.journal"), [])
    with pytest.raises(JournalError, match="start_at"):
        JournalSource(None, [], start_at="middle")  # type: ignore[arg-type]


def test_without_systemd_python_the_message_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "systemd", None)
    monkeypatch.setitem(sys.modules, "systemd.journal", None)
    from logban.sources.journal import JournalSource, journal_lines
    with pytest.raises(ImportError, match=r"needs systemd-python \(python3-systemd\); install it "
                                          r"or remove the journal source"):
        JournalSource(None, [])
    with pytest.raises(ImportError, match="systemd-python"):
        journal_lines(None, None, FILTERS)


def test_importing_logban_does_not_import_systemd() -> None:
    code = ("import sys, logban.cli, logban.sources.journal, logban.sources.kmsg; "
            "print('systemd' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- test-filter --journal -------------------------------------------------------------------

def test_journal_lines_is_a_stream_of_the_same_lines(tool: str, tmp_path: Path) -> None:
    from logban.sources.journal import journal_lines
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    whole = b"".join(expected_first())
    stream = journal_lines(str(path), None, FILTERS)
    assert stream.read(-1) == whole
    assert stream.read(10) == b""
    # Small reads give the same bytes.
    stream = journal_lines(str(path), None, FILTERS)
    parts = []
    while part := stream.read(7):
        assert len(part) <= 7
        parts.append(part)
    assert b"".join(parts) == whole
    # --since: ISO 8601 with an offset, or local "YYYY-MM-DD HH:MM:SS".
    since = (T0 + timedelta(seconds=3)).isoformat()
    assert journal_lines(str(path), since, FILTERS).read(-1) == b"".join(expected_first()[2:])
    local = naive_local(T0 + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    assert journal_lines(str(path), local, FILTERS).read(-1) == b"".join(expected_first()[2:])


def _cli(*args: str, tz: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TZ=tz, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "logban", "test-filter", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def _failures(out: str, tz: str) -> list[tuple[str, str | None, str | None, float]]:
    """(filter, host, user, epoch) per failure; a naive time is wall-clock time in ``tz``."""
    got = []
    for line in out.splitlines():
        d = json.loads(line)
        if "summary" in d:
            continue
        t = datetime.fromisoformat(d["time"])
        if t.tzinfo is None:
            t = t.replace(tzinfo=_zone(tz))
        got.append((d["filter"], d["host"], d["user"], t.timestamp()))
    return got


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_cli_journal_finds_what_the_text_log_gives(tool: str, tmp_path: Path, tz: str) -> None:
    require(Path("/usr/share/zoneinfo", tz).exists() or tz == "UTC", f"needs the {tz} zone")
    # The same events as a journal and as a classic syslog file written in local time ``tz``.
    events = [
        ("postfix/smtpd", 1201, FAIL.format("192.0.2.1")),
        ("postfix/smtps/smtpd", 1203, "warning: unknown[203.0.113.23]: SASL LOGIN authentication "
                                      "failed: (reason unavailable), sasl_username=jdoe@example.org"),
        ("dovecot", 900, "auth: passwd-file(jdoe,198.51.100.4): unknown user"),
        ("kernel", None, STRIKE.format("203.0.113.101")),
        ("postfix/smtpd", 1201, "connect from unknown[192.0.2.1]"),
        ("saslauthd", 455, "auth failure: [user=jdoe] [service=smtp] [realm=example.org] "
                           "[mech=pam] [reason=PAM auth error]"),
    ]
    ents, text = [], []
    zone = _zone(tz)
    for k, (ident, pid, msg) in enumerate(events):
        t = T0 + timedelta(minutes=k, microseconds=-T0.microsecond)
        if ident == "kernel":
            ents.append(entry(msg, at=t, transport="kernel"))
            tag = "kernel"
        else:
            ents.append(entry(msg, at=t, ident=ident, pid=pid))
            tag = f"{ident}[{pid}]"
        lt = t.astimezone(zone)
        text.append(f"{lt:%b} {lt.day:2d} {lt:%H:%M:%S} mx1 {tag}: {msg}\n")
    path = write_journal(tool, tmp_path / "mail.journal", ents)
    log = tmp_path / "maillog"
    log.write_text("".join(text))

    now = "2026-12-03T12:00:00"
    from_text = _cli(str(log), "--json", "--now", now, tz=tz)
    from_journal = _cli("--journal", str(path), "--json", "--now", now, tz=tz)
    assert from_text.returncode == 0, from_text.stderr
    assert from_journal.returncode == 0, from_journal.stderr
    want = _failures(from_text.stdout, tz)
    assert len(want) >= 3
    assert _failures(from_journal.stdout, tz) == want
    # The JSON time is the entry's own time, with its offset.
    first = json.loads(from_journal.stdout.splitlines()[0])
    assert datetime.fromisoformat(first["time"]) == T0.replace(microsecond=0)

    since = _cli("--journal", str(path), "--json", "--now", now,
                 "--since", (T0 + timedelta(minutes=2)).isoformat(), tz=tz)
    assert since.returncode == 0, since.stderr
    assert _failures(since.stdout, tz) == [w for w in want if w[3] >= (T0 + timedelta(minutes=2)).timestamp()]


def _zone(name: str) -> timezone:
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)  # type: ignore[return-value]


def test_cli_journal_errors_are_one_line_and_exit_2(tool: str, tmp_path: Path) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    bad_since = _cli("--journal", str(path), "--since", "the day before", tz="UTC")
    assert bad_since.returncode == 2
    assert bad_since.stderr.startswith("logban: --since 'the day before' is not a time")
    missing = _cli("--journal", str(tmp_path / "nothing.journal"), tz="UTC")
    assert (missing.returncode, missing.stderr.strip()) == (
        2, f"logban: journal {tmp_path / 'nothing.journal'}: no such file or directory")
    code = ("import sys; sys.modules['systemd'] = None; from logban.cli import main; "
            f"sys.exit(main(['test-filter', '--journal', {str(path)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "needs systemd-python (python3-systemd)" in r.stderr
    assert "Traceback" not in r.stderr


def test_unusable_cursor_and_time_only_checkpoints(tool: str, tmp_path: Path, sources: list) -> None:
    path = write_journal(tool, tmp_path / "mail.journal", first_entries())
    saved = usec(T0 + timedelta(seconds=1))
    want = expected_first()[2:]  # the entries after the saved time
    garbled = source(sources, path, checkpoint={"cursor": "not a cursor", "realtime": saved})
    assert lines(garbled.read()) == want
    time_only = source(sources, path, checkpoint={"cursor": None, "realtime": saved})
    assert lines(time_only.read()) == want


def test_system_journal_opens_and_stops(sources: list) -> None:
    require(_systemd_python(), "needs systemd-python")
    from logban.sources.journal import JournalSource
    s = JournalSource(None, matches())
    sources.append(s)
    assert s.id == "journal:system"
    woke = threading.Event()
    s.start(woke.set)
    assert woke.wait(5)
    s.read()  # whatever this machine's journal holds after its end: usually nothing
    assert s.status()["waiting"] is True
    s.stop()
    assert s.status()["waiting"] is False


def test_since_takes_journalctl_style_times() -> None:
    from datetime import datetime

    from logban.sources.journal import JournalError, parse_since
    now = datetime(2026, 12, 3, 15, 30, 0).timestamp()
    assert parse_since("-1h", now) == int((now - 3600) * 1_000_000)
    assert parse_since("2h ago", now) == int((now - 7200) * 1_000_000)
    assert parse_since("30 min ago", now) == int((now - 1800) * 1_000_000)
    assert parse_since("today", now) == int(datetime(2026, 12, 3).timestamp() * 1_000_000)
    assert parse_since("yesterday", now) == int(datetime(2026, 12, 2).timestamp() * 1_000_000)
    assert parse_since("2026-12-03 10:00:00", now) == int(datetime(2026, 12, 3, 10).timestamp()) * 1_000_000
    with pytest.raises(JournalError, match="'2h ago'"):
        parse_since("a while back", now)
