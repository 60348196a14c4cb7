#!/usr/bin/env python3
"""Parse throughput: logban test-filter against fail2ban-regex and grep on one big maillog.

    .venv/bin/python bench/parse_throughput.py --lines 1000000 --runs 3 --results bench/RESULTS.md

The log is made once by bench/gen_maillog.py into bench/out/ (reused while its parameters and
the generator version match). Each row is the median wall-clock time of N runs of a whole
program, start-up included, since that is what a user waits for:

  (a) ``logban test-filter`` with every shipped filter, human output to /dev/null;
  (b) ``fail2ban-regex LOG 'postfix[mode=auth]'``, one filter only (skipped when missing);
  (c) ``grep -c 'authentication failed' LOG`` under LC_ALL=C, as the floor: one literal
      search, no parsing at all.

One untimed ``logban test-filter --json`` run checks that logban found exactly the failures
the generator wrote, so a fast but wrong logban cannot pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import gen_maillog  # noqa: E402

TITLE = "Parse throughput"
TARGET_RATIO = 15.0
FAIL2BAN_FILTER = "postfix[mode=auth]"


def ensure_log(lines: int, seed: int, regen: bool) -> tuple[Path, dict[str, Any]]:
    """The generated log and its truth, made only when missing or stale."""
    common.OUT.mkdir(parents=True, exist_ok=True)
    log = common.OUT / f"maillog-{lines}-seed{seed}.log"
    truth_path = log.with_suffix(".truth.json")
    if not regen and log.exists() and truth_path.exists():
        truth = json.loads(truth_path.read_text())
        if (truth.get("version") == gen_maillog.VERSION and truth.get("lines") == lines
                and truth.get("params", {}).get("seed") == seed):
            return log, truth
    print(f"generating {log} ({lines:,} lines) ...", file=sys.stderr)
    truth = gen_maillog.generate(log, lines=lines, seed=seed)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    return log, truth


def now_after(truth: dict[str, Any]) -> str:
    """--now just after the last line, so every syslog stamp gets the log's own year."""
    return (datetime.fromisoformat(truth["last"]) + timedelta(minutes=1)).isoformat()


def logban_cmd(log: Path, now: str, json_out: bool = False, jobs: int | None = None) -> list[str]:
    return [sys.executable, "-m", "logban", "test-filter", "--now", now,
            *(["--json"] if json_out else []), *(["--jobs", str(jobs)] if jobs else []), str(log)]


def verify_logban(log: Path, now: str, truth: dict[str, Any]) -> tuple[int, str]:
    """(failures found, verdict against the generator's truth), from an untimed --json run."""
    out = subprocess.run(logban_cmd(log, now, json_out=True), capture_output=True, text=True,
                         check=True).stdout
    hosts: dict[str, int] = {}
    found = 0
    for line in out.splitlines():
        obj = json.loads(line)
        if "summary" in obj:
            continue
        found += 1
        if obj["host"] is not None:
            hosts[obj["host"]] = hosts.get(obj["host"], 0) + 1
    exact = found == truth["failures"] and hosts == truth["hosts"]
    verdict = "exact" if exact else f"MISMATCH (expected {truth['failures']:,})"
    return found, verdict


def logban_scan_rate(log: Path, now: str) -> str | None:
    """The scan rate logban prints itself (reading and matching only, no start-up), from one
    untimed run of the same command as the timed ones."""
    out = subprocess.run(logban_cmd(log, now), capture_output=True, text=True, check=True).stdout
    m = re.search(r"^Lines: .* in ([\d.]+)s \(([\d,]+) lines/s\)", out, re.M)
    return f"{m[2]} lines/s ({m[1]} s)" if m else None


def fail2ban_matched(output: Path) -> int | None:
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", output.read_text(errors="replace"), re.M)
    return int(m[1]) if m else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3, help="timed runs per row; the median is reported")
    p.add_argument("--fail2ban-runs", type=int, metavar="N",
                   help="runs for the fail2ban row (default --runs; it is the slow one)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--regen", action="store_true", help="regenerate the log even if cached")
    p.add_argument("--no-fail2ban", action="store_true", help="skip the fail2ban-regex row")
    common.add_results_argument(p)
    a = p.parse_args(argv)

    log, truth = ensure_log(a.lines, a.seed, a.regen)
    now = now_after(truth)
    lines = truth["lines"]
    size_mb = log.stat().st_size / 1e6
    rows: list[str] = []
    notes: list[str] = []

    # (a) logban
    print("timing logban test-filter ...", file=sys.stderr)
    lb = common.time_command(logban_cmd(log, now), a.runs)
    found, verdict = verify_logban(log, now, truth)
    rows.append(_row("logban test-filter (all shipped filters)",
                     f"`logban test-filter --now {now} LOG > /dev/null`", lb, lines,
                     f"{found:,} ({verdict})"))
    # the same on one core: what the matching itself costs, without splitting the file
    print("timing logban test-filter --jobs 1 ...", file=sys.stderr)
    lb1 = common.time_command(logban_cmd(log, now, jobs=1), a.runs)
    rows.append(_row("logban test-filter --jobs 1 (one core)",
                     f"`logban test-filter --jobs 1 --now {now} LOG > /dev/null`", lb1, lines,
                     f"{found:,}"))
    scan = logban_scan_rate(log, now)
    if scan:
        notes.append(f"logban's own report of its scan alone, without start-up (one more run): {scan}.")

    # (b) fail2ban-regex
    f2b_version = common.tool_version(["fail2ban-regex", "--version"])
    ratio: float | None = None
    if a.no_fail2ban:
        notes.append("fail2ban-regex row skipped (--no-fail2ban).")
    elif shutil.which("fail2ban-regex") is None:
        notes.append("fail2ban-regex row skipped: fail2ban-regex is not installed.")
    else:
        print("timing fail2ban-regex (slow) ...", file=sys.stderr)
        out = common.OUT / "fail2ban-regex.out"
        fb = common.time_command(["fail2ban-regex", str(log), FAIL2BAN_FILTER],
                                 a.fail2ban_runs or a.runs, stdout=out)
        matched = fail2ban_matched(out)
        expect = truth["by_filter"].get("postfix-sasl", 0)
        rows.append(_row(f"fail2ban-regex, {FAIL2BAN_FILTER} only",
                         f"`fail2ban-regex LOG '{FAIL2BAN_FILTER}' > file`", fb, lines,
                         f"{matched:,} (postfix SASL failures in the log: {expect:,})" if matched is not None else "?"))
        ratio = fb.median / lb.median
        notes.append(f"On one core (`--jobs 1`) logban is {fb.median / lb1.median:.1f}x fail2ban-regex; "
                     "by default test-filter splits a big file between one process per core "
                     "(the output is the same), which fail2ban-regex cannot do.")

    # (c) grep, the floor
    grep = common.time_command(["grep", "-c", "authentication failed", str(log)], a.runs,
                               stdout=common.OUT / "grep.out", env={**os.environ, "LC_ALL": "C"})
    rows.append(_row("grep -c (floor: one literal, no parsing)",
                     "`LC_ALL=C grep -c 'authentication failed' LOG`", grep, lines,
                     f"{int((common.OUT / 'grep.out').read_text().strip()):,} lines"))

    body = _markdown(a, log, size_mb, truth, rows, ratio, notes, f2b_version)
    print(body)
    if a.results:
        common.write_section(a.results, TITLE, body)
        print(f"wrote the '{TITLE}' section of {a.results}", file=sys.stderr)
    return 0


def _row(name: str, cmd: str, t: common.Timing, lines: int, found: str) -> str:
    runs = ", ".join(f"{x:.2f}" for x in t.wall)
    return (f"| {name} | {cmd} | {t.median:.2f} | {t.median_cpu:.2f} | "
            f"{common.rate(lines, t.median)} | {found} | {runs} |")


def _markdown(a: argparse.Namespace, log: Path, size_mb: float, truth: dict[str, Any],
              rows: list[str], ratio: float | None, notes: list[str], f2b: str | None) -> str:
    share = 100 * truth["failures"] / truth["lines"]
    out = [
        f"Input: {truth['lines']:,} lines ({size_mb:.0f} MB) of generated CentOS maillog "
        f"(`bench/gen_maillog.py --lines {a.lines} --seed {a.seed}`): {truth['failures']:,} "
        f"AUTH failures ({share:.1f}%; {truth['without_address']:,} saslauthd lines without "
        f"an address) from {len(truth['hosts']):,} addresses, the rest ordinary deliveries "
        "and logins.",
        "",
        f"Median of {a.runs} runs (fail2ban: {a.fail2ban_runs or a.runs}), wall clock of the "
        "whole program including start-up; CPU is user + system time of the process.",
        "",
        "| Row | Command | Median s | CPU s | Lines/s | Failures found | Runs (s) |",
        "|---|---|---:|---:|---:|---|---|",
        *rows,
        "",
    ]
    if ratio is not None:
        met = "met" if ratio >= TARGET_RATIO else "NOT met"
        out.append(f"**logban is {ratio:.1f}x fail2ban-regex** in lines/s "
                   f"(target >= {TARGET_RATIO:.0f}x: {met}), although logban runs every shipped "
                   "filter and fail2ban-regex one.")
        out.append("")
    out += [f"- {n}" for n in notes]
    if notes:
        out.append("")
    out.append("Machine:")
    out.append("")
    out.append(common.machine_markdown(common.machine_info({"fail2ban": f2b})))
    out.append("")
    out.append(f"Reproduce: `.venv/bin/python bench/parse_throughput.py --lines {a.lines} "
               f"--runs {a.runs} --results bench/RESULTS.md`")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
