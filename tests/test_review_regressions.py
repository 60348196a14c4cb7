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


def members(ns: str, name: str, family: str = "4") -> set[str]:
    """Addresses in a kernel set of namespace ``ns``, whatever its name."""
    from logban.actions.ipset import IPSetAction
    from netns import in_netns
    kw = {f"set{family}": name, f"set{'6' if family == '4' else '4'}": name + "x"}
    with in_netns(ns):
        a = IPSetAction(**kw)
        a.set_info(name)
    try:
        return set(a.kernel_entries(name))
    finally:
        a.stop()


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


# ---- reload and actions ---------------------------------------------------------------------

def test_reload_with_new_set_names_bans_into_the_new_sets(tmp_path: Path) -> None:
    """SIGHUP with other set names said 'reloaded' but kept banning into the old sets (the
    action object was kept by name), so the firewall rule on the new sets matched nothing."""
    require_root()
    from netns import netns
    log = tmp_path / "maillog"
    log.write_text("")
    cfgp = write_config(tmp_path, [{"file": str(log)}])
    with netns("reload") as ns:
        d = Daemon(cfgp, netns=ns).start()
        try:
            d.cli("ban", "192.0.2.7")
            cfg = yaml.safe_load(cfgp.read_text())
            cfg["actions"]["ipset"] = {"set4": "newban4", "set6": "newban6"}
            cfgp.write_text(yaml.safe_dump(cfg))
            assert d.proc is not None
            d.proc.send_signal(signal.SIGHUP)
            d.wait_for(lambda: "newban4" in d.status()["actions"]["ipset"]["sets"], what="reload")
            d.cli("ban", "192.0.2.8")
            d.cli("ban", "2001:db8::8")
            assert members(ns, "newban4") == {"192.0.2.7", "192.0.2.8"}
            assert members(ns, "newban6", "6") == {"2001:db8::8"}
            assert members(ns, "logban4") == {"192.0.2.7"}  # left as it was
            d.cli("unban", "192.0.2.7")
            assert members(ns, "newban4") == {"192.0.2.8"}
        finally:
            d.stop()


def test_reload_to_an_unusable_action_is_refused_and_bans_keep_working(tmp_path: Path) -> None:
    """A reload to a new action with a set name the kernel refuses was half applied: the jail
    pointed at an action that did not exist and its next ban killed the daemon (KeyError)."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfgp = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    d = Daemon(cfgp).start()
    try:
        cfg = yaml.safe_load(cfgp.read_text())
        cfg["actions"]["big"] = {"type": "ipset", "set4": "x" * 40, "set6": "big6"}
        cfg["jails"]["smtp-auth"]["action"] = "big"
        cfgp.write_text(yaml.safe_dump(cfg))
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any("reload refused" in p for p in d.status()["problems"]),
                   what="the refused reload")
        append(log, "".join(fail("192.0.2.80", -3 + i) for i in range(3)))
        d.wait_for(lambda: "192.0.2.80" in listed(d), what="the ban with the old action")
        assert d.proc.poll() is None
        assert "dry run: would ban 192.0.2.80" in d.log_text()
    finally:
        assert d.stop() == 0


def test_check_refuses_two_ipset_actions_on_the_same_sets(tmp_path: Path) -> None:
    """Two ipset actions left at the default set names: each start made the shared sets hold
    only its own jails' bans, so the other jail's bans were listed but not in the kernel."""
    log = tmp_path / "maillog"
    log.write_text("")
    cfgp = write_config(tmp_path, [{"file": str(log)}])
    cfg = yaml.safe_load(cfgp.read_text())
    cfg["jails"]["dovecot"] = {"filters": ["dovecot"], "action": "ipset-long", "bantime": "1d"}
    cfg["actions"]["ipset-long"] = {"type": "ipset"}
    cfgp.write_text(yaml.safe_dump(cfg))
    p = Daemon(cfgp).cli("check", check=False)
    assert p.returncode == 1
    # yaml.safe_dump sorts the jails, so ipset-long (of jail dovecot) is met first
    assert "actions.ipset.set4: set 'logban4' clashes with actions.ipset-long.set4" in p.stderr
    assert "actions.ipset.set6: set 'logban6' clashes with actions.ipset-long.set6" in p.stderr
    cfg["actions"]["ipset-long"] = {"type": "ipset", "set4": "long4", "set6": "long6"}
    cfgp.write_text(yaml.safe_dump(cfg))
    assert Daemon(cfgp).cli("check", check=False).returncode == 0
    cfg["actions"]["ipset-long"] = {"type": "ipset", "set4": "long4", "set6": "long4-tmp"}
    cfgp.write_text(yaml.safe_dump(cfg))
    p = Daemon(cfgp).cli("check", check=False)
    assert p.returncode == 1 and "set 'long4-tmp' clashes with actions.ipset-long.set4" in p.stderr
    cfg["actions"]["ipset-long"] = {"type": "ipset", "set4": "y" * 28, "set6": "long6"}
    cfgp.write_text(yaml.safe_dump(cfg))
    p = Daemon(cfgp).cli("check", check=False)
    assert p.returncode == 1 and "must be a set name of 1 to 27 bytes" in p.stderr


# ---- sources --------------------------------------------------------------------------------

def test_journal_directory_created_after_start_is_followed(tmp_path: Path) -> None:
    """A journal directory missing at start was reported and then never tried again (only a
    reload did): the daemon never read it."""
    tool = require_tool("systemd-journal-remote")
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        require(False, "needs systemd-python")
    from journalfiles import entry, write_journal
    jdir = tmp_path / "journal"
    cfg = write_config(tmp_path, [{"journal": {"path": str(jdir)}}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        assert any("no such file or directory" in p for p in d.status()["problems"])
        jdir.mkdir()
        t = time.time()
        msg = "warning: unknown[198.51.100.2]: SASL LOGIN authentication failed: x"
        write_journal(tool, jdir / "mail.journal", [entry(msg, at=t + i * 0.1) for i in range(3)])
        d.wait_for(lambda: "198.51.100.2" in listed(d), timeout=15, what="ban from the new journal")
        st = d.status()
        assert st["problems"] == []
        assert st["jails"]["smtp-auth"]["failures_total"] == 3
        assert d.log_text().count("source journal:") == 1  # the problem is logged once
    finally:
        d.stop()


def test_symlinked_log_rotated_while_stopped_loses_no_line(tmp_path: Path) -> None:
    """/var/log/maillog -> /data/log/mail.log: a rotation while logban was stopped was looked
    for next to the link, not next to the file, so the rotated file's unread tail was lost."""
    real_dir, link_dir = tmp_path / "data", tmp_path / "log"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "mail.log"
    target.write_text("")
    (link_dir / "maillog").symlink_to(target)
    cfg = write_config(tmp_path, [{"file": str(link_dir / "maillog")}], action="dry-run")
    d = Daemon(cfg).start()
    d.stop()
    append(target, fail("192.0.2.90", -3) + fail("192.0.2.90", -2))
    os.rename(target, real_dir / "mail.log.1")
    target.write_text(fail("192.0.2.90", -1))
    d2 = Daemon(cfg).start()
    try:
        d2.wait_for(lambda: "192.0.2.90" in listed(d2), what="the ban from both files")
        assert listed(d2)["192.0.2.90"]["failures"] == 3
    finally:
        d2.stop()


def test_symlinked_log_wakes_the_daemon_without_waiting_for_the_poll(tmp_path: Path) -> None:
    """Only the link's directory was watched; writes to the target's directory were seen by
    the poll timer only (a second of ban latency by default)."""
    import threading

    from logban.sources.file import FileSource
    (tmp_path / "data").mkdir()
    (tmp_path / "log").mkdir()
    target = tmp_path / "data" / "mail.log"
    target.write_text("")
    (tmp_path / "log" / "maillog").symlink_to(target)
    woke = threading.Event()
    src = FileSource(tmp_path / "log" / "maillog", poll_interval=60)
    src.start(woke.set)
    try:
        time.sleep(0.3)
        woke.clear()
        append(target, fail("192.0.2.91"))
        assert woke.wait(5), "not woken by the write"
    finally:
        src.stop()
