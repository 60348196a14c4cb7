"""systemd integration of the real daemon: READY, STATUS, WATCHDOG, SIGHUP reload, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from daemonproc import write_backlog, write_config


def test_notify_protocol_reload_and_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    sock_path = str(tmp_path / "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sock_path)
    ns.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"}
    p = subprocess.Popen([sys.executable, "-m", "logban", "run", "-c", str(cfg)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    msgs: list[str] = []

    def collect(until: float) -> None:
        while time.monotonic() < until:
            try:
                msgs.append(ns.recv(4096).decode())
            except TimeoutError:
                pass

    try:
        deadline = time.monotonic() + 15
        while not any("READY=1" in m for m in msgs) and time.monotonic() < deadline:
            collect(time.monotonic() + 0.2)
        ready = next(m for m in msgs if "READY=1" in m)
        assert "STATUS=0 bans active, 0 addresses tracked, 0 failures seen" in ready
        # WatchdogSec=0.4s: the daemon pings at half of it
        n_before = sum(m == "WATCHDOG=1" for m in msgs)
        collect(time.monotonic() + 1.5)
        assert sum(m == "WATCHDOG=1" for m in msgs) - n_before >= 3

        # SIGHUP with a new jail: reloaded
        doc = yaml.safe_load(cfg.read_text())
        doc["jails"]["second"] = {"filters": ["dovecot"], "maxretry": 5, "action": "dry-run"}
        cfg.write_text(yaml.safe_dump(doc))
        p.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        st = subprocess.run([sys.executable, "-m", "logban", "status", "--json", "-c", str(cfg)],
                            capture_output=True, text=True, timeout=20)
        assert st.returncode == 0, st.stderr
        assert '"second"' in st.stdout

        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=15)
        assert p.returncode == 0
        collect(time.monotonic() + 0.3)
        assert any("STOPPING=1" in m for m in msgs)
        assert b"reloaded" in out
        assert not (tmp_path / "logban.sock").exists()
    finally:
        if p.poll() is None:
            p.kill()
        ns.close()


def test_commands_say_when_the_daemon_is_not_running(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [{"file": str(tmp_path / "maillog")}], action="dry-run")
    p = subprocess.run([sys.executable, "-m", "logban", "status", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2
    assert p.stderr.startswith("logban: the logban daemon is not running (no control socket at ")


def test_journal_source_without_systemd_python_leaves_file_sources_working(tmp_path: Path) -> None:
    # A python path on which "import systemd" fails, as on a host without python3-systemd.
    fake = tmp_path / "nosystemd" / "systemd"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named systemd')\n")
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}, {"journal": {}}], action="dry-run")
    env = {"PYTHONPATH": str(fake.parent)}
    chk = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(cfg)], capture_output=True,
                         text=True, timeout=30, env={**os.environ, **env})
    assert chk.returncode == 0
    assert "sources[1].journal: needs systemd-python" in chk.stderr
    from daemonproc import Daemon
    d = Daemon(cfg, env=env).start()
    try:
        with open(log, "a") as f:
            for i in range(3):
                f.write(f"Dec  3 10:00:0{i} mx1 postfix/smtpd[1]: warning: unknown[198.51.100.3]: "
                        "SASL LOGIN authentication failed: x\n")
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["bans_active"] == 1, what="ban from the file")
        problems = d.status()["problems"]
        assert any("journal:system" in p and "systemd-python" in p for p in problems), problems
    finally:
        d.stop()


def test_clean_restart_keeps_pending_failures(tmp_path: Path) -> None:
    from daemonproc import Daemon
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    line = ("Dec  3 10:00:0{i} mx1 postfix/smtpd[1]: warning: unknown[198.51.100.4]: "
            "SASL LOGIN authentication failed: x\n")
    d = Daemon(cfg).start()
    try:
        with open(log, "a") as f:
            f.write(line.format(i=1) + line.format(i=5))
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["failures_tracked"] == 1, what="2 failures")
    finally:
        assert d.stop() == 0
    d = Daemon(cfg).start()
    try:
        assert "1 addresses' pending failures restored" in d.log_text()
        assert d.status()["jails"]["smtp-auth"]["bans_active"] == 0
        with open(log, "a") as f:
            f.write(line.format(i=9))  # the third strike, after the restart
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["bans_active"] == 1, what="ban on the 3rd")
    finally:
        d.stop()


def test_status_answers_while_a_big_backlog_is_read(tmp_path: Path) -> None:
    from daemonproc import Daemon
    log = tmp_path / "maillog"
    n = 200_000
    write_backlog(log, n)
    cfg = write_config(tmp_path, [{"file": {"path": str(log), "start_at": "start"}}], action="dry-run",
                       maxretry=10)
    d = Daemon(cfg).start()
    try:
        t0 = time.monotonic()
        st = d.status()
        answered = time.monotonic() - t0
        assert st["failures_seen"] < n, "the backlog was already done: make it bigger"
        assert answered < 2.0, f"status took {answered:.2f}s while catching up"
        d.wait_for(lambda: d.status()["failures_seen"] == n, timeout=120, what="the whole backlog")
    finally:
        d.stop()
