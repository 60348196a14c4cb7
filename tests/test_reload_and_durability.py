"""A reload keeps what was counted; a ban answered in the middle of a backlog is saved at once."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path

import yaml

from daemonproc import Daemon, write_backlog, write_config
from logban.addr import AddressSet
from logban.config import JailConfig
from logban.model import Failure
from logban.tracker import Tracker

T0 = 1_780_000_000.0


def _tracker(ignore: list[str], **jail: object) -> Tracker:
    j = JailConfig("smtp-auth", ["postfix-sasl", "saslauthd"], **jail)  # type: ignore[arg-type]
    return Tracker([j], AddressSet([ipaddress.ip_network(n) for n in ignore]),
                   lambda a, jl: False, lambda a, jl: 0, clock=lambda: T0 + 10_000)


def _fail(host: str, ts: float, filter: str = "postfix-sasl") -> Failure:
    return Failure(filter, host, None, None, ts)


def test_take_over_keeps_counts_of_kept_jails_and_applies_the_new_numbers() -> None:
    old = _tracker([], maxretry=5)
    for i in range(3):
        old.process(_fail("198.51.100.1", T0 + i), "file:a")
        old.process(_fail("198.51.100.2", T0 + i), "file:a")
    old.process(_fail("203.0.113.9", T0), "file:a")
    new = _tracker(["198.51.100.2/32"], maxretry=4)
    assert new.take_over(old) == 2  # 198.51.100.2 is ignored now: dropped
    st = new.states["smtp-auth"]
    assert st.failures_total == 7
    assert new.tracked("smtp-auth") == 2
    assert st.counts.times("198.51.100.1") == (T0, T0 + 1, T0 + 2)
    assert st.counts.times("198.51.100.2") is None
    # the fourth failure reaches the new maxretry of 4
    [d] = new.process(_fail("198.51.100.1", T0 + 3), "file:a")
    assert (d.address, d.failures) == ("198.51.100.1", 4)
    assert new.process(_fail("198.51.100.2", T0 + 3), "file:a") == []


def test_take_over_keeps_one_attempt_counted_once() -> None:
    old = _tracker([])
    old.process(_fail("192.0.2.200", T0), "file:a")
    new = _tracker([])
    new.take_over(old)
    # the same attempt as read from a second source after the reload: a duplicate
    assert new.process(_fail("192.0.2.200", T0 + 0.5), "journal:system") == []
    st = new.states["smtp-auth"]
    assert (st.failures_total, st.duplicates) == (1, 1)


def test_take_over_with_a_shorter_findtime_drops_failures_outside_it() -> None:
    old = _tracker([], findtime=1200.0)
    old.process(_fail("192.0.2.201", T0), "file:a")
    old.process(_fail("192.0.2.201", T0 + 600), "file:a")
    new = _tracker([], findtime=300.0)
    new.take_over(old)
    # the failure at T0 is outside the new 5-minute window of the one at T0+700
    assert new.process(_fail("192.0.2.201", T0 + 700), "file:a") == []
    assert new.states["smtp-auth"].counts.count("192.0.2.201", T0 + 700) == 2


LINE = ("Dec  3 10:00:0{i} mx1 postfix/smtpd[1]: warning: unknown[{a}]: "
        "SASL LOGIN authentication failed: x\n")


def test_sighup_keeps_failure_counts_and_honours_a_new_ignore_entry(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        with open(log, "a") as f:
            for i in (1, 2):
                f.write(LINE.format(i=i, a="198.51.100.21") + LINE.format(i=i, a="198.51.100.22"))
        d.wait_for(lambda: d.status()["jails"]["smtp-auth"]["failures_tracked"] == 2, what="2 addresses")
        doc = yaml.safe_load(cfg.read_text())
        doc["ignore"].append("198.51.100.22/32")
        cfg.write_text(yaml.safe_dump(doc))
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda: "failure counts of 1 addresses kept" in d.log_text(), what="the reload")
        assert d.status()["jails"]["smtp-auth"]["failures_tracked"] == 1
        with open(log, "a") as f:
            f.write(LINE.format(i=3, a="198.51.100.21") + LINE.format(i=3, a="198.51.100.22"))
        d.wait_for(lambda: d.status()["failures_seen"] == 6, what="the third strikes")
        bans = d.cli("list", "--json").stdout
        assert "198.51.100.21" in bans  # its first two strikes survived the reload
        assert "198.51.100.22" not in bans  # ignored now
    finally:
        d.stop()


def test_manual_ban_during_a_backlog_survives_kill_9(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    n = 300_000
    write_backlog(log, n)
    cfg = write_config(tmp_path, [{"file": {"path": str(log), "start_at": "start"}}], action="dry-run")
    d = Daemon(cfg).start()
    try:
        d.cli("ban", "203.0.113.77", "--for", "2h")
        assert d.status()["failures_seen"] < n, "the backlog was already done: make it bigger"
    finally:
        d.kill9()
    d = Daemon(cfg).start()
    try:
        listed = d.cli("list", "--json").stdout
        assert "203.0.113.77" in listed
    finally:
        d.stop()
