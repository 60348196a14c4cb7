"""Timestamps at the start of a log line, and the year a classic syslog stamp belongs to.

``split_header`` returns the line's time (or None) and the rest of the line, which the filters
match. Every format the issue names is recognised here once, so no filter repeats it.
"""

from __future__ import annotations

import re
import time as _time
from datetime import datetime, timedelta, timezone

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# Classic syslog: "Dec  3 10:00:01 " (also "Jul 02"), an optional fraction some daemons add.
_CLASSIC = re.compile(
    r"(?:<\d{1,3}>)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) "
    r"(\d\d):(\d\d):(\d\d)(?:\.\d{1,9})? +")
# RFC 3339 / ISO 8601 (rsyslog high precision) and exim's "YYYY-MM-DD hh:mm:ss[.fff] [+zzzz]".
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?: ?(Z|[+-]\d\d:?\d\d))? +")
# RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
_RFC5424 = re.compile(r"<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
# daemontools/s6 TAI64N label.
_TAI64N = re.compile(r"@([0-9a-f]{16})[0-9a-f]{8} +")
# The kernel's own uptime stamp, as dmesg prints it.
_UPTIME = re.compile(r"\[ *(\d+)\.(\d+)\] ?")

SKEW = timedelta(days=1)


def infer_year(month: int, day: int, hh: int, mm: int, ss: int, now: datetime) -> datetime | None:
    """The latest of last, this and next year's date that is not more than a day after now.

    A Dec 31 line read on Jan 1 is last year's; a Jan 1 line read on Dec 31 (clock behind) is
    next year's; a log up to a day "ahead" of the clock (another zone) stays in this year.
    """
    limit = now + SKEW
    for year in (now.year + 1, now.year, now.year - 1):
        try:
            t = datetime(year, month, day, hh, mm, ss)
        except ValueError:  # Feb 29 in a year without it
            continue
        if t <= limit:
            return t
    return None


def _offset(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _skip_structured_data(s: str, i: int) -> int:
    """Index after RFC 5424 STRUCTURED-DATA starting at s[i] ('-' or [..][..])."""
    if s.startswith("- ", i):
        return i + 2
    n = len(s)
    while i < n and s[i] == "[":
        i += 1
        while i < n and s[i] != "]":
            i += 2 if s[i] == "\\" else 1
        i += 1
    if i < n and s[i] == " ":
        i += 1
    return i


def boot_time() -> float:
    """Wall-clock time of boot, for kernel uptime stamps."""
    try:
        with open("/proc/uptime") as f:
            return _time.time() - float(f.read().split()[0])
    except OSError:
        return 0.0


def split_header(line: str, now: datetime) -> tuple[datetime | None, str]:
    """(time of the line or None, the rest of the line after its timestamp)."""
    c = line[:1]
    if c.isalpha() or c == "<":
        m = _CLASSIC.match(line)
        if m:
            t = infer_year(_MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]), now)
            return t, line[m.end():]
        m = _RFC5424.match(line)
        if m:
            ts = parse_iso(m[1])
            host, app, procid = m[2], m[3], m[4]
            rest = line[_skip_structured_data(line, m.end()):]
            if rest.startswith("\ufeff"):
                rest = rest[1:]
            tag = app if procid == "-" else f"{app}[{procid}]"
            return ts, f"{host} {tag}: {rest}"
        return None, line
    if c.isdigit():
        m = _ISO.match(line)
        if m:
            frac = (m[7] or "0")[:6].ljust(6, "0")
            try:
                t = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                             int(frac), tzinfo=_offset(m[8]))
            except ValueError:
                return None, line
            return t, line[m.end():]
        return None, line
    if c == "@":
        m = _TAI64N.match(line)
        if m:
            secs = int(m[1], 16) - (1 << 62) - 10
            return datetime.fromtimestamp(secs), line[m.end():]
        return None, line
    if c == "[":
        m = _UPTIME.match(line)
        if m:
            secs = boot_time() + int(m[1]) + float("0." + m[2])
            return datetime.fromtimestamp(secs), line[m.end():]
    return None, line


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def epoch(t: datetime) -> float:
    """Seconds since the epoch; a naive time is local wall-clock time, as syslog writes it."""
    return t.timestamp()


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")
