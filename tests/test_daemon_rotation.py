"""Rotation drills through the real daemon: a steady writer, a rotation mid-way, and every line
counted exactly once (lines read and failures seen, from ``logban status``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from daemonproc import Daemon, write_config
from writer import LogWriter

TOTAL = 3000


def rename(log: Path, w: LogWriter, target: str) -> None:
    os.rename(log, log.parent / target)
    time.sleep(0.05)  # the syslog daemon keeps writing to the renamed file for a while ...
    w.hup()           # ... until logrotate's postrotate tells it to reopen


def copytruncate(log: Path, w: LogWriter, d: Daemon) -> None:
    # Lines still unread when the file is copied exist only in the copy: that is
    # copytruncate's own loss window. Hold the writer until the daemon has read all it wrote,
    # so any loss or duplicate outside that window shows up.
    with w.paused():
        d.wait_for(lambda: d.status()["failures_seen"] >= w.written, timeout=20, what="caught up")
        shutil.copyfile(log, log.parent / "maillog.1")
        with open(log, "r+") as f:
            f.truncate(0)


def delete_recreate(log: Path, w: LogWriter) -> None:
    os.unlink(log)
    time.sleep(0.05)
    w.hup()


@pytest.mark.parametrize("kind", ["create", "dateext", "copytruncate", "delete"])
def test_every_line_counted_once_through_rotation(tmp_path: Path, kind: str) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(b"")
    # maxretry high: we count lines and failures, the dry-run action never matters here
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run", maxretry=10**6)
    d = Daemon(cfg).start()
    w = LogWriter(log, TOTAL, interval=0.0005)
    try:
        w.start()
        w.wait_written(TOTAL // 2)
        if kind == "create":
            rename(log, w, "maillog.1")
        elif kind == "dateext":
            rename(log, w, "maillog-20261203")
        elif kind == "copytruncate":
            copytruncate(log, w, d)
        else:
            delete_recreate(log, w)
        w.join(30)

        def done() -> dict | None:
            st = d.status()
            return st if st["failures_seen"] >= TOTAL else None

        st = d.wait_for(done, timeout=20, what=f"{TOTAL} failures")
        time.sleep(1.5)  # anything counted twice would show up now
        st = d.status()
        assert st["failures_seen"] == TOTAL
        (src,) = st["sources"].values()
        assert src["lines_read"] == TOTAL
        assert st["jails"]["smtp-auth"]["failures_total"] + st["jails"]["smtp-auth"]["duplicates"] == TOTAL
    finally:
        d.stop()
