"""The kernel ipset ban action: one ``hash:ip`` set per address family, with timeouts.

One fixed firewall rule per family (see logban.rules.fixed_rules) rejects members of the set;
this module only ever changes set contents, never the firewall. Everything goes over netlink
(pyroute2, plus logban.actions.netlink_bulk for the bulk fill): no ipset processes.

All kernel work runs on one worker thread owned by the action, started on first use. Why:
pyroute2's synchronous API keeps its socket per *thread* and opens a new one in whatever
network namespace the calling thread is in, so a daemon thread calling in would silently
talk to another namespace's sets; and it runs its own event loop, which cannot happen inside
a running asyncio loop. The action binds to the network namespace of the thread that first
uses it; its worker runs there (a worker started after stop() moves back into it), and every
call from any thread is queued to the worker, which also serialises them.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPSet
from pyroute2 import netns as pyroute2_netns
from pyroute2.ipset import NoSuchObject
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.ipset import (
    IPSET_ERR_EXIST_SETNAME2,
    IPSET_ERR_TYPE_MISMATCH,
    IPSET_FLAG_LIST_HEADER,
)

from logban.actions.base import ActionError, KernelBan, SetFullError
from logban.actions.netlink_bulk import IPSET_ERR_HASH_FULL, BulkAddError, BulkSocket, Entry

log = logging.getLogger("logban.action")

SET_TYPE = "hash:ip"
# The kernel stores timeouts in milliseconds in a 32-bit jiffies-based field:
# IPSET_MAX_TIMEOUT = (UINT_MAX >> 1) / MSEC_PER_SEC. A longer timeout is refused.
KERNEL_MAX_TIMEOUT = 2147483
# A ban longer than the kernel allows is re-added by check() once less than this is left of
# its kernel timeout: half the maximum leaves ~12 days for check() to run at least once.
REFRESH_MARGIN = KERNEL_MAX_TIMEOUT // 2
TEMP_SUFFIX = "-tmp"
MAX_NAME = 31  # IPSET_MAXNAMELEN - 1 (the NUL)
FAMILY_NAMES: dict[int, str] = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}


_R = TypeVar("_R")


def _on_worker(method: Callable[..., _R]) -> Callable[..., _R]:
    """Run the method on the action's worker thread (directly if already on it)."""
    @functools.wraps(method)
    def run(self: IPSetAction, *args: Any, **kwargs: Any) -> _R:
        if threading.current_thread() is self._worker:
            return method(self, *args, **kwargs)
        try:
            return self._executor().submit(method, self, *args, **kwargs).result()
        except BrokenExecutor as e:
            self.stop()  # a fresh worker next time
            raise ActionError("the ipset worker thread could not enter the network namespace "
                              f"logban first used ({e}); logban needs root") from e
    return run


def kernel_timeout(ban: KernelBan, now: float) -> int:
    """The kernel timeout for a ban: the remaining time rounded up, at least 1 s (0 would
    mean 'permanent' to the kernel), at most KERNEL_MAX_TIMEOUT; 0 for a permanent ban."""
    if ban.expires is None:
        return 0
    return min(KERNEL_MAX_TIMEOUT, max(1, math.ceil(ban.expires - now)))


def address_family(address: str) -> int:
    """AF_INET or AF_INET6 for an address in canonical text form (an IPv4-mapped IPv6
    address counts as IPv6 here: logban.addr reports those as IPv4 already)."""
    # inet_pton rather than ipaddress: start() classifies 100,000 addresses at once
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        socket.inet_pton(family, address)
    except (OSError, ValueError):
        raise ActionError(f"{address!r} is not an IP address: nothing was banned") from None
    return family


@dataclass(frozen=True, slots=True)
class SetInfo:
    """A kernel set's header, as listed."""
    name: str
    typename: str
    family: int
    entries: int
    maxelem: int
    hashsize: int
    references: int
    with_timeout: bool


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    family: int

    @property
    def temp(self) -> str:
        return self.name + TEMP_SUFFIX

    @property
    def family_name(self) -> str:
        return FAMILY_NAMES[self.family]


class IPSetAction:
    """Bans into ``set4``/``set6`` (hash:ip, timeout support, ``maxelem`` entries each)."""

    name = "ipset"

    def __init__(self, set4: str = "logban4", set6: str = "logban6", maxelem: int = 65536,
                 hashsize: int = 1024) -> None:
        for label, value in (("set4", set4), ("set6", set6)):
            if not value or len(value.encode()) + len(TEMP_SUFFIX) > MAX_NAME:
                raise ValueError(
                    f"ipset action: {label}={value!r} must be 1 to "
                    f"{MAX_NAME - len(TEMP_SUFFIX)} bytes (the kernel allows {MAX_NAME} and "
                    f"logban needs room for its temporary set {value}{TEMP_SUFFIX})")
            if any(c.isspace() for c in value):
                raise ValueError(f"ipset action: {label}={value!r} must not contain blanks")
        if set4 == set6:
            raise ValueError(f"ipset action: set4 and set6 are both {set4!r}; an ipset holds "
                             "one address family, so they need different names")
        if maxelem < 1:
            raise ValueError(f"ipset action: maxelem must be at least 1, not {maxelem}")
        if hashsize < 1:
            raise ValueError(f"ipset action: hashsize must be at least 1, not {hashsize}")
        self.set4, self.set6 = set4, set6
        self.maxelem, self.hashsize = maxelem, hashsize
        self._specs: dict[int, _Spec] = {socket.AF_INET: _Spec(set4, socket.AF_INET),
                       socket.AF_INET6: _Spec(set6, socket.AF_INET6)}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._netns_fd: int | None = None  # the namespace of first use, for every worker
        self._ipset: IPSet | None = None
        self._bulk: BulkSocket | None = None
        # bans longer than the kernel allows: address -> (expires, when the kernel drops it)
        self._long: dict[str, tuple[float, float]] = {}
        # families whose set ban() had to create: check() refills them from the saved bans
        self._refill: set[int] = set()
        self._errors: collections.deque[str] = collections.deque(maxlen=20)
        self._error_count = 0

    # -- worker and sockets ------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._netns_fd is None:
                self._netns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logban-ipset",
                                                initializer=self._became_worker)
            return self._pool

    def _became_worker(self) -> None:
        """Worker thread start: enter the action's namespace if the thread that happened to
        start the worker is elsewhere."""
        assert self._netns_fd is not None
        here = os.stat("/proc/thread-self/ns/net")
        there = os.fstat(self._netns_fd)
        if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
            pyroute2_netns.setns(self._netns_fd)  # this thread only; raises on failure
        self._worker = threading.current_thread()

    def _sockets(self) -> tuple[IPSet, BulkSocket]:
        if self._ipset is None or self._bulk is None:
            try:
                ips = IPSet()
            except OSError as e:
                raise ActionError(f"cannot open a netlink socket to ipset ({e}); logban needs "
                                  "root (CAP_NET_ADMIN) and the ip_set kernel module") from e
            try:
                self._bulk = BulkSocket(ips._proto_version)
            except OSError as e:
                ips.close()
                raise ActionError(f"cannot open a netlink socket to ipset ({e})") from e
            self._ipset = ips
        return self._ipset, self._bulk

    def _close(self) -> None:
        if self._ipset is not None:
            self._ipset.close()
        if self._bulk is not None:
            self._bulk.close()
        self._ipset = self._bulk = None

    def stop(self) -> None:
        """Close the sockets and end the worker; bans stay in the kernel and expire there
        by their timeouts."""
        if threading.current_thread() is self._worker:
            self._close()  # cannot wait for ourselves; the pool stays for the next call
            return
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.submit(self._close).result()
            except BrokenExecutor:
                pass  # the worker never started, so it opened no sockets
            finally:
                pool.shutdown(wait=True)
                self._worker = None

    def __del__(self) -> None:
        fd = getattr(self, "_netns_fd", None)  # absent if __init__ raised
        if fd is not None:
            os.close(fd)
            self._netns_fd = None

    # -- kernel primitives -------------------------------------------------------------

    @_on_worker
    def set_info(self, name: str) -> SetInfo | None:
        """The header of one of this action's sets, or None if it does not exist."""
        if name not in self._owned_names():
            raise ValueError(f"{name!r} is not a set of this action")
        ips, _ = self._sockets()
        try:
            msgs = list(ips.list(name, flags=IPSET_FLAG_LIST_HEADER))
        except NoSuchObject:
            return None
        for m in msgs:
            if m.get_attr("IPSET_ATTR_SETNAME") != name:
                continue
            data = m.get_attr("IPSET_ATTR_DATA")
            get = (lambda key: data.get_attr(key)) if data is not None else (lambda key: None)
            return SetInfo(name=name, typename=m.get_attr("IPSET_ATTR_TYPENAME") or "",
                           family=m.get_attr("IPSET_ATTR_FAMILY") or 0,
                           entries=get("IPSET_ATTR_ELEMENTS") or 0,
                           maxelem=get("IPSET_ATTR_MAXELEM") or 0,
                           hashsize=get("IPSET_ATTR_HASHSIZE") or 0,
                           references=get("IPSET_ATTR_REFERENCES") or 0,
                           with_timeout=get("IPSET_ATTR_TIMEOUT") is not None)
        return None

    @_on_worker
    def kernel_entries(self, name: str) -> dict[str, int]:
        """Address -> remaining kernel timeout (0: permanent) of one of this action's sets;
        empty if the set does not exist. For tests and diagnostics: it reads every entry."""
        if name not in self._owned_names():
            raise ValueError(f"{name!r} is not a set of this action")
        ips, _ = self._sockets()
        out: dict[str, int] = {}
        try:
            for m in ips.list(name):
                adt = m.get_attr("IPSET_ATTR_ADT")
                if adt is None:
                    continue
                for d in adt.get_attrs("IPSET_ATTR_DATA"):
                    ip = d.get_attr("IPSET_ATTR_IP_FROM")
                    addr = ip.get_attr("IPSET_ATTR_IPADDR_IPV4") or ip.get_attr(
                        "IPSET_ATTR_IPADDR_IPV6")
                    out[str(ipaddress.ip_address(addr))] = d.get_attr(
                        "IPSET_ATTR_TIMEOUT") or 0
        except NoSuchObject:
            return {}
        return out

    def _owned_names(self) -> set[str]:
        return {n for s in self._specs.values() for n in (s.name, s.temp)}

    def _create(self, name: str, family: int, exclusive: bool) -> None:
        ips, _ = self._sockets()
        # timeout=0: the set supports per-entry timeouts; an entry added without one is
        # permanent. We always give one.
        ips.create(name, stype=SET_TYPE, family=family, exclusive=exclusive, timeout=0,
                   maxelem=self.maxelem, hashsize=self.hashsize)

    def _destroy(self, name: str) -> None:
        """Destroy one of our sets by name; missing is fine. Never called without a name:
        a nameless destroy hits every set on the machine."""
        if not name or name not in self._owned_names():
            raise AssertionError(f"refusing to destroy set {name!r}: not owned by logban")
        ips, _ = self._sockets()
        try:
            ips.destroy(name)
        except NoSuchObject:
            pass

    def _record(self, sentence: str, level: int = logging.ERROR) -> None:
        self._error_count += 1
        self._errors.append(sentence)
        log.log(level, "%s", sentence)

    # -- bulk sync ---------------------------------------------------------------------

    def _sync(self, spec: _Spec, bans: list[KernelBan], now: float) -> int | None:
        """Make set ``spec`` hold exactly ``bans`` (all of its family): fill a temporary set
        in bulk, then swap it with the live one, which the firewall rule keeps matching
        through the swap. Returns None, or how many bans did not fit (set full)."""
        ips, bulk = self._sockets()
        timeout = kernel_timeout
        entries = [Entry(b.address, timeout(b, now)) for b in bans]
        self._destroy(spec.temp)  # left over by a crash between create and swap
        try:
            self._create(spec.temp, spec.family, exclusive=True)
        except NetlinkError as e:
            raise ActionError(f"cannot create the temporary set {spec.temp!r} "
                              f"({spec.family_name}): {e}") from e
        try:
            overflow = None
            try:
                added = bulk.add(spec.temp, spec.family, entries)
            except BulkAddError as e:
                if e.code != IPSET_ERR_HASH_FULL or e.index is None:
                    raise ActionError(f"filling {spec.name!r} failed: {e}") from e
                added, overflow = e.index, len(entries) - e.index
            except (OSError, ValueError) as e:
                raise ActionError(f"filling {spec.name!r} failed: {e}") from e
            info = self.set_info(spec.temp)
            if info is None or info.entries != added:
                raise ActionError(
                    f"filling {spec.name!r}: the kernel holds "
                    f"{info.entries if info else 'no set with'} entries after {added} were "
                    "added; the live set was left as it was")
            self._install(spec)
        finally:
            self._destroy(spec.temp)
        for b, entry in zip(bans, entries):
            if entry.timeout == KERNEL_MAX_TIMEOUT:  # cheap pre-filter: only these can be long
                self._note_long(b, entry.timeout, now)
        return overflow

    def _install(self, spec: _Spec) -> None:
        """Swap the filled temporary set in; rename it if there is no live set yet."""
        ips, _ = self._sockets()
        try:
            ips.swap(spec.name, spec.temp)
            return
        except NetlinkError as e:
            if e.code == IPSET_ERR_TYPE_MISMATCH:
                raise ActionError(
                    f"set {spec.name!r} exists but is not a {SET_TYPE} set of family "
                    f"{spec.family_name}, so logban cannot swap its bans in. Remove the "
                    f"firewall rule that uses it, run `ipset destroy {spec.name}` and restart "
                    "logban, or configure other set names") from e
            if e.code not in (IPSET_ERR_EXIST_SETNAME2, 2):
                raise ActionError(f"cannot swap {spec.temp!r} into {spec.name!r}: {e}") from e
        try:  # the live set does not exist: the filled temporary one becomes it
            ips.rename(spec.temp, spec.name)
        except NetlinkError as e:
            raise ActionError(f"cannot rename {spec.temp!r} to {spec.name!r}: {e}") from e

    def _note_long(self, ban: KernelBan, timeout: int, now: float) -> None:
        if ban.expires is not None and ban.expires - now > timeout:
            self._long[ban.address] = (ban.expires, now + timeout)
        else:
            self._long.pop(ban.address, None)

    @staticmethod
    def _by_family(bans: list[KernelBan]) -> dict[int, list[KernelBan]]:
        """Bans split by family, one per address (the one lasting longest wins)."""
        best: dict[str, KernelBan] = {}
        for b in bans:
            old = best.get(b.address)
            if old is None or old.expires is not None and (
                    b.expires is None or b.expires > old.expires):
                best[b.address] = b
        out: dict[int, list[KernelBan]] = {socket.AF_INET: [], socket.AF_INET6: []}
        for b in best.values():
            out[address_family(b.address)].append(b)
        return out

    # -- the Action interface ----------------------------------------------------------

    @_on_worker
    def ensure_sets(self) -> list[str]:
        """Create the sets that are missing, leaving existing ones and their entries alone
        (for boot, before the firewall rules that name them are loaded). Returns the names
        created."""
        created = []
        for spec in self._specs.values():
            if self.set_info(spec.name) is not None:
                continue
            try:
                self._create(spec.name, spec.family, exclusive=False)
            except NetlinkError as e:
                raise ActionError(f"cannot create ipset {spec.name!r} ({SET_TYPE} family "
                                  f"{spec.family_name}): {e}") from e
            created.append(spec.name)
        return created

    @_on_worker
    def start(self, bans: list[KernelBan], now: float) -> None:
        """Create missing sets and make both hold exactly ``bans`` (bulk fill and swap).

        Raises SetFullError after syncing both sets if bans did not fit in maxelem (the
        sets then hold the first maxelem of them), ActionError if a set could not be
        synced."""
        self._long.clear()
        self._refill.clear()
        full = []
        for family, fam_bans in self._by_family(bans).items():
            overflow = self._sync(self._specs[family], fam_bans, now)
            if overflow:
                full.append(f"{self._specs[family].name} ({overflow} of {len(fam_bans)} "
                            "bans left out)")
        if full:
            msg = (f"ipset {' and '.join(full)} full at maxelem={self.maxelem}: those "
                   "addresses are not blocked by the kernel; raise maxelem in the ipset "
                   "action options and restart logban")
            self._record(msg)
            raise SetFullError(msg)

    @_on_worker
    def ban(self, ban: KernelBan, now: float) -> None:
        family = address_family(ban.address)
        spec = self._specs[family]
        timeout = kernel_timeout(ban, now)
        ips, _ = self._sockets()
        for attempt in (1, 2):
            try:
                # exclusive=False: re-adding an existing entry refreshes its timeout
                ips.add(spec.name, ban.address, family=family, exclusive=False,
                        timeout=timeout)
                break
            except NoSuchObject:
                if attempt == 2:
                    raise ActionError(f"set {spec.name!r} vanished twice while banning "
                                      f"{ban.address}; is something destroying it?")
                # destroyed from outside: recreate now so this ban holds, and let the
                # next check() refill the bans the set lost
                self._record(f"set {spec.name!r} was missing when banning {ban.address} "
                             "(destroyed from outside?): recreated; the next check "
                             "refills it", logging.WARNING)
                try:
                    self._create(spec.name, family, exclusive=False)
                except NetlinkError as e:
                    raise ActionError(f"cannot recreate set {spec.name!r}: {e}") from e
                self._refill.add(family)
            except NetlinkError as e:
                if e.code == IPSET_ERR_HASH_FULL:
                    info = self.set_info(spec.name)
                    maxelem = info.maxelem if info else self.maxelem
                    msg = (f"ipset {spec.name!r} is full (maxelem={maxelem}): "
                           f"{ban.address} was NOT banned in the kernel. Raise maxelem in "
                           "the ipset action options and restart logban, or shorten "
                           "ban times")
                    self._record(msg)
                    raise SetFullError(msg) from e
                msg = f"adding {ban.address} to set {spec.name!r} failed: {e}"
                self._record(msg)
                raise ActionError(msg) from e
        self._note_long(ban, timeout, now)

    @_on_worker
    def unban(self, address: str) -> None:
        family = address_family(address)
        spec = self._specs[family]
        self._long.pop(address, None)
        ips, _ = self._sockets()
        try:
            # exclusive=False: an entry that is not there (expired) is no error
            ips.delete(spec.name, address, family=family, exclusive=False)
        except NoSuchObject:
            pass  # no set, so the address is not banned either
        except NetlinkError as e:
            msg = f"removing {address} from set {spec.name!r} failed: {e}"
            self._record(msg)
            raise ActionError(msg) from e

    @staticmethod
    def _expected(bans: list[KernelBan], now: float) -> int:
        """How many of ``bans`` the kernel must hold for sure: the kernel timeout is rounded
        up to whole seconds, so an entry about to expire may already be gone."""
        return sum(1 for b in bans if b.expires is None or b.expires > now + 2)

    @_on_worker
    def check(self, bans: list[KernelBan], now: float) -> list[str]:
        """Repair what was broken from outside and return what remains broken.

        A destroyed (or emptied) set is recreated and refilled from ``bans``; bans longer
        than the kernel maximum get their kernel timeout renewed; a full or foreign set is
        reported."""
        problems: list[str] = []
        by_family = self._by_family(bans)
        for family, spec in self._specs.items():
            fam_bans = [b for b in by_family[family]
                        if b.expires is None or b.expires > now]
            try:
                info = self.set_info(spec.name)
                why = None
                if info is None:
                    why = "was missing (destroyed from outside?)"
                elif family in self._refill:
                    why = "was recreated by a ban"
                elif info.entries == 0 and fam_bans:
                    why = "was empty (flushed from outside?)"
                elif info.entries < min(self._expected(fam_bans, now), info.maxelem):
                    # Fewer entries than bans that the kernel must still hold: some were
                    # deleted from outside (`ipset del`) or a ban never got in. The header
                    # costs one round trip; the full resync only runs when it is needed.
                    # (A full set is not this case: it is reported below.)
                    why = (f"held {info.entries} entries for {self._expected(fam_bans, now)} "
                           "bans (entries deleted from outside?)")
                if why:
                    overflow = self._sync(spec, fam_bans, now)
                    self._refill.discard(family)
                    self._record(f"set {spec.name!r} {why}: refilled with "
                                 f"{len(fam_bans)} bans", logging.WARNING)
                    if overflow:
                        problems.append(
                            f"ipset {spec.name!r} is full (maxelem={self.maxelem}): "
                            f"{overflow} bans are not blocked by the kernel; raise "
                            "maxelem and restart logban")
                    info = self.set_info(spec.name)
                if info is None:
                    problems.append(f"ipset {spec.name!r} does not exist and could not "
                                    "be recreated")
                    continue
                if (info.typename != SET_TYPE or info.family != family
                        or not info.with_timeout):
                    problems.append(
                        f"ipset {spec.name!r} is {info.typename} family "
                        f"{FAMILY_NAMES.get(info.family, info.family)}"
                        f"{'' if info.with_timeout else ' without timeout'}; logban "
                        f"needs {SET_TYPE} family {spec.family_name} with timeout. "
                        f"Remove the rule using it, `ipset destroy {spec.name}`, and "
                        "restart logban")
                elif info.entries >= info.maxelem:
                    problems.append(
                        f"ipset {spec.name!r} is full ({info.entries} entries, "
                        f"maxelem={info.maxelem}): new bans do not reach the kernel; "
                        "raise maxelem in the ipset action options and restart logban")
            except ActionError as e:
                problems.append(str(e))
            except (NetlinkError, OSError) as e:
                problems.append(f"checking ipset {spec.name!r} failed: {e}")
        problems.extend(self._renew_long(now))
        return problems

    def _renew_long(self, now: float) -> list[str]:
        problems = []
        for address, (expires, kernel_until) in list(self._long.items()):
            if expires <= now:
                self._long.pop(address, None)
            elif kernel_until - now < REFRESH_MARGIN:
                try:
                    self.ban(KernelBan(address, expires), now)
                except ActionError as e:
                    problems.append(f"renewing the kernel timeout of {address}: {e}")
        return problems

    @_on_worker
    def status(self) -> dict[str, Any]:
        sets: dict[str, Any] = {}
        for spec in self._specs.values():
            try:
                info = self.set_info(spec.name)
            except (ActionError, NetlinkError, OSError) as e:
                sets[spec.name] = {"family": spec.family_name, "error": str(e)}
                continue
            sets[spec.name] = {
                "family": spec.family_name, "exists": info is not None,
                "entries": info.entries if info else 0,
                "maxelem": info.maxelem if info else self.maxelem,
                "references": info.references if info else 0}
        return {"action": self.name, "sets": sets, "maxelem": self.maxelem,
                "long_bans": len(self._long), "errors": self._error_count,
                "recent_errors": list(self._errors)}
