"""Regression tests for bugs found in the second review round: each drives the real code (the
real daemon process, real journal files, real files for test-filter) where it matters."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import yaml

from conftest import require, require_tool
from daemonproc import Daemon, write_config
from journalfiles import entry, write_journal

from logban.filters import atomic_possessives


def have_systemd() -> bool:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return False
    return True


# ---- filters: the possessive rewrite -----------------------------------------------------------

def test_atomic_rewrite_leaves_literal_braces_alone() -> None:
    # "{}" is no quantifier in Python's re: "(a){}+" is a, "{", "}" one or more times. The
    # rewrite took "{}+" for a possessive quantifier and made it "(?>(a){})", another language.
    for pat in [r"(a){}+", r"x(?:ab){}+y"]:
        q = atomic_possessives(pat)
        for s in ["a{}", "a{}}}", "xab{}y", "xab{}}y"]:
            m1, m2 = re.match(pat, s), re.match(q, s)
            assert (m1 and m1.span()) == (m2 and m2.span()), (pat, q, s)
    # real quantifiers are still rewritten
    assert atomic_possessives("(a){,2}+") == "(?>(a){,2})"
    assert atomic_possessives("(a){1,}+") == "(?>(a){1,})"


# ---- daemon: reload ---------------------------------------------------------------------------

DOVECOT = ("imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<jdoe>, "
           "method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<abc>")


def test_reload_gives_a_kept_journal_source_the_new_filters_matches(tmp_path: Path) -> None:
    # The journal source reads only the entries its filters' journal matches select. A reload
    # that added dovecot to the jail kept the running journal source (same id) with the old
    # matches, so dovecot's entries were never read and its attackers never banned.
    tool = require_tool("systemd-journal-remote")
    require(have_systemd(), "needs systemd-python")
    jdir = tmp_path / "journal"
    jdir.mkdir()
    jfile = jdir / "mail.journal"
    t = time.time()
    write_journal(tool, jfile, [entry("warning: unknown[198.51.100.9]: SASL LOGIN authentication "
                                      "failed: x", at=t - 60)])
    cfg = write_config(tmp_path, [{"journal": {"path": str(jdir)}}], action="dry-run",
                       filters=["postfix-sasl"])
    d = Daemon(cfg).start()
    try:
        doc = yaml.safe_load(cfg.read_text())
        doc["jails"]["smtp-auth"]["filters"] = ["postfix-sasl", "dovecot"]
        cfg.write_text(yaml.safe_dump(doc))
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: "SYSLOG_IDENTIFIER=dovecot" in
                   d.status()["sources"][f"journal:{jdir}"].get("matches", []),
                   what="the journal source following dovecot's entries too")
        write_journal(tool, jfile, [entry(DOVECOT.format(ip="203.0.113.7"), at=t + i,
                                          ident="dovecot", pid=4100 + i) for i in range(3)])
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["bans_active"] == 1,
                   what="a ban from dovecot's journal entries")
        assert "ban 203.0.113.7 jail=smtp-auth" in d.log_text()
        # nothing read twice: the old postfix entry before the start is still not counted
        assert d.status()["failures_seen"] == 3
    finally:
        d.stop()


# ---- control socket ---------------------------------------------------------------------------

def _server(tmp_path: Path):  # type: ignore[no-untyped-def]
    import queue

    from logban.control import ControlServer
    q: queue.Queue = queue.Queue()
    srv = ControlServer(tmp_path / "ctl.sock", q, lambda: None)
    srv.start()
    return srv, q


def test_control_client_trickling_bytes_does_not_hold_a_slot(tmp_path: Path) -> None:
    # The 5 s timeout applied to each recv: a client sending one byte a second (never the
    # newline) held its slot forever, and MAX_CLIENTS such clients shut the CLI out.
    import socket

    from logban import control
    srv, _q = _server(tmp_path)
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(tmp_path / "ctl.sock"))
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < control.READ_TIMEOUT + 5:
            try:
                s.sendall(b" ")
            except OSError:
                closed = True
                break
            time.sleep(0.5)
        s.close()
        assert closed, "the connection was still open past the request timeout"
        time.sleep(0.2)
        assert srv._slots._value == control.MAX_CLIENTS  # the slot is back
    finally:
        srv.stop()


def test_control_deeply_nested_request_gets_an_answer(tmp_path: Path) -> None:
    # json.loads raises RecursionError (not ValueError) on "[[[[...": the handler thread died
    # with a traceback and the client got no reply.
    srv, _q = _server(tmp_path)
    try:
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(tmp_path / "ctl.sock"))
        s.sendall(b"[" * 60000 + b"\n")
        reply = s.recv(65536)
        s.close()
        assert b"malformed request" in reply
    finally:
        srv.stop()


# ---- timestamps -------------------------------------------------------------------------------

def test_exact_stamps_keep_their_moment_in_the_repeated_dst_hour(tmp_path: Path) -> None:
    # TAI64N labels, journalctl short-unix and kernel uptime stamps name one instant, but were
    # turned into naive local times; in the hour that repeats when DST ends, epoch() then took
    # the later of the two moments when "now" was nearer it: a failure counted an hour late.
    import subprocess
    import sys
    require(Path("/usr/share/zoneinfo/Europe/Berlin").exists(), "needs tzdata")
    code = r"""
from datetime import datetime
from logban.filters import load_filters
from logban.matcher import Matcher
first = 1792888200  # 2026-10-25 02:30 CEST, the first 02:30 of that night in Berlin
now = datetime.fromtimestamp(first + 3600 + 1200)  # 02:50 CET, in the repeated hour
m = Matcher(load_filters(["postfix-sasl"]))
body = "mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x"
for stamp in [f"{first}.000000", "@" + format((1 << 62) + 10 + first, "016x") + "00000000"]:
    r = m.match_line(stamp + " " + body, now)
    print(r.failure.ts - first)
"""
    out = subprocess.run([sys.executable, "-c", code], env={"TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert [float(x) for x in out] == [0.0, 0.0]


# ---- test-filter: the parallel path -------------------------------------------------------------

def _big_log(path: Path) -> None:
    from logban.testfilter import PARALLEL_MIN
    block = "".join(
        f"Dec  3 10:00:{i % 60:02d} mx1 postfix/smtpd[1201]: warning: unknown[192.0.2.{i % 250 + 1}]: "
        f"SASL LOGIN authentication failed: x\n"
        f"Dec  3 10:00:{i % 60:02d} mx1 postfix/smtpd[1201]: connect from unknown[198.51.100.{i % 250 + 1}]\n"
        for i in range(1000)).encode()
    with open(path, "wb") as f:
        for _ in range(PARALLEL_MIN // len(block) + 2):
            f.write(block)


def _without_timing(out: str) -> list[object]:
    import json
    rows = [json.loads(x) for x in out.splitlines()]
    for k in ("seconds", "lines_per_second", "log"):
        rows[-1]["summary"].pop(k)
    return rows


def test_test_filter_big_file_on_stdin(tmp_path: Path) -> None:
    # "logban test-filter - < big.log": standard input is a regular file big enough for the
    # parallel path, whose workers reopened it by its name, "<stdin>": a traceback.
    import subprocess
    import sys
    log = tmp_path / "big.log"
    _big_log(log)
    argv = [sys.executable, "-m", "logban", "test-filter", "--json", "--now", "2026-12-03T12:00:00"]
    with open(log, "rb") as f:
        par = subprocess.run(argv + ["--jobs", "2", "-"], stdin=f, capture_output=True, text=True)
    assert par.returncode == 0, par.stderr[-2000:]
    ser = subprocess.run(argv + ["--jobs", "1", str(log)], capture_output=True, text=True, check=True)
    assert _without_timing(par.stdout) == _without_timing(ser.stdout)


def test_test_filter_parallel_reads_the_file_it_opened(tmp_path: Path) -> None:
    # The workers reopened the file by name: a log rotated after it was opened was read in
    # part from the new file under that name.
    import io
    from datetime import datetime

    from logban.filters import load_filters
    from logban.matcher import Matcher
    from logban.testfilter import run
    log = tmp_path / "maillog"
    _big_log(log)
    m = Matcher(load_filters(["postfix-sasl"]))
    now = datetime(2026, 12, 3, 12)
    with open(log, "rb") as f:
        serial = run(m, f, now, None, workers=1)
    with open(log, "rb") as f:
        log.rename(tmp_path / "maillog.1")
        log.write_bytes(b"")  # the new, empty log under the old name
        par = run(m, f, now, io.StringIO(), workers=2)
    assert (par.lines, par.matched) == (serial.lines, serial.matched)
    assert par.lines > 0


# ---- stamps the platform cannot place -----------------------------------------------------------

HUGE = [
    "[99999999999999999999.0] SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.2 DST=192.0.2.1 LEN=73 ",
    "@ffffffffffffffff00000000 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN "
    "authentication failed: x",
    "0001-01-01T00:00:00 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN "
    "authentication failed: x",
    "9999-12-31T23:59:59 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN "
    "authentication failed: x",
    "<34>1 0001-01-01T00:00:00 mx1 postfix/smtpd 1 - - warning: unknown[192.0.2.1]: SASL LOGIN "
    "authentication failed: x",
]


def test_test_filter_survives_stamps_out_of_the_platforms_range(tmp_path: Path) -> None:
    # An uptime or TAI64N stamp past time_t, or a naive ISO stamp in year 1 or 9999, raised
    # OverflowError/ValueError out of the matcher: test-filter died with a traceback.
    import json
    import subprocess
    import sys
    log = tmp_path / "odd.log"
    log.write_text("".join(line + "\n" for line in HUGE))
    p = subprocess.run([sys.executable, "-m", "logban", "test-filter", "--json", str(log)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["host"] for r in rows[:-1]] == ["192.0.2.1"] * 5


def test_daemon_survives_a_stamp_out_of_the_platforms_range(tmp_path: Path) -> None:
    # The same exception escaped the daemon's main loop: one such line in a followed log
    # stopped logban, and every restart died on the same line again.
    log = tmp_path / "kern.log"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        with open(log, "a") as f:
            f.write("".join(line + "\n" for line in HUGE[2:]))
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["bans_active"] == 1,
                   what="a ban from the three lines, the daemon still running")
        assert d.proc is not None and d.proc.poll() is None
    finally:
        d.stop()
