"""The real daemon in a network namespace of its own: real maillog, real ipsets, real TCP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_root, require_tool
from daemonproc import Daemon, write_config
from netns import CLIENT4, CLIENT6, SERVER4, in_netns, netns_pair, run_in, set_members

from logban import rules

PF = ("Dec  3 10:00:{s:02d} mx1 postfix/smtpd[{s}]: warning: unknown[{ip}]: "
      "SASL LOGIN authentication failed: UGFzc3dvcmQ6\n")


members = set_members


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def can_connect(ns: str, addr: str, port: int) -> bool:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with in_netns(ns):
        s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((addr, port))
        return True
    except ConnectionRefusedError:
        return False
    finally:
        s.close()


@pytest.fixture
def mail(tmp_path: Path):
    require_root()
    require_tool("iptables-restore")
    with netns_pair() as (server, client):
        log = tmp_path / "maillog"
        log.write_text("Dec  3 09:59:59 mx1 postfix/qmgr[9]: started\n")
        cfg = write_config(tmp_path, [{"file": str(log)}])
        listener = subprocess.Popen(
            ["ip", "netns", "exec", server.name, sys.executable, "-c",
             "import socket,threading\n"
             "def serve(fam, addr):\n"
             "    s=socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
             "    s.bind((addr, 25)); s.listen(50)\n"
             "    while True:\n"
             "        c,_=s.accept(); c.close()\n"
             "threading.Thread(target=serve, args=(socket.AF_INET6, '::'), daemon=True).start()\n"
             "import time; time.sleep(0.3)\n"
             "serve(socket.AF_INET, '0.0.0.0')\n"])
        d = Daemon(cfg, netns=server.name)
        try:
            d.start()
            fixed = rules.fixed_rules("logban4", "logban6")
            run_in(server.name, "iptables-restore", "--noflush", input=fixed["iptables"])
            run_in(server.name, "ip6tables-restore", "--noflush", input=fixed["ip6tables"])
            yield server, client, log, d
        finally:
            d.stop()
            listener.kill()
            listener.wait()


def test_three_failures_ban_within_a_second_and_tcp_is_refused_until_unban(mail) -> None:
    server, client, log, d = mail
    time.sleep(0.5)  # the listener
    assert can_connect(client.name, SERVER4, 25)
    append(log, PF.format(s=1, ip=CLIENT4) + PF.format(s=2, ip=CLIENT4))
    time.sleep(0.3)
    assert CLIENT4 not in members(server.name, "logban4")
    t0 = time.monotonic()
    append(log, PF.format(s=3, ip=CLIENT4))
    d.wait_for(lambda: CLIENT4 in members(server.name, "logban4"), timeout=1.0, what="ban in the kernel")
    latency = time.monotonic() - t0
    assert latency < 1.0
    timeout = members(server.name, "logban4")[CLIENT4]
    assert 3500 <= timeout <= 3600
    assert not can_connect(client.name, SERVER4, 25)

    listed = d.cli("list", "--json").stdout
    assert f'"address": "{CLIENT4}"' in listed and '"filter": "postfix-sasl"' in listed
    st = d.status()
    assert st["jails"]["smtp-auth"]["bans_active"] == 1
    assert st["jails"]["smtp-auth"]["failures_total"] == 3
    assert "ban 192.0.2.2 jail=smtp-auth failures=3 for 1h filter=postfix-sasl" in d.log_text()

    d.cli("unban", CLIENT4)
    assert CLIENT4 not in members(server.name, "logban4")
    assert can_connect(client.name, SERVER4, 25)


def test_ipv6_ban_and_manual_ban_rules(mail) -> None:
    server, client, log, d = mail
    time.sleep(0.5)
    assert can_connect(client.name, CLIENT6.replace("::2", "::1"), 25)
    d.cli("ban", CLIENT6, "--for", "10m")
    entries = members(server.name, "logban6")
    assert CLIENT6 in entries and 590 <= entries[CLIENT6] <= 600
    assert not can_connect(client.name, "2001:db8::1", 25)
    # own addresses, loopback and the ignore list are refused without --force
    p = d.cli("ban", SERVER4, check=False)
    assert p.returncode == 1 and "use --force" in p.stderr
    p = d.cli("ban", "::ffff:127.0.0.1", check=False)
    assert p.returncode == 1 and "use --force" in p.stderr
    p = d.cli("ban", "not-an-address", check=False)
    assert p.returncode == 1 and "is not an IP address" in p.stderr
    d.cli("ban", "198.51.100.77", "--force")
    assert "198.51.100.77" in members(server.name, "logban4")


def test_restart_restores_bans_and_kill9_counts_no_line_twice(mail, tmp_path: Path) -> None:
    server, client, log, d = mail
    append(log, "".join(PF.format(s=i, ip="203.0.113.9") for i in range(3)))
    d.wait_for(lambda: "203.0.113.9" in members(server.name, "logban4"), what="first ban")
    # two failures of another address, then kill -9
    append(log, PF.format(s=10, ip="203.0.113.10") + PF.format(s=11, ip="203.0.113.10"))
    d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["failures_total"] == 5, what="5 failures")
    time.sleep(0.2)
    d.kill9()
    run_in(server.name, "ipset", "flush", "logban4")  # the kernel forgot (as after a reboot)
    d2 = Daemon(d.config, netns=server.name).start()
    try:
        # READY=1 means the saved bans are back in the kernel
        assert "203.0.113.9" in members(server.name, "logban4")
        st = d2.status()
        assert st["jails"]["smtp-auth"]["failures_total"] == 0  # nothing re-read
        src = next(iter(st["sources"].values()))
        assert src["lines_read"] == 0
        append(log, PF.format(s=20, ip="203.0.113.11"))
        d2.wait_for(lambda: d2.status()["jails"]["smtp-auth"]["failures_total"] == 1, what="new line")
    finally:
        d2.stop()
        d.proc = d2.proc  # the fixture stops whichever runs
        d.logf = d2.logf


def test_set_destroyed_or_entry_deleted_from_outside_is_repaired(tmp_path: Path) -> None:
    require_root()
    with netns_pair() as (server, _client):
        log = tmp_path / "maillog"
        log.write_text("")
        d = Daemon(write_config(tmp_path, [{"file": str(log)}]), netns=server.name).start()
        try:
            d.cli("ban", "198.51.100.5")
            assert "198.51.100.5" in members(server.name, "logban4")
            run_in(server.name, "ipset", "destroy", "logban4")
            d.wait_for(lambda: "198.51.100.5" in members(server.name, "logban4")
                       if _exists(server.name, "logban4") else False, timeout=12, what="recreated set")
            # one entry deleted by hand, others left: put back too
            d.cli("ban", "198.51.100.6")
            run_in(server.name, "ipset", "del", "logban4", "198.51.100.5")
            assert set(members(server.name, "logban4")) == {"198.51.100.6"}
            d.wait_for(lambda: set(members(server.name, "logban4")) == {"198.51.100.5", "198.51.100.6"},
                       timeout=12, what="the deleted entry put back")
        finally:
            d.stop()


def _exists(ns: str, name: str) -> bool:
    return run_in(ns, "ipset", "list", "-n", check=False).stdout.split().count(name) == 1


def test_dry_run_touches_nothing_and_reports(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("".join(PF.format(s=i, ip="198.51.100.66") for i in range(3)))
    cfg = write_config(tmp_path, [{"file": {"path": str(log), "start_at": "start"}}], action="dry-run")
    p = subprocess.run([sys.executable, "-m", "logban", "run", "--once", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "1 ban(s) the dry run would make (nothing was banned):" in p.stdout and "198.51.100.66" in p.stdout
    assert "dry run: would ban 198.51.100.66" in p.stderr
