"""The ipset action against the real kernel, inside throwaway network namespaces; and the
dry-run action. Entries are read back over netlink (pyroute2) and cross-checked with the
ipset program where that adds something."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import require_root, require_tool
from netns import in_netns, netns, netns_pair, run_in

from logban.actions.base import ActionError, KernelBan, SetFullError
from logban.actions.dryrun import DryRunAction
from logban.actions.ipset import (
    KERNEL_MAX_TIMEOUT,
    REFRESH_MARGIN,
    IPSetAction,
    kernel_timeout,
)
from logban.rules import fixed_rules


@pytest.fixture
def ns() -> Iterator[str]:
    require_root()
    require_tool("ip")
    require_tool("ipset")
    with netns("ipset") as name:
        yield name


@contextlib.contextmanager
def action_in(ns: str, **kwargs) -> Iterator[IPSetAction]:
    # sockets open on first use: make that happen inside the namespace
    with in_netns(ns):
        a = IPSetAction(**kwargs)
        a.status()
    try:
        yield a
    finally:
        a.stop()


def ipset_cli(ns: str, *args: str) -> str:
    return run_in(ns, "ipset", *args).stdout


def cli_members(ns: str, name: str) -> set[str]:
    return {line.split()[2] for line in ipset_cli(ns, "save", name).splitlines()
            if line.startswith("add ")}


# -- pure ------------------------------------------------------------------------------

def test_kernel_timeout_rules() -> None:
    now = 1_000_000.0
    assert kernel_timeout(KernelBan("192.0.2.1", None), now) == 0
    assert kernel_timeout(KernelBan("192.0.2.1", now + 600), now) == 600
    assert kernel_timeout(KernelBan("192.0.2.1", now + 0.2), now) == 1
    assert kernel_timeout(KernelBan("192.0.2.1", now - 50), now) == 1
    assert kernel_timeout(KernelBan("192.0.2.1", now + 10**9), now) == KERNEL_MAX_TIMEOUT == 2147483


def test_constructor_validates_names() -> None:
    with pytest.raises(ValueError, match="temporary set"):
        IPSetAction(set4="x" * 28)
    with pytest.raises(ValueError, match="different names"):
        IPSetAction(set4="same", set6="same")
    with pytest.raises(ValueError, match="maxelem"):
        IPSetAction(maxelem=0)


# -- kernel ----------------------------------------------------------------------------

def test_start_creates_both_sets(ns: str) -> None:
    with action_in(ns, maxelem=1000) as a:
        a.start([], time.time())
        for name, family in (("logban4", socket.AF_INET), ("logban6", socket.AF_INET6)):
            info = a.set_info(name)
            assert info is not None
            assert (info.typename, info.family, info.with_timeout) == ("hash:ip", family, True)
            assert (info.maxelem, info.entries) == (1000, 0)
        assert a.set_info("logban4-tmp") is None  # the temporary sets are gone
        listing = ipset_cli(ns, "list", "-t")
        assert "family inet hashsize" in listing and "family inet6 hashsize" in listing
        assert "maxelem 1000 timeout 0" in listing
        st = a.status()
        assert st["sets"]["logban4"] == {"family": "inet", "exists": True, "entries": 0,
                                         "maxelem": 1000, "references": 0}
        assert st["errors"] == 0
        assert a.ensure_sets() == []  # idempotent


def test_ensure_sets_creates_missing_only(ns: str) -> None:
    with action_in(ns) as a:
        assert a.ensure_sets() == ["logban4", "logban6"]
        a.ban(KernelBan("192.0.2.10", None), time.time())
        assert a.ensure_sets() == []
        assert a.kernel_entries("logban4") == {"192.0.2.10": 0}


def test_ban_v4_v6_with_timeouts_and_refresh(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        a.start([], now)
        a.ban(KernelBan("198.51.100.7", now + 600), now)
        a.ban(KernelBan("2001:db8::7", now + 1200), now)
        v4, v6 = a.kernel_entries("logban4"), a.kernel_entries("logban6")
        assert set(v4) == {"198.51.100.7"} and set(v6) == {"2001:db8::7"}
        assert 595 <= v4["198.51.100.7"] <= 600
        assert 1195 <= v6["2001:db8::7"] <= 1200
        # re-adding an existing entry refreshes its timeout (no EEXIST)
        a.ban(KernelBan("198.51.100.7", now + 5000), now)
        assert 4995 <= a.kernel_entries("logban4")["198.51.100.7"] <= 5000
        assert "198.51.100.7 timeout" in ipset_cli(ns, "list", "logban4")


def test_unban(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        a.start([KernelBan("198.51.100.8", now + 600), KernelBan("2001:db8::8", None)], now)
        a.unban("198.51.100.8")
        a.unban("2001:db8::8")
        assert a.kernel_entries("logban4") == {} and a.kernel_entries("logban6") == {}
        a.unban("198.51.100.8")  # not there any more: no error
        run_in(ns, "ipset", "destroy", "logban6")
        a.unban("2001:db8::9")   # no set at all: nothing is banned, no error
        with pytest.raises(ActionError, match="not an IP address"):
            a.unban("mail.example.org")


def test_permanent_ban_has_timeout_zero(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        a.start([], now)
        a.ban(KernelBan("198.51.100.9", None), now)
        a.ban(KernelBan("2001:db8::9", None), now)
        assert a.kernel_entries("logban4") == {"198.51.100.9": 0}
        assert a.kernel_entries("logban6") == {"2001:db8::9": 0}
        assert "198.51.100.9 timeout 0" in ipset_cli(ns, "list", "logban4")


def test_huge_timeout_is_clamped_and_renewed_by_check(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        far = now + 10 * KERNEL_MAX_TIMEOUT
        a.start([KernelBan("198.51.100.10", far)], now)
        a.ban(KernelBan("2001:db8::10", far), now)
        assert a.kernel_entries("logban4")["198.51.100.10"] >= KERNEL_MAX_TIMEOUT - 5
        assert a.kernel_entries("logban6")["2001:db8::10"] >= KERNEL_MAX_TIMEOUT - 5
        assert a.status()["long_bans"] == 2
        # nothing to renew yet
        assert a.check([], now) == []
        assert a.kernel_entries("logban4")["198.51.100.10"] >= KERNEL_MAX_TIMEOUT - 5
        # Pretend time passed: the kernel entry has 100 s left. check() at that "now" must
        # re-add it with a fresh maximal timeout.
        run_in(ns, "ipset", "add", "-exist", "logban4", "198.51.100.10", "timeout", "100")
        assert a.kernel_entries("logban4")["198.51.100.10"] <= 100
        later = now + KERNEL_MAX_TIMEOUT - 100
        assert a.check([KernelBan("198.51.100.10", far), KernelBan("2001:db8::10", far)],
                       later) == []
        assert a.kernel_entries("logban4")["198.51.100.10"] >= KERNEL_MAX_TIMEOUT - 5
        assert a.status()["long_bans"] == 2
        # a long ban that is lifted is forgotten
        a.unban("2001:db8::10")
        assert a.status()["long_bans"] == 1
        assert REFRESH_MARGIN < KERNEL_MAX_TIMEOUT


def _generated_bans(n: int, now: float) -> list[KernelBan]:
    """n/2 IPv4 from 10.0.0.0/8 and n/2 IPv6 from 2001:db8::/32, varied expiries, some
    permanent."""
    bans = []
    for i in range(n // 2):
        bans.append(KernelBan(str(ipaddress.IPv4Address(0x0A000000 + 7 * i + 1)),
                              None if i % 97 == 0 else now + 600 + i % 5000))
        bans.append(KernelBan(str(ipaddress.IPv6Address((0x20010DB8 << 96) + 11 * i + 1)),
                              None if i % 89 == 0 else now + 900 + i % 7000))
    return bans


def test_start_with_100k_bans_is_exact_and_drops_stale(ns: str) -> None:
    with action_in(ns, maxelem=131072) as a:
        now = time.time()
        bans = _generated_bans(100_000, now)
        # the live sets hold stale entries, and one entry that stays but with a wrong timeout
        a.start([], now)
        for stale in ("192.0.2.200", "203.0.113.5", "2001:db8:ffff::1"):
            a.ban(KernelBan(stale, now + 300), now)
        a.ban(KernelBan(bans[0].address, now + 5), now)
        t0 = time.perf_counter()
        a.start(bans, now)
        elapsed = time.perf_counter() - t0
        want4 = {b.address: kernel_timeout(b, now) for b in bans if ":" not in b.address}
        want6 = {b.address: kernel_timeout(b, now) for b in bans if ":" in b.address}
        got4, got6 = a.kernel_entries("logban4"), a.kernel_entries("logban6")
        assert set(got4) == set(want4) and set(got6) == set(want6)
        for want, got in ((want4, got4), (want6, got6)):
            off = [a for a, t in want.items()
                   if not (t == 0 == got[a] or t - 10 <= got[a] <= t)]
            assert not off, f"{len(off)} wrong timeouts, e.g. {off[0]}: {got[off[0]]}"
        # cross-check the count with the ipset program
        assert f"Number of entries: {len(want4)}" in ipset_cli(ns, "list", "-t", "logban4")
        assert a.set_info("logban4-tmp") is None and a.set_info("logban6-tmp") is None
        # generous bound for slow CI machines; the bench measures it properly
        assert elapsed < 10, f"start() with 100,000 bans took {elapsed:.1f}s"


def test_destroyed_set_is_recreated_and_refilled_by_check(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        bans = [KernelBan("198.51.100.20", now + 600), KernelBan("198.51.100.21", None),
                KernelBan("2001:db8::20", now + 600)]
        a.start(bans, now)
        run_in(ns, "ipset", "destroy", "logban4")
        assert "logban4" not in ipset_cli(ns, "list", "-n").split()
        assert a.check(bans, now) == []
        got = a.kernel_entries("logban4")
        assert set(got) == {"198.51.100.20", "198.51.100.21"} and got["198.51.100.21"] == 0
        assert set(a.kernel_entries("logban6")) == {"2001:db8::20"}
        st = a.status()
        assert st["errors"] == 1 and "destroyed from outside" in st["recent_errors"][0]
        # flushed from outside: refilled too
        run_in(ns, "ipset", "flush", "logban6")
        assert a.check(bans, now) == []
        assert set(a.kernel_entries("logban6")) == {"2001:db8::20"}


def test_entries_deleted_from_outside_are_put_back_by_check(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        bans = [KernelBan("198.51.100.40", now + 600), KernelBan("198.51.100.41", None),
                KernelBan("198.51.100.42", now + 1.0),  # about to expire: not required
                KernelBan("2001:db8::40", now + 600)]
        a.start(bans, now)
        run_in(ns, "ipset", "del", "logban4", "198.51.100.41")
        run_in(ns, "ipset", "del", "logban4", "198.51.100.42")
        assert a.check(bans, now) == []
        got = a.kernel_entries("logban4")
        assert set(got) == {"198.51.100.40", "198.51.100.41", "198.51.100.42"}
        assert got["198.51.100.41"] == 0  # permanent again
        assert "held 1 entries for 2 bans" in a.status()["recent_errors"][-1]
        # only the entry about to expire is missing: no resync for it
        run_in(ns, "ipset", "del", "logban4", "198.51.100.42")
        errors = a.status()["errors"]
        assert a.check(bans, now) == []
        assert set(a.kernel_entries("logban4")) == {"198.51.100.40", "198.51.100.41"}
        assert a.status()["errors"] == errors
        assert set(a.kernel_entries("logban6")) == {"2001:db8::40"}


def test_ban_into_destroyed_set_recreates_it_and_check_refills(ns: str) -> None:
    with action_in(ns) as a:
        now = time.time()
        old = [KernelBan("198.51.100.30", now + 600)]
        a.start(old, now)
        run_in(ns, "ipset", "destroy", "logban4")
        new = KernelBan("198.51.100.31", now + 600)
        a.ban(new, now)
        assert set(a.kernel_entries("logban4")) == {"198.51.100.31"}
        assert a.check([*old, new], now) == []
        assert set(a.kernel_entries("logban4")) == {"198.51.100.30", "198.51.100.31"}


def test_full_set_raises_and_check_reports(ns: str) -> None:
    with action_in(ns, maxelem=4) as a:
        now = time.time()
        a.start([KernelBan(f"198.51.100.{i}", now + 600) for i in range(1, 4)], now)
        a.ban(KernelBan("198.51.100.4", now + 600), now)
        with pytest.raises(SetFullError) as exc:
            a.ban(KernelBan("198.51.100.5", now + 600), now)
        msg = str(exc.value)
        assert "logban4" in msg and "maxelem=4" in msg and "198.51.100.5" in msg
        assert "198.51.100.5" not in a.kernel_entries("logban4")
        problems = a.check([], now)
        assert len(problems) == 1 and "logban4" in problems[0] and "full" in problems[0]
        assert a.status()["errors"] >= 1
        # IPv6 is unaffected
        a.ban(KernelBan("2001:db8::5", now + 600), now)
        # start() with more bans than fit: fills what fits, then says so
        with pytest.raises(SetFullError, match=r"logban6 \(2 of 6 bans left out\)"):
            a.start([KernelBan(f"2001:db8::{i}", now + 600) for i in range(1, 7)], now)
        assert len(a.kernel_entries("logban6")) == 4


def test_foreign_sets_are_never_touched(ns: str) -> None:
    run_in(ns, "ipset", "create", "other", "hash:ip")
    run_in(ns, "ipset", "add", "other", "192.0.2.99")
    with action_in(ns) as a:
        now = time.time()
        a.start([KernelBan("192.0.2.98", now + 60)], now)
        a.check([], now)
        a.unban("192.0.2.98")
    assert cli_members(ns, "other") == {"192.0.2.99"}
    assert set(ipset_cli(ns, "list", "-n").split()) == {"other", "logban4", "logban6"}


def test_set_of_wrong_type_is_a_clear_error(ns: str) -> None:
    run_in(ns, "ipset", "create", "logban4", "hash:net")
    with action_in(ns) as a:
        with pytest.raises(ActionError, match="ipset destroy logban4"):
            a.start([KernelBan("192.0.2.97", None)], time.time())
        assert a.set_info("logban4-tmp") is None


def test_sets_without_timeout_support_are_upgraded_by_start(ns: str) -> None:
    run_in(ns, "ipset", "create", "logban4", "hash:ip")
    with action_in(ns) as a:
        assert any("without timeout" in p for p in a.check([], time.time()))
        now = time.time()
        a.start([KernelBan("192.0.2.96", now + 60)], now)
        assert a.set_info("logban4").with_timeout  # type: ignore[union-attr]
        assert a.check([], now) == []


def test_calls_from_other_threads_and_asyncio_stay_in_the_actions_namespace(ns: str) -> None:
    """pyroute2 keeps sockets per thread; a call from a thread in another namespace must
    still reach the action's sets, not that thread's namespace."""
    with netns("other") as other, action_in(ns) as a:
        now = time.time()
        a.start([], now)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(10):
                    a.ban(KernelBan(f"198.51.100.{i * 10 + j}", None), now)
                a.check([], now)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        async def from_a_loop() -> None:
            a.ban(KernelBan("2001:db8::77", None), now)  # blocks the loop briefly; allowed

        with in_netns(other):  # threads inherit this thread's namespace at creation
            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
        for t in threads:
            t.join()
        asyncio.run(from_a_loop())
        assert not errors, errors
        assert len(a.kernel_entries("logban4")) == 40
        assert a.kernel_entries("logban6") == {"2001:db8::77": 0}
        a.stop()
        with in_netns(other):
            # the worker started after stop() goes back to the action's namespace
            a.ban(KernelBan("198.51.100.200", None), now)
        assert "198.51.100.200" in cli_members(ns, "logban4")
        assert run_in(other, "ipset", "list", "-n").stdout.split() == []


# -- a real connection over a veth pair ------------------------------------------------

def _listen(ns: str, family: int, addr: str, port: int) -> socket.socket:
    with in_netns(ns):
        s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    return s


def _try_connect(ns: str, family: int, addr: str, port: int) -> str:
    """'accepted' or 'refused' (RST); anything else fails the test."""
    with in_netns(ns):
        c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect((addr, port))
        return "accepted"
    except ConnectionRefusedError:
        return "refused"
    finally:
        c.close()


def test_tcp_connection_refused_while_banned(ns: str) -> None:
    require_tool("iptables-restore")
    require_tool("ip6tables-restore")
    with netns_pair() as (server, client):
        with action_in(server.name) as a:
            now = time.time()
            a.start([], now)
            rules = fixed_rules("logban4", "logban6")
            run_in(server.name, "iptables-restore", "--noflush", input=rules["iptables"])
            run_in(server.name, "ip6tables-restore", "--noflush", input=rules["ip6tables"])
            assert a.set_info("logban4").references == 1  # type: ignore[union-attr]
            listeners = [_listen(server.name, socket.AF_INET, server.addr4, 25),
                         _listen(server.name, socket.AF_INET6, server.addr6, 25)]
            try:
                for family, addr, peer in ((socket.AF_INET, server.addr4, client.addr4),
                                           (socket.AF_INET6, server.addr6, client.addr6)):
                    assert _try_connect(client.name, family, addr, 25) == "accepted"
                    a.ban(KernelBan(peer, now + 600), now)
                    assert _try_connect(client.name, family, addr, 25) == "refused"
                    a.unban(peer)
                    assert _try_connect(client.name, family, addr, 25) == "accepted"
                # start() swaps new contents in under the rule that references the set
                a.start([KernelBan(client.addr4, None)], now)
                assert _try_connect(client.name, socket.AF_INET, server.addr4, 25) == "refused"
                assert a.set_info("logban4").references == 1  # type: ignore[union-attr]
                a.start([], now)
                assert _try_connect(client.name, socket.AF_INET, server.addr4, 25) == "accepted"
            finally:
                for s in listeners:
                    s.close()


# -- dry run ---------------------------------------------------------------------------

def test_dry_run_logs_and_keeps_a_view(caplog: pytest.LogCaptureFixture) -> None:
    a = DryRunAction()
    now = 1_000_000.0
    with caplog.at_level(logging.INFO, logger="logban.action"):
        a.start([KernelBan("192.0.2.1", now + 60), KernelBan("2001:db8::1", None),
                 KernelBan("192.0.2.2", now - 1)], now)
        a.ban(KernelBan("192.0.2.3", now + 600), now)
        a.ban(KernelBan("2001:db8::3", None), now)
        a.unban("192.0.2.1")
    text = caplog.text
    assert "would make the kernel sets hold 2 bans (1 IPv4, 1 IPv6)" in text
    assert "would ban 192.0.2.3 (inet) with kernel timeout 600 s" in text
    assert "would ban 2001:db8::3 (inet6) with kernel timeout 0 (permanent)" in text
    assert "would unban 192.0.2.1" in text
    assert all(r.name == "logban.action" for r in caplog.records)
    st = a.status()
    assert st["entries"] == {"inet": 1, "inet6": 2} and st["dry_run"] and st["errors"] == 0
    assert a.check([], now + 601) == []  # the kernel would have expired 192.0.2.3 by then
    assert a.view() == {"2001:db8::1": None, "2001:db8::3": None}
    with pytest.raises(ActionError):
        a.ban(KernelBan("not-an-address", None), now)
    a.stop()


def test_dry_run_uses_the_given_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.dryrun")
    with caplog.at_level(logging.INFO, logger="test.dryrun"):
        DryRunAction(log).ban(KernelBan("192.0.2.4", None), 0.0)
    assert [r.name for r in caplog.records] == ["test.dryrun"]
