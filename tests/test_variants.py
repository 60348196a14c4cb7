"""Close variants of the reported cases: every way a daemon version, a syslog daemon or a log
format writes the same failure gives the same answer, and every near-identical line that is no
attack gives none.

Each row is one line as a mail host's log holds it, the address it must report (or None) and,
where it matters, the user and the wall-clock time as written in the line. All filters run as
``logban test-filter`` runs them. Addresses are documentation ranges; names are placeholders.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from logban.filters import load_filters
from logban.matcher import Matcher
from logban.timestamps import iso, split_header

NOW = datetime(2026, 12, 3, 12, 0, 0)
MATCHER = Matcher(load_filters())
ANY = object()

# The body of one postfix failure, to put behind every kind of timestamp.
PF = "postfix/smtpd[811]: warning: unknown[192.0.2.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
PF_HOST = "192.0.2.9"


def check(line: str, host: str | None, user: object = ANY, when: str | None = None,
          now: datetime = NOW) -> None:
    res = MATCHER.match_line(line, now)
    got = res.failure
    if host is None:
        assert got is None or got.host is None, f"{line!r} gave {got}"
        return
    assert got is not None, f"no match ({res.near_miss}): {line!r}"
    assert got.host == host, line
    if user is not ANY:
        assert got.user == user, line
    if when is not None:
        assert iso(got.time)[:19] == when, line


# --- timestamps ------------------------------------------------------------------------------

STAMPS = [
    # (stamp and hostname before the postfix body, wall-clock time as written)
    ("Dec  3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Dec 3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Jul 02 10:00:01 mail", "2026-07-02T10:00:01"),
    ("Dec  3 10:00:01.123456 mail", "2026-12-03T10:00:01"),
    ("<22>Dec  3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Dec  3 10:00:01", "2026-12-03T10:00:01"),                       # no hostname
    ("Dec  3 10:00:01 198.51.100.250", "2026-12-03T10:00:01"),        # hostname is an address
    ("Dec  3 10:00:01 2001:db8::250", "2026-12-03T10:00:01"),         # ... an IPv6 address
    ("Dec  3 10:00:01 mx1.example.org", "2026-12-03T10:00:01"),
    ("Dec  3 2025 10:00:01 mail", "2025-12-03T10:00:01"),             # year written: used as is
    ("Dec  3 10:00:01 2025 mail", "2025-12-03T10:00:01"),
    ("Wed Dec  3 10:00:01 2025 mail", "2025-12-03T10:00:01"),         # ctime
    ("2026-12-03T10:00:01Z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.123456Z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01,123+01:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+0000 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.5-07:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+05:30 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+01 mail", "2026-12-03T10:00:01"),
    ("2026-12-03t10:00:01z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.123456789+01:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+01:00 2001:db8::250", "2026-12-03T10:00:01"),
    ("<22>2026-12-03T10:00:01.123456+01:00 mail", "2026-12-03T10:00:01"),  # RSYSLOG_ForwardFormat
    ("Thu 2026-12-03 10:00:01 CET mail", "2026-12-03T10:00:01"),             # journalctl short-full
]


@pytest.mark.parametrize("stamp,when", STAMPS)
def test_every_stamp_form(stamp: str, when: str) -> None:
    check(f"{stamp} {PF}", PF_HOST, when=when)


R5424 = "warning: unknown[192.0.2.9]: SASL LOGIN authentication failed: x"


@pytest.mark.parametrize("line", [
    f"<22>1 2026-12-03T10:00:01.123456-04:00 mail.example.org postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd - - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 ID47 - {R5424}",
    f'<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - [meta sequenceId="1"][o ip="192.0.2.250"] {R5424}',
    f'<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - [x a="b\\]c"] {R5424}',
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - - \ufeff{R5424}",
    f"<22>1 2026-12-03T10:00:01Z - postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z 2001:db8::250 postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01.123456789+02:00 mail postfix/smtpd 811 - - {R5424}",
])
def test_rfc5424_forms(line: str) -> None:
    check(line, PF_HOST, when="2026-12-03T10:00:01")


@pytest.mark.parametrize("stamp,now,when", [
    ("Dec 31 23:59:59", "2027-01-01T00:00:02", "2026-12-31T23:59:59"),
    ("Dec 31 10:00:00", "2027-01-01T09:00:00", "2026-12-31T10:00:00"),
    ("Jan  1 00:00:00", "2026-12-31T23:59:58", "2027-01-01T00:00:00"),
    ("Jan  1 09:00:00", "2026-12-31T10:00:00", "2027-01-01T09:00:00"),  # 23 h ahead
    ("Dec  3 17:00:00", "2026-12-03T12:00:00", "2026-12-03T17:00:00"),
    ("Dec  4 11:00:00", "2026-12-03T12:00:00", "2026-12-04T11:00:00"),
    ("Dec  3 07:00:00", "2026-12-03T12:00:00", "2026-12-03T07:00:00"),
    ("Dec 15 07:00:00", "2026-12-03T12:00:00", "2025-12-15T07:00:00"),
    ("Feb 29 07:00:00", "2031-03-01T12:00:00", "2028-02-29T07:00:00"),  # last leap year
])
def test_year_and_skew(stamp: str, now: str, when: str) -> None:
    check(f"{stamp} mail {PF}", PF_HOST, when=when, now=datetime.fromisoformat(now))


def test_dmesg_human_stamp() -> None:
    t, rest = split_header("[Thu Dec  3 10:00:24 2026] SMTP_AUTH_FAIL: Strike 1: x", NOW)
    assert t == datetime(2026, 12, 3, 10, 0, 24) and rest == "SMTP_AUTH_FAIL: Strike 1: x"


def test_a_hostname_made_of_hex_letters_stays() -> None:
    assert split_header("Dec  3 10:00:01 cafe postfix/smtpd[1]: x", NOW)[1] == "cafe postfix/smtpd[1]: x"
    assert split_header("Dec  3 10:00:01 dead:beef x", NOW)[1] == "dead:beef x"
