"""Third review: faults a newcomer and two breakers found, each kept from coming back.

Addresses are documentation ranges; names are placeholders.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import require_root
from daemonproc import Daemon, write_config
from logban.addr import canonical
from logban.state import BanRecord, State
from netns import netns, set_members
from variantcheck import MATCHER, NOW, check

S = "Dec  3 10:00:01 mx1 "
PF = S + "postfix/smtpd[811]: warning: unknown[{}]: SASL LOGIN authentication failed: x"


# --- addresses no connection comes from are no failure and no ban ---------------------------

@pytest.mark.parametrize("text", ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0", "[::]",
                                  "255.255.255.255", "224.0.0.1", "239.255.255.250", "ff02::1",
                                  "IPv6:ff05::2"])
def test_never_a_client_address(text: str) -> None:
    assert canonical(text) is None
    check(PF.format(text), None)


@pytest.mark.parametrize("text, want", [("192.0.2.1", "192.0.2.1"), ("1.0.0.0", "1.0.0.0"),
                                        ("::ffff:192.0.2.1", "192.0.2.1"), ("2001:db8::1", "2001:db8::1"),
                                        ("255.255.255.254", "255.255.255.254")])
def test_neighbours_of_those_stay_addresses(text: str, want: str) -> None:
    assert canonical(text) == want
    check(PF.format(text), want)


def test_a_saved_ban_of_a_non_client_address_is_dropped_not_fatal(tmp_path: Path) -> None:
    # An older logban banned 0.0.0.0 from a log line; the kernel set refuses it, and the
    # daemon died at every start while refilling the set.
    require_root()
    log = tmp_path / "maillog"
    log.write_text("")
    cfg = write_config(tmp_path, [{"file": str(log)}])
    now = time.time()
    st = State(tmp_path / "state" / "logban.db")
    st.commit([BanRecord("0.0.0.0", "smtp-auth", now, now + 3600, 3, "postfix-sasl", 1),
               BanRecord("::", "smtp-auth", now, now + 3600, 3, "postfix-sasl", 1),
               BanRecord("192.0.2.7", "smtp-auth", now, now + 3600, 3, "postfix-sasl", 1)],
              [], {}, now)
    st.close()
    with netns("drop") as ns:
        d = Daemon(cfg, netns=ns).start()
        try:
            assert set(set_members(ns, "logban4")) == {"192.0.2.7"}
            assert set_members(ns, "logban6") == {}
            assert [b["address"] for b in d.bans()] == ["192.0.2.7"]
        finally:
            d.stop()
        assert "saved ban of '0.0.0.0' (jail smtp-auth) is no client address; dropped" in d.log_text()
    db = sqlite3.connect(tmp_path / "state" / "logban.db")
    assert [r[0] for r in db.execute("SELECT address FROM bans")] == ["192.0.2.7"]


def test_manual_ban_of_a_non_client_address_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("")
    d = Daemon(write_config(tmp_path, [{"file": str(log)}], action="dry-run")).start()
    try:
        for addr in ("0.0.0.0", "::", "224.0.0.1"):
            p = d.cli("ban", addr, check=False)
            assert p.returncode != 0 and "is an address no client connects from" in p.stderr, p
        assert d.bans() == []
    finally:
        d.stop()


# --- a line cut by a syslog size limit (bytes) right after an address ----------------------

DOVE = S + "dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{}>, method=PLAIN, rip={}{}"


def test_cut_guard_counts_bytes_not_characters() -> None:
    # 1024 bytes but 577 characters: 203.0.113.123 cut to 203.0.113.12.
    line = DOVE.format("\u00e9" * 447, "203.0.113.12", "")
    assert len(line.encode()) >= 1000 > len(line)
    check(line, None)
    check(DOVE.format("\u00e9" * 447, "203.0.113.12", ", lip=192.0.2.1, mpid=0, TLS, session=<Xk3hTQ8NqsPAAAAB>"),
          "203.0.113.12")
    check(DOVE.format("\u00e9" * 100, "203.0.113.12", ""), "203.0.113.12")  # short: whole


@pytest.mark.parametrize("line", [
    # the cut falls right after a fake the attacker wrote in the user field
    S + "sendmail[2101]: 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) "
        "SASL(-13): authentication failure: checkpass failed, user=" + "A" * 880 + ", relay=[198.51.100.9]",
    S + "imapd: LOGIN FAILED, user=" + "A" * 950 + ", ip=[198.51.100.9]",
    DOVE.format("A" * 900, "198.51.100.9", ", "),
])
def test_cut_right_after_a_closing_bracket_or_comma_is_not_trusted(line: str) -> None:
    assert len(line) >= 1000
    check(line, None)


@pytest.mark.parametrize("line", [
    # the cut falls inside the fixed text the daemon writes after an address
    S + "sendmail[2101]: 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) "
        "SASL(-13): authentication failure: checkpass failed, user=" + "A" * 880 + ", relay=[198.51.100.77] (may",
    S + "imapd: LOGIN FAILED, user=" + "A" * 900 + ", ip=[::ffff:198.51.100.77], port=[12",
])
def test_cut_inside_the_text_after_the_address_is_not_trusted(line: str) -> None:
    check(line, None)


@pytest.mark.parametrize("line, host", [
    # invalid bytes (one U+FFFD each) count as the one byte they were: a 400-byte line was
    # cut by no syslog limit
    (S + "imapd: LOGIN FAILED, user=" + "\ufffd" * 330 + ", ip=[192.0.2.9]", "192.0.2.9"),
    (S + "sendmail[2101]: 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): "
         "authentication failure: checkpass failed, user=" + "\ufffd" * 330 + ", relay=[192.0.2.9]", "192.0.2.9"),
    # long, with the address well before the end: whole
    (DOVE.format("A" * 1000, "192.0.2.9", ", lip=192.0.2.1, mpid=0, TLS, session=<Xk3hTQ8NqsPAAAAB>"), "192.0.2.9"),
])
def test_attackers_own_lines_of_ordinary_length_still_count(line: str, host: str) -> None:
    check(line, host)


# --- filter wordings found in the field ---------------------------------------------------

CY = S + "cyrus/pop3[7101]: badlogin: client.example.net [192.0.2.1] "
SM = (S + "sendmail[2101]: 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) "
      "SASL(-13): authentication failure: checkpass failed, user=jdoe, relay=")


@pytest.mark.parametrize("line, host, user", [
    # saslauthd builds that write the function name empty: sixteen blanks before ": "
    (S + "saslauthd[1119]:                 : auth failure: [user=jdoe] [service=smtp] [realm=] "
         "[mech=pam] [reason=PAM auth error]", None, "jdoe"),
    ("2026-12-03T10:00:01.398047-04:00 mx1 saslauthd[4429]:                 : auth failure: "
     "[user=jdoe] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]", None, "jdoe"),
    # cyrus pop3d: Cyrus SASL's bare error text, no user in 2.x
    (CY + "PLAIN authentication failure", "192.0.2.1", None),
    (CY + "PLAIN user not found", "192.0.2.1", None),
    (CY + "plaintext jdoe authentication failure", "192.0.2.1", "jdoe"),
    (CY + "PLAIN (generic) [authentication failure]", "192.0.2.1", "generic"),
    # ... and its outages, bare or bracketed, are none
    (CY + "PLAIN generic failure", None, None),
    (CY + "PLAIN (jdoe) [generic failure]", None, None),
    (CY + "PLAIN (jdoe) [remote authentication server unavailable]", None, None),
    (CY + "PLAIN (null) [no mechanism available]", None, None),
    (CY + "PLAIN transient failure", None, None),
    # a user name holding outage words does not make an attack an outage
    (CY + "PLAIN (x) [generic failure) [authentication failure]", "192.0.2.1", "x"),
    (CY + "plaintext generic failure SASL(-13): authentication failure: checkpass failed", "192.0.2.1", "generic"),
    # sendmail with an ident answer and no reverse name: relay=user@[addr]
    (SM + "root@[192.0.2.50]", "192.0.2.50", "jdoe"),
    (SM + "root@client.example.net [192.0.2.51]", "192.0.2.51", "jdoe"),
    (S + "sendmail[2105]: 4B3A1aB1002105: root@[192.0.2.70]: possible SMTP attack: command=AUTH, count=3",
     "192.0.2.70", None),
])
def test_field_wordings(line: str, host: str | None, user: str | None) -> None:
    res = MATCHER.match_line(line, NOW)
    if host is None and user is not None:  # saslauthd: a failure without an address
        assert res.failure is not None and res.failure.host is None and res.failure.user == user, line
        return
    check(line, host, user)


# --- configuration checks that were silent --------------------------------------------------

CFG = """\
state_dir: ":memory:"
socket: s.sock
sources:
  - file: {log}
jails:
  smtp-auth:
    filters: [postfix-sasl]
    maxretry: 3
    bantime: 2h
    action: dry-run
actions:
  dry-run: {{}}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    from logban.config import ConfigError, load_config
    p = tmp_path / "logban.yaml"
    p.write_text(text)
    try:
        load_config(p)
    except ConfigError as e:
        return [x.replace(str(p), "F") for x in e.problems]
    return []


def test_late_keys_are_checked_too(tmp_path: Path) -> None:
    base = CFG.format(log=tmp_path / "maillog")
    assert _problems(tmp_path, base) == []
    got = _problems(tmp_path, base + "correlate_window: banana\nmax_tracked: -5\n")
    assert [g.split(": ")[0:2] for g in got] == [["F:14", "max_tracked"], ["F:13", "correlate_window"]]


def test_duplicate_keys_and_unknown_filter_vars(tmp_path: Path) -> None:
    text = CFG.format(log=tmp_path / "maillog").replace(
        "    maxretry: 3\n", "    maxretry: 3\n    maxretry: 5\n")
    text += "filter_vars: {nosuch: {a: b}}\n"
    got = _problems(tmp_path, text)
    assert "F:9: jails.smtp-auth.maxretry: given twice; the later value would silently win, keep one" in got
    assert any(g.startswith("F:14: filter_vars.nosuch: no filter named 'nosuch'") for g in got), got
    assert len(got) == 2
    # YAML merge keys may repeat
    merged = ("base: &b {maxretry: 3}\nmore: &m {findtime: 20m}\n"
              + CFG.format(log=tmp_path / "maillog").replace("    maxretry: 3\n", "    <<: *b\n    <<: *m\n"))
    assert [g for g in _problems(tmp_path, merged) if "given twice" in g] == []


def test_a_ceiling_below_bantime_is_a_warning_only_when_written(tmp_path: Path) -> None:
    from logban.config import load_config
    p = tmp_path / "logban.yaml"
    p.write_text(CFG.format(log=tmp_path / "maillog").replace("bantime: 2h", "bantime: 30d"))
    assert load_config(p).warnings == []  # the default 4w ceiling: bans simply last 30d
    p.write_text(CFG.format(log=tmp_path / "maillog").replace(
        "    bantime: 2h\n", "    bantime: 2h\n    bantime_max: 1h\n"))
    assert load_config(p).warnings == [
        f"{p}:10: jails.smtp-auth.bantime_max: is shorter than bantime (2h): every ban lasts "
        "bantime, repeat offenders get no longer ones"]


def test_a_source_in_a_missing_directory_is_a_warning(tmp_path: Path) -> None:
    from logban.config import load_config
    p = tmp_path / "logban.yaml"
    p.write_text(CFG.format(log=tmp_path / "nosuch" / "maillog"))
    cfg = load_config(p)
    assert cfg.warnings == [f"{p}:4: sources[0].file: the directory of {tmp_path}/nosuch/maillog "
                            "does not exist (yet); logban waits for it"]
    p.write_text(CFG.format(log=tmp_path / "maillog"))
    assert load_config(p).warnings == []


# --- the CLI and the daemon's answers -------------------------------------------------------

def _dry_daemon(tmp_path: Path) -> tuple[Daemon, Path]:
    log = tmp_path / "maillog"
    log.write_text("")
    return Daemon(write_config(tmp_path, [{"file": str(log)}], action="dry-run")).start(), log


def test_manual_ban_answers(tmp_path: Path) -> None:
    d, log = _dry_daemon(tmp_path)
    try:
        for bad in ("-5m", ""):  # argparse took -5m for an option; "" became the bantime
            p = d.cli("ban", "192.0.2.5", "--for", bad, check=False)
            assert p.returncode == 1 and f"{bad!r} is not a duration" in p.stderr, p
        p = d.cli("unban", "192.0.2.5", "--jail", "nosuch", check=False)
        assert p.returncode == 1 and "unknown jail 'nosuch'" in p.stderr, p
        with open(log, "a") as f:
            f.write("".join(PF.format("192.0.2.6") + "\n" for _ in range(3)))
        d.wait_for(lambda: d.bans(), what="the counted ban")
        out = d.cli("ban", "192.0.2.6", "--for", "2h").stdout
        assert out.startswith("banned 192.0.2.6 in jail smtp-auth for 2h"), out
        assert "(this replaces its ban of 3 failures by postfix-sasl, 1h left)" in out, out
        [b] = d.bans()
        assert (b["failures"], b["filter"]) == (3, "manual")
        d.cli("ban", "192.0.2.7", "--jail", "manual", "--for", "0")
        st = d.status()
        assert st["jails"]["smtp-auth"]["bans_total"] == 2  # one counted, one manual
        assert st["jails"]["manual"] == {"bans_active": 1, "bans_total": 1}
        human = d.cli("status").stdout
        assert "{'" not in human and "None" not in human, human
    finally:
        d.stop()
    assert d.log_text().rstrip().endswith("stopped"), d.log_text()[-500:]


def test_unused_set_is_a_warning_in_status(tmp_path: Path) -> None:
    require_root()
    log = tmp_path / "maillog"
    log.write_text("")
    with netns("unused") as ns:
        d = Daemon(write_config(tmp_path, [{"file": str(log)}]), netns=ns).start()
        try:
            st = d.status()
            assert st["warnings"] == [
                f"ipset {n} is used by no firewall rule, so its bans block nothing: load the "
                "rule `logban rules` prints" for n in ("logban4", "logban6")]
            assert st["problems"] == []
            from logban import rules
            from netns import run_in
            fixed = rules.fixed_rules("logban4", "logban6")
            run_in(ns, "iptables-restore", "--noflush", input=fixed["iptables"])
            run_in(ns, "ip6tables-restore", "--noflush", input=fixed["ip6tables"])
            assert d.status()["warnings"] == []
        finally:
            d.stop()


def _test_filter(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logban", "test-filter", *args],
                          capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]


def test_test_filter_refusals_are_one_sentence(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text(PF.format("192.0.2.1") + "\n")
    p = _test_filter("--since", "-1h", str(log))
    assert p.returncode == 2 and p.stderr.startswith("logban: --since picks where to start in the journal"), p
    p = _test_filter("--json", "-", stdin=None, close_fds=True, pass_fds=(),
                     preexec_fn=lambda: __import__("os").close(0))
    assert p.returncode == 2 and "standard input is closed" in p.stderr, p
    p = _test_filter("--now", "2026-12-03T12:00:00", "--json", str(log))
    assert p.returncode == 0 and '"host": "192.0.2.1"' in p.stdout


def test_dash_values_are_joined_to_their_option() -> None:
    from logban.cli import _join_dash_values
    assert _join_dash_values(["test-filter", "--journal", "--since", "-1h"]) == \
        ["test-filter", "--journal", "--since=-1h"]
    assert _join_dash_values(["ban", "x", "--for", "2h", "--jail", "-j"]) == \
        ["ban", "x", "--for", "2h", "--jail", "-j"]
    assert _join_dash_values(["ban", "x", "--for"]) == ["ban", "x", "--for"]
    assert _join_dash_values(["test-filter", "--", "--since", "-x.log"]) == \
        ["test-filter", "--", "--since", "-x.log"]


# --- timestamps -------------------------------------------------------------------------------

def _stamp(line: str, now: datetime = datetime(2026, 12, 3, 12, 0, 0)) -> str | None:
    from logban.timestamps import iso, split_header
    t, _ = split_header(line, now)
    return iso(t) if t else None


@pytest.mark.parametrize("line, want", [
    ("Thu 2026-12-03 10:00:00 UTC mx1 x", "2026-12-03T10:00:00+00:00"),   # short-full: UTC is UTC
    ("Thu 2026-12-03 10:00:00 GMT mx1 x", "2026-12-03T10:00:00+00:00"),
    ("Thu 2026-12-03 10:00:00 +0200 mx1 x", "2026-12-03T10:00:00+02:00"),
    ("Thu 2026-12-03 10:00:00 CET mx1 x", "2026-12-03T10:00:00"),          # a name: local, as written
    ("2026-12-03T08:00:60Z mx1 x", "2026-12-03T08:00:59+00:00"),           # leap second
    ("<22>1 2026-12-31T23:59:60Z mx1 app 1 - - x", "2026-12-31T23:59:59+00:00"),
    ("Dec 31 23:59:60 mx1 x", "2025-12-31T23:59:59"),
    ("Dec  3 10:00:00 2019 postfix/smtpd[1]: x", "2026-12-03T10:00:00"),   # a host named 2019
    ("Dec  3 10:00:00 2026 postfix/smtpd[1]: x", "2026-12-03T10:00:00"),
    ("Thu Dec  3 10:00:00 2019 postfix/smtpd[1]: x", "2019-12-03T10:00:00"),  # ctime: a year
    ("Dec  3 10:00:00 2019 mx1 postfix/smtpd[1]: x", "2019-12-03T10:00:00"),  # a host follows: a year
])
def test_stamps(line: str, want: str) -> None:
    assert _stamp(line) == want


def test_an_archived_line_with_its_year_still_matches() -> None:
    line = "Dec  3 10:00:01 2025 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x"
    check(line, "192.0.2.1", when="2025-12-03T10:00:01", now=datetime(2027, 1, 5))


def test_numeric_hostname_stays_in_the_text() -> None:
    from logban.timestamps import split_header
    assert split_header("Dec  3 10:00:00 2019 postfix/smtpd[1]: x", datetime(2026, 12, 3))[1] == \
        "2019 postfix/smtpd[1]: x"


@pytest.mark.parametrize("line", ["[99999999.000000] SMTP_AUTH_REJECTED: x",
                                  "6,1234,99999999999999,-;SMTP_AUTH_REJECTED: x"])
def test_uptime_stamps_never_lie_after_now(line: str) -> None:
    # boot time + a huge uptime (another host's log, a fixed --now in the past) would land
    # in the future, where no findtime window lets the failure age out
    now = datetime(2026, 12, 3, 12, 0, 0)
    from logban.timestamps import split_header
    t, _ = split_header(line, now)
    assert t is not None and t.timestamp() == now.timestamp()


@pytest.mark.parametrize("line, host, user", [
    # dovecot 1.x login process wordings
    (S + "dovecot: pop3-login: Aborted login (1 authentication attempts): user=<jdoe>, method=PLAIN, "
         "rip=::ffff:192.0.2.41, lip=::ffff:192.0.2.1, secured", "192.0.2.41", "jdoe"),
    (S + "dovecot: imap-login: Disconnected (3 authentication attempts): user=<jdoe>, method=LOGIN, "
         "rip=192.0.2.42, lip=192.0.2.1", "192.0.2.42", "jdoe"),
    (S + "dovecot: imap-login: Aborted login (tried to use disabled plaintext authentication): "
         "method=PLAIN, rip=192.0.2.43, lip=192.0.2.1", "192.0.2.43", None),
    (S + "dovecot: pop3-login: Aborted login (0 authentication attempts): user=<jdoe>, method=PLAIN, "
         "rip=192.0.2.44, lip=192.0.2.1", None, None),
    (S + "dovecot: pop3-login: Login: user=<(1 authentication attempts)>, method=PLAIN, "
         "rip=192.0.2.45, lip=192.0.2.1", None, None),
])
def test_dovecot_1x_wordings(line: str, host: str | None, user: str | None) -> None:
    check(line, host, user)


CO = S + 'courieresmtpd[26762]: error,relay=::ffff:192.0.2.11,msg="535 Authentication failed.",cmd: '


@pytest.mark.parametrize("line, host, user", [
    # dovecot 2.4 auth workers write "request [N]: " after the ids
    ("Dec  3 10:00:01 auth-worker(jdoe@example.org,192.0.2.3)<4001084><CvN+E95Uf4e7eEnj>: request [12]: "
     "Info: sql: Password mismatch (given password: x)", "192.0.2.3", "jdoe@example.org"),
    (S + "dovecot: auth-worker(?,192.0.2.4)<4001084>: request [3]: Info: sql: unknown user", "192.0.2.4", None),
    (S + "dovecot: auth-worker(jdoe,192.0.2.5,sasl:plain)<4001084><CvN+E95Uf4e7eEnj>: request [3]: Info: pam: "
         "pam_authenticate() failed: Authentication failure (Password mismatch?)", "192.0.2.5", "jdoe"),
    # dovecot 2.3 names the prefix after the SASL mechanism or the passdb's own name
    (S + "dovecot: auth: Info: cram-md5(jdoe,192.0.2.6,<AbCd>): Password mismatch", "192.0.2.6", "jdoe"),
    (S + "dovecot: auth: Info: scram-sha-256(jdoe,192.0.2.7,<AbCd>): Password mismatch", "192.0.2.7", "jdoe"),
    (S + "dovecot: auth: Info: users(jdoe,192.0.2.8,<AbCd>): unknown user", "192.0.2.8", "jdoe"),
    # courier writes the user it decoded after the start of the initial response
    (CO + "AUTH PLAIN AGFkbWluAGZhaWxlZA== admin", "192.0.2.11", "admin"),
    (CO + "AUTH LOGIN dXNlcm5hbWU= username", "192.0.2.11", "username"),
    (CO + "AUTH LOGIN jdoe", "192.0.2.11", "jdoe"),
    (CO + "AUTH PLAIN AGpkb2UAc2VjcmV0", "192.0.2.11", None),   # base64 of user and password
    (CO + "AUTH PLAIN", "192.0.2.11", None),
    (CO + "AUTH PLAIN AGpkb2UAc2VjcmV0 ", "192.0.2.11", None),  # a blank after it: still no user
    (CO + "AUTH Plain AGpkb2UAc2VjcmV0", "192.0.2.11", None),
    (S + "dovecot: auth-worker(jdoe,192.0.2.9)<4001084><CvN+E95Uf4e7eEnj>: Info: request [3]: sql: "
         "Password mismatch", "192.0.2.9", "jdoe"),
])
def test_daemon_wordings_from_bug_reports(line: str, host: str, user: str | None) -> None:
    check(line, host, user)
