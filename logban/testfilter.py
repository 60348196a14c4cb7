"""``logban test-filter``: run the filters over a log and report what they find and miss."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, TextIO

from logban.matcher import Matcher
from logban.model import Failure
from logban.timestamps import iso

BLOCK = 8 * 1024 * 1024
NEAR_MISS_KEEP = 20


@dataclass
class FilterReport:
    failures: int = 0
    without_address: int = 0
    near_misses: int = 0
    hosts: Counter[str] = field(default_factory=Counter)
    users: dict[str, Counter[str]] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    near_miss_samples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, f: Failure) -> None:
        self.failures += 1
        if f.host is None:
            self.without_address += 1
        else:
            self.hosts[f.host] += 1
            if f.user:
                self.users.setdefault(f.host, Counter())[f.user] += 1
        if f.time is not None:
            if self.first is None or _key(f) < _key_t(self.first):
                self.first = f.time
            if self.last is None or _key(f) > _key_t(self.last):
                self.last = f.time


def _key(f: Failure) -> float:
    return f.ts


def _key_t(t: datetime) -> float:
    return t.timestamp()


@dataclass
class Report:
    lines: int = 0
    matched: int = 0
    too_long: int = 0
    seconds: float = 0.0
    filters: dict[str, FilterReport] = field(default_factory=dict)
    # The daemon's view across filters: one attempt seen in several logs counts once, and
    # saslauthd's address-less lines are attributed to the address of the same attempt.
    attempts: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    correlation: "Correlation | None" = None

    def correlated_users(self, top: int) -> dict[str, dict[str, int]]:
        if self.correlation is None:
            return {}
        users = self.correlation.users.users
        hosts = [h for h, _ in self.attempts.most_common(top) if h in users]
        return {h: dict(users[h].most_common(10)) for h in hosts}

    def summary(self, top: int = 10) -> dict[str, object]:
        out: dict[str, object] = {
            "lines": self.lines,
            "matched": self.matched,
            "missed": self.lines - self.matched,
            "too_long": self.too_long,
            "seconds": round(self.seconds, 4),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds > 0 else None,
        }
        fs: dict[str, object] = {}
        for name, r in self.filters.items():
            fs[name] = {
                "failures": r.failures,
                "without_address": r.without_address,
                "near_misses": r.near_misses,
                "first": iso(r.first) if r.first else None,
                "last": iso(r.last) if r.last else None,
                "top": [{"host": h, "count": n,
                         "users": [u for u, _ in r.users.get(h, Counter()).most_common(5)]}
                        for h, n in r.hosts.most_common(top)],
                "near_miss_samples": [{"line": n, "text": t} for n, t in r.near_miss_samples],
            }
        out["filters"] = fs
        out["attempts"] = {"counted": sum(self.attempts.values()), "duplicates": self.duplicates,
                           "top": [{"host": h, "count": n} for h, n in self.attempts.most_common(top)]}
        out["users_by_address"] = self.correlated_users(top)
        return out


def read_blocks(stream: BinaryIO, block: int = BLOCK) -> Iterator[bytes]:
    """Blocks of whole lines (the last may lack its newline at end of input)."""
    rest = b""
    while True:
        chunk = stream.read(block)
        if not chunk:
            break
        data = rest + chunk
        cut = data.rfind(b"\n")
        if cut == -1:
            rest = data
            continue
        yield data[:cut + 1]
        rest = data[cut + 1:]
    if rest:
        yield rest + b"\n"


class Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.done, self.shown = total, out, 0, -1

    def advance(self, n: int) -> None:
        self.done += n
        pct = int(100 * self.done / self.total) if self.total else 100
        if pct != self.shown:
            self.shown = pct
            bar = "#" * (pct // 4)
            self.out.write(f"\r[{bar:<25}] {pct:3d}%")
            self.out.flush()

    def close(self) -> None:
        self.out.write("\r" + " " * 40 + "\r")
        self.out.flush()


class Correlation:
    """The tracker's attempt clusters and user attribution, reused as they are."""

    def __init__(self, window: float) -> None:
        from logban.tracker import UserView, _Clusters

        self.clusters = _Clusters(window)
        self.users = UserView(window)

    def saw(self, f: Failure, report: Report) -> None:
        self.users.saw(f)
        if f.host is None:
            return
        if self.clusters.counts(f.host, f.filter, f.ts):
            report.attempts[f.host] += 1
        else:
            report.duplicates += 1


def run(matcher: Matcher, stream: BinaryIO, now: datetime, json_out: TextIO | None,
        progress: Progress | None = None, default_time: datetime | None = None,
        correlate_window: float = 2.0) -> Report:
    """Match every line of ``stream``; write one JSON object per failure to ``json_out``."""
    report = Report(filters={f.name: FilterReport() for f in matcher.filters})
    corr = report.correlation = Correlation(correlate_window)
    t0 = time.perf_counter()
    base = 0  # lines before the current block
    write = json_out.write if json_out is not None else None
    for data in read_blocks(stream):
        for index, text, res in matcher.scan(data, now, default_time):
            lineno = base + index + 1
            if res.too_long:
                report.too_long += 1
                continue
            f = res.failure
            if f is not None:
                report.matched += 1
                report.filters[f.filter].add(f)
                corr.saw(f, report)
                if write is not None:
                    write(json.dumps({"line": lineno, "filter": f.filter, "host": f.host,
                                      "user": f.user,
                                      "time": iso(f.time) if f.time else None}) + "\n")
            for name in res.near_miss:
                r = report.filters[name]
                r.near_misses += 1
                if len(r.near_miss_samples) < NEAR_MISS_KEEP:
                    r.near_miss_samples.append((lineno, text[:500]))
        n = data.count(b"\n")
        base += n
        if progress is not None:
            progress.advance(len(data))
    report.lines = base
    report.seconds = time.perf_counter() - t0
    return report


def print_human(report: Report, out: TextIO, top: int = 10) -> None:
    s = report.summary(top)
    rate = s["lines_per_second"]
    out.write(f"Lines: {report.lines} read, {report.matched} matched, "
              f"{report.lines - report.matched} missed"
              + (f", {report.too_long} too long to match" if report.too_long else "")
              + f" in {report.seconds:.3f}s"
              + (f" ({rate:,} lines/s)" if rate else "") + "\n")
    for name, r in report.filters.items():
        if not (r.failures or r.near_misses):
            continue
        out.write(f"\n[{name}] {r.failures} failures"
                  + (f" ({r.without_address} without address)" if r.without_address else "")
                  + f", {len(r.hosts)} addresses, {r.near_misses} near misses\n")
        if r.first:
            out.write(f"  first {iso(r.first)}  last {iso(r.last) if r.last else '-'}\n")
        for h, n in r.hosts.most_common(top):
            users = r.users.get(h)
            tail = ""
            if users:
                tail = "  users: " + ", ".join(u for u, _ in users.most_common(5))
                if len(users) > 5:
                    tail += f" (+{len(users) - 5} more)"
            out.write(f"  {n:8d}  {h}{tail}\n")
        if r.near_miss_samples:
            out.write("  near misses (passed the pre-check, matched no pattern):\n")
            for n, t in r.near_miss_samples[:5]:
                out.write(f"    line {n}: {t[:200]}\n")
    if report.attempts:
        out.write(f"\nAttempts (one attempt seen in several logs counted once): "
                  f"{sum(report.attempts.values())} counted, {report.duplicates} duplicate lines\n")
        cu = report.correlated_users(top)
        for h, n in report.attempts.most_common(top):
            users = cu.get(h)
            tail = ("  users: " + ", ".join(f"{u} x{k}" for u, k in users.items())) if users else ""
            out.write(f"  {n:8d}  {h}{tail}\n")
    if not report.matched:
        out.write("\nNo failures found.\n")
