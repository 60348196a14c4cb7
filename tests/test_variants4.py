"""Fourth sweep of variants: what annotated sample logs of other mail daemons showed when run
line by line, turned into our own lines: Cyrus SASL outages in cyrus badlogin lines, dovecot
2.4 auth-worker request ids, and Solaris syslogd's "[ID msgid facility.priority]" after the tag.

Each row is one line as a mail host's log holds it and the address it must report (or None);
where it matters, the user and the wall-clock time as written in the line. All filters run as
``logban test-filter`` runs them. Addresses are documentation ranges; names are placeholders.
"""

from __future__ import annotations

import time

import pytest

from variantcheck import ANY, MATCHER, NOW, check

S = "Dec  3 10:00:01 mail "


# --- cyrus: Cyrus SASL's outage words are no attack, as for postfix and sendmail ----------------

CY = S + "cyrus/imap[7101]: badlogin: client.example.net [192.0.2.1] "


@pytest.mark.parametrize("rest,host,user", [
    # saslauthd gone, a database or directory down, a mechanism the server cannot serve
    ("plaintext bob SASL(-1): generic failure: checkpass failed", None, None),
    ("PLAIN (bob) [SASL(-1): generic failure: Password verification failed]", None, None),
    ("PLAIN [SASL(-4): no mechanism available: No worthy mechs found]", None, None),
    ("LOGIN (bob) [SASL(-24): remote authentication server unavailable: x]", None, None),
    ("plaintext bob SASL(-2): no memory available: x", None, None),
    ("PLAIN (bob) [SASL(-8): transient failure (e.g., weak key): x]", None, None),
    # wrong password or unknown user still count
    ("plaintext bob SASL(-13): authentication failure: checkpass failed", "192.0.2.1", "bob"),
    ("PLAIN (bob) [SASL(-20): user not found: no secret in database]", "192.0.2.1", "bob"),
    ("PLAIN [SASL(-13): authentication failure: Password verification failed]", "192.0.2.1", None),
    # the user name is the client's: a fake outage in it does not hide the real failure ...
    ("plaintext SASL(-1):generic SASL(-13): authentication failure: checkpass failed", "192.0.2.1", ANY),
    ("PLAIN (bob) [SASL(-13): user not found: user: x SASL(-1): generic failure property: cmusaslsecretPLAIN not found in sasldb]", "192.0.2.1", "bob"),
    # ... and a real outage with a user name holding "SASL(" is counted (its own address)
    ("plaintext SASL(x) SASL(-1): generic failure: checkpass failed", "192.0.2.1", ANY),
])
def test_cyrus_sasl_outage_is_no_failure(rest: str, host: str | None, user: object) -> None:
    check(CY + rest, host, user)


@pytest.mark.parametrize("filler,host", [
    ("SASL(" * 12000, "192.0.2.1"),   # many SASL( texts: not the one cyrus wrote, counted
    ("SASL" * 15000, None),            # no other SASL( text: the outage stands
    ("S" * 60000, None),
])
def test_cyrus_outage_check_is_linear(filler: str, host: str | None) -> None:
    line = CY + "plaintext " + filler + " SASL(-1): generic failure: x"
    t0 = time.perf_counter()
    got = MATCHER.match_line(line, NOW).failure
    assert time.perf_counter() - t0 < 0.5
    assert (got.host if got else None) == host


# --- dovecot 2.4: an auth worker writes its request id before the session id -----------------

@pytest.mark.parametrize("line,host,user", [
    (S + "dovecot: auth-worker(bob@example.org,198.51.100.7,sasl:plain)<4711><Ab1+Cd2e>: Info: pam: pam_authenticate() failed: Authentication failure (Password mismatch?)", "198.51.100.7", "bob@example.org"),
    (S + "dovecot: auth-worker(bob,2001:db8::7,sasl:login)<4711><Ab1+Cd2e>: Info: sql: Password mismatch", "2001:db8::7", "bob"),
    (S + "dovecot: auth-worker(bob,198.51.100.7)<4711>: Info: passwd-file: unknown user", "198.51.100.7", "bob"),
    # the outage stays no failure in the new framing too
    (S + "dovecot: auth-worker(bob,198.51.100.7,sasl:plain)<4711><Ab1+Cd2e>: Info: pam: pam_authenticate() failed: Authentication service cannot retrieve authentication info", None, None),
    (S + "dovecot: auth-worker(bob,198.51.100.7,sasl:plain)<1><2><3>: Info: sql: Password mismatch", None, None),
])
def test_dovecot_24_auth_worker_ids(line: str, host: str | None, user: str | None) -> None:
    check(line, host, user)


# --- Solaris / illumos syslogd: "[ID msgid facility.priority]" after the tag ------------------

@pytest.mark.parametrize("line,host,user", [
    ("Dec  3 10:00:01 mail postfix/smtpd[811]: [ID 197553 mail.warning] warning: unknown[192.0.2.5]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", "192.0.2.5", None),
    ("Dec  3 10:00:01 mail sendmail[12]: [ID 801593 mail.notice] 4B3A1aB1002101: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[203.0.113.6]", "203.0.113.6", "bob"),
    ("Dec  3 10:00:01 mail imapd[12]: [ID 123456 mail.info] badlogin: client.example.net [198.51.100.7] plaintext bob SASL(-13): authentication failure: checkpass failed", "198.51.100.7", "bob"),
    ("Dec  3 10:00:01 imapd: [ID 123456 mail.info] LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.8]", "192.0.2.8", "bob"),
    # only right after the tag: anywhere else it is text of the daemon's message
    ("Dec  3 10:00:01 mail postfix/smtpd[811]: warning: [ID 1 mail.info] unknown[192.0.2.9]: SASL LOGIN authentication failed: x", None, None),
    # an ordinary line is not changed by it
    ("Dec  3 10:00:01 mail postfix/smtpd[811]: warning: unknown[192.0.2.10]: SASL LOGIN authentication failed: [ID 1 mail.info] x", "192.0.2.10", None),
])
def test_solaris_msgid_after_the_tag(line: str, host: str | None, user: str | None) -> None:
    check(line, host, user, when="2026-12-03T10:00:01" if host else None)
