"""The whole kernel path, end to end: the in-kernel SMTP AUTH matcher logs strikes, the kernel's
LOG lines reach logban through /dev/kmsg, the attacker lands in the ipset and is refused.

Everything runs in two namespaces made here ("mail" and "attacker" over a veth pair). The one
host setting touched, net.netfilter.nf_log_all_netns (without it the kernel drops LOG lines of
other namespaces), is restored afterwards.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require, require_root, require_tool
from daemonproc import Daemon, write_config
from netns import CLIENT4, SERVER4, in_netns, netns_pair, run_in

from logban import rules

SYSCTL = Path("/proc/sys/net/netfilter/nf_log_all_netns")
REPLY = "535 5.7.8 Error: authentication failed"

RESPONDER = f"""
import socket, threading
def session(c):
    f = c.makefile("rwb", buffering=0)
    f.write(b"220 mx.example.org ESMTP\\r\\n")
    for line in f:
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            f.write(b"250-mx.example.org\\r\\n250 AUTH PLAIN LOGIN\\r\\n")
        elif cmd.startswith(b"AUTH"):
            f.write(b"{REPLY}\\r\\n")
        elif cmd.startswith(b"QUIT"):
            f.write(b"221 bye\\r\\n"); break
        else:
            f.write(b"502 no\\r\\n")
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 25)); s.listen(20)
while True:
    c, _ = s.accept(); threading.Thread(target=session, args=(c,), daemon=True).start()
"""


@pytest.fixture
def nf_log_all_netns():
    require_root()
    require(SYSCTL.exists(), "needs net.netfilter.nf_log_all_netns (nf_log in the kernel)")
    old = SYSCTL.read_text().strip()
    SYSCTL.write_text("1")
    try:
        yield
    finally:
        SYSCTL.write_text(old)


def smtp_auth_fails(ns: str, addr: str) -> str:
    """One connection, EHLO, a failed AUTH PLAIN, QUIT; returns the AUTH reply."""
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((addr, 25))
    f = s.makefile("rwb", buffering=0)
    f.readline()
    f.write(b"EHLO attacker.example.net\r\n")
    f.readline(); f.readline()
    f.write(b"AUTH PLAIN AGpkb2UAd3Jvbmc=\r\n")
    reply = f.readline().decode().strip()
    try:  # after the third strike the kernel (or already the ban) resets the connection
        f.write(b"QUIT\r\n")
        f.readline()
    except ConnectionResetError:
        pass
    s.close()
    return reply


def test_kernel_strikes_through_kmsg_ban_the_attacker(tmp_path: Path, nf_log_all_netns: None) -> None:
    require_tool("iptables-restore")
    with netns_pair() as (mail, attacker):
        cfg = write_config(tmp_path, [{"kmsg": {}}])
        responder = subprocess.Popen(["ip", "netns", "exec", mail.name, sys.executable, "-c", RESPONDER])
        d = Daemon(cfg, netns=mail.name)
        try:
            d.start()
            matcher = subprocess.run([sys.executable, "-m", "logban", "rules", "--kernel-matcher", "-c",
                                      str(cfg)], capture_output=True, text=True, check=True).stdout
            v4 = matcher.split("# logban kernel SMTP AUTH matcher (IPv6)")[0]
            assert "(IPv4)" in v4 and "ip6tables" not in v4.split("\n", 1)[1]
            run_in(mail.name, "iptables-restore", "--noflush", input=v4)
            run_in(mail.name, "iptables-restore", "--noflush",
                   input=rules.fixed_rules("logban4", "logban6")["iptables"])
            deadline = time.monotonic() + 10
            while True:  # the responder is listening once a plain connection is accepted
                with in_netns(attacker.name):
                    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    probe.connect((SERVER4, 25))
                    break
                except ConnectionRefusedError:
                    assert time.monotonic() < deadline, "the SMTP responder did not start"
                    time.sleep(0.1)
                finally:
                    probe.close()
            for _ in range(3):
                assert smtp_auth_fails(attacker.name, SERVER4) == REPLY

            def banned() -> bool:
                out = run_in(mail.name, "ipset", "list", "logban4", check=False).stdout
                return CLIENT4 in out.split()

            d.wait_for(banned, timeout=5, what="the attacker in logban4")
            assert "filter=kernel-smtp" in d.log_text()
            with in_netns(attacker.name):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(3)
            with pytest.raises(ConnectionRefusedError):
                s.connect((SERVER4, 25))
            s.close()
        finally:
            d.stop()
            responder.kill()
            responder.wait()
