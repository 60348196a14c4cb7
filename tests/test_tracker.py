"""Counting: sliding windows, bans, repeat offenders, ignore lists, one attempt counted once."""

from __future__ import annotations

import ipaddress
from datetime import datetime

from logban.addr import AddressSet
from logban.config import JailConfig
from logban.counts import MemoryCounts
from logban.model import Failure
from logban.tracker import Tracker

T0 = 1_800_000_000.0


def fail(host: str | None, ts: float, flt: str = "postfix-sasl", user: str | None = None,
         service: str | None = "smtp") -> Failure:
    return Failure(flt, host, user, datetime.fromtimestamp(ts), ts, service)


def make(banned: set[tuple[str, str]] | None = None, history: dict[tuple[str, str], int] | None = None,
         window: float = 2.0, **jail: object) -> Tracker:
    j = JailConfig(name="smtp-auth", filters=["postfix-sasl", "dovecot", "kernel-smtp", "saslauthd",
                                              "sendmail-auth"], **jail)  # type: ignore[arg-type]
    b = banned if banned is not None else set()
    h = history or {}
    return Tracker([j], AddressSet([ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("192.0.2.0/28")]),
                   lambda a, jl: (a, jl) in b, lambda a, jl: h.get((a, jl), 0), correlate_window=window)


def test_window_counts_only_recent_failures() -> None:
    c = MemoryCounts(window=1200, keep=3)
    assert c.add("198.51.100.1", T0) == 1
    assert c.add("198.51.100.1", T0 + 600) == 2
    assert c.add("198.51.100.1", T0 + 1300) == 2  # the first fell out of the window
    assert c.count("198.51.100.1", T0 + 1300) == 2
    c.expire(T0 + 1300 + 2000)
    assert len(c) == 0


def test_cap_drops_the_oldest_bucket() -> None:
    c = MemoryCounts(window=100, keep=3, cap=10)
    for i in range(10):
        c.add(f"198.51.100.{i}", T0 + i)
    for i in range(5):
        c.add(f"203.0.113.{i}", T0 + 200 + i)
    assert len(c) <= 10
    assert c.count("203.0.113.4", T0 + 204) == 1
    assert c.dropped_for_cap >= 5


def test_third_failure_within_findtime_bans_with_the_jail_bantime() -> None:
    t = make(maxretry=3, findtime=1200, bantime=3600)
    assert t.process(fail("198.51.100.7", T0)) == []
    assert t.process(fail("198.51.100.7", T0 + 100)) == []
    (d,) = t.process(fail("198.51.100.7", T0 + 200, flt="sendmail-auth"))
    assert (d.address, d.jail, d.failures, d.duration, d.filter, d.ban_number) == \
        ("198.51.100.7", "smtp-auth", 3, 3600, "sendmail-auth", 1)


def test_failures_spread_wider_than_findtime_never_ban() -> None:
    t = make(maxretry=3, findtime=1200)
    for i in range(10):
        assert t.process(fail("198.51.100.8", T0 + i * 700)) == []


def test_repeat_offender_gets_longer_bans_up_to_the_ceiling() -> None:
    hist = {("198.51.100.9", "smtp-auth"): 2}
    t = make(history=hist, maxretry=1, bantime=3600, bantime_factor=3, bantime_max=20000)
    (d,) = t.process(fail("198.51.100.9", T0))
    assert d.ban_number == 3 and d.duration == 20000  # 3600 * 9 = 32400 capped
    hist[("198.51.100.9", "smtp-auth")] = 1
    (d,) = t.process(fail("198.51.100.9", T0 + 5000))
    assert d.duration == 10800


def test_ignored_and_banned_addresses_do_not_count() -> None:
    banned = {("198.51.100.10", "smtp-auth")}
    t = make(banned=banned, maxretry=1)
    assert t.process(fail("127.0.0.1", T0)) == []
    assert t.process(fail("192.0.2.5", T0)) == []      # in 192.0.2.0/28
    assert t.process(fail("198.51.100.10", T0)) == []  # already banned
    assert t.ignored == 2
    assert t.tracked("smtp-auth") == 0
    assert len(t.process(fail("192.0.2.17", T0))) == 1  # just outside the /28


def test_one_attempt_seen_by_three_logs_counts_once() -> None:
    t = make(maxretry=3, window=2.0)
    # Two real attempts, each logged by postfix, dovecot's auth process and the kernel strike.
    for k, base in enumerate((T0, T0 + 10)):
        out = []
        for flt in ("postfix-sasl", "dovecot", "kernel-smtp"):
            out += t.process(fail("203.0.113.40", base + 0.3, flt=flt))
        assert out == []
    st = t.states["smtp-auth"]
    assert st.failures_total == 2 and st.duplicates == 4
    # The third attempt bans.
    assert len(t.process(fail("203.0.113.40", T0 + 20, flt="kernel-smtp"))) == 1


def test_rapid_attempts_from_one_log_all_count() -> None:
    t = make(maxretry=3, window=2.0)
    assert t.process(fail("203.0.113.41", T0)) == []
    assert t.process(fail("203.0.113.41", T0 + 0.5)) == []
    assert len(t.process(fail("203.0.113.41", T0 + 1.0))) == 1


def test_saslauthd_user_is_attributed_to_the_same_attempt() -> None:
    t = make(window=2.0)
    t.process(fail(None, T0, flt="saslauthd", user="jdoe"))          # saslauthd first
    t.process(fail("203.0.113.50", T0 + 0.5, flt="kernel-smtp"))      # then the kernel strike
    t.process(fail("203.0.113.51", T0 + 10, flt="sendmail-auth"))     # sendmail first
    t.process(fail(None, T0 + 10.2, flt="saslauthd", user="admin"))   # then saslauthd
    t.process(fail(None, T0 + 30, flt="saslauthd", user="lonely"))    # nobody near: no address
    assert dict(t.users.users["203.0.113.50"]) == {"jdoe": 1}
    assert dict(t.users.users["203.0.113.51"]) == {"admin": 1}
    assert all("lonely" not in c for c in t.users.users.values())
    assert t.states["smtp-auth"].failures_total == 2  # saslauthd lines never add counts


def test_the_same_line_from_file_and_journal_counts_once() -> None:
    t = make(maxretry=3, window=2.0)
    for k in range(2):
        for source in ("file:/var/log/maillog", "journal:system"):
            assert t.process(fail("203.0.113.60", T0 + 10 * k + 0.1), source) == []
    st = t.states["smtp-auth"]
    assert st.failures_total == 2 and st.duplicates == 2
    assert len(t.process(fail("203.0.113.60", T0 + 20), "journal:system")) == 1
