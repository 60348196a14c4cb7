"""Run the real ``logban run`` as a child process (optionally inside a network namespace), wait
for its sd_notify READY=1 on a socket of our own, and talk to it with the real CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ALL_FILTERS = ["postfix-sasl", "sendmail-auth", "saslauthd", "dovecot", "pam", "exim", "courier",
               "cyrus-imap", "kernel-smtp"]


def write_backlog(path: Path, n: int) -> None:
    """``n`` postfix SASL failures from ``n`` distinct private addresses, one each: a long
    backlog that bans nobody at maxretry 3."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"Dec  3 10:00:00 mx1 postfix/smtpd[1]: warning: unknown[10.{i >> 16 & 255}."
                    f"{i >> 8 & 255}.{i & 255}]: SASL LOGIN authentication failed: x\n")


def write_config(dir: Path, sources: list[dict[str, Any]], action: str = "ipset", **jail: Any) -> Path:
    cfg = {
        "state_dir": str(dir / "state"),
        "socket": str(dir / "logban.sock"),
        "ignore": ["127.0.0.0/8", "::1"],
        "sources": sources,
        "jails": {"smtp-auth": {"filters": ALL_FILTERS, "maxretry": 3, "findtime": "20m",
                                "bantime": "1h", "action": action, **jail}},
        "actions": {"ipset": {"set4": "logban4", "set6": "logban6"}, "dry-run": {}},
    }
    p = dir / "logban.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


class Daemon:
    def __init__(self, config: Path, netns: str | None = None, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.netns = netns
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "daemon.log"

    def start(self, timeout: float = 20) -> "Daemon":
        sockdir = tempfile.mkdtemp(prefix="logban-notify-")
        path = os.path.join(sockdir, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        ns.settimeout(0.2)
        argv = [sys.executable, "-m", "logban", "run", "-c", str(self.config)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        env = {**os.environ, "NOTIFY_SOCKET": path, **self.env}
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")
                try:
                    msg = ns.recv(4096).decode()
                except TimeoutError:
                    continue
                if "READY=1" in msg.split("\n"):
                    return self
            raise RuntimeError(f"daemon not ready within {timeout}s:\n{self.log_text()}")
        finally:
            ns.close()
            os.unlink(path)
            os.rmdir(sockdir)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "logban", *args, "-c", str(self.config)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise RuntimeError(f"logban {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def status(self) -> dict[str, Any]:
        return json.loads(self.cli("status", "--json").stdout)

    def bans(self) -> list[dict[str, Any]]:
        """``logban list --json``: the active bans, oldest first."""
        return json.loads(self.cli("list", "--json").stdout)

    def wait_for(self, pred: Any, timeout: float = 10, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_text()[-3000:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)
