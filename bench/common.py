"""Helpers shared by the bench/*.py scripts: timing, machine facts, and bench/RESULTS.md.

Each benchmark owns one "## Title" section of RESULTS.md and replaces only that section, so
scripts can be run alone or all together (bench/run_all.sh) in any order.

A bench script is found by run_all.sh when it accepts ``--results PATH``; use
``add_results_argument`` for that, and ``write_section`` to write.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"  # generated inputs and scratch output; gitignored
RESULTS = BENCH / "RESULTS.md"
RESULTS_HEADER = (
    "# logban benchmarks\n\n"
    "Written by `bench/run_all.sh`; each section by the script named in it. "
    "Numbers are from the machine described in each section.\n"
)


def add_results_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", metavar="PATH", type=Path, nargs="?", const=RESULTS,
                        help=f"write this benchmark's section of PATH (default {RESULTS.relative_to(REPO)})")


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    wall: list[float]  # seconds, one per run
    cpu: list[float]   # user + system seconds of the child, one per run
    returncode: int

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_command(cmd: Sequence[str], runs: int, stdout: Path | None = None,
                 env: dict[str, str] | None = None, check: bool = True) -> Timing:
    """Run ``cmd`` ``runs`` times; wall and CPU time of each run.

    Output goes to /dev/null, or to ``stdout`` (overwritten each run) when the caller wants
    to read it: a file costs the program what /dev/null does, a pipe could make it wait.
    """
    walls, cpus = [], []
    rc = 0
    for _ in range(runs):
        sink: IO[bytes]
        with open(stdout or os.devnull, "wb") as sink:
            c0, t0 = _child_cpu(), time.perf_counter()
            proc = subprocess.run(list(cmd), stdout=sink, stderr=subprocess.PIPE, env=env)
            walls.append(time.perf_counter() - t0)
            cpus.append(_child_cpu() - c0)
        rc = proc.returncode
        if check and rc != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {rc}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return Timing(walls, cpus, rc)


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def tool_version(cmd: Sequence[str]) -> str | None:
    """First line of ``cmd``'s version output, or None when the tool is missing."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout or p.stderr).strip()
    return text.splitlines()[0] if text else None


def logban_version() -> str:
    """The installed logban version and the checkout's commit, which is what was measured."""
    try:
        from importlib.metadata import version
        v = version("logban")
    except Exception:  # not installed: the bench still runs from the checkout
        v = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "logban"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = "", ""
    if commit:
        v += f" (commit {commit}{', logban/ modified' if dirty else ''})"
    return v


def machine_info(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    info = {
        "CPU": cpu_model(),
        "Cores": f"{usable_cores()} usable ({os.cpu_count()} online)",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": f"{platform.python_version()} ({sys.executable})",
        "logban": logban_version(),
        "Date": datetime.now().astimezone().isoformat(timespec="seconds"),
        # Other work on a shared machine skews wall times: say how busy it was.
        "Load average (1/5/15 min) when written": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for k, v in (extra or {}).items():
        info[k] = v if v is not None else "not installed"
    return info


def machine_markdown(info: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


# --------------------------------------------------------------------------- results


def rate(lines: int, seconds: float) -> str:
    return f"{lines / seconds:,.0f}" if seconds > 0 else "-"


def replace_section(text: str, title: str, body: str) -> str:
    """``text`` with its "## title" section (up to the next "## " heading) replaced by
    ``body``, or with the section appended when it has none."""
    section = f"## {title}\n\n{body.strip()}\n"
    head = re.compile(rf"^## {re.escape(title)}[ \t]*$", re.M)
    m = head.search(text)
    if m is None:
        return text.rstrip("\n") + "\n\n" + section
    nxt = re.compile(r"^## ", re.M).search(text, m.end())
    end = nxt.start() if nxt else len(text)
    tail = text[end:]
    return text[:m.start()] + section + ("\n" + tail if tail else "")


def write_section(path: Path, title: str, body: str) -> None:
    """Replace one section of the results file, leaving the others as they are.

    The file is locked while it is read and rewritten, so two benchmarks finishing at once
    do not drop each other's section.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read() or RESULTS_HEADER
        f.seek(0)
        f.truncate()
        f.write(replace_section(text, title, body))
