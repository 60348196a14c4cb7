"""The one matching path: log bytes -> failures. ``logban test-filter`` and the daemon share it.

Speed comes from never looking at most lines: ``candidates`` finds the filters' literal
pre-check strings in a whole block with ``bytes.find`` (C speed), and only the lines holding
one are decoded, have their timestamp parsed, and meet a pattern. A line gives at most one
failure: filters are tried in their configured order and the first that matches wins, so a
line two filters both understand is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from logban.addr import canonical
from logban.filters import Filter
from logban.model import Failure
from logban.timestamps import epoch, split_header

# Longer lines are skipped unread: no mail daemon writes one (syslog caps messages near 8 KiB,
# journald near 48 KiB), and an attacker's oversized line must cost nothing.
MAX_LINE = 64 * 1024


# A long line that ends right after its address may have been cut by a syslog daemon's size
# limit (1 KiB in RFC 3164 relays, 2 or 8 KiB in rsyslog) inside the address: 203.0.113.123
# cut to 203.0.113.12 is a valid address, and an attacker who pads a field it controls
# (pam's ruser=, a user name) could choose where the cut falls to frame a neighbour. Real
# lines that end with the address (pam's rhost= for an unknown user) are far shorter.
CUT_SUSPECT = 960
# A cut can also land a little after a fake address the attacker wrote in a field of its own:
# after its closing bracket, or inside the fixed text the daemon writes after an address
# (", port=[12", "] (may"). So at that length an address within the last CUT_NEAR characters
# of the line is not trusted either.
CUT_NEAR = 32


def _bytes(text: str) -> int:
    """Length in bytes as the syslog daemon counted it (its limits are in bytes). An invalid
    byte was decoded as one U+FFFD (three bytes in UTF-8): it counts as the one byte it was."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "replace")) - 2 * text.count("\ufffd")


@dataclass(slots=True)
class LineResult:
    failure: Failure | None
    near_miss: list[str]      # filters whose pre-check passed but no pattern matched
    too_long: bool = False
    bad_address: bool = False  # a pattern matched, but its host was no valid address


MIN_KEY = 4
MAX_KEY = 12
# Ordinary mail log text: a key found in it would make the block pass stop at ordinary lines,
# so such keys are never chosen (the literal itself is always allowed).
_ORDINARY = (
    b"Dec  3 10:00:00 mx1 postfix/smtpd[1]: connect from mail.example.net[192.0.2.1]\n"
    b"postfix/smtpd[1]: 4AB: client=mail.example.net[192.0.2.1], sasl_method=PLAIN, sasl_username=user\n"
    b"postfix/cleanup[2]: 4AB: message-id=<x@example.net>\n"
    b"postfix/qmgr[3]: 4AB: from=<user@example.net>, size=1234, nrcpt=1 (queue active)\n"
    b"postfix/smtp[4]: 4AB: to=<user@example.org>, relay=mx.example.org[192.0.2.2]:25, delay=0.5, "
    b"delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5CD)\n"
    b"postfix/local[5]: 4AB: to=<user@example.org>, relay=local, status=sent (delivered to mailbox)\n"
    b"postfix/smtpd[1]: disconnect from mail.example.net[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1\n"
    b"postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied; "
    b"from=<a@example.net> to=<b@example.org> proto=ESMTP helo=<user>\n"
    b"sendmail[6]: 4B3: from=<user@example.net>, size=1234, class=0, nrcpts=1, msgid=<x@example.net>, "
    b"proto=ESMTP, daemon=MTA, relay=mail.example.net [192.0.2.1]\n"
    b"sendmail[6]: 4B3: AUTH=server, relay=mail.example.net [192.0.2.1], authid=user, mech=PLAIN, bits=0\n"
    b"sendmail[6]: 4B3: to=<user@example.org>, delay=00:00:01, mailer=local, pri=30000, stat=Sent\n"
    b"dovecot: imap-login: Login: user=<user@example.org>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, "
    b"mpid=7, TLS, session=<abc>\n"
    b"dovecot: imap(user@example.org)<7><abc>: Disconnected: Logged out in=10 out=20 deleted=0 expunged=0\n"
    b"dovecot: pop3-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.1\n"
    b"kernel: IN=eth0 OUT= MAC=00:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 PROTO=TCP SPT=1 DPT=25 SYN\n"
    b"saslauthd[8]: do_auth         : auth success: [user=user] [service=smtp] [realm=] [mech=pam]\n"
)


def cover_keys(literals: tuple[bytes, ...] | list[bytes]) -> tuple[bytes, ...]:
    """A small set of substrings such that every literal contains at least one (greedy set
    cover over substrings of at least MIN_KEY bytes; longer keys win ties, as they are rarer
    in ordinary lines)."""
    todo = set(literals)
    keys: list[bytes] = []
    while todo:
        best: tuple[int, int, bytes] | None = None
        # Keys of MIN_KEY to MAX_KEY bytes, or a whole (short) literal: longer keys would not
        # be rarer in practice, and trying every length makes start-up slow.
        cands = {lit[i:j] for lit in todo for i in range(len(lit))
                 for j in range(i + min(MIN_KEY, len(lit)), min(len(lit), i + MAX_KEY) + 1)}
        cands |= todo
        for c in cands:
            if not c.strip() or (c in _ORDINARY and c not in todo):
                continue
            score = (sum(1 for lit in todo if c in lit), len(c), c)
            if best is None or score > best:
                best = score
        assert best is not None
        key = best[2]
        keys.append(key)
        todo = {lit for lit in todo if key not in lit}
    return tuple(sorted(keys))


def _when(t: datetime, now: datetime, default_time: datetime | None) -> tuple[datetime, float]:
    """(time, seconds since the epoch) of a line stamped ``t``; a naive stamp the platform
    cannot convert (year 1 or 9999 in local time) counts as unstamped, never as an error."""
    try:
        return t, epoch(t, now)
    except (OverflowError, OSError, ValueError):
        t = default_time or now
        return t, epoch(t, now)


class Matcher:
    def __init__(self, filters: list[Filter]) -> None:
        self.filters = filters
        self.literals: tuple[bytes, ...] = tuple(sorted({b for f in filters for b in f.literal_bytes}))
        # The block pass searches for fewer, shared keys (every literal holds one of them), so
        # the whole block is scanned a few times instead of once per literal; each line found
        # then meets the filters' exact literal check in ``wants``.
        self.keys: tuple[bytes, ...] = cover_keys(self.literals)

    def candidates(self, data: bytes) -> list[int]:
        """Start offsets of the lines in ``data`` that hold any literal, in order."""
        starts: set[int] = set()
        find, rfind = data.find, data.rfind
        for lit in self.keys:
            pos = find(lit)
            while pos != -1:
                starts.add(rfind(b"\n", 0, pos) + 1)
                end = find(b"\n", pos)
                if end == -1:
                    break
                pos = find(lit, end + 1)
        return sorted(starts)

    def scan(self, data: bytes, now: datetime, default_time: datetime | None = None,
             ) -> list[tuple[int, str, LineResult]]:
        """(0-based line index within ``data``, line text, result) for each candidate line."""
        return self.scan_block(data, now, default_time)[1]

    def scan_block(self, data: bytes, now: datetime, default_time: datetime | None = None,
                   ) -> tuple[int, list[tuple[int, str, LineResult]]]:
        """(newlines in ``data``, each candidate line's result), counting newlines only once."""
        hits = []
        index = last = 0
        count = data.count
        for start in self.candidates(data):
            index += count(b"\n", last, start)
            last = start
            end = data.find(b"\n", start)
            if end == -1:
                end = len(data)
            if end - start > MAX_LINE:
                hits.append((index, "", LineResult(None, [], too_long=True)))
                continue
            raw = data[start:end]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            text = raw.decode("utf-8", "replace")
            hits.append((index, text, self.match_line(text, now, default_time)))
        return index + count(b"\n", last), hits

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
                    if host is None or (len(body) >= CUT_SUSPECT // 4
                                        and len(body) - m.end("host") <= CUT_NEAR
                                        and _bytes(body) >= CUT_SUSPECT):
                        bad = True
                        continue
                user = groups.get("user")
                service = groups.get("service") or f.service
                t, ts = _when(t, now, default_time)
                return LineResult(Failure(f.name, host, user or None, t, ts, service), [])
            near.append(f.name)
        return LineResult(None, near, bad_address=bad)
