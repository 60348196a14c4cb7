"""Close variants of the reported cases: every way a daemon version, a syslog daemon or a log
format writes the same failure gives the same answer, and every near-identical line that is no
attack gives none.

Each row is one line as a mail host's log holds it, the address it must report (or None) and,
where it matters, the user and the wall-clock time as written in the line. All filters run as
``logban test-filter`` runs them. Addresses are documentation ranges; names are placeholders.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from logban.timestamps import split_header

from variantcheck import ANY, MATCHER, NOW, check

# The body of one postfix failure, to put behind every kind of timestamp.
PF = "postfix/smtpd[811]: warning: unknown[192.0.2.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
PF_HOST = "192.0.2.9"


# --- timestamps ------------------------------------------------------------------------------

STAMPS = [
    # (stamp and hostname before the postfix body, wall-clock time as written)
    ("Dec  3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Dec 3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Jul 02 10:00:01 mail", "2026-07-02T10:00:01"),
    ("Dec  3 10:00:01.123456 mail", "2026-12-03T10:00:01"),
    ("<22>Dec  3 10:00:01 mail", "2026-12-03T10:00:01"),
    ("Dec  3 10:00:01", "2026-12-03T10:00:01"),                       # no hostname
    ("Dec  3 10:00:01 198.51.100.250", "2026-12-03T10:00:01"),        # hostname is an address
    ("Dec  3 10:00:01 2001:db8::250", "2026-12-03T10:00:01"),         # ... an IPv6 address
    ("Dec  3 10:00:01 mx1.example.org", "2026-12-03T10:00:01"),
    ("Dec  3 2025 10:00:01 mail", "2025-12-03T10:00:01"),             # year written: used as is
    ("Dec  3 10:00:01 2025 mail", "2025-12-03T10:00:01"),
    ("Wed Dec  3 10:00:01 2025 mail", "2025-12-03T10:00:01"),         # ctime
    ("2026-12-03T10:00:01Z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.123456Z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01,123+01:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+0000 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.5-07:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+05:30 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+01 mail", "2026-12-03T10:00:01"),
    ("2026-12-03t10:00:01z mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01.123456789+01:00 mail", "2026-12-03T10:00:01"),
    ("2026-12-03T10:00:01+01:00 2001:db8::250", "2026-12-03T10:00:01"),
    ("<22>2026-12-03T10:00:01.123456+01:00 mail", "2026-12-03T10:00:01"),  # RSYSLOG_ForwardFormat
    ("Thu 2026-12-03 10:00:01 CET mail", "2026-12-03T10:00:01"),             # journalctl short-full
]


@pytest.mark.parametrize("stamp,when", STAMPS)
def test_every_stamp_form(stamp: str, when: str) -> None:
    check(f"{stamp} {PF}", PF_HOST, when=when)


R5424 = "warning: unknown[192.0.2.9]: SASL LOGIN authentication failed: x"


@pytest.mark.parametrize("line", [
    f"<22>1 2026-12-03T10:00:01.123456-04:00 mail.example.org postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd - - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 ID47 - {R5424}",
    f'<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - [meta sequenceId="1"][o ip="192.0.2.250"] {R5424}',
    f'<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - [x a="b\\]c"] {R5424}',
    f"<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - - \ufeff{R5424}",
    f"<22>1 2026-12-03T10:00:01Z - postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z 2001:db8::250 postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01.123456789+02:00 mail postfix/smtpd 811 - - {R5424}",
    f"<22>1 2026-12-03T10:00:01Z mail postfix 811 - -  {R5424}",   # app-name cut at the slash
])
def test_rfc5424_forms(line: str) -> None:
    check(line, PF_HOST, when="2026-12-03T10:00:01")


@pytest.mark.parametrize("stamp,now,when", [
    ("Dec 31 23:59:59", "2027-01-01T00:00:02", "2026-12-31T23:59:59"),
    ("Dec 31 10:00:00", "2027-01-01T09:00:00", "2026-12-31T10:00:00"),
    ("Jan  1 00:00:00", "2026-12-31T23:59:58", "2027-01-01T00:00:00"),
    ("Jan  1 09:00:00", "2026-12-31T10:00:00", "2027-01-01T09:00:00"),  # 23 h ahead
    ("Dec  3 17:00:00", "2026-12-03T12:00:00", "2026-12-03T17:00:00"),
    ("Dec  4 11:00:00", "2026-12-03T12:00:00", "2026-12-04T11:00:00"),
    ("Dec  3 07:00:00", "2026-12-03T12:00:00", "2026-12-03T07:00:00"),
    ("Dec 15 07:00:00", "2026-12-03T12:00:00", "2025-12-15T07:00:00"),
    ("Feb 29 07:00:00", "2031-03-01T12:00:00", "2028-02-29T07:00:00"),  # last leap year
])
def test_year_and_skew(stamp: str, now: str, when: str) -> None:
    check(f"{stamp} mail {PF}", PF_HOST, when=when, now=datetime.fromisoformat(now))


def test_dmesg_human_stamp() -> None:
    t, rest = split_header("[Thu Dec  3 10:00:24 2026] SMTP_AUTH_FAIL: Strike 1: x", NOW)
    assert t == datetime(2026, 12, 3, 10, 0, 24) and rest == "SMTP_AUTH_FAIL: Strike 1: x"


def test_a_hostname_made_of_hex_letters_stays() -> None:
    assert split_header("Dec  3 10:00:01 cafe postfix/smtpd[1]: x", NOW)[1] == "cafe postfix/smtpd[1]: x"
    assert split_header("Dec  3 10:00:01 dead:beef x", NOW)[1] == "dead:beef x"


# --- every filter's wording across daemon versions, address forms and lines that are no attack --

S = "Dec  3 10:00:01 mail "
FILTER_VARIANTS = [
    # postfix
    ("pf-sub", S+"postfix/submission/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: ", "192.0.2.1"),
    ("pf-smtps", S+"postfix/smtps/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: authentication failure", "192.0.2.1"),
    ("pf-submissions", S+"postfix/submissions/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: authentication failure", "192.0.2.1"),
    ("pf-inst", S+"postfix-out/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: Password:", "192.0.2.1"),
    ("pf-inst-sub", S+"postfix-out/submission/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: Password:", "192.0.2.1"),
    ("pf-nopid", S+"postfix/smtpd: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: Password:", "192.0.2.1"),
    ("pf-scram", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL SCRAM-SHA-256 authentication failed: authentication failure", "192.0.2.1"),
    ("pf-xoauth", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL XOAUTH2 authentication failed: x", "192.0.2.1"),
    ("pf-digest", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL DIGEST-MD5 authentication failed: authentication failure", "192.0.2.1"),
    ("pf-lower", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL login authentication failed: UGFzc3dvcmQ6", "192.0.2.1"),
    ("pf-port", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]:65535: SASL LOGIN authentication failed: x", "192.0.2.1"),
    ("pf-v6port", S+"postfix/smtpd[1]: warning: unknown[2001:db8::1]:65535: SASL LOGIN authentication failed: x", "2001:db8::1"),
    ("pf-v6up", S+"postfix/smtpd[1]: warning: unknown[2001:DB8::A]: SASL LOGIN authentication failed: x", "2001:db8::a"),
    ("pf-v6exp", S+"postfix/smtpd[1]: warning: unknown[2001:0db8:0000:0000:0000:0000:0000:000a]: SASL LOGIN authentication failed: x", "2001:db8::a"),
    ("pf-mapped", S+"postfix/smtpd[1]: warning: unknown[::ffff:192.0.2.1]: SASL LOGIN authentication failed: x", "192.0.2.1"),
    ("pf-MAPPED", S+"postfix/smtpd[1]: warning: unknown[::FFFF:192.0.2.1]: SASL LOGIN authentication failed: x", "192.0.2.1"),
    ("pf-ipv6pref", S+"postfix/smtpd[1]: warning: unknown[IPv6:2001:db8::1]: SASL LOGIN authentication failed: x", "2001:db8::1"),
    ("pf-zone", S+"postfix/smtpd[1]: warning: unknown[fe80::1%eth0]: SASL LOGIN authentication failed: x", None),
    ("pf-999", S+"postfix/smtpd[1]: warning: unknown[999.0.2.1]: SASL LOGIN authentication failed: x", None),
    ("pf-lead0", S+"postfix/smtpd[1]: warning: unknown[010.0.2.1]: SASL LOGIN authentication failed: x", None),
    ("pf-rdns-quad", S+"postfix/smtpd[1]: warning: 198.51.100.7[203.0.113.7]: SASL LOGIN authentication failed: x", "203.0.113.7"),
    ("pf-rdns-v6ish", S+"postfix/smtpd[1]: warning: dead.beef.example[203.0.113.7]: SASL LOGIN authentication failed: x", "203.0.113.7"),
    ("pf-user", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=bob@example.org", "192.0.2.1", "bob@example.org"),
    ("pf-user-colon", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: authentication failure: [x], sasl_username=bob", "192.0.2.1", "bob"),
    ("pf-reason-colon", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: SASL(-13): authentication failure: Password verification failed", "192.0.2.1"),
    ("pf-lost", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]:25: SASL LOGIN authentication failed: Connection lost to authentication server", None),
    ("pf-lost-user", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: Connection lost to authentication server, sasl_username=bob", None),
    ("pf-invmech", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL CRAM-MD5 authentication failed: Invalid authentication mechanism", None),
    ("pf-rbl", S+"postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.example.org; from=<a@example.org> to=<b@example.org> proto=ESMTP helo=<x>", None),
    ("pf-pipelining", S+"postfix/smtpd[1]: improper command pipelining after AUTH from unknown[192.0.2.1]: QUIT", None),
    ("pf-toomany", S+"postfix/smtpd[1]: too many errors after AUTH from unknown[192.0.2.1]", None),
    ("pf-nohost-sasl", S+"postfix/smtpd[1]: warning: SASL authentication failure: Password verification failed", None),
    ("pf-disconnect-auth", S+"postfix/smtpd[1]: disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3", None),
    ("pf-postscreen", S+"postfix/postscreen[1]: PREGREET 11 after 0.1 from [192.0.2.1]:1234: EHLO x", None),
    ("pf-inst-dot", S+"postfix-mx.example/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x", "192.0.2.1"),
    # sendmail
    ("sm-bare", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1]", "192.0.2.1", "bob"),
    ("sm-named", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: Password verification failed, user=bob, relay=host.example.net [192.0.2.1]", "192.0.2.1", "bob"),
    ("sm-forged", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=host.example.net [192.0.2.1] (may be forged)", "192.0.2.1", "bob"),
    ("sm-bare-forged", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1] (may be forged)", "192.0.2.1", "bob"),
    ("sm-v6", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[IPv6:2001:db8::1]", "2001:db8::1"),
    ("sm-v6-named", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=host.example.net [IPv6:2001:db8::1] (may be forged)", "2001:db8::1"),
    ("sm-v6-mapped", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[IPv6:::ffff:192.0.2.1]", "192.0.2.1"),
    ("sm-ident", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=root@host.example.net [192.0.2.1]", "192.0.2.1"),
    ("sm-nouser", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (CRAM-MD5): user not found (-20) SASL(-13): user not found: unable to canonify user and get auxprops, relay=[192.0.2.1]", "192.0.2.1", None),
    ("sm-lower", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (login): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1]", "192.0.2.1"),
    ("sm-noqueue", S+"sendmail[1]: NOQUEUE: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1]", "192.0.2.1"),
    ("sm-attack", S+"sm-mta[1]: 4B3A1aB1000001: [192.0.2.1]: possible SMTP attack: command=AUTH, count=5", "192.0.2.1"),
    ("sm-attack-named", S+"sm-mta[1]: 4B3A1aB1000001: host.example.net [192.0.2.1]: possible SMTP attack: command=AUTH, count=5", "192.0.2.1"),
    ("sm-attack-forged", S+"sendmail[1]: 4B3A1aB1000001: host.example.net [192.0.2.1] (may be forged): possible SMTP attack: command=AUTH, count=6", "192.0.2.1"),
    ("sm-attack-v6", S+"sendmail[1]: 4B3A1aB1000001: [IPv6:2001:db8::1]: possible SMTP attack: command=AUTH, count=6", "2001:db8::1"),
    ("sm-attack-inst", S+"sm-acceptingconnections[1]: 4B3A1aB1000001: [192.0.2.1]: possible SMTP attack: command=AUTH, count=6", "192.0.2.1"),
    ("sm-attack-rcpt", S+"sendmail[1]: 4B3A1aB1000001: [192.0.2.1]: possible SMTP attack: command=RCPT, count=6", None),
    ("sm-success", S+"sendmail[1]: 4B3A1aB1000001: AUTH=server, relay=host.example.net [192.0.2.1], authid=bob, mech=PLAIN, bits=0", None),
    ("sm-user-inject", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=x, relay=[198.51.100.9] (may be forged), relay=host.example.net [192.0.2.1]", "192.0.2.1"),
    ("sm-attack-ident", S+"sendmail[1]: 4B3A1aB1000001: root@host.example.net [192.0.2.1]: possible SMTP attack: command=AUTH, count=6", "192.0.2.1"),
    ("sm-noqid", S+"sendmail[1]: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1]", "192.0.2.1", "bob"),
    ("sm-attack-noqid", S+"sm-mta[1]: host.example.net [192.0.2.1]: possible SMTP attack: command=AUTH, count=5", "192.0.2.1"),
    ("cy-port", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1]:40000 PLAIN (bob) [SASL(-13): x]", "192.0.2.1", "bob"),
    # dovecot
    ("dv-aborted", S+"dovecot: imap-login: Aborted login (auth failed, 1 attempts in 19 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, TLS, session=<a1>", "192.0.2.1", "bob"),
    ("dv-pid", S+"dovecot[12]: pop3-login: Aborted login (auth failed, 1 attempts): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1", "bob"),
    ("dv-info", S+"dovecot: imap-login: Info: Disconnected (auth failed, 2 attempts in 4 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-nodov", S+"imap-login: Info: Disconnected (auth failed, 2 attempts in 4 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-24", S+"dovecot: imap-login: Login aborted: Connection closed (auth failed, 3 attempts in 16 secs) (auth_failed): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, TLS, session=<x>", "192.0.2.1", "bob"),
    ("dv-24-plain", S+"dovecot: imap-login: Login aborted: Connection closed (tried to use disallowed plaintext auth) (auth_plaintext_disabled): user=<>, rip=192.0.2.1, lip=192.0.2.2, session=<x>", "192.0.2.1"),
    ("dv-24-noauth", S+"dovecot: imap-login: Login aborted: Connection closed (no auth attempts in 0 secs) (no_auth_attempts): user=<>, rip=192.0.2.1, lip=192.0.2.2, session=<x>", None),
    ("dv-1attempt", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempt in 1 sec): user=<bob>, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-plaintext", S+"dovecot: pop3-login: Aborted login (tried to use disabled plaintext auth): rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-plaintext-user", S+"dovecot: pop3-login: Disconnected (tried to use disallowed plaintext auth): user=<bob>, rip=192.0.2.1, lip=192.0.2.2, session=<x>", "192.0.2.1", "bob"),
    ("dv-v6", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=2001:db8::1, lip=2001:db8::2, TLS", "2001:db8::1"),
    ("dv-mapped", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=::ffff:192.0.2.1, lip=::ffff:192.0.2.2, TLS", "192.0.2.1"),
    ("dv-MAPPED", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=::FFFF:192.0.2.1, lip=::ffff:192.0.2.2, TLS", "192.0.2.1"),
    ("dv-inactivity", S+"dovecot: pop3-login: Disconnected: Inactivity (auth failed, 1 attempts in 178 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-submission", S+"dovecot: submission-login: Remote closed connection (auth failed, 1 attempts in 2 secs): user=<bob>, method=LOGIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    ("dv-lmtp-no", S+"dovecot: lmtp(123): Disconnect from 192.0.2.1: Client has quit the connection (state=READY)", None),
    ("dv-proxy", S+"dovecot: imap-login: Disconnected (proxy dest auth failed): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, session=<x>", "192.0.2.1"),
    ("dv-tls-tail", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 9 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, TLS: Disconnected, TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", "192.0.2.1"),
    ("dv-end-rip", S+"dovecot: pop3-login: Info: Aborted login (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.1", "192.0.2.1"),
    ("dv-mpid", S+"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, mpid=0, TLS, session=<x>", "192.0.2.1"),
    ("dv-success", S+"dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, mpid=7, TLS, session=<abc>", None),
    ("dv-noauth", S+"dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.1, lip=192.0.2.2, TLS handshaking", None),
    ("dv-noauth2", S+"dovecot: pop3-login: Aborted login (no auth attempts): rip=192.0.2.1, lip=192.0.2.2", None),
    ("dv-didntfinish", S+"dovecot: imap-login: Disconnected (client didn't finish SASL auth, waited 0 secs): user=<>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", None),
    ("dv-auth-pam", S+"dovecot: auth-worker(12): pam(bob,192.0.2.1): pam_authenticate() failed: Authentication failure (password mismatch?)", "192.0.2.1", "bob"),
    ("dv-auth-pam-sess", S+"dovecot[1]: auth-worker(12): pam(bob,192.0.2.1,<abc>): pam_authenticate() failed: Permission denied", "192.0.2.1", "bob"),
    ("dv-auth-pamnk", S+"dovecot: auth(default): pam(bob@example.org,192.0.2.1): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)", "192.0.2.1"),
    ("dv-auth-dovecot-dovecot", S+"dovecot[1]: dovecot: auth(default): pam(bob@example.org,192.0.2.1): pam_authenticate() failed: User not known to the underlying authentication module", "192.0.2.1"),
    ("dv-auth-pwfile", S+"dovecot: auth: passwd-file(bob,192.0.2.1): unknown user", "192.0.2.1", "bob"),
    ("dv-auth-pwfile-mm", S+"dovecot: auth: passwd-file(bob,192.0.2.1,<abc>): Password mismatch", "192.0.2.1"),
    ("dv-auth-sql", S+"dovecot: auth-worker(1): sql(bob@example.org,192.0.2.1,<abc>): unknown user", "192.0.2.1"),
    ("dv-auth-sql-info", S+"dovecot: auth-worker(1): Info: sql(bob@example.org,192.0.2.1,<abc>): Password mismatch", "192.0.2.1"),
    ("dv-auth-ldap", S+"dovecot: auth: ldap(bob,192.0.2.1,<abc>): Password mismatch (for LDAP bind) (SHA1 of given password: 0123ab)", "192.0.2.1"),
    ("dv-auth-ldap-inv", S+"auth: Info: ldap(bob,192.0.2.1,): invalid credentials", "192.0.2.1"),
    ("dv-auth-shadow", S+"dovecot: auth: shadow(bob,192.0.2.1): unknown user", "192.0.2.1"),
    ("dv-auth-dict", S+"dovecot: auth: dict(bob,192.0.2.1): unknown user", "192.0.2.1"),
    ("dv-auth-v6", S+"dovecot: auth: passwd-file(bob,2001:db8::1): unknown user", "2001:db8::1"),
    ("dv-auth-mapped", S+"dovecot: auth: passwd-file(bob,::ffff:192.0.2.1): unknown user", "192.0.2.1"),
    ("dv-auth-conn", S+"dovecot: auth-worker(1): conn unix:auth-worker (pid=2,uid=97): auth-worker<55>: pam(bob,192.0.2.1): unknown user", "192.0.2.1"),
    ("dv-auth-conn2", S+"auth-worker(1): Info: conn unix:auth-worker (uid=143): auth-worker<13>: sql(bob,192.0.2.1,<x>): Password mismatch", "192.0.2.1"),
    ("dv-24-auth", S+"dovecot: auth(bob@example.org,192.0.2.1,sasl:plain)<abc>: Info: passwd-file: Password mismatch", "192.0.2.1", "bob@example.org"),
    ("dv-24-auth-unk", S+"dovecot: auth(bob@example.org,192.0.2.1,sasl:login)<abc>: Info: sql: unknown user", "192.0.2.1"),
    ("dv-24-worker", S+"dovecot: auth-worker(bob@example.org,192.0.2.1,sasl:plain)<abc>: Info: pam: pam_authenticate() failed: Authentication failure", "192.0.2.1"),
    ("dv-24-auth-nosess", S+"dovecot: auth(bob,192.0.2.1,sasl:plain): Info: ldap: invalid credentials", "192.0.2.1"),
    ("dv-24-auth-noinfo", S+"dovecot: auth(bob,192.0.2.1,sasl:plain)<x>: passwd-file: Password mismatch", "192.0.2.1"),
    ("dv-auth-error", S+"dovecot: auth-worker(1): Error: sql(bob,192.0.2.1): Password query failed: Not connected to database", None),
    ("dv-auth-userdb", S+"dovecot: auth: passwd-file(bob,192.0.2.1): unknown user (given password: x)", "192.0.2.1"),
    # pam
    ("pam-dovecot", S+"dovecot-auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1", "192.0.2.1"),
    ("pam-dovecot-user", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1  user=bob", "192.0.2.1", "bob"),
    ("pam-dovecot-1sp", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1 user=bob", "192.0.2.1", "bob"),
    ("pam-smtp", S+"saslauthd[1]: pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1  user=bob", "192.0.2.1"),
    ("pam-worker", S+"dovecot[1]: auth-worker(2): pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1  user=bob", "192.0.2.1"),
    ("pam-v6", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=2001:db8::1  user=bob", "2001:db8::1"),
    ("pam-mapped", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=::ffff:192.0.2.1  user=bob", "192.0.2.1"),
    ("pam-sss", S+"dovecot: auth-worker(2): pam_sss(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1 user=bob", "192.0.2.1"),
    ("pam-sshd", S+"sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root", None),
    ("pam-su", S+"su[1]: pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=pts/0 ruser=bob rhost=  user=root", None),
    ("pam-rhost-name", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=cafe.example  user=bob", None),
    ("pam-trailing", S+"auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1 ", "192.0.2.1"),
    ("pam-imap", S+"imapd[1]: pam_unix(imap:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1", "192.0.2.1"),
    ("pam-smtp-sm", S+"sendmail[1]: pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1", "192.0.2.1"),
    ("pam-empty", S+"saslauthd[1]: pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=  user=bob", None),
    ("pam-dovecot-session", S+"dovecot: auth-worker(2): pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1  user=bob", "192.0.2.1"),
    # exim
    ("ex-main", "2026-12-03 10:00:01 plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-main-port", "2026-12-03 10:00:01 login authenticator failed for (helo) [192.0.2.1]:1234: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1"),
    ("ex-main-I", "2026-12-03 10:00:01 login authenticator failed for host.example.net (helo) [192.0.2.1]:1234 I=[192.0.2.2]:587: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-H", "2026-12-03 10:00:01 dovecot_login authenticator failed for H=(helo) [192.0.2.1]:1234 I=[192.0.2.2]:465: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1"),
    ("ex-H-name", "2026-12-03 10:00:01 dovecot_login authenticator failed for H=host.example.net [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1", None),
    ("ex-U", "2026-12-03 10:00:01 dovecot_login authenticator failed for H=(helo) [192.0.2.1]:1234 I=[192.0.2.2]:465 U=root: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1"),
    ("ex-noHelo", "2026-12-03 10:00:01 plain authenticator failed for [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-v6", "2026-12-03 10:00:01 plain authenticator failed for (helo) [2001:db8::1]:1234 I=[2001:db8::2]:587: 535 Incorrect authentication data", "2001:db8::1"),
    ("ex-mapped", "2026-12-03 10:00:01 plain authenticator failed for (helo) [::ffff:192.0.2.1]:1234: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-pid", "2026-12-03 10:00:01 [12345] plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-tz", "2026-12-03 10:00:01 +0100 plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1", ANY, "2026-12-03T10:00:01"),
    ("ex-ms", "2026-12-03 10:00:01.123 plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-ms-tz-pid", "2026-12-03 10:00:01.123 +0100 [123] plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-syslog", S+"exim[1]: 2026-12-03 10:00:01 plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-syslog-nostamp", S+"exim[1]: plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-exim4", S+"exim4[1]: 2026-12-03 10:00:01 plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-helo-literal", "2026-12-03 10:00:01 plain authenticator failed for ([198.51.100.9]) [192.0.2.1]:1234: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1"),
    ("ex-helo-literal-H", "2026-12-03 10:00:01 plain authenticator failed for H=([198.51.100.9]) [192.0.2.1]:1234 I=[192.0.2.2]:25: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1"),
    ("ex-helo-literal-name", "2026-12-03 10:00:01 plain authenticator failed for host.example.net ([198.51.100.9]) [192.0.2.1]:1234: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-helo-v6literal", "2026-12-03 10:00:01 plain authenticator failed for ([IPv6:2001:db8::9]) [192.0.2.1]:1234: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-435", "2026-12-03 10:00:01 plain authenticator failed for (helo) [192.0.2.1]: 435 Unable to authenticate at present (set_id=bob)", None),
    ("ex-535-custom", "2026-12-03 10:00:01 plain authenticator failed for (helo) [192.0.2.1]: 535 5.7.8 Authentication credentials invalid (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-newid", "2026-12-03 10:00:01 1vAbCd-000ABC-XY plain authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-Ci", "2026-12-03 10:00:01 plain authenticator failed for H=(helo) [192.0.2.1]:1234 I=[192.0.2.2]:587 Ci=12345: 535 Incorrect authentication data", "192.0.2.1"),
    ("ex-helo-brkt-inj", "2026-12-03 10:00:01 plain authenticator failed for ([198.51.100.9]) [198.51.100.8]) [192.0.2.1]:1234: 535 Incorrect authentication data", None),
    ("ex-upper-name", "2026-12-03 10:00:01 PLAIN authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data (set_id=bob)", "192.0.2.1", "bob"),
    ("ex-upper-name-tz", "2026-12-03 10:00:01 +0100 LOGIN authenticator failed for (helo) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1", ANY, "2026-12-03T10:00:01"),
    ("pam-esmtp", S+"courieresmtpd: pam_unix(esmtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=::ffff:192.0.2.1", "192.0.2.1"),
    ("pf-bare-syslog-name", S+"submission/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x", "192.0.2.1"),
    # courier
    ("co-smtp", S+'courieresmtpd: error,relay=::ffff:192.0.2.1,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN bob@example.org', "192.0.2.1", "bob@example.org"),
    ("co-smtp-v4", S+'courieresmtpd: error,relay=192.0.2.1,port=43632,msg="535 Authentication failed.",cmd: AUTH PLAIN', "192.0.2.1", None),
    ("co-smtp-v6", S+'courieresmtpd: error,relay=2001:db8::1,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN', "2001:db8::1"),
    ("co-smtp-pid", S+'courieresmtpd[12]: error,relay=::ffff:192.0.2.1,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN bob', "192.0.2.1", "bob"),
    ("co-smtp-MAPPED", S+'courieresmtpd: error,relay=::FFFF:192.0.2.1,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN bob', "192.0.2.1"),
    ("co-smtp-ident", S+'courieresmtpd: error,relay=::ffff:192.0.2.1,ident=bob,port=43632,msg="535 Authentication failed.",cmd: AUTH LOGIN bob', "192.0.2.1"),
    ("co-smtp-noport", S+'courieresmtpd: error,relay=::ffff:192.0.2.1,msg="535 Authentication failed.",cmd: AUTH CRAM-MD5', "192.0.2.1"),
    ("co-imap", S+"imapd: LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.1]", "192.0.2.1", "bob"),
    ("co-imap-port", S+"imapd: LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.1], port=[12345]", "192.0.2.1", "bob"),
    ("co-imap-method", S+"imapd-ssl: LOGIN FAILED, method=PLAIN, user=bob, ip=[::ffff:192.0.2.1], port=[12345]", "192.0.2.1", "bob"),
    ("co-pop", S+"pop3d: LOGIN FAILED, user=bob, ip=[192.0.2.1]", "192.0.2.1"),
    ("co-pop-pid", S+"pop3d[12]: LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.1]", "192.0.2.1"),
    ("co-pop3login", S+"courierpop3login: LOGIN FAILED, ip=[::ffff:192.0.2.1]", "192.0.2.1"),
    ("co-imaplogin", S+"imaplogin: LOGIN FAILED, ip=[::ffff:192.0.2.1]", "192.0.2.1"),
    ("co-imap-v6", S+"imapd: LOGIN FAILED, user=bob, ip=[2001:db8::1]", "2001:db8::1"),
    ("co-imap-port-bare", S+"imapd: LOGIN FAILED, user=bob, ip=[::ffff:192.0.2.1], port=12345", "192.0.2.1"),
    ("co-imap-user-inject", S+"imapd: LOGIN FAILED, user=x, ip=[198.51.100.9], ip=[::ffff:192.0.2.1]", "192.0.2.1"),
    ("co-imap-nouser", S+"imapd: LOGIN FAILED, ip=[::ffff:192.0.2.1]", "192.0.2.1"),
    # cyrus
    ("cy-imap", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1] plaintext bob SASL(-13): authentication failure: checkpass failed", "192.0.2.1", "bob"),
    ("cy-imaps", S+"cyrus/imaps[1]: badlogin: [192.0.2.1] PLAIN bob SASL(-13): authentication failure: Password verification failed", "192.0.2.1"),
    ("cy-pop", S+"cyrus/pop3[1]: badlogin: host.example.net [192.0.2.1] plaintext bob SASL(-13): authentication failure: checkpass failed", "192.0.2.1", "bob"),
    ("cy-nocyrus", S+"imap[1]: badlogin: host.example.net [192.0.2.1] plaintext bob SASL(-13): authentication failure: checkpass failed", "192.0.2.1"),
    ("cy-v6", S+"cyrus/imap[1]: badlogin: host.example.net [2001:db8::1] PLAIN bob SASL(-13): authentication failure: checkpass failed", "2001:db8::1"),
    ("cy-mapped", S+"cyrus/imap[1]: badlogin: host.example.net [::ffff:192.0.2.1] PLAIN bob SASL(-13): x", "192.0.2.1"),
    ("cy-unknown", S+"cyrus/imap[1]: badlogin: unknown[192.0.2.1] PLAIN bob SASL(-13): x", "192.0.2.1"),
    ("cy-sieve", S+"cyrus/sieve[1]: badlogin: host.example.net [192.0.2.1] PLAIN bob SASL(-13): x", "192.0.2.1"),
    ("cy-session", S+"cyrus/imap[1]: sessionid=<cyrus-1-2-3> badlogin: host.example.net [192.0.2.1] PLAIN bob SASL(-13): x", "192.0.2.1"),
    ("cy-session-imapd", S+"imaps[1]: badlogin: host.example.net [192.0.2.1] PLAIN bob@example.org SASL(-13): x", "192.0.2.1", "bob@example.org"),
    ("cy-3x-user", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1] PLAIN (bob) [SASL(-13): authentication failure: Password verification failed]", "192.0.2.1", "bob"),
    ("cy-3x-plain", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1] plaintext (bob@example.org) [SASL(-13): authentication failure: checkpass failed]", "192.0.2.1", "bob@example.org"),
    ("cy-3x-invalid", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1] plaintext (bob) invalid user", "192.0.2.1", "bob"),
    ("cy-3x-null", S+"cyrus/pop3[1]: badlogin: [192.0.2.1] DIGEST-MD5 (null) [SASL(-13): user not found: x]", "192.0.2.1", None),
    ("cy-2x-invalid", S+"cyrus/imap[1]: badlogin: host.example.net [192.0.2.1] plaintext bob invalid user", "192.0.2.1", "bob"),
    ("cy-nouser", S+"imapd[1]: badlogin: host.example.net [192.0.2.1] DIGEST-MD5 [SASL(-13): authentication failure: x]", "192.0.2.1", None),
    ("cy-glued", S+"imapd[1]: badlogin: local-host[192.0.2.1] OTP [SASL(-13): authentication failure: x]", "192.0.2.1", None),
    ("co-smtp-b64-cmd", S+'courieresmtpd: error,relay=::ffff:192.0.2.1,msg="535 Authentication failed.",cmd: Ym9i', "192.0.2.1", None),
    ("co-smtp-550-no", S+'courieresmtpd: error,relay=::ffff:192.0.2.1,from=<a@example.org>,to=<b@example.org>: 550 User unknown.', None),
    ("pam-old", S+"pop(pam_unix)[1]: authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1 user=bob", "192.0.2.1", "bob"),
    ("pam-old-imap", S+"imap(pam_unix)[1]: authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1", "192.0.2.1"),
    ("pam-old-sshd", S+"sshd(pam_unix)[1]: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root", None),
    ("ex-helo-literal-times", "2026-12-03 10:00:01 login authenticator failed for host.example.net ([10.0.0.2]) [192.0.2.1]: 535 Incorrect authentication data: 1 Time(s)", "192.0.2.1"),
    # kernel
    ("k-strike", S+"kernel: SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.2 DST=192.0.2.1 LEN=73 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=5 WINDOW=46 RES=0x00 ACK PSH URGP=0 ", "192.0.2.1"),
    ("k-strike-notrail", S+"kernel: SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.2 DST=192.0.2.1 LEN=73 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=5 WINDOW=46 RES=0x00 ACK PSH URGP=0", "192.0.2.1"),
    ("k-strike-uptime", S+"kernel: [12.345] SMTP_AUTH_FAIL: Strike 1: IN= OUT=eth0 SRC=192.0.2.2 DST=192.0.2.1 LEN=73 ", "192.0.2.1"),
    ("k-strike-v6", S+"kernel: SMTP_AUTH_FAIL: Strike 2: IN= OUT=eth0 SRC=2001:0db8:0000:0000:0000:0000:0000:0002 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=93 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=25 DPT=5 ", "2001:db8::1"),
    ("k-goaway", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-goaway-nomac", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-goaway-phys", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=br0 OUT= PHYSIN=eth0 MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-goaway-physout", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=br0 OUT=br0 PHYSIN=eth0 PHYSOUT=eth1 MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-goaway-macdecode", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MACSRC=00:00:5e:00:53:02 MACDST=00:00:5e:00:53:01 MACPROTO=0800 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-brute-v6", S+"kernel: [1.2] SMTP Brute Force Attempt:  IN=eth0 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:86:dd SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=80 ", "2001:db8::1"),
    ("k-brute-1sp", S+"kernel: SMTP Brute Force Attempt: IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-brute-nosp", S+"kernel: SMTP Brute Force Attempt:IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-empty", S+"kernel: SMTP_AUTH_FAIL: Strike 3: IN= OUT=eth0 SRC= DST= LEN=73 ", None),
    ("k-empty-src", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC= SRC= DST=192.0.2.2 LEN=60 ", None),
    ("k-nokernel", S+"SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-dmesg", "[ 2262.219904] SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC=00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    ("k-strike-nonum", S+"kernel: SMTP_AUTH_FAIL: Strike: IN= OUT=eth0 SRC=192.0.2.2 DST=192.0.2.1 LEN=73 ", "192.0.2.1"),
    ("k-vlan", S+"kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0.10 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:81:00:00:0a:08:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 ", "192.0.2.1"),
    # saslauthd
    ("sa", S+"saslauthd[1]: do_auth         : auth failure: [user=bob] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]", None),
    ("sa-inj", S+"saslauthd[1]: do_auth: auth failure: [user=bob [192.0.2.1] rhost=192.0.2.1] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]", None),
    ("sa-nodo", S+"saslauthd[1]: auth failure: [user=bob] [service=imap] [realm=] [mech=shadow] [reason=Unknown]", None),
]


@pytest.mark.parametrize("row", FILTER_VARIANTS, ids=[r[0] for r in FILTER_VARIANTS])
def test_filter_variants(row: tuple) -> None:
    _id, line, host, *rest = row
    check(line, host, *rest)


# --- second sweep: outages, syslog daemons that write facility.priority, year edges ----------

# The SASL library's own words for a back end it could not ask, or a mechanism it cannot serve:
# every login fails then, the attacker's and the customer's alike, so none is counted. The same
# words where the client chose them (a user name) change nothing.
OUTAGES = [
    ("pf-generic", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: generic failure", None),
    ("pf-generic-user", S+"postfix/submission/smtpd[1]: warning: host.example.net[192.0.2.1]:587: SASL PLAIN authentication failed: generic failure, sasl_username=bob", None),
    ("pf-unavail", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: remote authentication server unavailable", None),
    ("pf-nomech", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: no mechanism available", None),
    ("pf-generic-word", S+"postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: generic failures aside", "192.0.2.1"),
    ("sm-generic", S+"sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): generic failure (-1) SASL(-1): generic failure: cannot connect to saslauthd server: No such file or directory, user=bob, relay=[192.0.2.1]", None),
    ("sm-unavail", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (PLAIN): remote authentication server unavailable (-24) SASL(-24): x, user=bob, relay=host.example.net [192.0.2.1]", None),
    ("sm-nomech", S+"sendmail[1]: NOQUEUE: AUTH failure (CRAM-MD5): no mechanism available (-4) SASL(-4): x, relay=[192.0.2.1]", None),
    ("sm-user-says-generic", S+"sendmail[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=generic failure (-1), relay=[192.0.2.1]", "192.0.2.1"),
    ("dv-pam-authinfo", S+"dovecot: auth-worker(1): pam(bob,192.0.2.1): pam_authenticate() failed: Authentication service cannot retrieve authentication info", None),
    ("dv-pam-syserr", S+"dovecot: auth-worker(1): pam(bob,192.0.2.1,<abc>): pam_authenticate() failed: System error", None),
    ("dv-24-pam-syserr", S+"dovecot: auth-worker(bob,192.0.2.1,sasl:plain)<abc>: Info: pam: pam_authenticate() failed: System error", None),
    ("dv-pam-maxtries", S+"dovecot: auth-worker(1): pam(bob,192.0.2.1): pam_authenticate() failed: Have exhausted maximum number of retries for service", "192.0.2.1"),
    ("dv-pam-perm", S+"dovecot: auth-worker(1): pam(bob,192.0.2.1,<abc>): pam_authenticate() failed: Permission denied", "192.0.2.1"),
    ("dv-24-pam-unknown", S+"dovecot: auth-worker(bob,192.0.2.1,sasl:login)<abc>: Info: pam: pam_authenticate() failed: User not known to the underlying authentication module", "192.0.2.1"),
    ("dv-policy-refusal", S+"dovecot: auth: policy(bob,192.0.2.1,<abc>): Authentication failure due to policy server refusal", None),
    ("pf-lost-after-auth", S+"postfix/smtpd[1]: lost connection after AUTH from unknown[192.0.2.1]", None),
    ("pf-not-resolve", S+"postfix/smtpd[1]: warning: hostname 192-0-2-1.example.net does not resolve to address 192.0.2.1: Name or service not known", None),
    ("pf-smtp-client-side", S+"postfix/smtp[1]: 4AB: to=<a@example.org>, relay=mx.example.org[192.0.2.1]:25, status=deferred (SASL authentication failed; server mx.example.org[192.0.2.1] said: 535 5.7.8 Error: authentication failed: x)", None),
]


@pytest.mark.parametrize("row", OUTAGES, ids=[r[0] for r in OUTAGES])
def test_outages_and_neighbours(row: tuple) -> None:
    _id, line, host = row
    check(line, host)


FACPRI = [
    # FreeBSD syslogd -v / -vv before the hostname, BusyBox syslogd (no -S) after it.
    f"Dec  3 10:00:01 <mail.info> mail {PF}",
    f"Dec  3 10:00:01 <2.6> mail {PF}",
    f"Dec  3 10:00:01 mail mail.warn {PF}",
    f"Dec  3 10:00:01 mx1.example.org local0.err {PF}",
    f"Dec  3 10:00:01 mail <22> {PF}",
    f"Dec  3 10:00:01 2001:db8::250 mail.notice {PF}",
    f"2026-12-03T10:00:01+00:00 mail authpriv.warning {PF}",
]


@pytest.mark.parametrize("line", FACPRI)
def test_facility_priority_written_by_the_syslog_daemon(line: str) -> None:
    check(line, PF_HOST, when="2026-12-03T10:00:01")


def test_facility_priority_of_every_filter() -> None:
    for line, host in [
        ("Dec  3 10:00:01 mail kern.warn kernel: SMTP_AUTH_FAIL: Strike 3: IN= OUT=eth0 SRC=192.0.2.1 DST=203.0.113.50 LEN=73 ", "203.0.113.50"),
        ("Dec  3 10:00:01 mail mail.info dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
        ("Dec  3 10:00:01 mail authpriv.notice dovecot: auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.1  user=bob", "192.0.2.1"),
        ("Dec  3 10:00:01 mail mail.info exim[1]: 2026-12-03 10:00:01 plain authenticator failed for (x) [192.0.2.1]: 535 Incorrect authentication data", "192.0.2.1"),
        ("Dec  3 10:00:01 mail mail.notice sm-mta[1]: 4B3A1aB1000001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=bob, relay=[192.0.2.1]", "192.0.2.1"),
        ("Dec  3 10:00:01 mail auth.err saslauthd[1]: do_auth         : auth failure: [user=bob] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]", None),
    ]:
        check(line, host)


def test_facility_priority_words_in_the_message_are_left_alone() -> None:
    # Only the word right after the hostname is the syslog daemon's; a tag followed by such a
    # word is a message, and the filters see it whole.
    assert split_header("Dec  3 10:00:01 dovecot: auth.info x", NOW)[1] == "dovecot: auth.info x"
    check("Dec  3 10:00:01 mail postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication "
          "failed: mail.warn postfix/smtpd[1]: warning: unknown[198.51.100.1]: SASL LOGIN authentication failed:",
          "192.0.2.1")


@pytest.mark.parametrize("stamp,now,when", [
    ("Jan  1 00:30:00", "2026-12-31T22:30:00", "2027-01-01T00:30:00"),   # 2 h ahead over New Year
    ("Dec 31 23:30:00", "2027-01-01T01:30:00", "2026-12-31T23:30:00"),   # 2 h behind over New Year
    ("Dec 31 23:59:59.999999", "2027-01-01T00:00:02", "2026-12-31T23:59:59"),
    ("Dec  3 23:59:59", "2026-12-04T00:00:30", "2026-12-03T23:59:59"),   # just after midnight
    ("Feb 29 10:00:00", "2028-02-29T12:00:00", "2028-02-29T10:00:00"),
    ("Feb 29 00:30:00", "2028-02-28T23:00:00", "2028-02-29T00:30:00"),   # leap day, clock behind
    ("Feb 29 23:59:59", "2028-03-01T00:00:01", "2028-02-29T23:59:59"),
])
def test_year_edges_second_sweep(stamp: str, now: str, when: str) -> None:
    check(f"{stamp} mail {PF}", PF_HOST, when=when, now=datetime.fromisoformat(now))


# --- hostile bytes ---------------------------------------------------------------------------

@pytest.mark.parametrize("lead", ["\x00" * 300, "\ufeff", "\x00\ufeff"])
def test_nul_padding_or_bom_before_the_stamp(lead: str) -> None:
    """A crash leaves NUL padding in the log, and the next line is appended right after it;
    an edited log may start with a byte order mark. The line behind is read as usual."""
    check(f"{lead}Dec  3 10:00:01 mail {PF}", PF_HOST, when="2026-12-03T10:00:01")


def test_scan_reads_lines_behind_nul_padding_and_crlf() -> None:
    data = (b"\x00" * 64 + f"Dec  3 10:00:01 mail {PF}\r\n".encode()
            + b"Dec  3 10:00:02 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): "
              b"user=<\xf2\xf0\xe5>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.9\r\n")
    hosts = [r.failure.host for _, _, r in MATCHER.scan(data, NOW) if r.failure]
    assert hosts == [PF_HOST, "198.51.100.2"]
