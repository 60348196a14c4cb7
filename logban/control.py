"""The control socket: one JSON request per connection, one JSON reply.

The socket file is mode 0600 and the server also checks the peer's credentials, so only root
and the daemon's own user get an answer. Requests are handled on the daemon's main loop (the
only thread that touches the tracker, the state and the actions); this module only carries them.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("logban.control")
MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 32
TIMEOUT = 10.0
READ_TIMEOUT = 5.0  # for a client to send its whole request


class ControlError(Exception):
    """The daemon could not be asked; the message says why and what to do."""


@dataclass
class Request:
    body: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None

    def answer(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.done.set()


class ControlServer:
    def __init__(self, path: Path, requests: "queue.Queue[Request]", wake: Any) -> None:
        self.path = path
        self.requests = requests
        self.wake = wake
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # created 0600: no window where others could connect
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.thread = threading.Thread(target=self._serve, name="logban-control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass

    def _allowed(self, conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        uid: int = struct.unpack("3i", creds)[1]
        return uid == 0 or uid == os.geteuid()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not self._slots.acquire(blocking=False):
                # Only root can connect, but a stuck script must not pile up threads.
                with conn:
                    try:
                        self._send(conn, {"ok": False, "error": f"busy: {MAX_CLIENTS} requests "
                                                                "in progress, try again"})
                    except OSError:
                        pass
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self._handle_one(conn)
        finally:
            self._slots.release()

    def _handle_one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT)
            # For the whole request, not per recv: a client sending a byte now and then
            # would otherwise hold its slot for as long as it likes.
            deadline = time.monotonic() + READ_TIMEOUT
            try:
                if not self._allowed(conn):
                    self._send(conn, {"ok": False, "error": "permission denied"})
                    return
                data = b""
                while not data.endswith(b"\n"):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._send(conn, {"ok": False, "error": "request not complete in time"})
                        return
                    conn.settimeout(left)
                    part = conn.recv(65536)
                    if not part:
                        break
                    data += part
                    if len(data) > MAX_REQUEST:
                        self._send(conn, {"ok": False, "error": f"request larger than {MAX_REQUEST} bytes"})
                        return
                conn.settimeout(READ_TIMEOUT)
                try:
                    body = json.loads(data)
                    if not isinstance(body, dict) or not isinstance(body.get("cmd"), str):
                        raise ValueError
                except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
                    self._send(conn, {"ok": False, "error": "malformed request: send one JSON object "
                                                            "with a \"cmd\" and a newline"})
                    return
                req = Request(body)
                self.requests.put(req)
                self.wake()
                if not req.done.wait(TIMEOUT):
                    self._send(conn, {"ok": False, "error": "the daemon did not answer in time"})
                    return
                self._send(conn, req.reply or {"ok": False, "error": "no reply"})
            except OSError as e:
                log.debug("control connection dropped: %s", e)

    @staticmethod
    def _send(conn: socket.socket, reply: dict[str, Any]) -> None:
        conn.sendall(json.dumps(reply).encode() + b"\n")


def ask(path: Path, body: dict[str, Any], timeout: float = TIMEOUT + 5) -> dict[str, Any]:
    """Send one request to a running daemon; ControlError with a clear sentence otherwise."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        try:
            while True:
                try:
                    s.connect(str(path))
                    break
                except BlockingIOError:
                    # The listen backlog is full for a moment (many clients at once): a
                    # socket with a timeout gets EAGAIN instead of waiting, so wait here.
                    if time.monotonic() > deadline:
                        raise TimeoutError from None
                    s.close()
                    time.sleep(0.01)
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(max(0.1, deadline - time.monotonic()))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"the logban daemon is not running (no control socket at {path}); "
                               "start it with 'systemctl start logban' or 'logban run'") from None
        except PermissionError:
            raise ControlError(f"permission denied on {path}: run this as root") from None
        s.sendall(json.dumps(body).encode() + b"\n")
        parts: list[bytes] = []  # a long ban list is megabytes: no quadratic concatenation
        while not (parts and parts[-1].endswith(b"\n")):
            part = s.recv(1 << 20)
            if not part:
                break
            parts.append(part)
        data = b"".join(parts)
    except TimeoutError:
        raise ControlError(f"the logban daemon did not answer on {path} within {timeout:.0f}s") from None
    finally:
        s.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"unreadable reply from the daemon on {path}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"unreadable reply from the daemon on {path}")
    return reply
