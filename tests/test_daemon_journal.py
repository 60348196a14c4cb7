"""The real daemon following a real journal file (made by systemd-journal-remote): entries are
followed as they are appended, and a restart resumes at the cursor with nothing counted twice."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import require, require_tool
from daemonproc import Daemon, write_config
from journalfiles import entry, write_journal

MSG = "warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"


def have_systemd() -> bool:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return False
    return True


def test_daemon_follows_journal_and_resumes_at_cursor(tmp_path: Path) -> None:
    tool = require_tool("systemd-journal-remote")
    require(have_systemd(), "needs systemd-python")
    jdir = tmp_path / "journal"
    jdir.mkdir()
    jfile = jdir / "mail.journal"
    t = time.time()
    # an old failure before the daemon starts: start_at end means it is not counted
    write_journal(tool, jfile, [entry(MSG.format(ip="198.51.100.1"), at=t - 60)])
    cfg = write_config(tmp_path, [{"journal": {"path": str(jdir)}}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        write_journal(tool, jfile, [entry(MSG.format(ip="198.51.100.2"), at=t + i) for i in range(2)]
                      + [entry("SMTP_AUTH_FAIL: Strike 3: IN= OUT=eth0 SRC=192.0.2.1 DST=198.51.100.2 "
                               "LEN=73 PROTO=TCP SPT=25 DPT=6000 ", at=t + 5, transport="kernel")])
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["bans_active"] == 1, what="ban from the journal")
        assert "ban 198.51.100.2 jail=smtp-auth failures=3" in d.log_text()
        assert "filter=kernel-smtp" in d.log_text()
        assert d.status()["jails"]["smtp-auth"]["failures_total"] == 3
    finally:
        d.stop()
    write_journal(tool, jfile, [entry(MSG.format(ip="198.51.100.3"), at=t + 10)])
    d2 = Daemon(cfg).start()
    try:
        d2.wait_for(lambda: d2.status()["failures_seen"] == 1, what="the entry written while stopped")
        time.sleep(0.5)
        st = d2.status()
        assert st["failures_seen"] == 1  # nothing before the cursor was read again
        assert st["jails"]["smtp-auth"]["failures_total"] == 1
    finally:
        d2.stop()
