#!/usr/bin/env python3
"""A realistic CentOS-style /var/log/maillog, with its ground truth.

Most of the log is ordinary mail traffic (postfix and sendmail deliveries, dovecot logins,
the odd kernel firewall line). A configurable share of the lines are SMTP/IMAP AUTH failures
from a pool of attacker addresses, in every format the shipped filters read: postfix SASL
(smtpd and submission), sendmail "AUTH failure", saslauthd "auth failure" (no address),
dovecot "auth failed" and the kernel matcher's "SMTP_AUTH_FAIL: Strike" lines. A few legitimate
users mistype their password once or twice (benign near-misses), and a few lines hold a
filter's literal without being an attack (an authentication back end outage).

Every line is written by this file; only documentation addresses (RFC 5737, RFC 3849) and
example.org / example.net names appear. The output depends on the parameters and the seed
only (no set or dict order, no clock), so a committed example can be checked byte for byte.

The ground truth (``--truth FILE.json``) counts, per canonical address, the failure lines that
carry that address, and the failures without one, for exactly the lines written.

    python bench/gen_maillog.py out.log --lines 1000000 --truth out.json
    python bench/gen_maillog.py --example examples/maillog
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

# Bump when the output for the same parameters changes, so cached logs are regenerated.
VERSION = 1

HOSTNAME = "mail"
LOCAL_DOMAIN = "example.org"
REMOTE_DOMAIN = "example.net"
SERVER4 = "192.0.2.1"
SERVER6 = "2001:db8::1"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The committed examples/maillog: tests regenerate it from these and compare bytes.
EXAMPLE_PARAMS: dict[str, object] = {
    "lines": 2000,
    "fail_share": 0.04,
    "pool": 8,
    "seed": 8,
    "start": datetime(2026, 12, 3, 6, 0, 0),
    "seconds_per_line": 5.0,
    "typo_share": 0.002,
}

# A failure line's tag: (filter name, canonical address or None).
Tag = tuple[str, str | None]


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class Addr:
    """One client address in the forms the different daemons write it."""

    text: str  # canonical, as logban reports it

    @property
    def v6(self) -> bool:
        return ":" in self.text

    @property
    def sendmail(self) -> str:
        return f"IPv6:{self.text}" if self.v6 else self.text

    @property
    def kernel(self) -> str:
        # The kernel LOG target writes IPv6 fully expanded.
        return ipaddress.ip_address(self.text).exploded if self.v6 else self.text


def _v4_range(net: str, first: int, last: int) -> list[str]:
    base = ipaddress.ip_network(net).network_address
    return [str(base + i) for i in range(first, last + 1)]


def _v6_addresses(rng: random.Random, prefix: int, count: int, taken: set[str]) -> list[str]:
    """``count`` distinct addresses in 2001:db8:<prefix>::/48, canonical text."""
    out: list[str] = []
    while len(out) < count:
        a = ipaddress.IPv6Address(
            (0x20010DB8 << 96) | (prefix << 80)
            | (rng.getrandbits(16) << 64) | rng.getrandbits(rng.choice((8, 16, 32, 64))))
        t = str(a)
        if t not in taken and t != SERVER6:
            taken.add(t)
            out.append(t)
    return out


def attacker_pool(rng: random.Random, size: int) -> list[Addr]:
    """Attackers: 203.0.113.0/24 and the upper half of 198.51.100.0/24, one in eight IPv6;
    a pool larger than those ranges continues in 2001:db8:bad::/48."""
    v4 = _v4_range("203.0.113.0/24", 1, 254) + _v4_range("198.51.100.0/24", 129, 254)
    rng.shuffle(v4)
    n6 = max(size // 8, size - len(v4))
    taken: set[str] = set()
    v6 = _v6_addresses(rng, 0xBAD, n6, taken)
    pool: list[Addr] = []
    for i in range(size):
        # Every eighth attacker is IPv6 while IPv4 lasts; then IPv6 only.
        use6 = (i % 8 == 7 and v6) or not v4
        pool.append(Addr(v6.pop() if use6 else v4.pop()))
    rng.shuffle(pool)  # the busiest attackers are the first: any of them may be IPv6
    return pool


def benign_pool(rng: random.Random) -> list[Addr]:
    """Legitimate clients and remote MTAs: 192.0.2.0/24 (but the server), the lower half of
    198.51.100.0/24, and some of 2001:db8:1::/48. Disjoint from the attackers."""
    v4 = _v4_range("192.0.2.0/24", 10, 254) + _v4_range("198.51.100.0/24", 1, 127)
    v6 = _v6_addresses(rng, 0x1, 48, set())
    return [Addr(a) for a in v4 + v6]


# --------------------------------------------------------------------------- output


@dataclass
class Truth:
    lines: int = 0
    first: datetime | None = None
    last: datetime | None = None
    hosts: Counter[str] = field(default_factory=Counter)
    by_filter: Counter[str] = field(default_factory=Counter)
    without_address: int = 0
    attack_failures: int = 0  # failure lines from the attacker pool (fail_share counts these)

    def to_json(self, params: dict[str, object], attackers: list[Addr]) -> dict[str, object]:
        seen = [a.text for a in attackers if a.text in self.hosts]
        pool = {a.text for a in attackers}
        benign = {h: n for h, n in sorted(self.hosts.items()) if h not in pool}
        return {
            "generator": "bench/gen_maillog.py",
            "version": VERSION,
            "params": {k: (v.isoformat() if isinstance(v, datetime) else v)
                       for k, v in params.items()},
            "lines": self.lines,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "failures": sum(self.by_filter.values()),
            "without_address": self.without_address,
            "attack_failures": self.attack_failures,
            "by_filter": dict(sorted(self.by_filter.items())),
            "hosts": dict(sorted(self.hosts.items())),
            "attackers_seen": seen,
            "benign_failures": benign,
        }


class Log:
    """Lines scheduled at future times, written in time order up to a line budget.

    Events schedule all their lines at once (a session's lines span seconds to an hour);
    the heap interleaves them as concurrent sessions interleave in a real log. Only lines
    actually written count in the truth, so a truncated tail never skews it.
    """

    def __init__(self, out: list[str], limit: int, start: datetime, truth: Truth,
                 attackers: set[str]) -> None:
        self.out, self.limit, self.start, self.truth = out, limit, start, truth
        self.attackers = attackers
        self.heap: list[tuple[float, int, str, Tag | None]] = []
        self.seq = 0
        self.scheduled = 0
        self.scheduled_attack_failures = 0
        self._stamp_sec = -1
        self._stamp = ""

    @property
    def full(self) -> bool:
        return self.truth.lines >= self.limit

    def at(self, t: float, body: str, tag: Tag | None = None) -> None:
        self.seq += 1
        self.scheduled += 1
        if tag is not None and (tag[1] is None or tag[1] in self.attackers):
            self.scheduled_attack_failures += 1
        heapq.heappush(self.heap, (t, self.seq, body, tag))

    def flush(self, until: float) -> None:
        heap, out, truth = self.heap, self.out, self.truth
        while heap and heap[0][0] <= until and truth.lines < self.limit:
            t, _, body, tag = heapq.heappop(heap)
            out.append(f"{self._header(t)} {HOSTNAME} {body}\n")
            truth.lines += 1
            if tag is not None:
                name, host = tag
                truth.by_filter[name] += 1
                if host is None:
                    truth.without_address += 1
                else:
                    truth.hosts[host] += 1
                if host is None or host in self.attackers:
                    truth.attack_failures += 1

    def _header(self, t: float) -> str:
        sec = int(t)
        if sec != self._stamp_sec:  # lines come in time order: cache one stamp
            d = self.start + timedelta(seconds=sec)
            if self.truth.first is None:
                self.truth.first = d
            self.truth.last = d
            self._stamp_sec = sec
            self._stamp = f"{_MONTHS[d.month - 1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        return self._stamp


# --------------------------------------------------------------------------- traffic


@dataclass
class Attacker:
    addr: Addr
    kind: str          # which service it hammers
    interval: tuple[float, float]  # seconds between attempts within a burst
    users: list[str]
    rdns: str          # "unknown" or a reverse name
    strikes: int = 0   # the kernel matcher's per-address strike counter (1..3)


_ATTACK_KINDS = (("postfix", 30), ("submission", 15), ("sendmail", 15), ("dovecot", 25),
                 ("kernel", 15))
_GUESSED_USERS = ("admin", "info", "test", "sales", "office", "postmaster", "support", "web",
                  "contact", "mail")
_B64_PROMPTS = ("UGFzc3dvcmQ6", "VXNlcm5hbWU6")  # what postfix echoes for LOGIN: the prompts


class Traffic:
    """Makes events; each schedules its lines on a ``Log``."""

    def __init__(self, rng: random.Random, log: Log, attackers: list[Addr],
                 benign: list[Addr]) -> None:
        self.rng, self.log = rng, log
        self.benign = benign
        self.attackers = [self._attacker(a, i) for i, a in enumerate(attackers)]
        # Few attackers do most of the work: Zipf-like weights over a shuffled order.
        self.attack_weights = [1.0 / (i + 1) ** 1.1 for i in range(len(attackers))]
        self.users = [f"user{n}" for n in range(1, 400)]
        self.pid = 2000
        self.daemon_pids = {"qmgr": 1187, "saslauthd": 812, "dovecot": 951}
        self.qmgr_pid = 1187

    def _attacker(self, addr: Addr, i: int) -> Attacker:
        rng = self.rng
        kind = rng.choices([k for k, _ in _ATTACK_KINDS], [w for _, w in _ATTACK_KINDS])[0]
        # One in five goes low and slow, with minutes between tries.
        interval = (240.0, 1500.0) if rng.random() < 0.2 else (1.0, 12.0)
        users = [rng.choice(_GUESSED_USERS) if rng.random() < 0.6 else f"user{rng.randrange(1, 999)}"
                 for _ in range(rng.randrange(1, 6))]
        users = [u if rng.random() < 0.5 else f"{u}@{LOCAL_DOMAIN}" for u in users]
        rdns = "unknown" if rng.random() < 0.7 else f"host-{i}.dyn.{REMOTE_DOMAIN}"
        return Attacker(addr, kind, interval, users, rdns)

    # ---- small helpers

    def next_pid(self) -> int:
        self.pid += self.rng.randrange(1, 40)
        if self.pid > 65000:
            self.pid = 2000
        return self.pid

    def qid(self) -> str:
        return f"{self.rng.getrandbits(40):010X}"

    def sendmail_qid(self, t: float, pid: int) -> str:
        # Sendmail's id encodes the time in base 60, then a sequence and the pid.
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
        d = self.log.start + timedelta(seconds=int(t))
        head = "".join(digits[x % 60] for x in (d.year - 1900, d.month - 1, d.day, d.hour,
                                                  d.minute, d.second))
        return f"{head}{digits[self.rng.randrange(60)]}{digits[self.rng.randrange(60)]}{pid:06d}"

    def session(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return "".join(self.rng.choice(alphabet) for _ in range(16))

    def client(self) -> tuple[Addr, str]:
        rng = self.rng
        a = rng.choice(self.benign)
        return a, (f"mx{rng.randrange(50)}.{REMOTE_DOMAIN}" if rng.random() < 0.8 else "unknown")

    def local_user(self) -> str:
        return self.rng.choice(self.users)

    def remote_user(self) -> str:
        return f"user{self.rng.randrange(400, 9000)}@{REMOTE_DOMAIN}"

    # ---- ordinary traffic

    def postfix_inbound(self, t: float) -> None:
        rng, at = self.rng, self.log.at
        a, name = self.client()
        pid, q = self.next_pid(), self.qid()
        peer = f"{name}[{a.text}]"
        at(t, f"postfix/smtpd[{pid}]: connect from {peer}")
        at(t + 0.3, f"postfix/smtpd[{pid}]: {q}: client={peer}")
        at(t + 0.5, f"postfix/cleanup[{self.next_pid()}]: {q}: message-id=<{rng.getrandbits(48):x}.{pid}@{REMOTE_DOMAIN}>")
        size = int(rng.lognormvariate(8.5, 1.2))
        at(t + 0.6, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<{self.remote_user()}>, size={size}, nrcpt=1 (queue active)")
        at(t + 0.8, f"postfix/smtpd[{pid}]: disconnect from {peer} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7")
        d = rng.uniform(0.05, 2.0)
        w = rng.uniform(0.2, 0.7)
        at(t + 0.6 + d, f"postfix/local[{self.next_pid()}]: {q}: to=<{self.local_user()}@{LOCAL_DOMAIN}>, "
                        f"relay=local, delay={d + w:.2g}, delays={w:.2g}/0.01/0/{d:.2g}, dsn=2.0.0, "
                        "status=sent (delivered to mailbox)")
        at(t + 0.7 + d, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")

    def postfix_submission(self, t: float) -> None:
        """A local user sends out through submission, authenticated."""
        rng, at = self.rng, self.log.at
        a, _ = self.client()
        pid, q = self.next_pid(), self.qid()
        peer = f"unknown[{a.text}]"
        user = self.local_user()
        at(t, f"postfix/submission/smtpd[{pid}]: connect from {peer}")
        at(t + 0.9, f"postfix/submission/smtpd[{pid}]: {q}: client={peer}, sasl_method=PLAIN, sasl_username={user}@{LOCAL_DOMAIN}")
        at(t + 1.0, f"postfix/cleanup[{self.next_pid()}]: {q}: message-id=<{rng.getrandbits(48):x}@{LOCAL_DOMAIN}>")
        at(t + 1.1, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<{user}@{LOCAL_DOMAIN}>, size={int(rng.lognormvariate(8, 1))}, nrcpt=1 (queue active)")
        at(t + 1.2, f"postfix/submission/smtpd[{pid}]: disconnect from {peer} ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8")
        mx, _ = self.client()
        d = rng.uniform(0.2, 3.0)
        at(t + 1.1 + d, f"postfix/smtp[{self.next_pid()}]: {q}: to=<{self.remote_user()}>, "
                        f"relay=mx.{REMOTE_DOMAIN}[{mx.text}]:25, delay={d + 0.2:.2g}, "
                        f"delays=0.1/0.01/{d / 2:.2g}/{d / 2:.2g}, dsn=2.0.0, "
                        f"status=sent (250 2.0.0 Ok: queued as {self.qid()})")
        at(t + 1.2 + d, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")

    def postfix_reject(self, t: float) -> None:
        rng, at = self.rng, self.log.at
        a, _ = self.client()
        pid = self.next_pid()
        peer = f"unknown[{a.text}]"
        at(t, f"postfix/smtpd[{pid}]: connect from {peer}")
        if rng.random() < 0.5:
            at(t + 1, f"postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {peer}: 554 5.7.1 "
                      f"<{self.remote_user()}>: Relay access denied; from=<{self.remote_user()}> "
                      f"to=<{self.remote_user()}> proto=ESMTP helo=<{REMOTE_DOMAIN}>")
        else:
            at(t + 1, f"postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {peer}: 550 5.1.1 "
                      f"<nobody{rng.randrange(99)}@{LOCAL_DOMAIN}>: Recipient address rejected: "
                      f"User unknown in local recipient table; from=<{self.remote_user()}> "
                      f"to=<nobody@{LOCAL_DOMAIN}> proto=ESMTP helo=<mx.{REMOTE_DOMAIN}>")
        at(t + 1.3, f"postfix/smtpd[{pid}]: disconnect from {peer} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")

    def postfix_noise(self, t: float) -> None:
        rng, at = self.rng, self.log.at
        a, name = self.client()
        pid = self.next_pid()
        r = rng.random()
        if r < 0.4:
            at(t, f"postfix/smtpd[{pid}]: connect from unknown[{a.text}]")
            at(t + 0.4, f"postfix/smtpd[{pid}]: lost connection after CONNECT from unknown[{a.text}]")
            at(t + 0.4, f"postfix/smtpd[{pid}]: disconnect from unknown[{a.text}] commands=0/0")
        elif r < 0.7:
            at(t, f"postfix/smtpd[{pid}]: warning: hostname {name} does not resolve to address {a.text}: Name or service not known")
        elif r < 0.9:
            at(t, f"postfix/anvil[{self.next_pid()}]: statistics: max connection rate 2/60s for (smtp:{a.text}) at "
                  f"{self._stamp_at(t)}")
        else:
            at(t, f"postfix/scache[{self.next_pid()}]: statistics: domain lookup hits=0 miss=3 success=0%")

    def _stamp_at(self, t: float) -> str:
        d = self.log.start + timedelta(seconds=int(t))
        return f"{_MONTHS[d.month - 1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"

    def sendmail_inbound(self, t: float) -> None:
        rng, at = self.rng, self.log.at
        a, name = self.client()
        pid = self.next_pid()
        q = self.sendmail_qid(t, pid)
        relay = f"{name} [{a.sendmail}]"
        if rng.random() < 0.5:
            at(t, f"sendmail[{pid}]: STARTTLS=server, relay={relay}, version=TLSv1.2, verify=NO, "
                  "cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256")
        if rng.random() < 0.2:  # an authenticated local user relaying through sendmail
            at(t + 0.2, f"sendmail[{pid}]: AUTH=server, relay={relay}, authid={self.local_user()}, "
                        "mech=LOGIN, bits=0")
        size = int(rng.lognormvariate(8.3, 1.1))
        at(t + 0.5, f"sendmail[{pid}]: {q}: from=<{self.remote_user()}>, size={size}, class=0, "
                    f"nrcpts=1, msgid=<{rng.getrandbits(40):x}@{REMOTE_DOMAIN}>, proto=ESMTPS, "
                    f"daemon=MTA, relay={relay}")
        at(t + 0.9, f"sendmail[{self.next_pid()}]: {q}: to=<{self.local_user()}@{LOCAL_DOMAIN}>, "
                    f"delay=00:00:01, xdelay=00:00:00, mailer=local, pri={30000 + size}, "
                    "dsn=2.0.0, stat=Sent")

    def dovecot_session(self, t: float, addr: Addr | None = None, user: str | None = None) -> None:
        rng, at = self.rng, self.log.at
        a = addr or self.client()[0]
        user = user or self.local_user()
        proto = "imap" if rng.random() < 0.8 else "pop3"
        lip = SERVER6 if a.v6 else SERVER4
        at(t, f"dovecot: {proto}-login: Login: user=<{user}>, method=PLAIN, rip={a.text}, "
              f"lip={lip}, mpid={self.next_pid()}, TLS, session=<{self.session()}>")
        end = t + rng.expovariate(1 / 300)
        if proto == "imap":
            at(end, f"dovecot: imap({user}): Disconnected: Logged out in={rng.randrange(80, 9000)} "
                    f"out={rng.randrange(500, 900000)}")
        else:
            n = rng.randrange(0, 4)
            size = n * rng.randrange(1500, 40000)
            at(end, f"dovecot: pop3({user}): Disconnected: Logged out top=0/0, retr={n}/{size}, "
                    f"del={n}/{n}, size={size}")

    def dovecot_no_auth(self, t: float) -> None:
        a, _ = self.client()
        lip = SERVER6 if a.v6 else SERVER4
        self.log.at(t, f"dovecot: imap-login: Disconnected (no auth attempts in {self.rng.randrange(0, 10)} secs): "
                       f"user=<>, rip={a.text}, lip={lip}, TLS handshaking: SSL_accept() failed: "
                       f"error:14094416:SSL routines:ssl3_read_bytes:sslv3 alert certificate unknown, "
                       f"session=<{self.session()}>")

    def kernel_reject(self, t: float) -> None:
        """A firewalld FINAL_REJECT of some port scan: a kernel line that is no AUTH failure."""
        rng = self.rng
        a, _ = self.client()
        if a.v6:
            return self.dovecot_no_auth(t)
        self.log.at(t, f"kernel: FINAL_REJECT: IN=eth0 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 "
                       f"SRC={a.text} DST={SERVER4} LEN=44 TOS=0x00 PREC=0x00 TTL={rng.randrange(40, 250)} "
                       f"ID={rng.randrange(65536)} PROTO=TCP SPT={rng.randrange(1024, 65536)} "
                       f"DPT={rng.choice((23, 445, 3389, 8080, 1433))} WINDOW=1024 RES=0x00 SYN URGP=0 ")

    def auth_backend_down(self, t: float) -> None:
        """saslauthd restarts: clients' AUTH fail without an attack. The filter ignores these."""
        for i in range(self.rng.randrange(1, 4)):
            a, _ = self.client()
            pid = self.next_pid()
            self.log.at(t + i * 2, f"postfix/submission/smtpd[{pid}]: warning: unknown[{a.text}]: "
                                   "SASL PLAIN authentication failed: Connection lost to authentication server")

    def typo(self, t: float) -> None:
        """A legitimate user gets the password wrong once or twice, then right."""
        rng = self.rng
        a, _ = self.client()
        user = self.local_user()
        tries = rng.choice((1, 1, 1, 2))
        lip = SERVER6 if a.v6 else SERVER4
        if rng.random() < 0.6:
            for i in range(tries):
                self.log.at(t + 6 * i, f"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 4 secs): "
                                       f"user=<{user}>, method=PLAIN, rip={a.text}, lip={lip}, TLS, "
                                       f"session=<{self.session()}>", ("dovecot", a.text))
            self.dovecot_session(t + 6 * tries + 5, a, user)
        else:
            pid = self.next_pid()
            for i in range(tries):
                self.log.at(t + 4 * i, f"postfix/submission/smtpd[{pid}]: warning: unknown[{a.text}]: "
                                       "SASL PLAIN authentication failed: authentication failure, "
                                       f"sasl_username={user}@{LOCAL_DOMAIN}", ("postfix-sasl", a.text))
            self.postfix_submission(t + 4 * tries + 3)

    ORDINARY: tuple[tuple[str, float], ...] = (
        ("postfix_inbound", 34), ("postfix_submission", 9), ("postfix_reject", 6),
        ("postfix_noise", 8), ("sendmail_inbound", 10), ("dovecot_session", 28),
        ("dovecot_no_auth", 3), ("kernel_reject", 2), ("auth_backend_down", 0.05),
    )

    # ---- attacks

    def attack_burst(self, t: float) -> None:
        """One attacker's burst of attempts at the one service it targets."""
        rng = self.rng
        at = rng.choices(self.attackers, self.attack_weights)[0]
        attempts = min(1 + int(rng.expovariate(1 / 4)), 30)
        step: Callable[[float, Attacker], None] = getattr(self, f"_fail_{at.kind}")
        for _ in range(attempts):
            step(t, at)
            t += rng.uniform(*at.interval)

    def _user(self, at: Attacker) -> str:
        return self.rng.choice(at.users)

    def _fail_postfix(self, t: float, at: Attacker, service: str = "smtpd",
                      strike: bool = False) -> None:
        rng, log = self.rng, self.log
        a = at.addr
        pid = self.next_pid()
        peer = f"{at.rdns}[{a.text}]"
        user = self._user(at)
        mech = rng.choice(("LOGIN", "LOGIN", "PLAIN"))
        log.at(t, f"postfix/{service}[{pid}]: connect from {peer}")
        if rng.random() < 0.5:  # CentOS postfix asks saslauthd, which logs the user only
            log.at(t + 1.1, f"saslauthd[{self.daemon_pids['saslauthd']}]: do_auth         : auth failure: "
                            f"[user={user.split('@')[0]}] [service=smtp] [realm={LOCAL_DOMAIN}] "
                            "[mech=pam] [reason=PAM auth error]", ("saslauthd", None))
        # LOGIN failures echo the last base64 prompt; PLAIN ones the SASL back end's reason
        # (Cyrus SASL's "authentication failure", or dovecot's none). Cyrus's "generic failure"
        # means saslauthd could not be asked at all: an outage, which logban does not count.
        reason = rng.choice(_B64_PROMPTS if mech == "LOGIN" else ("authentication failure",
                                                                    "(reason unavailable)"))
        # Postfix 3 appends the name the client tried; the CentOS 7 postfix 2.10 does not.
        tail = f", sasl_username={user}" if service != "smtpd" and rng.random() < 0.7 else ""
        log.at(t + 1.2, f"postfix/{service}[{pid}]: warning: {peer}: SASL {mech} authentication "
                        f"failed: {reason}{tail}", ("postfix-sasl", a.text))
        if strike:
            self._strike(t + 1.2, at, 25 if service == "smtpd" else 587)
        log.at(t + 1.3, f"postfix/{service}[{pid}]: lost connection after AUTH from {peer}")
        log.at(t + 1.3, f"postfix/{service}[{pid}]: disconnect from {peer} ehlo=1 auth=0/1 commands=1/2")

    def _fail_submission(self, t: float, at: Attacker) -> None:
        self._fail_postfix(t, at, "submission/smtpd")

    def _fail_kernel(self, t: float, at: Attacker) -> None:
        self._fail_postfix(t, at, "smtpd", strike=True)

    def _strike(self, t: float, at: Attacker, port: int) -> None:
        """The in-kernel matcher's LOG line for the server's 535 reply (OUTPUT side)."""
        rng = self.rng
        at.strikes = at.strikes % 3 + 1
        a = at.addr
        if a.v6:
            head = f"SRC={ipaddress.ip_address(SERVER6).exploded} DST={a.kernel} LEN=113 TC=0 HOPLIMIT=64 FLOWLBL={rng.randrange(1 << 20)}"
        else:
            head = f"SRC={SERVER4} DST={a.kernel} LEN=93 TOS=0x00 PREC=0x00 TTL=64 ID={rng.randrange(65536)} DF"
        self.log.at(t, f"kernel: SMTP_AUTH_FAIL: Strike {at.strikes}: IN= OUT=eth0 {head} PROTO=TCP "
                       f"SPT={port} DPT={rng.randrange(32768, 61000)} WINDOW={rng.randrange(200, 510)} "
                       "RES=0x00 ACK PSH URGP=0 ", ("kernel-smtp", a.text))

    def _fail_sendmail(self, t: float, at: Attacker) -> None:
        rng, log = self.rng, self.log
        a = at.addr
        pid = self.next_pid()
        user = self._user(at)
        mech = rng.choice(("LOGIN", "PLAIN"))
        log.at(t + 0.8, f"saslauthd[{self.daemon_pids['saslauthd']}]: do_auth         : auth failure: "
                        f"[user={user}] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]",
               ("saslauthd", None))
        relay = f"[{a.sendmail}]" if at.rdns == "unknown" else f"{at.rdns} [{a.sendmail}] (may be forged)"
        log.at(t + 1.0, f"sendmail[{pid}]: {self.sendmail_qid(t, pid)}: AUTH failure ({mech}): "
                        "authentication failure (-13) SASL(-13): authentication failure: "
                        f"Password verification failed, user={user}, relay={relay}",
               ("sendmail-auth", a.text))

    def _fail_dovecot(self, t: float, at: Attacker) -> None:
        rng = self.rng
        a = at.addr
        proto = rng.choice(("imap", "imap", "pop3"))
        lip = SERVER6 if a.v6 else SERVER4
        n = rng.choice((1, 1, 2, 3))
        how = "Disconnected" if rng.random() < 0.7 else "Aborted login"
        self.log.at(t + n * 2.5, f"dovecot: {proto}-login: {how} (auth failed, {n} attempts in {n * 2 + 1} secs): "
                                 f"user=<{self._user(at)}>, method=PLAIN, rip={a.text}, lip={lip}, "
                                 f"session=<{self.session()}>", ("dovecot", a.text))


# --------------------------------------------------------------------------- driver


def generate(path: str | Path, lines: int = 1_000_000, fail_share: float = 0.02, pool: int = 500,
             seed: int = 1, start: datetime = datetime(2026, 12, 1, 0, 0, 0),
             seconds_per_line: float = 0.5, typo_share: float = 0.0005) -> dict[str, object]:
    """Write ``lines`` lines to ``path``; return the ground truth (see ``Truth.to_json``).

    ``fail_share``: the share of lines that are attackers' failures (saslauthd's included).
    ``pool``: the number of attacker addresses. ``seconds_per_line``: mean time between lines
    (0.5 s: about six days per million lines). ``typo_share``: roughly the share of lines that
    are legitimate users' mistyped passwords.
    """
    if lines < 0 or not 0 <= fail_share < 1 or pool < 1:
        raise ValueError("lines >= 0, 0 <= fail_share < 1 and pool >= 1 are required")
    params: dict[str, object] = {"lines": lines, "fail_share": fail_share, "pool": pool,
                                 "seed": seed, "start": start,
                                 "seconds_per_line": seconds_per_line, "typo_share": typo_share}
    rng = random.Random(seed)
    attackers = attacker_pool(rng, pool)
    truth = Truth()
    out: list[str] = []
    log = Log(out, lines, start, truth, {a.text for a in attackers})
    traffic = Traffic(rng, log, attackers, benign_pool(rng))
    names = [n for n, _ in Traffic.ORDINARY]
    weights = [w for _, w in Traffic.ORDINARY]
    t = 0.0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while not log.full:
            before = log.scheduled
            # Attack whenever the attackers are behind their share; the jitter keeps the bursts
            # from falling on a fixed beat.
            if log.scheduled_attack_failures < fail_share * log.scheduled - rng.uniform(0, 15):
                traffic.attack_burst(t)
            elif rng.random() < typo_share * 5:  # a typo event writes about five lines per fail
                traffic.typo(t)
            else:
                getattr(traffic, rng.choices(names, weights)[0])(t)
            log.flush(t)
            if len(out) >= 65536:
                f.writelines(out)
                out.clear()
            # Time moves with the lines made, so the log's rate stays near seconds_per_line.
            t += rng.expovariate(1.0 / (seconds_per_line * max(1, log.scheduled - before)))
            if not log.heap and log.scheduled == before:
                break  # nothing can be written any more (never happens with real weights)
        f.writelines(out)
    return truth.to_json(params, attackers)


def write_example(path: str | Path) -> dict[str, object]:
    """Regenerate the committed examples/maillog."""
    return generate(path, **EXAMPLE_PARAMS)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the log file to write")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--fail-share", type=float, default=0.02,
                   help="share of lines that are attackers' AUTH failures (default 0.02)")
    p.add_argument("--pool", type=int, default=500, help="number of attacker addresses")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=datetime.fromisoformat, default=datetime(2026, 12, 1),
                   help="time of the first line (ISO 8601, local time)")
    p.add_argument("--seconds-per-line", type=float, default=0.5)
    p.add_argument("--typo-share", type=float, default=0.0005)
    p.add_argument("--truth", metavar="FILE.json", help="write the ground truth here")
    p.add_argument("--example", action="store_true",
                   help="write the committed example (fixed parameters; others are ignored)")
    a = p.parse_args(argv)
    if a.example:
        truth = write_example(a.out)
    else:
        truth = generate(a.out, a.lines, a.fail_share, a.pool, a.seed, a.start,
                         a.seconds_per_line, a.typo_share)
    if a.truth:
        Path(a.truth).write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    sys.stderr.write(f"{a.out}: {truth['lines']} lines, {truth['failures']} failures "
                     f"({truth['without_address']} without address), "
                     f"{len(truth['hosts'])} addresses, {truth['first']} .. {truth['last']}\n")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
