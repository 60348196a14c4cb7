"""Timestamps at the start of a log line, and the year a classic syslog stamp belongs to.

``split_header`` returns the line's time (or None) and the rest of the line, which the filters
match. Every format the issue names is recognised here once, so no filter repeats it.
"""

from __future__ import annotations

import re
from functools import lru_cache
import time as _time
from datetime import datetime, timedelta, timezone

from logban.addr import canonical

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WDAYS = frozenset(d + " " for d in _DAY_NAMES)
_WDAY = "(?:" + "|".join(_DAY_NAMES) + ") "
# Classic syslog: "Dec  3 10:00:01 " (also "Jul 02"), an optional fraction some daemons add; a
# weekday before it and a year before or after the time (ctime style, "Dec  3 2026 10:00:01")
# are taken too, and a year so written is used as it is.
_CLASSIC = re.compile(
    r"(?:" + _WDAY + r")?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) "
    r"(?:((?:19|20)\d\d) )?(\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?(?: ((?:19|20)\d\d)(?= |$))? *")
# RFC 3339 / ISO 8601 (rsyslog high precision) and exim's "YYYY-MM-DD hh:mm:ss[.fff] [+zzzz]".
_ISO_BODY = (r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
             r"(?:([Zz]|[+-]\d\d(?::?\d\d)?)(?= |$)| ([+-]\d\d:?\d\d)(?= |$))?")
_ISO = re.compile(_ISO_BODY + " *")
# journalctl's short-full ("Thu 2026-12-03 10:00:01 CET"): the zone name is kept naive. Only
# after a weekday: a bare ISO stamp may be followed by a capitalised word of the message.
_ISO_FULL = re.compile(_WDAY + _ISO_BODY + r"(?: ([A-Z][A-Za-z]{1,5}|[+-]\d\d(?:\d\d)?)(?= |$))? *")
# Zone names that say one thing everywhere; any other (CET, EST, IST...) is taken as local.
_UTC_NAMES = frozenset(("UTC", "GMT", "UT", "Z"))
# RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
_RFC5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
_PRI = re.compile(r"<\d{1,3}>")
_OCTET_COUNT = re.compile(r"[1-9]\d{0,5} (?=<\d{1,3}>)")
# MSG that starts with the RFC 3164 tag again: "postfix/smtpd[811]: ".
_REPEATED_TAG = re.compile(r"([^\s:\[\]]+)(?:\[\d+\])?: ")
# daemontools/s6 TAI64N label.
_TAI64N = re.compile(r"@([0-9a-f]{16})[0-9a-f]{8} +")
# The kernel's own uptime stamp, as dmesg prints it; "dmesg -T" prints a ctime instead.
_UPTIME = re.compile(r"\[ *(\d+)\.(\d+)\] ?")
_DMESG_T = re.compile(r"\[" + _WDAY + r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) "
                      r"(\d\d):(\d\d):(\d\d) (\d{4})\] ?")
# journalctl -o short-unix: seconds since the epoch with a fraction.
_UNIX = re.compile(r"(\d{9,10})\.(\d{1,9}) +")
# A record as /dev/kmsg gives it ("PRIO,SEQ,USEC,FLAGS[,caller=...];MESSAGE"): USEC is
# microseconds since boot, like the uptime stamp.
_KMSG = re.compile(r"\d{1,4},\d{1,20},(\d{1,20}),[^;\s]{0,80};")
# "dmesg -x" (--decode) writes the facility and level before the stamp: "kern  :warn  : ".
_DMESG_X = re.compile(r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp"
                      r"|local[0-7]) *:(?:emerg|alert|crit|err|warn|notice|info|debug) *: ")
_DMESG_X_FIRST = frozenset("kumdalnscf")
# A syslog hostname written as an IPv6 address (relays that log the sender's address): the
# filters' optional hostname field holds no colon, so it is dropped here.
_V6HOST = re.compile(r"\[?([0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,40})\]? ")

# A syslog daemon that writes the facility and priority into the file: FreeBSD's syslogd -v
# ("<mail.info> " or, with -vv, "<2.6> " before the hostname) and BusyBox syslogd without -S
# (Alpine, OpenWrt: "HOST mail.info " after the hostname, "<PRI> " for a facility it cannot
# name). The filters never see it.
_FACPRI = (r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|security"
           r"|console|mark|local[0-7])\.(?:emerg|panic|alert|crit|err|error|warn|warning|notice"
           r"|info|debug)")
_BSD_VERBOSE = re.compile(r"<(?:" + _FACPRI + r"|\d{1,2}\.\d)> ")
_BUSYBOX = re.compile(r"([^\s\[\]:<>]+ )(?:" + _FACPRI + r"|<\d{1,3}>) ")
_FACPRI_ONLY = re.compile(r"(?:" + _FACPRI + r"|<\d{1,3}>) ")
# Solaris / illumos syslogd with msgid on writes "[ID <msgid> <facility.priority>] " right after
# the tag ("postfix/smtpd[811]: [ID 197553 mail.warning] warning: ..."); the daemon's message
# follows it, so it is dropped and the tag kept. It stands before any text of the daemon, so
# the client cannot write one there.
_SOLARIS_ID = re.compile(r"((?:[^\s:\[\]]++ )?[^\s\[\]]+(?:\[\d+\])?: )\[ID \d+ " + _FACPRI + r"\] ")

SKEW = timedelta(days=1)


def infer_year(month: int, day: int, hh: int, mm: int, ss: int, now: datetime) -> datetime | None:
    """The latest date in next year or before that is not more than a day after now.

    A Dec 31 line read on Jan 1 is last year's; a Jan 1 line read on Dec 31 (clock behind) is
    next year's; a log up to a day "ahead" of the clock (another zone) stays in this year; a
    Feb 29 goes back to the last leap year.
    """
    limit = now + SKEW
    for year in range(now.year + 1, now.year - 8, -1):
        try:
            t = datetime(year, month, day, hh, mm, ss)
        except ValueError:  # Feb 29 in a year without it
            continue
        if t <= limit:
            return t
    return None


def _second(text: str) -> int:
    """A leap second (23:59:60, as chrony and the RFCs allow) is kept as :59 of its minute:
    datetime has no second 60, and dropping the line would drop the failure."""
    s = int(text)
    return 59 if s == 60 else s


def _offset(text: str | None) -> timezone | None:
    if not text:
        return None
    if text in ("Z", "z"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))


def _skip_structured_data(s: str, i: int) -> int:
    """Index after RFC 5424 STRUCTURED-DATA starting at s[i] ('-' or [..][..]).

    A PARAM-VALUE is quoted: a "]" inside the quotes (escaped as the RFC asks, or not, as
    some senders write it) and an escaped quote do not end the element."""
    if s.startswith("- ", i):
        return i + 2
    n = len(s)
    while i < n and s[i] == "[":
        i += 1
        quoted = False
        while i < n:
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                break
            i += 1
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


def _after_stamp(t: datetime | None, rest: str) -> tuple[datetime | None, str]:
    if rest[:1] == "<":
        m = _BSD_VERBOSE.match(rest)
        if m:
            rest = rest[m.end():]
    if rest[:1] in "0123456789abcdefABCDEF:[":
        m = _V6HOST.match(rest)
        if m and m[1].count(":") >= 2 and canonical(m[1]) is not None:
            rest = rest[m.end():]
            m = _FACPRI_ONLY.match(rest)
            if m:
                rest = rest[m.end():]
            return t, rest
    m = _BUSYBOX.match(rest)
    if m:
        rest = m[1] + rest[m.end():]
    if "[ID " in rest[:300]:
        m = _SOLARIS_ID.match(rest)
        if m:
            rest = m[1] + rest[m.end():]
    return t, rest


def _since_boot(secs: float, now: datetime) -> float:
    """The instant of a stamp in seconds since this host's boot, never after ``now``: an
    uptime stamp read from another host's log, or with a fixed "now" in the past (test-filter
    --now), would otherwise land in the future, where no window ever lets it age out."""
    try:
        limit = now.timestamp()
    except (OverflowError, OSError, ValueError):
        return boot_time() + secs
    return min(boot_time() + secs, limit)


def _local(secs: float) -> datetime | None:
    """Local time of an exact instant (TAI64N, epoch seconds, kernel uptime), with its offset:
    naive, a time in the hour that repeats when daylight saving time ends would be taken for
    the other of its two moments when "now" is nearer that one (see ``epoch``). None for an
    instant the platform cannot place (a garbled stamp past time_t)."""
    try:
        return datetime.fromtimestamp(secs, timezone.utc).astimezone()
    except (OverflowError, OSError, ValueError):
        return None


def _iso_match(m: re.Match[str]) -> datetime | None:
    frac = (m[7] or "0")[:6].ljust(6, "0")
    try:
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), _second(m[6]),
                        int(frac), tzinfo=_offset(m[8] or m[9]))
    except ValueError:
        return None


def split_header(line: str, now: datetime) -> tuple[datetime | None, str]:
    """(time of the line or None, the rest of the line after its timestamp)."""
    if line[:1] in ("\x00", "\ufeff"):  # NUL padding left by a crash, a byte order mark
        line = line.lstrip("\x00\ufeff")
    if line[:1] in _DMESG_X_FIRST:
        m = _DMESG_X.match(line)
        if m:
            line = line[m.end():]
    if line[:1].isdigit():
        m = _OCTET_COUNT.match(line)  # RFC 6587 framing kept by a relay: "LEN <PRI>..."
        if m:
            line = line[m.end():]
        elif line[:2] == "1 ":  # RFC 5424 written without its <PRI>
            m = _RFC5424.match(line)
            if m and _ISO.match(m[1]):
                return _rfc5424(line, m)
    start = 0
    if line[:1] == "<":
        m = _PRI.match(line)
        if m:
            start = m.end()
            m = _RFC5424.match(line, start)
            if m:
                return _rfc5424(line, m)
            line, start = line[start:], 0  # "<PRI>" before an RFC 3164 header, or alone
    c = line[start:start + 1]
    if c.isalpha():
        m = _CLASSIC.match(line, start)
        if m:
            year, end = m[3] or m[7], m.end()
            if (m[7] and not m[3] and line[start:start + 4] not in _WDAYS
                    and abs(int(m[7]) - now.year) > 1 and _REPEATED_TAG.match(line, m.end())):
                # "Dec  3 10:00:01 2019 postfix/smtpd[1]: ...": the program's tag right after
                # the number, so the number is the host's name, not a year ("Dec  3 10:00:01
                # 2025 mx1 postfix/smtpd[1]: ..." keeps its year)
                year, end = None, m.start(7)
            ss = _second(m[6])
            if year:
                try:
                    t: datetime | None = datetime(int(year), _MONTHS[m[1]], int(m[2]), int(m[4]),
                                                  int(m[5]), ss)
                except ValueError:
                    t = None
            else:
                t = infer_year(_MONTHS[m[1]], int(m[2]), int(m[4]), int(m[5]), ss, now)
            return _after_stamp(t, line[end:])
        m = _ISO_FULL.match(line, start)
        if m:
            t = _iso_match(m)
            zone = m[10]
            if t is not None and zone and t.tzinfo is None:
                tz = timezone.utc if zone in _UTC_NAMES else (_offset(zone) if zone[0] in "+-" else None)
                t = t.replace(tzinfo=tz)
            return _after_stamp(t, line[m.end():])
        return None, line
    if c.isdigit():
        m = _ISO.match(line, start)
        if m:
            t = _iso_match(m)
            if t is None:
                return None, line
            return _after_stamp(t, line[m.end():])
        m = _UNIX.match(line, start)
        if m:
            return _after_stamp(_local(int(m[1]) + float("0." + m[2])), line[m.end():])
        m = _KMSG.match(line, start)
        if m:
            return _local(_since_boot(int(m[1]) / 1e6, now)), line[m.end():]
        return None, line
    if c == "@":
        m = _TAI64N.match(line, start)
        if m:
            secs = int(m[1], 16) - (1 << 62) - 10
            return _local(secs), line[m.end():]
        return None, line
    if c == "[":
        m = _UPTIME.match(line, start)
        if m:
            up = _since_boot(int(m[1]) + float("0." + m[2]), now)
            return _after_stamp(_local(up), line[m.end():])
        m = _DMESG_T.match(line, start)
        if m:
            try:
                t = datetime(int(m[6]), _MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]))
            except ValueError:
                t = None
            return t, line[m.end():]
    return None, line


def _rfc5424(line: str, m: re.Match[str]) -> tuple[datetime | None, str]:
    ts = parse_iso(m[1])
    host, app, procid = m[2], m[3], m[4]
    rest = line[_skip_structured_data(line, m.end()):]
    if rest.startswith("\ufeff"):
        rest = rest[1:]
    # rsyslog's %msg% of a message that came in as RFC 3164 keeps the blank after the tag.
    rest = rest.lstrip(" ")
    if app == "-":  # no APP-NAME: the message is all there is
        return ts, rest
    tag = app if procid == "-" else f"{app}[{procid}]"
    r = _REPEATED_TAG.match(rest)
    if r and (r[1] == app or r[1].startswith(app + "/")):
        # A relay that put the whole RFC 3164 "TAG[PID]: MSG" into MSG (APP-NAME "postfix",
        # MSG "postfix/smtpd[811]: warning: ..."): its own tag is the more precise one.
        tag, rest = rest[:r.end() - 2], rest[r.end():]
    if host == "-" or ":" in host:  # NILVALUE, or an IPv6 address the hostname field cannot hold
        return ts, f"{tag}: {rest}"
    return ts, f"{host} {tag}: {rest}"


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        m = _ISO.fullmatch(text)  # a leap second
        return _iso_match(m) if m else None


def epoch(t: datetime, now: datetime | None = None) -> float:
    """Seconds since the epoch; a naive time is local wall-clock time, as syslog writes it.

    In the hour that repeats when daylight saving time ends, a naive time names two moments;
    the one nearer ``now`` is meant (taking the first would age a live attacker's failures by
    an hour, out of the counting window)."""
    if t.tzinfo is not None:
        return t.timestamp()
    # Local-time conversion (mktime) is slow; the zone's offsets only change between minutes,
    # so they are looked up once per minute of the log.
    first, second = _offsets(t.year, t.month, t.day, t.hour, t.minute, t.fold)
    wall = (t - _EPOCH).total_seconds()
    ts = wall - first
    if second != first and now is not None:
        later = wall - second
        n = now.timestamp()
        if abs(later - n) < abs(ts - n):
            return later
    return ts


_EPOCH = datetime(1970, 1, 1)


@lru_cache(maxsize=4096)
def _offsets(y: int, mo: int, d: int, h: int, mi: int, fold: int) -> tuple[float, float]:
    """Local minus UTC, in seconds, for the wall-clock minute, taken as ``fold`` and as the
    later of the two moments it names (the same unless the minute repeats)."""
    t = datetime(y, mo, d, h, mi, fold=fold)
    wall = (t - _EPOCH).total_seconds()
    return wall - t.timestamp(), wall - t.replace(fold=1).timestamp()


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")
