#!/usr/bin/env python3
"""Steady-state CPU: the daemon following a busy server's maillog as it grows.

    .venv/bin/python bench/steady_state.py --rate 5000 --seconds 60 --results bench/RESULTS.md

The real daemon (``logban run``, file source, every shipped filter, action ipset) runs in a
network namespace of its own. A realistic maillog (``bench/gen_maillog.py``: deliveries,
logins, 2% AUTH failures from a pool of attackers, stamped at ``--rate`` lines per second from
now) is made first; then a writer appends it at ``--rate`` lines/s in small batches (every
``--batch-ms``), as a syslog daemon would. The daemon's CPU time (utime + stime of all its
threads, /proc/PID/stat) over the window, from the first batch until it has read the last
line, is reported as a share of one core, next to its idle CPU and the writer's achieved rate.
The median over ``--runs`` runs is the result.

``--profile FILE`` runs the daemon under cProfile (slower; to find where time goes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import daemon_harness as h  # noqa: E402
import parse_throughput  # noqa: E402

TITLE = "Steady-state CPU"
TARGET_PERCENT = 10.0
IDLE_SECONDS = 5.0
TAIL_SECONDS = 0.5   # after the last batch: the daemon reads it within milliseconds


@dataclass
class Run:
    cpu: float             # daemon CPU seconds over the window
    wall: float            # window seconds (first batch .. last line read)
    idle_percent: float    # daemon CPU while nothing is written, % of one core
    written: int           # lines appended
    write_seconds: float   # first batch .. last batch
    batches: int
    late_batches: int      # batches that went out more than one period late
    lag: float             # seconds after the last batch until the daemon had read it all
    status: dict[str, Any]
    main_thread: float     # CPU seconds of the main loop thread over the window

    @property
    def other_threads(self) -> float:
        return self.cpu - self.main_thread

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu / self.wall

    @property
    def rate(self) -> float:
        return self.written / self.write_seconds


def make_lines(rate: int, seconds: float, seed: int) -> tuple[list[bytes], dict[str, Any]]:
    """The first rate*seconds lines (and a second spare, so the writer never runs dry) of the
    generated maillog parse_throughput.py uses (cached in bench/out/): the generator's mix of
    a typical server's traffic and attacks, replayed faster than its own clock."""
    need = int(rate * seconds) + rate
    log, truth = parse_throughput.ensure_log(max(1_000_000, need), seed, regen=False)
    lines: list[bytes] = []
    with open(log, "rb") as f:
        for line in f:
            lines.append(line)
            if len(lines) >= need:
                break
    return lines, truth


def write_at_rate(log: Path, lines: list[bytes], rate: int, seconds: float,
                  batch: float) -> tuple[int, float, int, int]:
    """Append ``lines`` at ``rate`` per second, one write()+flush() every ``batch`` seconds,
    for ``seconds``. Returns (lines written, seconds, batches, late batches). Each batch
    carries what is due by the clock, so a late tick catches up instead of drifting."""
    written = batches = late = 0
    total = min(len(lines), int(rate * seconds))
    with open(log, "ab", buffering=0) as f:
        t0 = time.perf_counter()
        tick = 0
        while written < total:
            tick += 1
            due = min(total, int(rate * (time.perf_counter() - t0)))
            if due > written:
                f.write(b"".join(lines[written:due]))
                written = due
                batches += 1
            wait = t0 + tick * batch - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -batch:
                late += 1
        return written, time.perf_counter() - t0, batches, late


def lines_read(d: h.LogbanDaemon, log: Path) -> int:
    return int(d.status()["sources"][f"file:{log}"]["lines_read"])


def one_run(netns: str, tmp: Path, lines: list[bytes], rate: int, seconds: float,
            batch: float, python_args: list[str]) -> Run:
    log = tmp / "maillog"
    log.write_text("Dec  3 09:59:59 mail postfix/qmgr[900]: started\n")
    state = tmp / "state"
    if state.exists():  # a previous run's bans and position: start from nothing each run
        for f in state.iterdir():
            f.unlink()
    cfg = h.write_config(tmp, log)
    with h.LogbanDaemon(cfg, netns, python_args=python_args) as d:
        time.sleep(1.0)  # start-up work (imports, set sync) is over
        c0, w0 = h.cpu_seconds(d.pid), time.perf_counter()
        time.sleep(IDLE_SECONDS)
        idle = 100.0 * (h.cpu_seconds(d.pid) - c0) / (time.perf_counter() - w0)

        base = lines_read(d, log)  # start_at end: the line already there is not read
        m0 = h.thread_cpu(d.pid)[d.pid]
        c0, w0 = h.cpu_seconds(d.pid), time.perf_counter()
        written, wsec, batches, late = write_at_rate(log, lines, rate, seconds, batch)
        w_end = time.perf_counter()
        time.sleep(TAIL_SECONDS)
        c1, w1 = h.cpu_seconds(d.pid), time.perf_counter()
        m1 = h.thread_cpu(d.pid)[d.pid]
        # Read the CPU before asking (a status request costs the daemon a little); ask after,
        # and if it had not caught up, wait and take the reading again once it has.
        expected = base + written
        if lines_read(d, log) < expected:
            d.wait_for(lambda: lines_read(d, log) >= expected, 120, "the daemon to catch up",
                       interval=0.05)
            c1, w1 = h.cpu_seconds(d.pid), time.perf_counter()
            m1 = h.thread_cpu(d.pid)[d.pid]
        lag = max(0.0, w1 - w_end) if w1 - w_end > TAIL_SECONDS + 0.01 else 0.0
        status = d.status()
    return Run(c1 - c0, w1 - w0, idle, written, wsec, batches, late, lag, status, m1 - m0)


def _idle(percent: float) -> str:
    # one clock tick over the idle window is the resolution of /proc/PID/stat
    floor = 100.0 / h.CLK_TCK / IDLE_SECONDS
    return f"< {floor:.1f}" if percent < floor / 2 else f"{percent:.1f}"


def report(a: argparse.Namespace, runs: list[Run], truth: dict[str, Any],
           info: dict[str, str]) -> str:
    pct = statistics.median(r.percent for r in runs)
    met = pct < TARGET_PERCENT
    jail = runs[-1].status["jails"]["smtp-auth"]
    rows = ["| Run | Lines written | Writer rate (lines/s) | Window s | Daemon CPU s | % of one core | Main loop thread s | Other threads s | Idle % | Caught up after last batch |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for i, r in enumerate(runs, 1):
        rows.append(f"| {i} | {r.written:,} | {r.rate:,.0f} | {r.wall:.1f} | {r.cpu:.2f} | "
                    f"{r.percent:.1f} | {r.main_thread:.2f} | {r.other_threads:.2f} | "
                    f"{_idle(r.idle_percent)} | "
                    f"{'within ' + str(int(TAIL_SECONDS * 1000)) + ' ms' if not r.lag else f'{r.lag:.1f} s'} |")
    last = runs[-1]
    share = last.status["failures_seen"] / last.written
    lines = [
        f"The real daemon (`logban run`, file source, every shipped filter, action ipset) in a "
        f"network namespace of its own, following a maillog that grows at {a.rate:,} lines/s for "
        f"{a.seconds:.0f} s: the first lines of the generated maillog of the parse throughput "
        f"bench (`bench/gen_maillog.py`, seed {a.seed}: deliveries, logins, noise and "
        f"{share:.1%} AUTH failure lines from {truth['params']['pool']} attackers in this part; "
        f"its stamps run 0.5 s apart, so log time passes faster than real time), appended with "
        f"one `write()` every {a.batch_ms:.0f} ms. CPU: utime + stime of all the daemon's "
        f"threads (/proc/PID/stat) from the first batch until it had read the last line.",
        "",
        *rows,
        "",
        f"**Target < {TARGET_PERCENT:.0f}% of one core: {'met' if met else 'NOT met'}** "
        f"({pct:.1f}%{', median of ' + str(len(runs)) + ' runs' if len(runs) > 1 else ''}).",
        "",
        f"- The daemon's work in the last run: {last.status['failures_seen']:,} failure lines "
        f"matched, {jail['failures_total']:,} failures counted, "
        f"{jail['duplicates']:,} duplicates dropped, {jail['bans_total']:,} bans.",
        f"- Main loop thread: reading, matching, counting, banning and the SQLite commit of "
        f"each batch's positions; other threads: the file watcher (watchdog's inotify emitter "
        f"and dispatcher), the 1 s poll timer and the control socket. Idle: CPU over "
        f"{IDLE_SECONDS:.0f} s before the writer starts.",
        f"- Writer batches: {sum(r.batches for r in runs):,}, "
        f"{sum(r.late_batches for r in runs)} more than one period late.",
        "",
        "Machine:",
        "",
        common.machine_markdown(info),
        "",
        f"Reproduce: `.venv/bin/python bench/steady_state.py --rate {a.rate} --seconds "
        f"{a.seconds:g} --runs {a.runs} --results bench/RESULTS.md`",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=5000, help="lines per second appended")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each run")
    p.add_argument("--runs", type=int, default=1, help="runs; the median is reported")
    p.add_argument("--batch-ms", type=float, default=10.0, help="one write every this many ms")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="run the daemon under cProfile and write its profile here")
    common.add_results_argument(p)
    a = p.parse_args(argv)
    if a.rate < 1 or a.seconds <= 0 or a.runs < 1:
        p.error("--rate, --seconds and --runs must be positive")
    h.require_root()
    h.exit_on_signals()

    prof = ["-m", "cProfile", "-o", str(a.profile.resolve())] if a.profile else []
    runs: list[Run] = []
    with h.bench_netns() as ns, h.scratch_dir("steady") as tmp:
        lines, truth = make_lines(a.rate, a.seconds, a.seed)
        for i in range(a.runs):
            print(f"run {i + 1}/{a.runs}: {a.rate} lines/s for {a.seconds:g} s in {ns} ...",
                  file=sys.stderr)
            runs.append(one_run(ns, tmp, lines, a.rate, a.seconds, a.batch_ms / 1000, prof))
    body = report(a, runs, truth, common.machine_info())
    print(body)
    if a.results and not a.profile:
        common.write_section(a.results, TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
