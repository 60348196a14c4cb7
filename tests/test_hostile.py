"""Hostile input: the attacker writes parts of the lines logban reads, and must never choose
whom it bans.

* Property tests (hypothesis) on the one matching path, ``Matcher.match_line`` and
  ``Matcher.scan``: arbitrary bytes and text never raise; a reported address always occurs in
  the line; every shipped filter's sample lines, with each attacker-controlled field replaced
  by generated text full of fake addresses and of the line's own syntax, report the real
  address or nothing, never an injected one; ``scan`` over a block reports exactly what
  ``match_line`` reports line by line.
* Match time grows linearly with line length for crafted worst-case lines of every filter.
* The injection suite: one explicit case for every attacker-controlled field of every filter.
* The real daemon in a network namespace never bans loopback, its own addresses or the
  ``ignore`` list (IPv4 and IPv6, and IPv4-mapped IPv6 forms), whatever the log says, and
  ``logban ban`` refuses them without ``--force``.

Addresses: the real client of a generated line is in 203.0.113.128/25 or 2001:db8:1::/64
(used nowhere else), injected fakes are in 198.51.100.0/24 and 2001:db8:bad::/48.
"""

from __future__ import annotations

import gc
import ipaddress
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemonproc import ALL_FILTERS
from logban.addr import canonical
from logban.filters import Filter, load_filters
from logban.matcher import MAX_LINE, Matcher
from logban.timestamps import split_header

NOW = datetime(2026, 12, 3, 12, 0, 0)
FILTERS = load_filters(ALL_FILTERS)
BY_NAME = {f.name: f for f in FILTERS}
MATCHER = Matcher(FILTERS)  # the daemon's order: the first filter that matches wins

FAKE4, FAKE6 = "198.51.100.66", "2001:db8:bad::66"
FAKE_PREFIX = ("Dec  3 10:00:00 mx1 postfix/smtpd[1]: warning: unknown[198.51.100.66]: "
               "SASL LOGIN authentication failed:")
FAKES = [FAKE4, f"[{FAKE4}]", f"::ffff:{FAKE4}", f"[::ffff:{FAKE4}]", FAKE6, f"[{FAKE6}]",
         f"IPv6:{FAKE6}", f"[IPv6:{FAKE6}]", "2001:0db8:0bad:0000:0000:0000:0000:0066",
         f"{FAKE4}:25", f"[{FAKE4}]:25", FAKE_PREFIX]

HEX_RUN = re.compile(r"[0-9A-Fa-f:.]+")

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def occurs_in(host: str, line: str) -> bool:
    """Does ``host`` (canonical) occur in ``line`` in one of the text forms a log writes it
    in: as written, fully expanded or otherwise uncompressed IPv6, ``::ffff:`` mapped,
    ``IPv6:`` prefixed, bracketed? Every run of address characters and each of its suffixes
    is canonicalised and compared."""
    for m in HEX_RUN.finditer(line):
        run = m.group()
        for i in range(len(run)):
            if canonical(run[i:]) == host:
                return True
    return False


def test_occurs_in_knows_the_text_forms() -> None:
    assert occurs_in("192.0.2.7", "x relay=[192.0.2.7]")
    assert occurs_in("192.0.2.7", "relay=::ffff:192.0.2.7,port=1")
    assert occurs_in("2001:db8::34", "relay=[IPv6:2001:db8::34]")
    assert occurs_in("2001:db8::103", "SRC=2001:0db8:0000:0000:0000:0000:0000:0103 DST=")
    assert not occurs_in("192.0.2.7", "relay=[192.0.2.70]")
    assert not occurs_in("192.0.2.7", "no address here")


def check_result(line: str, host: str | None) -> None:
    """A reported host is canonical and occurs in the line."""
    if host is None:
        return
    assert canonical(host) == host, (line, host)
    assert occurs_in(host, line), f"reported {host} does not occur in {line!r}"


# ---- arbitrary input never raises ------------------------------------------------------------

_LITERALS = sorted({lit for f in FILTERS for lit in f.literals})
_SAMPLE_WORDS = sorted({w for f in FILTERS for s in f.samples for w in re.split(r"(?<=[ ,])", s.line) if w})
_BYTE_TOKENS = ([lit.encode() for lit in _LITERALS] + [w.encode() for w in _SAMPLE_WORDS]
                + [f.encode() for f in FAKES]
                + [b"\n", b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"\xc3", b"\xe2\x80\xa8", b" ", b"["])

block_bytes = st.lists(st.sampled_from(_BYTE_TOKENS) | st.binary(max_size=12), max_size=40).map(b"".join)


@PROPERTY
@given(st.binary(max_size=300) | block_bytes)
def test_scan_of_arbitrary_bytes_never_raises_and_reports_only_present_addresses(data: bytes) -> None:
    lines = data.split(b"\n")
    for index, text, res in MATCHER.scan(data, NOW):
        assert 0 <= index < len(lines)
        raw = lines[index]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if res.too_long:
            continue
        assert text == raw.decode("utf-8", "replace")
        if res.failure is not None:
            check_result(text, res.failure.host)


@PROPERTY
@given(st.text(max_size=300) | block_bytes.map(lambda b: b.decode("utf-8", "replace")))
def test_match_line_of_arbitrary_text_never_raises(text: str) -> None:
    for line in text.split("\n"):
        res = MATCHER.match_line(line, NOW)
        if res.failure is not None:
            check_result(line, res.failure.host)
            assert res.failure.filter in BY_NAME


# ---- every sample line, attacker fields replaced -------------------------------------------

# Where each filter's attacker-controlled fields sit in its sample lines: group 1 of each
# regex (searched in the whole sample line) is the field. ``name`` fields are reverse-DNS
# names, which the mail daemons validate (letters, digits, dots, hyphens only).
FIELDS: dict[str, list[tuple[str, str]]] = {
    "postfix-sasl": [("name", r"warning: ([^\s\[\]]+)\["),
                     ("reason", r"authentication failed: (.*?)(?:, sasl_username=|$)"),
                     ("sasl_username", r"sasl_username=(.*)$")],
    "sendmail-auth": [("reason", r"authentication failure: ([^,]*), "),
                      ("user", r", user=(.*), relay="),
                      ("name", r"relay=([^\s\[\]]+) \["),
                      ("name", r": ([^\s\[\]]+) \[[^\]]*\](?: \(may be forged\))?: possible")],
    "dovecot": [("user", r"user=<(.*)>, "),
                ("user", r"\((.*),[0-9A-Fa-f:.]+(?:,(?:sasl:[\w.-]*|master|<[^>]*>))*,?\)"
                         r"(?:<[^>]*>)?: (?:Info: )?(?:\w+: )?(?:unknown|Password|pam_auth|invalid)"),
                ("given_password", r"given password: (.*)\)$")],
    "pam": [("ruser", r"ruser=(\S*) rhost="), ("user", r" user=(.*)$")],
    "exim": [("helo", r"\(([^()]*)\) \["), ("set_id", r"set_id=(.*)\)"),
             ("name", r"failed for (?:H=)?([^\s()\[\]]+) ")],
    "courier": [("user", r"cmd: AUTH \S+ (.*)$"), ("user", r"user=(.*), ip=\[")],
    "cyrus-imap": [("user", r"\] \S+ (\S*)"), ("name", r"badlogin: ([^\s\[\]]+) \[")],
    "saslauthd": [("user", r"\[user=(.*?)\]"), ("realm", r"\[realm=(.*?)\]")],
    "kernel-smtp": [],  # the kernel writes every field; see the explicit empty SRC=/DST= cases
}


@dataclass(frozen=True)
class Template:
    filter: str
    sample: int        # index in the filter's samples
    field: str
    before: str        # line text up to the field
    middle: str        # from after the field up to the address (or "" when the field follows it)
    after: str
    field_first: bool  # does the field come before the address?
    orig_field: str
    host_style: str    # how the sample wrote its address: plain, mapped, exploded
    hostless: bool

    def line(self, field: str, host: str) -> str:
        h = _styled(host, self.host_style)
        if self.hostless:
            return self.before + field + self.after
        if self.field_first:
            return self.before + field + self.middle + h + self.after
        return self.before + h + self.middle + field + self.after

    @property
    def id(self) -> str:
        return f"{self.filter}[{self.sample}].{self.field}"


def _styled(host: str, style: str) -> str:
    a = ipaddress.ip_address(host)
    if style == "mapped" and a.version == 4:
        return f"::ffff:{host}"
    if style == "exploded" and a.version == 6:
        return a.exploded
    return host


def _host_span(f: Filter, line: str) -> tuple[int, int, str] | None:
    """The span of the address in ``line`` as the filter's own pattern takes it."""
    _t, body = split_header(line, NOW)
    offset = len(line) - len(body)
    for p in f.patterns:
        m = p.match(body)
        if m and "host" in p.groupindex and m.group("host"):
            raw = m.group("host")
            style = ("mapped" if raw.lower().startswith("::ffff:") else
                     "exploded" if raw.count(":") == 7 and "::" not in raw else "plain")
            return offset + m.start("host"), offset + m.end("host"), style
    return None


def templates() -> list[Template]:
    out = []
    for f in FILTERS:
        hostless = all(s.host is None for s in f.samples)
        for name, rx in FIELDS[f.name]:
            for s in f.samples:
                if s.host is None and (s.user is None or not hostless):
                    continue  # a line that must not match
                m = re.search(rx, s.line)
                if not m:
                    continue
                fs, fe = m.span(1)
                if hostless:
                    out.append(Template(f.name, s.lineno, name, s.line[:fs], "", s.line[fe:], True,
                                        m.group(1), "plain", True))
                    continue
                span = _host_span(f, s.line)
                assert span is not None, f"{f.name} sample {s.lineno} does not match its filter"
                hs, he, style = span
                if fe <= hs:
                    out.append(Template(f.name, s.lineno, name, s.line[:fs], s.line[fe:hs], s.line[he:],
                                        True, m.group(1), style, False))
                elif fs >= he:
                    out.append(Template(f.name, s.lineno, name, s.line[:hs], s.line[he:fs], s.line[fe:],
                                        False, m.group(1), style, False))
    return out


TEMPLATES = templates()


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.name)
def test_every_attacker_field_is_found_in_the_samples(flt: Filter) -> None:
    """Each field listed in FIELDS sits in at least one sample (so a changed sample cannot
    silently drop a field from the property test)."""
    found = {t.field for t in TEMPLATES if t.filter == flt.name}
    assert found == {n for n, _ in FIELDS[flt.name]}


def test_templates_reproduce_their_samples() -> None:
    for t in TEMPLATES:
        s = BY_NAME[t.filter].samples[t.sample]
        if t.hostless:
            assert t.line(t.orig_field, "192.0.2.1") == s.line
            continue
        res = MATCHER.match_line(t.line(t.orig_field, "203.0.113.200"), NOW).failure
        assert res is not None and res.filter == t.filter and res.host == "203.0.113.200", t.id
        res = MATCHER.match_line(t.line(t.orig_field, "2001:db8:1::7"), NOW).failure
        assert res is not None and res.host == "2001:db8:1::7", t.id


def _defang(text: str) -> str:
    """Sample text with every address in it turned into a fake one."""
    text = re.sub(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", FAKE4, text)
    return re.sub(r"\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b", FAKE6, text)


_SYNTAX = ["relay=", "relay=[", ", relay=", "rip=", "rhost=", " rhost=", "ruser=", "user=",
           ", user=", "  user=", "user=<", ">, ", ">, method=PLAIN, rip=", ", lip=", ") [", "]: ",
           "]:", "[", "]", "(", ")", "<", ">", ", ", ",", ":", "=", " ", "  ", "\t", "\r", "\x00",
           "\u2028", "ip=[", "], ip=[", ", port=[1]", ":25", "IPv6:", "::ffff:", ",sasl:login",
           ",master", ",<s>", ")<s>: ", ": 535 ", "(set_id=", "(may be forged)", "x", "jdoe",
           "error,relay=", "badlogin: ", " plaintext ", "] [service=smtp] [realm=",
           "SRC=", " DST=", "Password mismatch", ": unknown user", "authentication failed:",
           "LOGIN FAILED, ", "AUTH failure (LOGIN): "]
_HOSTNAME_TOKENS = ["198.51.100.66", "66.100.51.198", "x", "-", ".", "mail", "example.net", "0", "1"]


def hostile_text(flt: str) -> st.SearchStrategy[str]:
    words = sorted({_defang(w) for s in BY_NAME[flt].samples for w in re.split(r"(?<=[ ,])", s.line) if w})
    token = st.sampled_from(FAKES + _SYNTAX + words) | st.text(max_size=3)
    return st.lists(token, max_size=10).map("".join).map(lambda s: s.replace("\n", ""))


hostname_text = st.lists(st.sampled_from(_HOSTNAME_TOKENS), min_size=1, max_size=6).map("".join)
real_hosts = (st.integers(128, 254).map(lambda i: f"203.0.113.{i}")
              | st.integers(1, 0xffff).map(lambda i: f"2001:db8:1::{i:x}"))


@pytest.mark.parametrize("tpl", TEMPLATES, ids=lambda t: t.id)
def test_injected_fields_never_move_the_address(tpl: Template) -> None:
    text = hostname_text if tpl.field == "name" else hostile_text(tpl.filter)

    @PROPERTY
    @given(text, real_hosts)
    def check(field: str, real: str) -> None:
        line = tpl.line(field, real)
        res = MATCHER.match_line(line, NOW)
        f = res.failure
        if f is None:
            return
        if tpl.hostless:
            assert f.host is None or f.host != FAKE4 and f.host != FAKE6, (line, f)
            assert f.filter == tpl.filter, (line, f)  # no other filter takes a saslauthd line
            return
        assert f.host == real, f"{tpl.id}: reported {f.host}, the client was {real}: {line!r}"
        # and the bytes path agrees
        got = [r.failure for _i, _t, r in MATCHER.scan(line.encode() + b"\n", NOW)]
        assert [g.host if g else None for g in got] == [real], line

    check()


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(TEMPLATES), st.booleans(), real_hosts,
                          st.sampled_from(FAKES + ["jdoe", "x, relay=[198.51.100.66]"])),
                min_size=1, max_size=25),
       st.sampled_from([b"\n", b"\r\n"]))
def test_scan_reports_what_match_line_reports_line_by_line(rows, eol: bytes) -> None:
    """Nothing lost, nothing added: scanning a whole block gives, for every line, exactly the
    failure match_line gives for that line alone, at the right index."""
    lines = []
    for tpl, noise, real, field in rows:
        lines.append(tpl.line(field, real))
        if noise:
            lines.append("Dec  3 10:00:00 mx1 postfix/qmgr[9]: 4AB: removed")
    data = eol.join(ln.encode() for ln in lines) + eol
    want = {}
    for i, ln in enumerate(lines):
        res = MATCHER.match_line(ln, NOW)
        if res.failure is not None:
            want[i] = res.failure
    got = {i: r.failure for i, _t, r in MATCHER.scan(data, NOW) if r.failure is not None}
    assert got == want


# ---- linear time ----------------------------------------------------------------------------

FRAGMENTS = ["a: ", "(", "(a", ")", ", user=", "relay=[", "rip=1, ", ">, ", "<", ",1", "[1] ",
             " rhost=1", "ip=[1], ", "(x) [1] ", ":", "1.", " ", "a", "user=<a>, rip=1, ", ",<a",
             ",sasl:a", "(set_id=", "x [1] (may be forged)", "IPv6:", "badlogin: "]
# CPython's substring search (the literal pre-check) switches algorithm at 30,000 characters,
# a constant-factor step that would read as superlinear between 16 KiB and 64 KiB; both sizes
# are above it.
N = 32 * 1024


def _best(matcher: Matcher, line: str, k: int) -> float:
    match = matcher.match_line
    reps = 1
    best = float("inf")
    for _ in range(k):
        t0 = time.perf_counter()
        for _r in range(reps):
            match(line, NOW)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def _worst_lines(flt: Filter) -> list[tuple[str, str, str]]:
    """(what, line of length ~n, line of length ~4n) for the filter: each sample with a
    fragment repeated at each attacker field, right after the line's tag and at the end."""
    out = []
    for s in flt.samples:
        cuts = {len(s.line)}
        for _name, rx in FIELDS[flt.name]:
            m = re.search(rx, s.line)
            if m:
                cuts.add(m.start(1))
        tag = re.search(r"\]?: ", s.line)
        if tag:
            cuts.add(tag.end())
        for cut in sorted(cuts):
            for fr in FRAGMENTS:
                k = N // len(fr)
                out.append((f"sample {s.lineno} at {cut}: {fr!r}",
                            s.line[:cut] + fr * k + s.line[cut:],
                            s.line[:cut] + fr * (4 * k) + s.line[cut:]))
    return out


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.name)
def test_match_time_grows_linearly(flt: Filter) -> None:
    """A complexity check, not a benchmark: t(4n) / t(n) stays well under quadratic (16)."""
    assert N < MAX_LINE < 4 * N  # the n lines are ones the daemon matches, the 4n ones longer
    matcher = Matcher([flt])
    gc_was = gc.isenabled()
    gc.disable()
    try:
        bad = []
        for what, short, long in _worst_lines(flt):
            t1 = _best(matcher, short, 2)
            assert t1 < 0.05, f"{flt.name} {what}: {t1 * 1e3:.1f} ms for a {len(short)}-byte line"
            t4 = _best(matcher, long, 2)
            ratio = t4 / max(t1, 20e-6)
            if ratio >= 8:  # measure again, slower and steadier, before calling it superlinear
                t1, t4 = _best(matcher, short, 15), _best(matcher, long, 15)
                ratio = t4 / max(t1, 20e-6)
            if ratio >= 8:
                bad.append(f"{what}: {t1 * 1e6:.0f} us -> {t4 * 1e6:.0f} us (x{ratio:.1f})")
    finally:
        if gc_was:
            gc.enable()
    assert not bad, f"{flt.name}: superlinear match time:\n" + "\n".join(bad)


# ---- the injection suite ----------------------------------------------------------------------

R4, R6 = "203.0.113.200", "2001:db8:1::200"
P = "Dec  3 10:00:03 mx1 "
POSTFIX = P + "postfix/smtpd[1201]: warning: {name}[{h}]: SASL LOGIN authentication failed: {reason}"
SENDMAIL = (P + "sendmail[2101]: 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) "
            "SASL(-13): authentication failure: checkpass failed, user={user}, relay={name}[{h}]")
DOVE_LOGIN = (P + "dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, "
              "method=PLAIN, rip={h}, lip=192.0.2.1, TLS, session=<abc>")
DOVE_AUTH = P + "dovecot: auth-worker(4107): pam({user},{h}): pam_authenticate() failed: Authentication failure"
DOVE_AUTH23 = P + "dovecot: auth-worker(4109): Info: sql({user},{h},<sess1>): Password mismatch"
DOVE_AUTH24 = (P + "dovecot: auth({user},{h},sasl:login)<sess2>: Info: sql: Password mismatch "
               "(given password: {password})")
PAM = (P + "saslauthd[3201]: pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= "
       "ruser={ruser} rhost={h}  user={user}")
EXIM = "2026-12-03 10:05:01 plain authenticator failed for {name}({helo}) [{h}]:4444: 535 Incorrect authentication data (set_id={user})"
COURIER = P + 'courieresmtpd: error,relay={h},port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN {user}'
COURIER_LOGIN = P + "imapd: LOGIN FAILED, method=PLAIN, user={user}, ip=[{h}]"
CYRUS = (P + "cyrus/imap[7101]: badlogin: {name}[{h}] plaintext {user} SASL(-13): authentication "
         "failure: checkpass failed")
SASLAUTHD = (P + "saslauthd[3101]: do_auth         : auth failure: [user={user}] [service=smtp] "
             "[realm={realm}] [mech=pam] [reason=PAM auth error]")

DEFAULTS = {"name": "", "reason": "authentication failure", "user": "jdoe", "password": "secret",
            "ruser": "", "helo": "client", "realm": ""}


def _case(template: str, h: str, **fields: str) -> str:
    vals = {**DEFAULTS, **fields}
    if template is POSTFIX and not vals["name"]:
        vals["name"] = "unknown"  # postfix's name for a client without verified reverse DNS
    elif vals["name"]:
        vals["name"] += " "       # the others write "NAME [ADDR]" or just "[ADDR]"
    if template is SENDMAIL and ":" in h:
        h = "IPv6:" + h
    return template.format(h=h, **vals)


# (id, line, expected host or None: the filter that must take it, or None for no match)
INJECTIONS: list[tuple[str, str, str | None, str | None]] = []


def inj(cid: str, template: str, real: str, expect: str | None = "real", **fields: str) -> None:
    flt = {POSTFIX: "postfix-sasl", SENDMAIL: "sendmail-auth", DOVE_LOGIN: "dovecot",
           DOVE_AUTH: "dovecot", DOVE_AUTH23: "dovecot", DOVE_AUTH24: "dovecot", PAM: "pam",
           EXIM: "exim", COURIER: "courier", COURIER_LOGIN: "courier", CYRUS: "cyrus-imap",
           SASLAUTHD: "saslauthd"}[template]
    INJECTIONS.append((cid, _case(template, real, **fields), real if expect == "real" else None,
                       flt if expect == "real" else None))


for real in (R4, R6):
    v = "v6" if ":" in real else "v4"
    # postfix: the SASL reason and sasl_username come from the client
    inj(f"postfix-reason-{v}", POSTFIX, real, reason=f"x unknown[{FAKE4}]: SASL LOGIN authentication failed: x")
    inj(f"postfix-reason-prefix-{v}", POSTFIX, real, reason=FAKE_PREFIX)
    inj(f"postfix-sasl_username-{v}", POSTFIX, real, reason=f"x, sasl_username=a]: [{FAKE4}]")
    inj(f"postfix-sasl_username-prefix-{v}", POSTFIX, real, reason=f"x, sasl_username={FAKE_PREFIX}")
    inj(f"postfix-sasl_username-v6-{v}", POSTFIX, real, reason=f"x, sasl_username=[IPv6:{FAKE6}]:25")
    inj(f"postfix-rdns-numeric-{v}", POSTFIX, real, name=FAKE4)
    # sendmail: user= comes before relay=
    inj(f"sendmail-user-relay-{v}", SENDMAIL, real, user=f"x, relay=[{FAKE4}]")
    inj(f"sendmail-user-relay6-{v}", SENDMAIL, real, user=f"x, relay=[IPv6:{FAKE6}]")
    inj(f"sendmail-user-forged-{v}", SENDMAIL, real, user=f"x, relay=mail.example.net [{FAKE4}] (may be forged)")
    inj(f"sendmail-user-prefix-{v}", SENDMAIL, real, user=FAKE_PREFIX)
    inj(f"sendmail-user-trailing-{v}", SENDMAIL, real, user=f"[{FAKE4}]")
    inj(f"sendmail-rdns-numeric-{v}", SENDMAIL, real, name=FAKE4)
    # dovecot login: user=<...> before rip=
    inj(f"dovecot-login-user-rip-{v}", DOVE_LOGIN, real, user=f"x>, method=PLAIN, rip={FAKE4}, lip=192.0.2.1")
    inj(f"dovecot-login-user-rip6-{v}", DOVE_LOGIN, real, user=f"x>, rip={FAKE6}")
    inj(f"dovecot-login-user-mapped-{v}", DOVE_LOGIN, real, user=f"x>, rip=::ffff:{FAKE4}, ")
    inj(f"dovecot-login-user-prefix-{v}", DOVE_LOGIN, real, user=FAKE_PREFIX)
    inj(f"dovecot-login-user-reason-{v}", DOVE_LOGIN, real,
        user=f"x>, rip={FAKE4}, lip=1 (auth failed, 1 attempts): user=<y")
    # dovecot auth: DB(user,ADDR...) and the given password after it
    for tpl, tag in ((DOVE_AUTH, "22"), (DOVE_AUTH23, "23"), (DOVE_AUTH24, "24")):
        inj(f"dovecot-auth{tag}-user-comma-{v}", tpl, real, user=f"x,{FAKE4}")
        inj(f"dovecot-auth{tag}-user-bare-{v}", tpl, real, user=FAKE4)
        inj(f"dovecot-auth{tag}-user-mapped-{v}", tpl, real, user=f",::ffff:{FAKE4}")
        inj(f"dovecot-auth{tag}-user-fields-{v}", tpl, real, user=f"x,{FAKE6},sasl:plain,<s>")
        inj(f"dovecot-auth{tag}-user-prefix-{v}", tpl, real, user=FAKE_PREFIX)
        inj(f"dovecot-auth{tag}-user-paren-{v}", tpl, real, user=f"x,{FAKE4}): unknown user (")
    inj(f"dovecot-auth24-password-{v}", DOVE_AUTH24, real,
        password=f"x) auth(y,{FAKE4},sasl:login)<s>: Info: sql: Password mismatch")
    inj(f"dovecot-auth24-password-prefix-{v}", DOVE_AUTH24, real, password=FAKE_PREFIX)
    # pam: ruser= and user= around rhost=
    inj(f"pam-ruser-rhost-{v}", PAM, real, ruser=f"rhost={FAKE4}")
    inj(f"pam-ruser-spaced-{v}", PAM, real, ruser=f"x rhost={FAKE4}")
    inj(f"pam-ruser-prefix-{v}", PAM, real, ruser=FAKE_PREFIX)
    inj(f"pam-user-rhost-{v}", PAM, real, user=f"x rhost={FAKE4}")
    inj(f"pam-user-double-{v}", PAM, real, user=f"x  user=y rhost={FAKE6}")
    inj(f"pam-user-prefix-{v}", PAM, real, user=FAKE_PREFIX)
    # exim: the HELO in parentheses, set_id, the reverse name
    inj(f"exim-helo-bracket-{v}", EXIM, real, helo=f"[{FAKE4}]")
    inj(f"exim-helo-close-{v}", EXIM, real, helo=f"x) [{FAKE4}]:25 (y")
    inj(f"exim-helo-535-{v}", EXIM, real, helo=f"x) [{FAKE4}]: 535 Incorrect authentication data (set_id=y")
    inj(f"exim-helo-prefix-{v}", EXIM, real, helo=FAKE_PREFIX)
    inj(f"exim-helo-address-{v}", EXIM, real, helo=FAKE4)
    inj(f"exim-set_id-{v}", EXIM, real, user=f"x) [{FAKE4}]: 535 (")
    inj(f"exim-set_id-prefix-{v}", EXIM, real, user=FAKE_PREFIX)
    inj(f"exim-rdns-numeric-{v}", EXIM, real, name=FAKE4)
    # courier: the AUTH argument, and user= before ip=[...]
    inj(f"courier-cmd-user-{v}", COURIER, real, user=f"x error,relay={FAKE4},port=1")
    inj(f"courier-cmd-user-prefix-{v}", COURIER, real, user=FAKE_PREFIX)
    inj(f"courier-login-user-{v}", COURIER_LOGIN, real, user=f"x, ip=[{FAKE4}]")
    inj(f"courier-login-user-port-{v}", COURIER_LOGIN, real, user=f"x, ip=[{FAKE6}], port=[25]")
    inj(f"courier-login-user-prefix-{v}", COURIER_LOGIN, real, user=FAKE_PREFIX)
    # cyrus: the user after the address, and the reverse name before it
    inj(f"cyrus-user-bracket-{v}", CYRUS, real, user=f"[{FAKE4}]")
    inj(f"cyrus-user-badlogin-{v}", CYRUS, real, user=f"x badlogin: y [{FAKE4}] plain z")
    inj(f"cyrus-user-prefix-{v}", CYRUS, real, user=FAKE_PREFIX)
    inj(f"cyrus-rdns-numeric-{v}", CYRUS, real, name=FAKE4)

# courier writes IPv4 clients in their mapped form
inj("courier-cmd-user-mapped", COURIER, f"::ffff:{R4}", user=f"x error,relay={FAKE4},")
inj("courier-login-user-mapped", COURIER_LOGIN, f"::ffff:{R4}", user=f"x, ip=[::ffff:{FAKE4}]")
# a line whose real address is empty never falls back to an injected one
inj("pam-empty-rhost-user", PAM, "", expect=None, user=f"x rhost={FAKE4}")
inj("pam-empty-rhost-ruser", PAM, "", expect=None, ruser=f"x rhost={FAKE4}")
inj("dovecot-login-empty-rip", DOVE_LOGIN, "", expect=None, user=f"x>, rip={FAKE4}, lip=1")
inj("courier-login-empty-ip", COURIER_LOGIN, "", expect=None, user=f"x, ip=[{FAKE4}]")
inj("exim-empty-address", EXIM, "", expect=None, helo=f"x) [{FAKE4}]:25 (y")
inj("sendmail-empty-relay", SENDMAIL, "", expect=None, user=f"x, relay=[{FAKE4}]")


def _fix_expect() -> None:
    # canonical form of the expected host (courier's mapped cases report the IPv4 address)
    for i, (cid, line, host, flt) in enumerate(INJECTIONS):
        if host is not None:
            INJECTIONS[i] = (cid, line, canonical(host), flt)


_fix_expect()

# the kernel writes every field of its LOG lines: no attacker text, but empty addresses
KERNEL = "Dec  3 10:08:01 mx1 kernel: "
KERNEL_CASES = [
    ("strike-empty-dst", KERNEL + "SMTP_AUTH_FAIL: Strike 3: IN= OUT=eth0 SRC=192.0.2.1 DST= LEN=73 "
     "TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=50000 URGP=0 ", None),
    ("strike-empty-both", KERNEL + "SMTP_AUTH_FAIL: Strike 3: IN= OUT=eth0 SRC= DST= LEN=73 PROTO=TCP ", None),
    ("strike-empty-src", KERNEL + "SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC= DST=203.0.113.200 LEN=73 ",
     "203.0.113.200"),
    ("reject-empty-src", KERNEL + "SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC=00:00:5e:00:53:01 SRC= "
     "DST=192.0.2.1 LEN=60 TOS=0x00 PROTO=TCP SPT=5000 DPT=25 SYN URGP=0 ", None),
    ("bruteforce-empty-src", KERNEL + "SMTP Brute Force Attempt:  IN=eth0 OUT= SRC= DST= LEN=60 ", None),
    ("bruteforce-src6", KERNEL + "SMTP Brute Force Attempt:  IN=eth0 OUT= SRC=2001:0db8:0001:0000:0000:"
     "0000:0000:0200 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 ", "2001:db8:1::200"),
    ("reject-src-not-dst", KERNEL + "SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= SRC=203.0.113.200 "
     "DST=192.0.2.1 LEN=60 ", "203.0.113.200"),
    ("strike-dst-not-src", KERNEL + "SMTP_AUTH_FAIL: Strike 2: IN= OUT=eth0 SRC=192.0.2.1 "
     "DST=203.0.113.200 LEN=73 ", "203.0.113.200"),
]


def test_injection_suite_covers_every_attacker_field() -> None:
    ids = {c[0] for c in INJECTIONS}
    for need in ("postfix-reason", "postfix-sasl_username", "sendmail-user", "dovecot-login-user",
                 "dovecot-auth22-user", "dovecot-auth23-user", "dovecot-auth24-user",
                 "dovecot-auth24-password", "pam-ruser", "pam-user", "exim-helo", "exim-set_id",
                 "courier-cmd-user", "courier-login-user", "cyrus-user"):
        assert any(i.startswith(need) for i in ids), need


# Lines that are ambiguous only under a non-default daemon setting, where refusing them
# would let every client evade counting under the default one.
KNOWN_LIMITS = {
    "exim-helo-535": "needs helo_accept_junk_hosts (exim's default HELO check refuses blanks and "
                     "brackets) and is then ambiguous with a set_id holding the same text; "
                     "refusing such lines would let any client evade counting through set_id",
}


def _params() -> list[object]:
    out = []
    for c in INJECTIONS:
        why = next((w for k, w in KNOWN_LIMITS.items() if c[0].startswith(k)), None)
        marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
        out.append(pytest.param(*c, id=c[0], marks=marks))
    return out


@pytest.mark.parametrize("cid,line,host,flt", _params())
def test_injection(cid: str, line: str, host: str | None, flt: str | None) -> None:
    """The fake is never reported; the real address is, or the line does not match."""
    f = MATCHER.match_line(line, NOW).failure
    if f is not None:
        assert f.host not in (FAKE4, FAKE6), f"{cid}: the injected address was reported: {line!r}"
        assert f.host == host, f"{cid}: reported {f.host}, want {host}: {line!r}"
        assert f.filter == flt, f"{cid}: taken by {f.filter}: {line!r}"


@pytest.mark.parametrize("cid,line,host", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernel_lines_with_empty_addresses(cid: str, line: str, host: str | None) -> None:
    f = MATCHER.match_line(line, NOW).failure
    assert (f.host if f else None) == host, (cid, f)
    if f:
        assert f.filter == "kernel-smtp"


@pytest.mark.parametrize("user", [FAKE4, f"[{FAKE4}]", FAKE_PREFIX, f"x] [realm=] [rip={FAKE4}",
                                  f"x] [service=smtp] [realm={FAKE6}"])
def test_saslauthd_user_and_realm_never_give_an_address(user: str) -> None:
    for line in (_case(SASLAUTHD, "", user=user), _case(SASLAUTHD, "", realm=user)):
        f = MATCHER.match_line(line, NOW).failure
        assert f is not None and f.filter == "saslauthd" and f.host is None, (line, f)


def test_benign_injection_lines_match() -> None:
    """The templates of the suite are real lines: with harmless fields they are counted."""
    for tpl, flt in ((POSTFIX, "postfix-sasl"), (SENDMAIL, "sendmail-auth"), (DOVE_LOGIN, "dovecot"),
                     (DOVE_AUTH, "dovecot"), (DOVE_AUTH23, "dovecot"), (DOVE_AUTH24, "dovecot"),
                     (PAM, "pam"), (EXIM, "exim"), (COURIER, "courier"),
                     (COURIER_LOGIN, "courier"), (CYRUS, "cyrus-imap")):
        for real in (R4, R6):
            f = MATCHER.match_line(_case(tpl, real), NOW).failure
            assert f is not None and f.filter == flt and f.host == real, (tpl, real, f)


# ---- never ban what must not be banned: the real daemon --------------------------------------

def _never_ban_lines() -> tuple[list[str], list[str]]:
    """(log lines, the protected addresses they name): loopback, the namespace's own veth
    addresses, the ignore list, each also in the forms logs write: IPv4-mapped IPv6, the
    kernel's expanded IPv6, sendmail's IPv6: prefix."""
    from netns import SERVER4, SERVER6
    pf = ("Dec  3 10:00:0{i} mx1 postfix/smtpd[1]: warning: unknown[{a}]: SASL LOGIN "
          "authentication failed: UGFzc3dvcmQ6")
    courier = ('Dec  3 10:00:0{i} mx1 courieresmtpd: error,relay={a},port=1,msg="535 Authentication '
               'failed.",cmd: AUTH LOGIN jdoe')
    dove = ("Dec  3 10:00:0{i} mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts): "
            "user=<jdoe>, method=PLAIN, rip={a}, lip=192.0.2.1")
    sendmail = ("Dec  3 10:00:0{i} mx1 sendmail[2]: 4B3A1aB1002101: AUTH failure (LOGIN): "
                "authentication failure (-13) SASL(-13): authentication failure: checkpass failed, "
                "user=jdoe, relay=[{a}]")
    kernel = ("Dec  3 10:00:0{i} mx1 kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= SRC={a} "
              "DST=192.0.2.1 LEN=60 PROTO=TCP SPT=5000 DPT=25 SYN URGP=0 ")
    cases = [
        (pf, "127.0.0.1"), (pf, "::1"), (courier, "::ffff:127.0.0.1"),
        (pf, SERVER4), (pf, SERVER6), (courier, f"::ffff:{SERVER4}"), (dove, f"::ffff:{SERVER4}"),
        (sendmail, f"IPv6:::ffff:{SERVER4}"), (kernel, ipaddress.ip_address(SERVER6).exploded),
        (pf, "203.0.113.5"), (courier, "::ffff:203.0.113.6"), (dove, "203.0.113.7"),
        (pf, "2001:db8:ffff::5"), (kernel, "2001:0db8:ffff:0000:0000:0000:0000:0009"),
        (sendmail, "IPv6:2001:db8:ffff::10"),
        (pf, "198.51.100.200"), (dove, "::ffff:198.51.100.201"),  # ignored as ::ffff:198.51.100.128/121
    ]
    lines = [tpl.format(i=i, a=a) for tpl, a in cases for i in range(6)]
    return lines, sorted({canonical(a) or a for _t, a in cases})


def test_daemon_never_bans_loopback_own_addresses_or_the_ignore_list(tmp_path: Path) -> None:
    from conftest import require_root
    from daemonproc import Daemon, write_config
    from netns import SERVER4, SERVER6, in_netns, netns_pair

    require_root()
    import yaml

    lines, protected = _never_ban_lines()
    for a in protected:  # the test's own premise: every line is understood by a filter
        assert any(MATCHER.match_line(ln, NOW).failure and MATCHER.match_line(ln, NOW).failure.host == a
                   for ln in lines), a
    with netns_pair() as (server, _client):
        log = tmp_path / "maillog"
        log.write_text("")
        cfg = write_config(tmp_path, [{"file": str(log)}])
        doc = yaml.safe_load(cfg.read_text())
        doc["ignore"] = ["127.0.0.0/8", "::1", "203.0.113.0/25", "2001:db8:ffff::/48",
                         "::ffff:198.51.100.128/121"]
        cfg.write_text(yaml.safe_dump(doc))
        d = Daemon(cfg, netns=server.name).start()
        try:
            def banned() -> set[str]:
                from logban.actions.ipset import IPSetAction
                with in_netns(server.name):
                    a = IPSetAction()
                    a.set_info("logban4")
                try:
                    return set(a.kernel_entries("logban4")) | set(a.kernel_entries("logban6"))
                finally:
                    a.stop()

            with open(log, "a") as f:
                f.write("\n".join(lines) + "\n")
                # then an address that must be banned, so we know every line above was read
                f.write("".join(f"Dec  3 10:00:0{i} mx1 postfix/smtpd[1]: warning: unknown[198.51.100.7]: "
                                f"SASL LOGIN authentication failed: x\n" for i in range(3)))
            d.wait_for(lambda: "198.51.100.7" in banned(), what="the control ban")
            got = banned()
            assert got == {"198.51.100.7"}, sorted(got - {"198.51.100.7"})
            st = d.status()
            assert st["ignored"] == len(lines), st["ignored"]
            assert st["jails"]["smtp-auth"]["bans_active"] == 1

            # logban ban refuses them too, in every form, unless --force
            for a in ["127.0.0.1", "::1", "::ffff:127.0.0.1", SERVER4, f"::ffff:{SERVER4}", SERVER6,
                      ipaddress.ip_address(SERVER6).exploded, "203.0.113.5", "::ffff:203.0.113.6",
                      "2001:db8:ffff::9", "2001:0db8:ffff:0000:0000:0000:0000:0009",
                      "198.51.100.130", "::ffff:198.51.100.131"]:
                p = d.cli("ban", a, check=False)
                assert p.returncode == 1 and "use --force" in p.stderr, (a, p.stderr)
            assert banned() == {"198.51.100.7"}
            d.cli("ban", "::ffff:203.0.113.6", "--force")
            assert "203.0.113.6" in banned()  # the mapped form is banned as the IPv4 address
            d.cli("unban", "203.0.113.6")
            assert banned() == {"198.51.100.7"}
        finally:
            d.stop()
