"""Per jail, per address: count failures, decide bans.

One attempt is counted once. The same failed AUTH often appears in several logs (sendmail plus
saslauthd plus the kernel strike; postfix plus dovecot's auth process), and the same line may
arrive twice when rsyslog copies the journal into /var/log/maillog and logban reads both.
Failures of one address are grouped into an *attempt cluster* while they follow each other
within ``correlate_window`` seconds; inside a cluster the lines of each (source, filter) pair
are counted, and the cluster counts as many failures as the pair that reported the most of
them. Three real attempts logged by three filters, or read from two sources (six or nine
lines), count three; three attempts seen by one filter in one source still count three.

saslauthd names the user but no address. Its lines are attributed to the address of the same
attempt: the nearest address failure of the same service within ``correlate_window``. That
only feeds the "which users are tried from which address" view, never the counts, because the
attempt is already counted through the line that carries the address.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from logban.addr import AddressSet
from logban.config import JailConfig
from logban.counts import CountStore, MemoryCounts
from logban.model import Failure


@dataclass(frozen=True, slots=True)
class BanDecision:
    address: str
    jail: str
    failures: int
    duration: float       # seconds
    filter: str           # the filter whose line completed the count
    ban_number: int       # 1 for a first ban, 2 for the first repeat, ...


@dataclass(slots=True)
class _Cluster:
    last: float
    per_filter: dict[str, int]
    counted: int


class _Clusters:
    """Attempt clusters of recently seen addresses, in two generations so old ones drop in O(1).

    Most clusters only ever hear from one filter, so they are kept as a small tuple
    (last time, filter, lines) and only become a ``_Cluster`` when a second filter reports:
    under a flood of distinct addresses this costs a tuple per address, not a dict.
    """

    def __init__(self, window: float, cap: int = 65536) -> None:
        self.window = max(0.0, window)
        # Above ``cap`` addresses in one window (a burst from a huge pool) the generations turn
        # early: a cluster then lives a little less than the window, and at worst one attempt
        # logged twice counts twice for an address of the flood. Memory stays bounded.
        self.cap = cap
        self.cur: dict[str, tuple[float, str, int] | _Cluster] = {}
        self.old: dict[str, tuple[float, str, int] | _Cluster] = {}
        self.turned = 0.0

    def counts(self, address: str, filter: str, ts: float) -> bool:
        """True when this line is a new attempt (to be counted), False for a duplicate.
        ``filter`` names who reported it: the (source, filter) pair."""
        if self.window <= 0:
            return True
        if ts - self.turned > self.window or len(self.cur) >= self.cap:
            self.old, self.cur, self.turned = self.cur, {}, ts
        c = self.cur.get(address) or self.old.pop(address, None)
        last = c[0] if isinstance(c, tuple) else (c.last if c is not None else 0.0)
        if c is None or ts - last > self.window or ts < last - self.window:
            self.cur[address] = (ts, filter, 1)
            return True
        if isinstance(c, tuple):
            if c[1] == filter:  # the same log again: a new attempt
                self.cur[address] = (max(last, ts), filter, c[2] + 1)
                return True
            c = _Cluster(last, {c[1]: c[2]}, c[2])
        self.cur[address] = c
        c.last = max(c.last, ts)
        n = c.per_filter.get(filter, 0) + 1
        c.per_filter[filter] = n
        if n > c.counted:
            c.counted = n
            return True
        return False


class UserView:
    """Which users are tried from which addresses, bounded to the most recent addresses."""

    def __init__(self, window: float, size: int = 10000) -> None:
        self.window = window
        self.size = size
        self.users: OrderedDict[str, Counter[str]] = OrderedDict()
        self.recent: deque[tuple[float, str | None, str, bool]] = deque()  # (ts, service, address, named a user)
        self.pending: deque[tuple[float, str | None, str]] = deque()     # (ts, service, user)

    def _note(self, address: str, user: str) -> None:
        c = self.users.pop(address, None) or Counter()
        c[user] += 1
        self.users[address] = c
        if len(self.users) > self.size:
            self.users.popitem(last=False)

    def _prune(self, ts: float) -> None:
        for q in (self.recent, self.pending):
            while q and q[0][0] < ts - self.window:
                q.popleft()

    def saw(self, f: Failure) -> str | None:
        """Record ``f``; for a failure without address, return the address it is attributed to.

        A user is noted once per attempt: when the line with the address names the user
        itself (sendmail's user=, postfix's sasl_username=), saslauthd's line of the same
        attempt adds nothing.
        """
        self._prune(f.ts)
        if f.host is not None:
            if f.user:
                self._note(f.host, f.user)
            for i, (ts, svc, user) in enumerate(self.pending):
                if abs(ts - f.ts) <= self.window and (svc is None or f.service is None or svc == f.service):
                    del self.pending[i]
                    if not f.user:
                        self._note(f.host, user)
                    break
            self.recent.append((f.ts, f.service, f.host, bool(f.user)))
            if len(self.recent) > 10000:
                self.recent.popleft()
            return None
        if not f.user:
            return None
        for ts, svc, host, named in reversed(self.recent):
            if abs(ts - f.ts) <= self.window and (svc is None or f.service is None or svc == f.service):
                if not named:
                    self._note(host, f.user)
                return host
        self.pending.append((f.ts, f.service, f.user))
        if len(self.pending) > 10000:
            self.pending.popleft()
        return None


@dataclass
class JailState:
    cfg: JailConfig
    counts: CountStore
    clusters: _Clusters
    failures_total: int = 0
    duplicates: int = 0
    bans_total: int = 0


@dataclass
class Tracker:
    """Feeds failures to the jails that use their filter; returns the bans to make.

    ``is_banned(address, jail)`` and ``ban_count(address, jail)`` come from the state, so a
    banned address is not banned again and repeat offenders get longer bans across restarts.
    """

    jails: list[JailConfig]
    ignore: AddressSet
    is_banned: Callable[[str, str], bool]
    ban_count: Callable[[str, str], int]
    correlate_window: float = 2.0
    max_tracked: int = 1_000_000
    clock: Callable[[], float] = time.time
    states: dict[str, JailState] = field(init=False)
    by_filter: dict[str, list[JailState]] = field(init=False)
    users: UserView = field(init=False)
    dirty: dict[str, set[str]] = field(init=False, default_factory=dict)  # jail -> addresses
    ignored: int = 0
    latest: float = 0.0

    def __post_init__(self) -> None:
        self.states = {j.name: JailState(j, MemoryCounts(j.findtime, j.maxretry, self.max_tracked),
                                         _Clusters(self.correlate_window)) for j in self.jails}
        self.by_filter = {}
        for st in self.states.values():
            for fname in st.cfg.filters:
                self.by_filter.setdefault(fname, []).append(st)
        self.users = UserView(self.correlate_window)
        self._reporters: dict[tuple[str, str], str] = {}

    def ban_duration(self, jail: JailConfig, previous_bans: int) -> float:
        """Seconds; 0 means permanent (``bantime: 0``, like ``logban ban --for 0``)."""
        if jail.bantime <= 0:
            return 0.0
        ceiling = max(jail.bantime_max, jail.bantime)
        try:
            d = jail.bantime * (jail.bantime_factor ** previous_bans)
        except OverflowError:  # a very persistent offender: factor ** n past the float range
            return ceiling
        return min(d, ceiling)

    def process(self, f: Failure, source: str = "") -> list[BanDecision]:
        states = self.by_filter.get(f.filter)
        if not states:
            return []
        self.users.saw(f)
        if f.host is None:
            return []
        if f.host in self.ignore:
            self.ignored += 1
            return []
        if f.ts > self.latest:
            self.latest = f.ts
        out = []
        for st in states:
            name = st.cfg.name
            if self.is_banned(f.host, name):
                continue  # its failures do not pile up while it is banned
            if not st.clusters.counts(f.host, self._reporter(source, f.filter), f.ts):
                st.duplicates += 1
                continue
            st.failures_total += 1
            n = st.counts.add(f.host, f.ts)
            self.dirty.setdefault(name, set()).add(f.host)
            if n >= st.cfg.maxretry:
                st.counts.forget(f.host)
                previous = self.ban_count(f.host, name)
                out.append(BanDecision(f.host, name, n, self.ban_duration(st.cfg, previous),
                                       f.filter, previous + 1))
                st.bans_total += 1
        return out

    def take_dirty(self) -> dict[str, list[tuple[str, tuple[float, ...] | None]]]:
        """The pending failures changed since the last call (None: the address has none
        left), to be saved with the source positions of the same lines."""
        out = {}
        for name, addrs in self.dirty.items():
            st = self.states.get(name)
            if st is not None and addrs:
                out[name] = [(a, st.counts.times(a)) for a in addrs]
        self.dirty = {}
        return out

    def mark_dirty(self, rows: dict[str, list[tuple[str, tuple[float, ...] | None]]]) -> None:
        """Saving ``take_dirty()``'s rows failed: take them again next time."""
        for name, items in rows.items():
            self.dirty.setdefault(name, set()).update(a for a, _ in items)

    def _reporter(self, source: str, filter: str) -> str:
        """One shared key string per (source, filter) pair, not one per line."""
        key = self._reporters.get((source, filter))
        if key is None:
            key = self._reporters[(source, filter)] = f"{source}\0{filter}"
        return key

    def pending(self) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
        return {name: list(st.counts.items()) for name, st in self.states.items()}

    def restore(self, pending: dict[str, list[tuple[str, tuple[float, ...]]]]) -> int:
        n = 0
        for name, rows in pending.items():
            st = self.states.get(name)
            if st is None:
                continue  # a jail that is gone from the configuration
            for addr, times in rows:
                if addr in self.ignore or self.is_banned(addr, name):
                    continue
                st.counts.restore(addr, times)
                self.latest = max(self.latest, max(times, default=0.0))
                n += 1
        return n

    def take_over(self, old: "Tracker") -> int:
        """A reload: keep what the running tracker has counted, for the jails that keep their
        name, so a SIGHUP (an admin adding an ignore entry) never forgives an attacker its
        strikes. The failures are re-counted under the new jail's findtime and maxretry (an
        address whose count now reaches a lowered maxretry is banned at its next failure, as
        after a restart); addresses now ignored are dropped. Returns the addresses kept."""
        n = self.restore(old.pending())
        for name, st in self.states.items():
            prev = old.states.get(name)
            if prev is None:
                continue
            st.failures_total, st.duplicates, st.bans_total = (
                prev.failures_total, prev.duplicates, prev.bans_total)
            if prev.clusters.window == st.clusters.window:
                st.clusters = prev.clusters  # one attempt stays counted once across the reload
        if old.correlate_window == self.correlate_window:
            self.users = old.users
        self.latest = max(self.latest, old.latest)
        self.ignored = old.ignored
        return n

    def horizon(self) -> float:
        """The time counting has reached: the newest failure, but never past the wall clock.
        One line stamped in the future (a relay with a wrong clock, a clock stepped back, a
        stamp written in another zone without offset) must not age out everyone's failures."""
        return min(self.latest, self.clock())

    def expire(self) -> None:
        now = max(self.horizon(), 0.0)
        for st in self.states.values():
            st.counts.expire(now)

    def tracked(self, jail: str) -> int:
        return len(self.states[jail].counts)
