"""Regression tests for bugs found in review: each drives real files, a real state database and
(where it matters) the real daemon process or kernel sets in a throwaway namespace."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from conftest import require, require_root, require_tool
from daemonproc import Daemon, write_config

from logban.config import load_config
from logban.control import Request
from logban.daemon import Daemon as InProcessDaemon
from logban.state import State

FAIL = "{stamp} mx1 postfix/smtpd[1201]: warning: unknown[{ip}]: SASL LOGIN authentication failed: x\n"


def stamp(delta: float = 0.0) -> str:
    """An RFC 3339 stamp with offset, ``delta`` seconds from now."""
    return (datetime.now().astimezone() + timedelta(seconds=delta)).isoformat(timespec="seconds")


def fail(ip: str, delta: float = 0.0) -> str:
    return FAIL.format(stamp=stamp(delta), ip=ip)


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def listed(d: Daemon) -> dict[str, dict]:
    return {b["address"]: b for b in json.loads(d.cli("list", "--json").stdout)}


# ---- state database -------------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE bans (
    address TEXT NOT NULL, jail TEXT NOT NULL, created REAL NOT NULL, expires REAL,
    failures INTEGER NOT NULL, filter TEXT NOT NULL, ban_number INTEGER NOT NULL,
    PRIMARY KEY (address, jail));
CREATE TABLE ban_history (
    address TEXT NOT NULL, jail TEXT NOT NULL, count INTEGER NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (address, jail));
CREATE TABLE pending (
    jail TEXT NOT NULL, address TEXT NOT NULL, times TEXT NOT NULL,
    PRIMARY KEY (jail, address));
CREATE TABLE checkpoints (
    source TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL NOT NULL);
"""


def test_database_from_before_pending_last_column_is_migrated(tmp_path: Path) -> None:
    """A database written before the ``pending.last`` column existed made the daemon die at
    start (``no such column: last``); it must start, keep its bans and its pending failures."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    (tmp_path / "state").mkdir()
    now = time.time()
    db = sqlite3.connect(tmp_path / "state" / "logban.db")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO bans VALUES ('198.51.100.9','smtp-auth',?,?,3,'postfix-sasl',1)",
               (now - 10, now + 3000))
    db.execute("INSERT INTO pending VALUES ('smtp-auth','192.0.2.50',?)",
               (f"{now - 60!r},{now - 30!r}",))
    db.commit()
    db.close()
    d = Daemon(cfg).start()
    try:
        assert "198.51.100.9" in listed(d)
        append(log, fail("192.0.2.50"))  # the third failure: two were saved by the old version
        d.wait_for(lambda: "192.0.2.50" in listed(d), what="ban from the migrated pending failures")
        assert listed(d)["192.0.2.50"]["failures"] == 3
    finally:
        assert d.stop() == 0
    with sqlite3.connect(tmp_path / "state" / "logban.db") as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(pending)")]
    assert "last" in cols


def test_corrupt_database_is_reported_in_one_sentence(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    (tmp_path / "state").mkdir()
    dbfile = tmp_path / "state" / "logban.db"
    dbfile.write_bytes(b"not sqlite " * 500)
    d = Daemon(cfg)
    try:
        d.start(timeout=10)
        raise AssertionError("the daemon started on a corrupt database")
    except RuntimeError as e:
        assert "exited with 1" in str(e)
    text = d.log_text()
    assert "Traceback" not in text
    assert f"logban: state database {dbfile} cannot be used: file is not a database" in text


# ---- unban and re-ban within one batch ------------------------------------------------------

def test_unban_then_reban_in_one_batch_keeps_the_new_ban_after_restart(tmp_path: Path) -> None:
    """A manual unban answered between chunks of a backlog, then a new ban of the same address
    later in that backlog: the batch's commit wrote the ban and then the unban's DELETE, so the
    ban was active in the kernel but gone after a restart."""
    log = tmp_path / "maillog"
    log.write_bytes(b"")
    cfg = write_config(tmp_path, [{"file": {"path": str(log), "start_at": "start"}}],
                       action="dry-run")
    d = InProcessDaemon(load_config(cfg))
    d._start_actions()
    d._start_sources()
    ip = "192.0.2.5"
    r = Request({"cmd": "ban", "address": ip})
    d._handle(r)
    assert r.reply and r.reply["ok"]
    filler = f"{stamp()} mx1 postfix/qmgr[9]: 0123456789: removed {'x' * 60}\n".encode()
    with open(log, "ab") as f:  # more than one 4 MiB block, the failures in the last one
        f.write(filler * (6 * 1024 * 1024 // len(filler)))
        f.write("".join(fail(ip, -2 + i) for i in range(3)).encode())
    unban = Request({"cmd": "unban", "address": ip})
    d.requests.put(unban)  # answered between the first and the second chunk
    d._read_sources()
    d._commit()
    assert unban.reply == {"ok": True, "address": ip, "jails": ["smtp-auth"]}
    assert d.bans[(ip, "smtp-auth")].ban_number == 2
    for s in d.sources.values():
        s.stop()
    d.state.close()
    d2 = Daemon(cfg).start()
    try:
        bans = listed(d2)
        assert ip in bans, d2.log_text()
        assert (bans[ip]["ban_number"], bans[ip]["failures"]) == (2, 3)
    finally:
        d2.stop()


# ---- ban durations --------------------------------------------------------------------------

def test_offender_banned_a_thousand_times_is_banned_not_a_crash(tmp_path: Path) -> None:
    """bantime * factor ** previous_bans raised OverflowError past ~1024 bans: the daemon died
    on the line and again on every restart (the line is re-read)."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run",
                       bantime="1m", bantime_max="1h")
    st = State(tmp_path / "state" / "logban.db")
    st.db.execute("INSERT INTO ban_history VALUES ('192.0.2.66','smtp-auth',1100,?)", (time.time(),))
    st.close()
    d = Daemon(cfg).start()
    try:
        append(log, "".join(fail("192.0.2.66", -3 + i) for i in range(3)))
        d.wait_for(lambda: "192.0.2.66" in listed(d), what="the ban")
        b = listed(d)["192.0.2.66"]
        assert b["ban_number"] == 1101
        assert 3590 < b["remaining"] <= 3600  # bantime_max
        assert d.proc is not None and d.proc.poll() is None
    finally:
        assert d.stop() == 0


def test_bantime_zero_bans_permanently_like_ban_for_0(tmp_path: Path) -> None:
    """``bantime: 0`` gave bans that expired at once (kernel timeout 1 s), while a manual ban
    in the same jail (which takes the jail's bantime) was permanent."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run", bantime=0)
    d = Daemon(cfg).start()
    try:
        append(log, "".join(fail("192.0.2.70", -3 + i) for i in range(3)))
        d.wait_for(lambda: "192.0.2.70" in listed(d), what="the ban")
        time.sleep(1.5)
        b = listed(d)["192.0.2.70"]
        assert (b["expires"], b["remaining"]) == (None, None)
        assert "ban 192.0.2.70 jail=smtp-auth failures=3 permanently" in d.log_text()
        assert "with kernel timeout 0 (permanent)" in d.log_text()
    finally:
        d.stop()


# ---- event time versus wall clock -----------------------------------------------------------

def test_one_future_stamped_line_does_not_age_out_everyone_elses_failures(tmp_path: Path) -> None:
    """Counting expired failures relative to the newest event time seen, so one line stamped
    hours ahead (a relay with a wrong clock) made every present failure older than findtime
    at the next periodic check: attackers pacing their attempts were never banned."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        append(log, fail("198.51.100.77", 10 * 3600) + fail("192.0.2.60", -60))
        d.wait_for(lambda: d.status()["failures_seen"] == 2, what="the first two lines")
        time.sleep(6)  # past CHECK_EVERY: the periodic expiry has run
        assert d.status()["jails"]["smtp-auth"]["failures_tracked"] == 2
        append(log, fail("192.0.2.60", -30) + fail("192.0.2.60"))
        d.wait_for(lambda: "192.0.2.60" in listed(d), what="the ban after three failures")
    finally:
        d.stop()
