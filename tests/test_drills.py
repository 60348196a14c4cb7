"""Failure drills: the real daemon, real files, real sets, each in a network namespace of its
own. What must hold when things go wrong: nothing lost, nothing counted twice, the daemon keeps
running and says what failed and what it does about it.

* ``kill -9`` during heavy input: every ban made is still active in the kernel and the state,
  no line is counted twice and none is lost.
* The set full: an error in the log and in ``status``; the daemon keeps running, other bans
  (the other family, after an unban) still work, and a restart with more saved bans than fit
  still comes up.
* The log file deleted and recreated while running; an unreadable log.
* The state directory full: logged loudly, bans still reach the kernel, saving resumes when
  the disk frees up, and the bans made meanwhile are saved.
* SIGHUP with a broken configuration: the old one keeps banning; the log and ``status`` say why.
* The control socket: other users refused (mode 0600 and the SO_PEERCRED check), malformed,
  oversized and slow requests answered or dropped while others are still served.
* ``logban check`` on broken configurations: every message is ``FILE:LINE: key: ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import require, require_root, require_tool
from daemonproc import ALL_FILTERS, Daemon
from netns import netns, set_members

PF = ("Dec  3 {t} mx1 postfix/smtpd[{pid}]: warning: unknown[{ip}]: "
      "SASL LOGIN authentication failed: UGFzc3dvcmQ6\n")


def pf(ip: str, i: int = 0) -> str:
    """Failure line number ``i``: one second after line ``i - 1``."""
    t = 10 * 3600 + i
    return PF.format(t=f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}", pid=1000 + i, ip=ip)


def config(dir: Path, log: Path | None = None, *, jail: dict[str, Any] | None = None,
           ipset: dict[str, Any] | None = None, **top: Any) -> Path:
    cfg: dict[str, Any] = {
        "state_dir": str(dir / "state"),
        "socket": str(dir / "logban.sock"),
        "ignore": ["127.0.0.0/8", "::1"],
        "sources": [{"file": str(log or dir / "maillog")}],
        "jails": {"smtp-auth": {"filters": ALL_FILTERS, "maxretry": 3, "findtime": "20m",
                                "bantime": "1h", "action": "ipset", **(jail or {})}},
        "actions": {"ipset": {"set4": "logban4", "set6": "logban6", **(ipset or {})}},
        **top,
    }
    p = dir / "logban.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


members = set_members


def banned(ns: str) -> set[str]:
    return set(members(ns, "logban4")) | set(members(ns, "logban6"))


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def state_db(dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{dir / 'state' / 'logban.db'}?mode=ro", uri=True)


@contextlib.contextmanager
def daemon_in_netns(tmp_path: Path, cfg: Path, tag: str = "drill") -> Iterator[tuple[str, Daemon]]:
    require_root()
    require_tool("ipset")
    with netns(tag) as ns:
        d = Daemon(cfg, netns=ns)
        try:
            d.start()
            yield ns, d
        finally:
            if d.proc is not None:
                d.stop()


def jail_status(d: Daemon) -> dict[str, Any]:
    return d.status()["jails"]["smtp-auth"]


# ---- kill -9 during heavy input ---------------------------------------------------------------

def _heavy_lines(n_addr: int, group: int = 100) -> list[str]:
    """Three failures (maxretry) per address, the rounds of a group of addresses interleaved
    so that many addresses have lines on both sides of any point in the file."""
    addrs = [f"2001:db8:100::{i:x}" if i % 2 else f"198.51.{100 + (i // 2) // 250}.{(i // 2) % 250 + 1}"
             for i in range(n_addr)]
    assert len(set(addrs)) == n_addr
    out = []
    for g in range(0, n_addr, group):
        block = addrs[g:g + group]
        for _round in range(3):
            out += [pf(a, len(out)) for a in block]
    return out


class Writer(threading.Thread):
    """Appends lines in small bursts (one write() each), like a busy syslog daemon."""

    def __init__(self, path: Path, lines: list[str], burst: int = 30, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.path, self.lines, self.burst, self.pause = path, lines, burst, pause
        self.written = 0

    def run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            for i in range(0, len(self.lines), self.burst):
                part = self.lines[i:i + self.burst]
                os.write(fd, "".join(part).encode())
                self.written += len(part)
                time.sleep(self.pause)
        finally:
            os.close(fd)


def test_kill9_during_heavy_input_keeps_every_ban_and_counts_each_line_once(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("Dec  3 09:59:59 mx1 postfix/qmgr[9]: started\n")
    head = log.stat().st_size
    lines = _heavy_lines(1200)  # 3600 failure lines from 1200 addresses
    cfg = config(tmp_path, log)
    with daemon_in_netns(tmp_path, cfg, "kill9") as (ns, d):
        w = Writer(log, lines)
        w.start()
        d.wait_for(lambda: w.written >= len(lines) // 4, timeout=20, what="a quarter written")
        d.wait_for(lambda: len(banned(ns)) >= 100, timeout=20, what="100 bans")
        before = banned(ns)  # bans made so far (more may come before the signal lands)
        d.kill9()
        written_at_kill = w.written
        assert 0 < written_at_kill < len(lines), "the kill must land mid-way through the input"
        assert before, "some bans were made before the kill"

        # what the dead daemon had saved: its position, and the bans that went with it
        db = state_db(tmp_path)
        (cp,), = db.execute("SELECT data FROM checkpoints")
        saved_bans = {a for (a,) in db.execute("SELECT address FROM bans")}
        db.close()
        offset = json.loads(cp)["offset"]
        data = log.read_bytes()
        counted_before = data[head:offset].count(b"authentication failed")
        assert data[offset - 1:offset] == b"\n"
        assert saved_bans <= before | saved_bans

        d2 = Daemon(cfg, netns=ns)
        d2.start()
        try:
            # READY=1: the saved bans are back in the kernel
            assert saved_bans <= banned(ns)
            w.join(30)
            assert w.written == len(lines)
            total = len(lines)
            d2.wait_for(lambda: jail_status(d2)["failures_total"] >= total - counted_before,
                        timeout=30, what="every line after the checkpoint")
            time.sleep(0.3)
            st = jail_status(d2)
            # the restarted daemon counted exactly the lines after the saved position: none
            # before it again (counted twice) and none skipped (lost)
            assert st["failures_total"] == total - counted_before, (st, counted_before, total)
            assert st["duplicates"] == 0
            final = banned(ns)
            # every ban made before the kill is still active in the kernel ...
            assert before <= final, sorted(before - final)[:10]
            listed = {b["address"] for b in json.loads(d2.cli("list", "--json").stdout)}
            assert before <= listed
            d2.stop()
            # ... and in the state
            db = state_db(tmp_path)
            in_state = {a for (a,) in db.execute("SELECT address FROM bans")}
            history = dict(db.execute("SELECT address, count FROM ban_history"))
            db.close()
            assert before <= in_state
            # nobody was banned twice (a re-counted line would ban an address a second time)
            assert set(history.values()) == {1}, [a for a, c in history.items() if c != 1][:10]
            # nothing lost: every address wrote exactly maxretry failures, so all are banned
            want = {re.search(r"unknown\[(.*?)\]", ln).group(1) for ln in lines}  # type: ignore[union-attr]
            missing = want - in_state
            assert not missing, f"{len(missing)} addresses with 3 failures not banned, e.g. {sorted(missing)[:5]}"
        finally:
            if d2.proc and d2.proc.poll() is None:
                d2.stop()
            d.proc = None


# ---- the set full ---------------------------------------------------------------------------

def test_set_full_is_an_error_in_log_and_status_and_the_daemon_keeps_working(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = config(tmp_path, log, jail={"maxretry": 1}, ipset={"maxelem": 2})
    with daemon_in_netns(tmp_path, cfg, "full") as (ns, d):
        append(log, pf("198.51.100.1") + pf("198.51.100.2"))
        d.wait_for(lambda: {"198.51.100.1", "198.51.100.2"} <= banned(ns), what="two bans")
        append(log, pf("198.51.100.3"))
        d.wait_for(lambda: d.status()["problems"], what="a problem in status")
        st = d.status()
        problem = " ".join(st["problems"])
        assert "logban4" in problem and "full" in problem and "maxelem=2" in problem, problem
        assert "198.51.100.3" not in banned(ns)
        text = d.log_text()
        assert re.search(r"ban of 198\.51\.100\.3 did not reach the kernel: .*full.*maxelem", text), text[-2000:]
        # the ban is still recorded (and will reach the kernel once there is room) ...
        listed = {b["address"] for b in json.loads(d.cli("list", "--json").stdout)}
        assert "198.51.100.3" in listed
        # ... the daemon keeps working: the other family, and room made by an unban
        append(log, pf("2001:db8:bad::1"))
        d.wait_for(lambda: "2001:db8:bad::1" in banned(ns), what="IPv6 ban while IPv4 is full")
        d.cli("unban", "198.51.100.1")
        append(log, pf("198.51.100.4"))
        d.wait_for(lambda: "198.51.100.4" in banned(ns), what="a ban after an unban made room")
        assert d.proc is not None and d.proc.poll() is None

        # a restart with more saved bans than fit comes up, says so, and fills what fits
        d.stop()
        d2 = Daemon(cfg, netns=ns)
        d2.start()
        try:
            st = d2.status()
            assert any("full" in p for p in st["problems"]), st["problems"]
            assert len(members(ns, "logban4")) == 2
            append(log, pf("2001:db8:bad::2"))
            d2.wait_for(lambda: "2001:db8:bad::2" in banned(ns), what="bans after a full restart")
        finally:
            d2.stop()
            d.proc = None


# ---- the log file deleted and recreated, and unreadable ---------------------------------------

def test_log_deleted_and_recreated_while_running(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = config(tmp_path, log)
    with daemon_in_netns(tmp_path, cfg, "recreate") as (ns, d):
        append(log, pf("198.51.100.11", 1) + pf("198.51.100.11", 2))
        d.wait_for(lambda: jail_status(d)["failures_total"] == 2, what="two failures")
        log.unlink()
        time.sleep(0.3)
        log.write_text("".join(pf("198.51.100.12", i) for i in range(3)) + pf("198.51.100.11", 9))
        d.wait_for(lambda: {"198.51.100.11", "198.51.100.12"} <= banned(ns), timeout=10,
                   what="bans from the recreated file")
        assert jail_status(d)["failures_total"] == 6


def test_unreadable_log_names_the_file_and_what_logban_does(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.mkdir()  # root reads any file; a directory in its place cannot be read as a log
    good = tmp_path / "other.log"
    good.write_text("")
    cfg = config(tmp_path, log)
    doc = yaml.safe_load(cfg.read_text())
    doc["sources"].append({"file": str(good)})
    cfg.write_text(yaml.safe_dump(doc))
    with daemon_in_netns(tmp_path, cfg, "unread") as (ns, d):
        st = d.status()
        src = st["sources"][f"file:{log}"]
        assert src["problem"] and str(log) in src["problem"], src
        assert re.search(r"retrying|waiting", src["problem"]), src  # what logban does about it
        assert str(log) in d.log_text()
        # the other source keeps working
        append(good, "".join(pf("198.51.100.21", i) for i in range(3)))
        d.wait_for(lambda: "198.51.100.21" in banned(ns), what="a ban from the other log")


# ---- the state directory full -----------------------------------------------------------------

@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(path)],
                       capture_output=True, text=True)
    require(p.returncode == 0, f"cannot mount a tmpfs: {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> Path:
    filler = path / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_state_disk_full_bans_still_reach_the_kernel_and_saving_resumes(tmp_path: Path) -> None:
    require_root()
    log = tmp_path / "maillog"
    log.write_text("")
    state = tmp_path / "state"
    with tiny_tmpfs(state):
        cfg = config(tmp_path, log)
        with daemon_in_netns(tmp_path, cfg, "diskfull") as (ns, d):
            d.cli("ban", "198.51.100.30")  # the database is working
            fill(state)
            addrs = [f"198.51.100.{31 + i}" for i in range(5)]
            append(log, "".join(pf(a, i) for a in addrs for i in range(3)))
            d.wait_for(lambda: set(addrs) <= banned(ns), what="bans while the disk is full")
            d.wait_for(lambda: not d.status()["state"]["ok"], what="the state problem")
            st = d.status()
            problem = " ".join(st["problems"])
            assert "state database" in problem and str(state) in problem, problem
            text = d.log_text()
            assert re.search(r"state database .* failed: .*full.*bans still reach the kernel", text), text[-2000:]
            # loud, but once: not a line per loop
            assert text.count("bans still reach the kernel") == 1
            for f in state.glob("filler*"):
                f.unlink()
            d.wait_for(lambda: d.status()["state"]["ok"], timeout=15, what="saving resumed")
            assert "writable again" in d.log_text()
            assert not any("state" in p for p in d.status()["problems"])
            d.kill9()
            db = state_db(tmp_path)
            saved = {a for (a,) in db.execute("SELECT address FROM bans")}
            db.close()
            assert set(addrs) | {"198.51.100.30"} <= saved
            d.proc = None


# ---- SIGHUP with a broken configuration -------------------------------------------------------

def test_reload_with_a_broken_config_keeps_the_old_one(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = config(tmp_path, log)
    good = cfg.read_text()
    with daemon_in_netns(tmp_path, cfg, "hup") as (ns, d):
        broken = good.replace("maxretry: 3", "maxretry: three")
        assert broken != good
        cfg.write_text(broken)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: "reload of" in d.log_text(), what="the reload refusal")
        text = d.log_text()
        assert f"reload of {cfg} refused, the running configuration stays" in text
        assert re.search(rf"{re.escape(str(cfg))}:\d+: jails\.smtp-auth\.maxretry: 'three'", text), text[-1500:]
        problems = d.status()["problems"]
        assert any("reload refused" in p and "maxretry" in p for p in problems), problems
        # still banning with the old configuration
        append(log, "".join(pf("198.51.100.41", i) for i in range(3)))
        d.wait_for(lambda: "198.51.100.41" in banned(ns), what="a ban after the refused reload")
        # YAML that does not parse at all
        cfg.write_text(good + "jails: [\n")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: any("not valid YAML" in p for p in d.status()["problems"]), what="syntax")
        append(log, "".join(pf("198.51.100.42", i) for i in range(3)))
        d.wait_for(lambda: "198.51.100.42" in banned(ns), what="a ban after the second refusal")
        # a good file again: reloaded, the problem is gone
        cfg.write_text(good.replace("maxretry: 3", "maxretry: 2"))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: not d.status()["problems"], what="the problem cleared")
        append(log, "".join(pf("198.51.100.43", i) for i in range(2)))
        d.wait_for(lambda: "198.51.100.43" in banned(ns), what="the new maxretry in force")
        assert d.proc.poll() is None


# ---- the control socket -----------------------------------------------------------------------

def _raw(path: Path, data: bytes, timeout: float = 10, shutdown: bool = False) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))  # blocking: waits while the listen backlog is full
        s.settimeout(timeout)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while not out.endswith(b"\n"):
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            out += part
        return out
    finally:
        s.close()


def _as_nobody(path: Path, payload: bytes) -> tuple[str, str]:
    """Connect as uid/gid 65534 in a forked child; ('error', errno name) or ('reply', text)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, try, report, exit
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                reply = _raw(path, payload, timeout=5)
                msg = b"reply " + reply
            except OSError as e:
                msg = b"error " + (os.strerror(e.errno or 0)).encode()
            os.write(w, msg)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode(errors="replace")
    os.waitpid(pid, 0)
    kind, _, rest = out.partition(" ")
    return kind, rest


def test_control_socket_refuses_other_users_and_survives_bad_requests(tmp_path: Path) -> None:
    require_root()
    sockdir = Path(tempfile.mkdtemp(prefix="logban-sock-"))
    try:
        os.chmod(sockdir, 0o755)  # others may reach the socket file; its own mode stops them
        sock = sockdir / "logban.sock"
        log = tmp_path / "maillog"
        log.write_text("")
        cfg = config(tmp_path, log, socket=str(sock))
        with daemon_in_netns(tmp_path, cfg, "ctl") as (ns, d):
            assert (sock.stat().st_mode & 0o777) == 0o600
            status = b'{"cmd": "status"}\n'
            kind, detail = _as_nobody(sock, status)
            assert kind == "error" and "Permission denied" in detail, (kind, detail)
            # with the file mode opened up, the SO_PEERCRED check still refuses
            os.chmod(sock, 0o666)
            try:
                kind, detail = _as_nobody(sock, status)
                assert kind == "reply", detail
                reply = json.loads(detail)
                assert reply == {"ok": False, "error": "permission denied"}
            finally:
                os.chmod(sock, 0o600)

            def ok() -> None:
                r = json.loads(_raw(sock, status))
                assert r["ok"] is True and "jails" in r

            malformed = [b"not json\n", b"[1, 2]\n", b'"status"\n', b"{}\n", b'{"cmd": 5}\n',
                         b"\xff\xfe\x00\x01garbage\x80\n", b"\n", b"{\"cmd\": \"status\"",
                         b'{"cmd": "status"} trailing\n']
            for bad in malformed:
                r = json.loads(_raw(sock, bad, shutdown=True))
                assert r["ok"] is False and "malformed request" in r["error"], (bad, r)
                ok()
            r = json.loads(_raw(sock, b'{"cmd": "reboot"}\n'))
            assert r == {"ok": False, "error": "unknown command 'reboot'"}
            r = json.loads(_raw(sock, b'{"cmd": "ban", "address": {"x": 1}}\n'))
            assert r["ok"] is False and "not an IP address" in r["error"]
            r = json.loads(_raw(sock, b'{"cmd": "ban", "address": "198.51.100.50", "duration": []}\n'))
            assert r["ok"] is False, r
            ok()
            # oversized: more than 64 KiB without a newline, and with one
            for big in (b"x" * (70 * 1024), b'{"cmd": "status", "pad": "' + b"x" * (70 * 1024) + b'"}\n'):
                r = json.loads(_raw(sock, big))
                assert r["ok"] is False and "larger than 65536" in r["error"], r
                ok()
            # slow clients that never send a newline do not hold up anybody else
            slow = []
            for i in range(20):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(sock))
                s.sendall(b'{"cmd": "sta' if i % 2 else b"")
                slow.append(s)
            try:
                t0 = time.monotonic()
                for _ in range(5):
                    ok()
                assert time.monotonic() - t0 < 3
                assert json.loads(d.cli("list", "--json").stdout) == []
            finally:
                for s in slow:
                    s.close()
            ok()
            assert d.proc is not None and d.proc.poll() is None
    finally:
        for p in sockdir.iterdir():
            p.unlink()
        sockdir.rmdir()


# ---- clear errors -----------------------------------------------------------------------------

BROKEN_CONFIGS = {
    "maxretry": ("jails:\n  smtp-auth:\n    filters: [postfix-sasl]\n    maxretry: three\n",
                 4, "jails.smtp-auth.maxretry"),
    "findtime": ("jails:\n  smtp-auth:\n    filters: [postfix-sasl]\n    findtime: 5 parsecs\n",
                 4, "jails.smtp-auth.findtime"),
    "filter": ("jails:\n  smtp-auth:\n    filters:\n      - postfix-sasl\n      - nosuchfilter\n",
               5, "jails.smtp-auth.filters[1]"),
    "ignore": ("ignore:\n  - 127.0.0.0/8\n  - 999.1.2.3\njails:\n  j:\n    filters: [pam]\n",
               3, "ignore[1]"),
    "source": ("sources:\n  - file: {start_at: middle, path: /var/log/maillog}\njails:\n  j:\n    filters: [pam]\n",
               2, "sources[0].file.start_at"),
    "unknown-key": ("jails:\n  j:\n    filters: [pam]\nbantime: 1h\n", 4, "bantime"),
    "action": ("jails:\n  j:\n    filters: [pam]\n    action: nftables\n", 4, "jails.j.action"),
    "maxelem": ("jails:\n  j:\n    filters: [pam]\nactions:\n  ipset:\n    maxelem: -5\n",
                6, "actions.ipset.maxelem"),
    "syntax": ("jails:\n  j:\n    filters: [pam\n  k: 1\n", None, "(syntax)"),
    "no-jails": ("state_dir: /tmp/x\n", 1, "jails"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_CONFIGS))
def test_check_names_file_line_and_key(tmp_path: Path, name: str) -> None:
    text, line, key = BROKEN_CONFIGS[name]
    cfg = tmp_path / "logban.yaml"
    cfg.write_text(text)
    p = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    msgs = [m for m in p.stderr.splitlines() if m.strip()]
    assert msgs, "no message"
    for m in msgs:
        assert re.match(rf"{re.escape(str(cfg))}:\d+: \S.*: \S", m), m
    mine = [m for m in msgs if m.startswith(f"{cfg}:") and f": {key}: " in m]
    assert mine, (key, msgs)
    if line is not None:
        assert any(m.startswith(f"{cfg}:{line}: {key}: ") for m in mine), (line, mine)


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "logban.yaml"
    cfg.write_text("ignore: [nonsense]\njails:\n  j:\n    filters: [pam]\n    maxretry: 0\n"
                   "    bantime: forever\n")
    p = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    keys = {m.split(": ")[1] for m in p.stderr.splitlines() if m.startswith(f"{cfg}:")}
    assert {"ignore[0]", "jails.j.maxretry", "jails.j.bantime"} <= keys, p.stderr


def test_check_of_a_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    cfg = tmp_path / "nope.yaml"
    p = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.startswith(f"{cfg}:1: (file): cannot read: ") and "-c CONFIG" in p.stderr


# ---- lines out of time order --------------------------------------------------------------

def test_failures_read_out_of_time_order_still_count() -> None:
    """Two sources are read at different moments, so one address's failures can reach the
    tracker out of time order: three failures within findtime ban whatever the order."""
    import ipaddress as ip
    from datetime import datetime

    from logban.addr import AddressSet
    from logban.config import JailConfig
    from logban.model import Failure
    from logban.tracker import Tracker

    for order in ([0, 40, 20], [40, 20, 0], [20, 0, 40], [0, 1200, 600]):
        j = JailConfig(name="smtp-auth", filters=["postfix-sasl"], maxretry=3, findtime=1200.0)
        t = Tracker([j], AddressSet([ip.ip_network("127.0.0.0/8")]), lambda a, j: False,
                    lambda a, j: 0, correlate_window=0.0)
        base = 1_796_292_000.0
        bans = []
        for s in order:
            ts = base + s
            bans += t.process(Failure("postfix-sasl", "198.51.100.60", None,
                                      datetime.fromtimestamp(ts), ts, "smtp"))
        assert [b.address for b in bans] == ["198.51.100.60"], order
    # failures spread wider than findtime never ban, in any order
    for order in ([0, 1300, 2600], [2600, 0, 1300]):
        j = JailConfig(name="smtp-auth", filters=["postfix-sasl"], maxretry=3, findtime=1200.0)
        t = Tracker([j], AddressSet([]), lambda a, j: False, lambda a, j: 0, correlate_window=0.0)
        bans = []
        for s in order:
            ts = 1_796_292_000.0 + s
            bans += t.process(Failure("postfix-sasl", "198.51.100.61", None,
                                      datetime.fromtimestamp(ts), ts, "smtp"))
        assert bans == [], order
