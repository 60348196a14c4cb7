"""Run the real ``logban run`` for a benchmark: in a throwaway network namespace, with a config
of our own, and measure the process from the outside (/proc).

Used by ban_latency.py, memory_distributed.py and steady_state.py. The daemon is started the
way tests/daemonproc.py starts it (``ip netns exec NS python -m logban run -c CONFIG`` with a
NOTIFY_SOCKET of our own, ready on READY=1), but in a namespace named ``logban-bench-<hex>``
so a leftover from a killed run is easy to tell from the tests' ``logban-test-`` ones. The
host's sets and firewall are never touched: every set the daemon creates lives and dies with
the namespace.

    with bench_netns() as ns, scratch_dir("latency") as tmp:
        cfg = write_config(tmp, tmp / "maillog")
        with LogbanDaemon(cfg, ns) as d:
            d.status()  # over the control socket, like `logban status --json`
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NS_PREFIX = "logban-bench-"
NETNS_DIR = "/run/netns"
ALL_FILTERS = ["postfix-sasl", "sendmail-auth", "saslauthd", "dovecot", "pam", "exim", "courier",
               "cyrus-imap", "kernel-smtp"]
SET4, SET6 = "logban4", "logban6"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- preconditions


def require_root() -> None:
    """The benches need root (network namespaces, ipset); say so in one sentence."""
    if os.geteuid() != 0:
        sys.exit(f"{Path(sys.argv[0]).name}: needs root (it runs the daemon in a network "
                 "namespace of its own, with real ipsets)")
    for tool in ("ip",):
        if shutil.which(tool) is None:
            sys.exit(f"{Path(sys.argv[0]).name}: needs the '{tool}' command (iproute2)")


def exit_on_signals() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit, so ``finally`` blocks still stop the daemon and
    delete the namespace when run_all.sh (or a user) stops the bench."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


# --------------------------------------------------------------------------- namespaces


def run_cmd(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return p


@contextlib.contextmanager
def bench_netns() -> Iterator[str]:
    """A fresh network namespace (lo up), deleted on exit whatever happens."""
    name = f"{NS_PREFIX}{secrets.token_hex(4)}"
    run_cmd(["ip", "netns", "add", name])
    try:
        run_cmd(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        # Only ever our own: the name was made above with our prefix.
        if os.path.exists(os.path.join(NETNS_DIR, name)):
            run_cmd(["ip", "netns", "delete", name], check=False)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """This thread in namespace ``name`` for the block. Netlink sockets opened inside stay
    bound to it afterwards; child processes started inside are born in it."""
    from pyroute2 import netns as pr_netns

    if not os.path.exists(os.path.join(NETNS_DIR, name)):
        # pyroute2 would create a missing namespace silently
        raise FileNotFoundError(f"network namespace {name!r} does not exist")
    pr_netns.pushns(name)
    try:
        yield
    finally:
        pr_netns.popns()


@contextlib.contextmanager
def scratch_dir(tag: str) -> Iterator[Path]:
    """A temporary directory under bench/out (gitignored, on disk rather than a tmpfs that
    would count against memory), removed on exit."""
    common.OUT.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=common.OUT))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- config


def write_config(dir: Path, log: Path, *, start_at: str = "end", action: str = "ipset",
                 max_tracked: int = 1_000_000, maxretry: int = 3, findtime: str = "20m",
                 bantime: str = "1h", maxelem: int = 65536, **extra: Any) -> Path:
    """A daemon config following one file, one jail with every shipped filter. State and the
    control socket live in ``dir``."""
    cfg: dict[str, Any] = {
        "state_dir": str(dir / "state"),
        "socket": str(dir / "logban.sock"),
        "ignore": ["127.0.0.0/8", "::1"],
        "sources": [{"file": {"path": str(log), "start_at": start_at}}],
        "jails": {"smtp-auth": {"filters": ALL_FILTERS, "maxretry": maxretry,
                                "findtime": findtime, "bantime": bantime, "action": action}},
        "actions": {"ipset": {"set4": SET4, "set6": SET6, "maxelem": maxelem}, "dry-run": {}},
        "max_tracked": max_tracked,
        **extra,
    }
    p = dir / "logban.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


# --------------------------------------------------------------------------- the daemon


class DaemonBusy(RuntimeError):
    """The daemon did not answer a control request in time: its main loop was busy (it
    handles requests between batches of lines, and a big backlog is one long batch)."""


class LogbanDaemon:
    """``logban run`` in a namespace; ready once it sent READY=1 (sets made, bans restored).

    ``python_args`` go before ``-m logban`` (e.g. ``-m cProfile -o FILE``): the profiler then
    wraps the real daemon, which writes its profile when it stops on SIGTERM.
    """

    def __init__(self, config: Path, netns: str, python_args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.netns = netns
        self.python_args = list(python_args)
        self.env = env or {}
        self.socket = Path(yaml.safe_load(config.read_text())["socket"])
        self.logfile = config.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.busy_replies = 0  # control requests the daemon did not answer in time

    def __enter__(self) -> "LogbanDaemon":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30) -> "LogbanDaemon":
        notify_dir = tempfile.mkdtemp(prefix="logban-notify-")
        path = os.path.join(notify_dir, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        ns.settimeout(0.2)
        # `ip netns exec` execs the command in place (no fork), so proc.pid is the daemon's
        # own PID and /proc/PID measures the daemon, not a wrapper.
        argv = ["ip", "netns", "exec", self.netns, sys.executable, *self.python_args,
                "-m", "logban", "run", "-c", str(self.config)]
        env = {**os.environ, "NOTIFY_SOCKET": path, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.logfile, "ab") as logf:
            self.proc = subprocess.Popen(argv, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    msg = ns.recv(4096).decode()
                except TimeoutError:
                    continue
                if "READY=1" in msg.split("\n"):
                    self._check_pid()
                    return self
            raise RuntimeError(f"daemon not ready within {timeout}s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        finally:
            ns.close()
            os.unlink(path)
            os.rmdir(notify_dir)

    def _check_pid(self) -> None:
        cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        if b"logban" not in cmdline or cmdline[0].endswith(b"ip"):
            raise RuntimeError(f"PID {self.pid} is not the daemon itself: {cmdline!r}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        """One control request, what the CLI sends, without starting a CLI process each time
        (a unix socket path is not bound to a network namespace)."""
        from logban.control import ask
        reply = ask(self.socket, body)
        if not reply.get("ok") and "did not answer in time" in str(reply.get("error")):
            self.busy_replies += 1
            raise DaemonBusy(str(reply.get("error")))
        if not reply.get("ok"):
            raise RuntimeError(f"daemon refused {body}: {reply.get('error')}")
        return reply

    def status(self) -> dict[str, Any]:
        return self.ask({"cmd": "status"})

    def jail(self, name: str = "smtp-auth") -> dict[str, Any]:
        return self.status()["jails"][name]  # type: ignore[no-any-return]

    def wait_for(self, pred: Callable[[], Any], timeout: float, what: str,
                 interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = pred()
            except DaemonBusy:
                v = None  # still working through its backlog: ask again
            if v:
                return v
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode} while waiting for "
                                   f"{what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                   f"{self.log_tail()}")
            time.sleep(interval)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# --------------------------------------------------------------------------- /proc


def _stat_cpu(path: Path) -> float:
    text = path.read_text()
    # The command name is in parentheses and may hold blanks: split after its closing one.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads, exited ones too), in seconds;
    the kernel counts in clock ticks (1/CLK_TCK s)."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per live thread id (the main thread's id is ``pid``). Python 3.11 does not
    name its OS threads, so the main loop is told from the helper threads (file watcher, poll
    timer, control socket) only by its id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = _stat_cpu(task / "stat")
        except (OSError, ValueError):
            pass  # exited between the listing and the read
    return out


@dataclass(frozen=True)
class Memory:
    rss: int        # bytes, VmRSS
    rss_anon: int   # bytes, RssAnon: the heap, without mapped code and libraries
    pss: int        # bytes, smaps_rollup Pss (shared pages split between their users)
    peak: int       # bytes, VmHWM: the highest RSS so far


def memory(pid: int) -> Memory:
    status = _kb_fields(Path(f"/proc/{pid}/status").read_text())
    try:
        pss = _kb_fields(Path(f"/proc/{pid}/smaps_rollup").read_text()).get("Pss", 0)
    except OSError:
        pss = 0
    return Memory(status.get("VmRSS", 0), status.get("RssAnon", 0), pss, status.get("VmHWM", 0))


def _kb_fields(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key.strip()] = int(parts[0]) * 1024
    return out


# --------------------------------------------------------------------------- log lines


def syslog_stamp(t: float) -> str:
    """Classic syslog ``Mmm dd hh:mm:ss`` in local time, as rsyslog writes /var/log/maillog."""
    return time.strftime("%b %e %H:%M:%S", time.localtime(t))


def postfix_failure(stamp: str, address: str, pid: int) -> str:
    """A postfix SASL failure line (the commonest AUTH failure on a CentOS mail server)."""
    host = f"[{address}]"
    return (f"{stamp} mail postfix/smtpd[{pid}]: warning: unknown{host}: "
            "SASL LOGIN authentication failed: UGFzc3dvcmQ6\n")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an ascending list: a value that was seen."""
    if not sorted_values:
        raise ValueError("no values")
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]

