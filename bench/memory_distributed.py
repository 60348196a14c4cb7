#!/usr/bin/env python3
"""Memory under a distributed attack: daemon RSS per tracked address.

    .venv/bin/python bench/memory_distributed.py --addresses 1000000 --results bench/RESULTS.md

A botnet that tries each address once stays below maxretry everywhere, so nothing is banned
and every address is tracked until its failure leaves the findtime window: that is the memory
the daemon must hold. The real daemon (``logban run``, max_tracked raised to 2,000,000 so the
cap does not drop anything) follows a maillog in a network namespace of its own. Its memory is
read from /proc (VmRSS, RssAnon, smaps_rollup Pss) once idle after start, then after
``--addresses`` postfix SASL failure lines, each from a distinct address (10.0.0.0/8 and one in
eight from 2001:db8::/32, stamped over the last ``--span`` seconds, inside findtime), were
appended and ``status`` shows them all tracked.

The breakdown (``--breakdown``, on by default) builds ``logban.tracker.Tracker`` in this
process and feeds it the same failures under tracemalloc, to say which structures hold the
bytes: the count store (``logban/counts.py``), the attempt clusters and the rest. It is run
twice: with the failures spread as above, and with all of them in one second (a burst: every
address is then also in the attempt-cluster cache).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import linecache
import random
import shutil
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import daemon_harness as h  # noqa: E402

TITLE = "Memory, distributed attack"
TARGET_BYTES = 250
V6_EVERY = 8
MiB = 1024 * 1024
BATCH = 40_000  # lines per daemon batch: one 4 MiB read block of ~100-byte lines


# --------------------------------------------------------------------------- the flood


def flood_addresses(n: int, seed: int = 1) -> Iterator[str]:
    """``n`` distinct canonical addresses: 10.0.0.0/8, and every ``V6_EVERY``-th one a
    2001:db8::/32 address with a random interface ID (as long as real ones are)."""
    rng = random.Random(seed)
    v4 = 0
    for i in range(n):
        if i % V6_EVERY == V6_EVERY - 1:
            # the /64 is made from i, so every address is distinct without a set to check
            yield str(ipaddress.IPv6Address((0x20010DB8 << 96) | ((i & 0xFFFFFFFF) << 64)
                                            | rng.getrandbits(64)))
        else:
            v4 += 1
            yield f"10.{(v4 >> 16) & 255}.{(v4 >> 8) & 255}.{v4 & 255}"


def write_flood(path: Path, n: int, span: float, end: float) -> None:
    """One failure line per address, stamps spread evenly over ``span`` seconds to ``end``."""
    step = span / max(1, n - 1)
    start = end - span
    with open(path, "w", encoding="ascii") as f:
        batch: list[str] = []
        for i, addr in enumerate(flood_addresses(n)):
            batch.append(h.postfix_failure(h.syslog_stamp(start + i * step), addr, 1000 + i % 30000))
            if len(batch) >= 65536:
                f.writelines(batch)
                batch.clear()
        f.writelines(batch)


# --------------------------------------------------------------------------- the daemon run


@dataclass
class DaemonRun:
    idle: h.Memory
    loaded: h.Memory
    tracked: int
    seconds: float       # from the first appended byte to all addresses tracked
    status: dict[str, Any]
    busy_replies: int    # status requests (every 0.5 s) it did not answer within 10 s


def measure_daemon(netns: str, tmp: Path, n: int, span: float, settle: float) -> DaemonRun:
    flood = tmp / "flood.log"
    print(f"writing {n:,} failure lines ...", file=sys.stderr)
    write_flood(flood, n, span, time.time())
    log = tmp / "maillog"
    log.write_text("Dec  3 09:59:59 mail postfix/qmgr[900]: started\n")
    # max_tracked above n: the point is what n addresses cost, not the cap dropping them.
    cfg = h.write_config(tmp, log, max_tracked=max(2_000_000, 2 * n))
    with h.LogbanDaemon(cfg, netns) as d:
        time.sleep(settle)
        idle = h.memory(d.pid)
        print(f"idle RSS {idle.rss / MiB:.1f} MiB; appending the flood ...", file=sys.stderr)
        t0 = time.monotonic()
        with open(flood, "rb") as src, open(log, "ab") as dst:
            shutil.copyfileobj(src, dst, MiB)  # a log growing in 1 MiB writes, as fast as it can
        d.wait_for(lambda: d.jail()["failures_tracked"] >= n, 600,
                   f"{n:,} addresses tracked", interval=0.5)
        seconds = time.monotonic() - t0
        time.sleep(settle)
        loaded = h.memory(d.pid)
        status = d.status()
        busy = d.busy_replies
    tracked = status["jails"]["smtp-auth"]["failures_tracked"]
    return DaemonRun(idle, loaded, tracked, seconds, status, busy)


# --------------------------------------------------------------------------- breakdown


@dataclass
class Breakdown:
    label: str
    per_address: float                       # bytes the tracker still holds, per address
    cache: int                               # bytes of canonical()'s bounded lru_cache
    holders: list[tuple[str, str, float]]    # (file:line, what it holds, bytes per address)
    clusters: int                            # entries in the attempt-cluster cache at the end


def _failure_time(end: float, span: float, step: float, i: int) -> float:
    return end - span + i * step  # holds: the failure's time (a float), kept by the count store


def tracker_breakdown(n: int, span: float, label: str, top: int = 6) -> Breakdown:
    """Feed ``n`` one-failure addresses straight into a Tracker under tracemalloc, the way
    the daemon does: the address through ``logban.addr.canonical`` (whose result, cached, is
    the string the tracker keys on), the time as a fresh float."""
    from logban.addr import AddressSet, canonical
    from logban.config import JailConfig
    from logban.model import Failure
    from logban.tracker import Tracker

    canonical.cache_clear()
    jail = JailConfig("smtp-auth", ["postfix-sasl"], maxretry=3, findtime=1200.0)
    end = time.time()
    step = span / max(1, n - 1)
    gc.collect()
    tracemalloc.start()
    # The daemon's ignore list: loopback (the host's own addresses come on top).
    tr = Tracker([jail], AddressSet([ipaddress.ip_network("127.0.0.0/8"),
                                     ipaddress.ip_network("::1/128")]),
                 lambda a, j: False, lambda a, j: 0, max_tracked=2 * n)
    base = tracemalloc.take_snapshot()
    before = tracemalloc.get_traced_memory()[0]
    # The daemon hands the counts it changed to its state database after every batch of
    # lines (when the tracker has that interface); do the same, or they would pile up here.
    take_dirty = getattr(tr, "take_dirty", lambda: None)
    for i, raw in enumerate(flood_addresses(n)):
        tr.process(Failure("postfix-sasl", canonical(raw), None, None,
                           _failure_time(end, span, step, i), "smtp"))
        if i % BATCH == BATCH - 1:
            take_dirty()
    take_dirty()
    gc.collect()
    with_cache = tracemalloc.get_traced_memory()[0]
    # The cache is bounded (65,536 entries) whatever the number of addresses: measure it
    # apart, so the per-address figure is what grows with the attack.
    canonical.cache_clear()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    holders = []
    for stat in snap.compare_to(base, "lineno")[:top]:
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[0]
        holders.append((f"{_short(frame.filename)}:{frame.lineno}",
                        _describe(frame.filename, frame.lineno), stat.size_diff / n))
    st = tr.states["smtp-auth"]
    assert len(st.counts) == n, (len(st.counts), n)
    clusters = len(st.clusters.cur) + len(st.clusters.old)
    return Breakdown(label, (after - before) / n, with_cache - after, holders, clusters)


def _describe(filename: str, lineno: int) -> str:
    """What an allocation site holds: its source line, or the ``# holds:`` note on it."""
    src = linecache.getline(filename, lineno).strip()
    if "# holds:" in src:
        return src.split("# holds:", 1)[1].strip()
    if Path(filename).name == "ipaddress.py":
        return "the canonical address text (the tracker's key), made by `logban.addr.canonical`"
    return f"`{src}`"


def _short(filename: str) -> str:
    p = Path(filename)
    for anchor in ("logban", "bench"):
        if anchor in p.parts:
            return "/".join(p.parts[p.parts.index(anchor):])
    return p.name


# --------------------------------------------------------------------------- report


def report(a: argparse.Namespace, run: DaemonRun, breakdowns: list[Breakdown],
           info: dict[str, str]) -> str:
    n = run.tracked
    per = {k: (getattr(run.loaded, k) - getattr(run.idle, k)) / n for k in ("rss", "rss_anon", "pss")}
    met = per["rss"] <= TARGET_BYTES
    n6 = n // V6_EVERY
    lines = [
        f"The real daemon (`logban run`, file source, max_tracked {max(2_000_000, 2 * a.addresses):,}) "
        f"in a network namespace of its own; {a.addresses:,} postfix SASL failure lines appended "
        f"after start, each from a distinct address ({a.addresses - n6:,} from 10.0.0.0/8, "
        f"{n6:,} from 2001:db8::/32), stamped over the last {a.span:.0f} s (inside findtime, "
        f"below maxretry: nothing is banned, everything is tracked). It took "
        f"{run.seconds:.1f} s to track them all ({a.addresses / run.seconds:,.0f} lines/s).",
        "",
        "| | VmRSS | RssAnon | Pss |",
        "|---|---:|---:|---:|",
        f"| Idle after start | {run.idle.rss / MiB:.1f} MiB | {run.idle.rss_anon / MiB:.1f} MiB | "
        f"{run.idle.pss / MiB:.1f} MiB |",
        f"| {n:,} addresses tracked | {run.loaded.rss / MiB:.1f} MiB | "
        f"{run.loaded.rss_anon / MiB:.1f} MiB | {run.loaded.pss / MiB:.1f} MiB |",
        f"| **Per tracked address** | **{per['rss']:.0f} B** | {per['rss_anon']:.0f} B | "
        f"{per['pss']:.0f} B |",
        "",
        f"**Target <= {TARGET_BYTES} bytes per tracked address: {'met' if met else 'NOT met'}** "
        f"({per['rss']:.0f} B of RSS above the idle baseline). Peak RSS (VmHWM) during the "
        f"flood: {run.loaded.peak / MiB:.1f} MiB.",
    ]
    if run.busy_replies:
        lines += ["", f"- While it worked through the flood, {run.busy_replies} `status` requests "
                  "got \"the daemon did not answer in time\" (10 s): the main loop handles "
                  "control requests only between `read()` calls, and one call takes up to 32 MiB "
                  "(READ_BUDGET) of backlog."]
    if breakdowns:
        lines += ["", "Where the bytes go: `logban.tracker.Tracker` fed the same failures in "
                  "this process under tracemalloc, the address through `logban.addr.canonical` "
                  "as the matcher does; what is still allocated at the end, per address. "
                  "`canonical()`'s lru_cache (65,536 entries, the same size whatever the "
                  "attack) is measured apart.", ""]
        for b in breakdowns:
            lines += [f"*{b.label}*: **{b.per_address:.0f} B per address**; {b.clusters:,} "
                      f"attempt clusters held; the `canonical()` cache {b.cache / MiB:.1f} MiB.",
                      "", "| Allocated at | Holds | B/address |", "|---|---|---:|"]
            lines += [f"| `{loc}` | {what} | {v:.0f} |" for loc, what, v in b.holders]
            lines.append("")
    lines += ["", "Machine:", "", common.machine_markdown(info), "",
              f"Reproduce: `.venv/bin/python bench/memory_distributed.py --addresses "
              f"{a.addresses} --results bench/RESULTS.md`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addresses", type=int, default=1_000_000)
    p.add_argument("--span", type=float, default=900.0,
                   help="seconds the failures' stamps are spread over (inside findtime, 20m)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds to wait before each memory reading")
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the tracker in process under tracemalloc")
    p.add_argument("--breakdown-addresses", type=int, default=200_000, metavar="N",
                   help="addresses for the breakdown (tracemalloc makes it ~10x slower than "
                        "the daemon: 1,000,000 take 2 minutes per case)")
    common.add_results_argument(p)
    a = p.parse_args(argv)
    if a.addresses < 1:
        p.error("--addresses must be at least 1")
    h.require_root()
    h.exit_on_signals()

    with h.bench_netns() as ns, h.scratch_dir("memory") as tmp:
        run = measure_daemon(ns, tmp, a.addresses, a.span, a.settle)
    if run.tracked != a.addresses:
        raise SystemExit(f"the daemon tracks {run.tracked:,} addresses, not {a.addresses:,}")
    breakdowns = []
    if a.breakdown:
        print("tracemalloc breakdown ...", file=sys.stderr)
        n = min(a.addresses, a.breakdown_addresses)
        breakdowns.append(tracker_breakdown(n, a.span, f"{n:,} failures spread over {a.span:.0f} s"))
        breakdowns.append(tracker_breakdown(n, 0.0, f"{n:,} failures in one second (a burst)"))
    body = report(a, run, breakdowns, common.machine_info())
    print(body)
    if a.results:
        common.write_section(a.results, TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
