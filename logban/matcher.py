"""The one matching path: log bytes -> failures. ``logban test-filter`` and the daemon share it.

Speed comes from never looking at most lines: ``candidates`` finds the filters' literal
pre-check strings in a whole block with ``bytes.find`` (C speed), and only the lines holding
one are decoded, have their timestamp parsed, and meet a pattern. A line gives at most one
failure: filters are tried in their configured order and the first that matches wins, so a
line two filters both understand is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from logban.addr import canonical
from logban.filters import Filter
from logban.model import Failure
from logban.timestamps import epoch, split_header

# Longer lines are skipped unread: no mail daemon writes one (syslog caps messages near 8 KiB,
# journald near 48 KiB), and an attacker's oversized line must cost nothing.
MAX_LINE = 64 * 1024


@dataclass(slots=True)
class LineResult:
    failure: Failure | None
    near_miss: list[str]      # filters whose pre-check passed but no pattern matched
    too_long: bool = False
    bad_address: bool = False  # a pattern matched, but its host was no valid address


class Matcher:
    def __init__(self, filters: list[Filter]) -> None:
        self.filters = filters
        self.literals: tuple[bytes, ...] = tuple(sorted({b for f in filters for b in f.literal_bytes}))

    def candidates(self, data: bytes) -> list[int]:
        """Start offsets of the lines in ``data`` that hold any literal, in order."""
        starts: set[int] = set()
        find, rfind = data.find, data.rfind
        for lit in self.literals:
            pos = find(lit)
            while pos != -1:
                starts.add(rfind(b"\n", 0, pos) + 1)
                end = find(b"\n", pos)
                if end == -1:
                    break
                pos = find(lit, end + 1)
        return sorted(starts)

    def scan(self, data: bytes, now: datetime, default_time: datetime | None = None,
             ) -> Iterator[tuple[int, str, LineResult]]:
        """(0-based line index within ``data``, line text, result) for each candidate line."""
        index = 0
        last = 0
        count = data.count
        for start in self.candidates(data):
            index += count(b"\n", last, start)
            last = start
            end = data.find(b"\n", start)
            if end == -1:
                end = len(data)
            if end - start > MAX_LINE:
                yield index, "", LineResult(None, [], too_long=True)
                continue
            raw = data[start:end]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            text = raw.decode("utf-8", "replace")
            yield index, text, self.match_line(text, now, default_time)

    def match_line(self, text: str, now: datetime, default_time: datetime | None = None) -> LineResult:
        """Match one line (no newline). ``default_time`` is used when the line has no stamp."""
        wanted = [f for f in self.filters if f.wants(text)]
        if not wanted:
            return LineResult(None, [])
        t, body = split_header(text, now)
        if t is None:
            t = default_time or now
        near: list[str] = []
        bad = False
        for f in wanted:
            if any(p.match(body) for p in f.ignore):
                continue
            for p in f.patterns:
                m = p.match(body)
                if m is None:
                    continue
                groups = m.groupdict()
                raw_host = groups.get("host")
                host = None
                if raw_host is not None:
                    host = canonical(raw_host)
                    if host is None:
                        bad = True
                        continue
                user = groups.get("user")
                service = groups.get("service") or f.service
                return LineResult(Failure(f.name, host, user or None, t, epoch(t), service), [])
            near.append(f.name)
        return LineResult(None, near, bad_address=bad)
