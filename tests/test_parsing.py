"""Timestamps and addresses: the shared parsing every filter gets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from logban.addr import AddressSet, canonical, parse_network
from logban.timestamps import infer_year, split_header

NOW = datetime(2026, 12, 3, 12, 0, 0)


@pytest.mark.parametrize("line,when,rest", [
    ("Dec  3 10:00:01 mx1 postfix/smtpd[1]: x", datetime(2026, 12, 3, 10, 0, 1), "mx1 postfix/smtpd[1]: x"),
    ("Jul 02 13:49:31 mx1 dovecot: x", datetime(2026, 7, 2, 13, 49, 31), "mx1 dovecot: x"),
    ("2026-12-03 10:00:25 plain authenticator failed", datetime(2026, 12, 3, 10, 0, 25),
     "plain authenticator failed"),
    ("2026-12-03T10:00:25.5Z mx1 a: b", datetime(2026, 12, 3, 10, 0, 25, 500000, tzinfo=timezone.utc),
     "mx1 a: b"),
    ("no stamp at all", None, "no stamp at all"),
])
def test_split_header(line: str, when: datetime | None, rest: str) -> None:
    assert split_header(line, NOW) == (when, rest)


def test_rfc5424_framing_becomes_a_syslog_tag() -> None:
    t, rest = split_header("<38>1 2026-12-03T10:40:16.954167-04:00 mx1.example.org postfix/smtpd 57915 - - "
                           "warning: hello", NOW)
    assert t == datetime(2026, 12, 3, 10, 40, 16, 954167, tzinfo=timezone(timedelta(hours=-4)))
    assert rest == "mx1.example.org postfix/smtpd[57915]: warning: hello"


def test_rfc5424_structured_data_is_skipped() -> None:
    _, rest = split_header('<38>1 2026-12-03T10:40:16Z h app - ID1 [ex@1 a="x\\]y"][b@2 c="d"] msg', NOW)
    assert rest == "h app: msg"


@pytest.mark.parametrize("now,month,day,year", [
    (datetime(2027, 1, 1, 0, 0, 2), 12, 31, 2026),    # read just after New Year
    (datetime(2026, 12, 31, 23, 59, 58), 1, 1, 2027),  # clock a little behind
    (datetime(2026, 12, 3, 10, 57), 12, 3, 2026),     # log two hours "ahead" (another zone)
    (datetime(2026, 6, 1), 12, 25, 2025),              # an old log from last winter
])
def test_year_inference(now: datetime, month: int, day: int, year: int) -> None:
    t = infer_year(month, day, 12, 0, 0, now) if (month, day) == (12, 3) else infer_year(month, day, 0, 0, 0, now)
    assert t is not None and t.year == year


def test_feb_29_goes_to_a_leap_year() -> None:
    t = infer_year(2, 29, 10, 0, 0, datetime(2029, 3, 1))
    assert t == datetime(2028, 2, 29, 10, 0, 0)


@pytest.mark.parametrize("text,want", [
    ("192.0.2.1", "192.0.2.1"),
    ("[192.0.2.1]", "192.0.2.1"),
    ("::ffff:192.0.2.3", "192.0.2.3"),
    ("IPv6:2001:db8::6", "2001:db8::6"),
    ("2001:0DB8:0000:0000:0000:0000:0000:0103", "2001:db8::103"),
    ("[2001:db8::5]", "2001:db8::5"),
    ("999.1.2.3", None),
    ("192.0.2", None),
    ("mail.example.org", None),
    ("cafe", None),
    ("fe80::1%eth0", None),
    ("", None),
])
def test_canonical(text: str, want: str | None) -> None:
    assert canonical(text) == want


def test_address_set_covers_mapped_forms_and_cidrs() -> None:
    s = AddressSet([parse_network("192.0.2.0/24"), parse_network("2001:db8::/32"),
                    parse_network("::ffff:198.51.100.0/120")])
    assert "192.0.2.77" in s
    assert canonical("::ffff:192.0.2.77") in s
    assert "2001:db8:1::1" in s
    assert "198.51.100.9" in s
    assert "203.0.113.1" not in s
    assert "not-an-address" not in s


def test_the_repeated_dst_hour_is_the_moment_nearest_now() -> None:
    import os
    import subprocess
    import sys
    code = (
        "from datetime import datetime\n"
        "from logban.timestamps import epoch\n"
        "t = datetime(2026, 10, 25, 2, 30)\n"            # 02:30 happens twice in Berlin that night
        "first, second = t.timestamp(), t.replace(fold=1).timestamp()\n"
        "assert second - first == 3600\n"
        "assert epoch(t, datetime(2026, 10, 25, 2, 40, fold=1)) == second\n"
        "assert epoch(t, datetime(2026, 10, 25, 2, 35)) == first\n"
        "assert epoch(datetime(2026, 12, 3, 10), datetime(2026, 12, 3, 11)) == datetime(2026, 12, 3, 10).timestamp()\n")
    p = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TZ": "Europe/Berlin"},
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
