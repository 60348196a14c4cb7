"""The control socket bounds its threads: beyond MAX_CLIENTS open requests, clients are told
to come back instead of piling up threads, and it serves again once they go."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from daemonproc import Daemon, write_config

from logban.control import MAX_CLIENTS


def test_excess_clients_get_busy_and_service_resumes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [{"file": str(tmp_path / "maillog")}], action="dry-run")
    (tmp_path / "maillog").write_text("")
    d = Daemon(cfg).start()
    held = []
    try:
        for _ in range(MAX_CLIENTS):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(tmp_path / "logban.sock"))  # and never send a request
            held.append(s)
        time.sleep(0.3)
        extra = socket.socket(socket.AF_UNIX)
        extra.settimeout(5)
        extra.connect(str(tmp_path / "logban.sock"))
        reply = json.loads(extra.makefile().readline())
        extra.close()
        assert reply == {"ok": False, "error": f"busy: {MAX_CLIENTS} requests in progress, try again"}
        for s in held:
            s.close()
        held = []
        d.wait_for(lambda: d.cli("status", "--json", check=False).returncode == 0, timeout=10,
                   what="status after the slow clients left")
    finally:
        for s in held:
            s.close()
        d.stop()
