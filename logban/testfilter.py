"""``logban test-filter``: run the filters over a log and report what they find and miss."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol, TextIO

from logban.matcher import LineResult, Matcher
from logban.model import Failure
from logban.timestamps import iso

BLOCK = 8 * 1024 * 1024
NEAR_MISS_KEEP = 20


class ByteReader(Protocol):
    """What test-filter reads: a file, standard input, or the journal's synthesized lines."""

    def read(self, n: int, /) -> bytes: ...


@dataclass
class FilterReport:
    failures: int = 0
    without_address: int = 0
    near_misses: int = 0
    hosts: Counter[str] = field(default_factory=Counter)
    users: dict[str, Counter[str]] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    first_ts: float = float("inf")
    last_ts: float = float("-inf")
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
            if f.ts < self.first_ts:
                self.first, self.first_ts = f.time, f.ts
            if f.ts > self.last_ts:
                self.last, self.last_ts = f.time, f.ts


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


def read_blocks(stream: ByteReader, block: int = BLOCK) -> Iterator[bytes]:
    """Blocks of whole lines (the last may lack its newline at end of input), copying each
    byte at most once more than the read itself."""
    rest = b""
    while True:
        chunk = stream.read(block)
        if not chunk:
            break
        cut = chunk.rfind(b"\n")
        if cut == -1:
            rest += chunk
            continue
        if cut == len(chunk) - 1:
            yield rest + chunk if rest else chunk
        else:
            yield rest + memoryview(chunk)[:cut + 1]
        rest = chunk[cut + 1:]
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


Hit = tuple[int, str, LineResult]
PARALLEL_MIN = 32 * 1024 * 1024  # smaller files are done before worker processes would start


def _serial(matcher: Matcher, stream: ByteReader, now: datetime, default_time: datetime | None,
            progress: Progress | None) -> Iterator[tuple[int, list[Hit]]]:
    for data in read_blocks(stream):
        n, hits = matcher.scan_block(data, now, default_time)
        if progress is not None:
            progress.advance(len(data))
        yield n, hits


class _Slice:
    """A reader over bytes [start, end) of a file."""

    def __init__(self, f: BinaryIO, start: int, end: int) -> None:
        f.seek(start)
        self.f, self.left = f, end - start

    def read(self, n: int) -> bytes:
        data = self.f.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data


# Set in the parent just before the worker processes fork, so they inherit the compiled filters.
_WORK: tuple[Matcher, datetime, datetime | None] | None = None


PackedFailure = tuple[str, str | None, str | None, datetime | None, float, str | None]
Packed = tuple[int, str, tuple[str, ...], bool, PackedFailure | None]


def _scan_range(path: str, start: int, end: int) -> tuple[int, list[Packed]]:
    """In a worker: the hits of one byte range, as plain tuples (cheap to send back), the
    text kept only for near misses (the only lines the report quotes)."""
    assert _WORK is not None
    matcher, now, default_time = _WORK
    base, out = 0, []
    with open(path, "rb") as f:
        for n, hits in _serial(matcher, _Slice(f, start, end), now, default_time, None):
            for i, text, res in hits:
                fl = res.failure
                out.append((base + i, text if res.near_miss else "", tuple(res.near_miss), res.too_long,
                            None if fl is None else (fl.filter, fl.host, fl.user, fl.time, fl.ts, fl.service)))
            base += n
    return base, out


def _unpack(packed: list[Packed]) -> list[Hit]:
    return [(i, text, LineResult(None if fl is None else Failure(*fl), list(nm), too_long))
            for i, text, nm, too_long, fl in packed]


def _ranges(path: str, size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of the file, each ending just after a newline."""
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            f.readline()
            pos = f.tell()
            if pos < size:
                cuts.append(pos)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _parallel(matcher: Matcher, path: str, size: int, now: datetime, default_time: datetime | None,
              progress: Progress | None, workers: int) -> Iterator[tuple[int, list[Hit]]]:
    """Split a big file between processes (all cores); results come back in file order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _WORK
    _WORK = (matcher, now, default_time)
    ranges = _ranges(path, size, workers * 4)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_scan_range, path, a, b) for a, b in ranges]
        for (a, b), fut in zip(ranges, futures):
            n, packed = fut.result()
            if progress is not None:
                progress.advance(b - a)
            yield n, _unpack(packed)


def run(matcher: Matcher, stream: ByteReader, now: datetime, json_out: TextIO | None,
        progress: Progress | None = None, default_time: datetime | None = None,
        correlate_window: float = 2.0, workers: int | None = None) -> Report:
    """Match every line of ``stream``; write one JSON object per failure to ``json_out``.

    A big regular file is split between ``workers`` processes (default: one per core); the
    matching is the same, and the results are merged in file order.
    """
    report = Report(filters={f.name: FilterReport() for f in matcher.filters})
    corr = report.correlation = Correlation(correlate_window)
    t0 = time.perf_counter()
    base = 0  # lines before the current block
    write = json_out.write if json_out is not None else None
    workers = workers if workers is not None else (os.cpu_count() or 1)
    size, path = regular_file(stream)
    if workers > 1 and path is not None and size >= PARALLEL_MIN:
        source = _parallel(matcher, path, size, now, default_time, progress, workers)
    else:
        source = _serial(matcher, stream, now, default_time, progress)
    for n, hits in source:
        for index, text, res in hits:
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
        base += n
    report.lines = base
    report.seconds = time.perf_counter() - t0
    return report


def regular_file(stream: ByteReader) -> tuple[int, str | None]:
    """The size of the regular file ``stream`` reads from its start, and a path to it; else
    (0, None): a pipe, a terminal, the journal's lines, a file read from the middle."""
    if not isinstance(stream, io.IOBase):
        return 0, None
    try:
        fd = stream.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or stream.tell() != 0:
            return 0, None
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return 0, None
    # The workers reopen the file this stream has open, not its name: standard input
    # redirected from a file has no name ("<stdin>"), and a log rotated since it was opened
    # has another file under that name now. Forked workers inherit the descriptor.
    path = f"/proc/self/fd/{fd}"
    if not os.path.exists(path):
        return 0, None
    return st.st_size, path


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
        out.write(f"\n[{name}] {_n(r.failures, 'failure')}"
                  + (f" ({r.without_address} without address)" if r.without_address else "")
                  + f", {_n(len(r.hosts), 'address', 'addresses')}, "
                  + f"{_n(r.near_misses, 'near miss', 'near misses')}\n")
        if r.first:
            out.write(f"  first {iso(r.first)}  last {iso(r.last) if r.last else '-'}\n")
        if len(r.hosts) > top:
            out.write(f"  top {top} of {len(r.hosts)} addresses:\n")
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
                  f"{sum(report.attempts.values())} counted, {_n(report.duplicates, 'duplicate line')}"
                  + (f"; top {top} of {len(report.attempts)} addresses" if len(report.attempts) > top else "")
                  + "\n")
        cu = report.correlated_users(top)
        for h, n in report.attempts.most_common(top):
            tried = cu.get(h)
            tail = ("  users: " + ", ".join(f"{u} x{k}" for u, k in tried.items())) if tried else ""
            out.write(f"  {n:8d}  {h}{tail}\n")
    if not report.matched:
        out.write("\nNo failures found.\n")


def _n(count: int, one: str, many: str | None = None) -> str:
    """"1 failure", "2 failures"."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
