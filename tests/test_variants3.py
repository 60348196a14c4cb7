"""Third sweep of variants: wordings and framings found by writing many more real lines of each
kind the conformance cases name, and checking what a careful mail admin would count.

Each row is one line as a mail host's log holds it and the address it must report (or None);
where it matters, the user and the wall-clock time as written in the line. All filters run as
``logban test-filter`` runs them. Addresses are documentation ranges; names are placeholders.
"""

from __future__ import annotations

import pytest

from logban.timestamps import split_header

from variantcheck import NOW, check

S = "Dec  3 10:00:01 mail "


PF = S + "postfix/smtpd[811]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: "
SM = (S + "sm-mta[2101]: 4B3A1aB1002101: AUTH failure (PLAIN): authentication failure (-13) "
      "SASL(-13): authentication failure: Password verification failed, user=bob, relay=")

ROWS = [
    # postfix 3.x appends ", sasl_username=" always, "(unavailable)" when there is no user
    ("pf-user-unavailable", PF + "UGFzc3dvcmQ6, sasl_username=(unavailable)", "192.0.2.1", None),
    ("pf-reason-user-unavailable", PF + "(reason unavailable), sasl_username=(unavailable)", "192.0.2.1", None),
    ("pf-user-unavailable-crlf", PF + "x, sasl_username=(unavailable) ", "192.0.2.1", None),
    ("pf-user-named-so", PF + "x, sasl_username=(unavailable)x", "192.0.2.1", "(unavailable)x"),
    ("pf-user-real", PF + "(reason unavailable), sasl_username=bob@example.org", "192.0.2.1", "bob@example.org"),
    # postfix's Dovecot client that cannot reach the auth socket: an outage, not an attack
    ("pf-cant-connect", PF + "Can't connect to authentication server", None),
    ("pf-cant-connect-user", PF + "Can't connect to authentication server, sasl_username=(unavailable)", None),
    ("pf-cant-connect-sub", S + "postfix/submission/smtpd[9]: warning: host.example.net[198.51.100.4]:587: SASL PLAIN authentication failed: Can't connect to authentication server", None),
    # Cyrus SASL temporary failures (454 replies)
    ("pf-nomem", PF + "no memory available", None),
    ("pf-tryagain", PF + "transient failure (e.g., weak key), sasl_username=bob", None),
    # ... while the client's own garbage still counts
    ("pf-bad-base64", PF.replace("LOGIN", "PLAIN") + "Invalid base64 data in initial response", "192.0.2.1"),
    ("pf-user-says-cant-connect", PF + "x, sasl_username=Can't connect to authentication server", "192.0.2.1"),
    # sendmail keeps only 100 characters of relay=: a long host name cuts "(may be forged)" short
    ("sm-cut-v6", SM + "host-2001-db8-1234-5678.dynamic.example.net [IPv6:2001:db8:1234:5678:9abc:def0:1234:5678] (may be fo",
     "2001:db8:1234:5678:9abc:def0:1234:5678", "bob"),
    ("sm-cut-v4", SM + "static-192-0-2-1.customer.region-north.broadband.provider-with-long-name.example.net [192.0.2.1] (ma",
     "192.0.2.1", "bob"),
    ("sm-cut-paren", SM + "host.example.net [192.0.2.1] (", "192.0.2.1"),
    ("sm-cut-address", SM + "a-very-long-reverse-name-of-a-dialup-pool-at-a-provider.example.net [198.51.100.3", None),
    ("sm-whole", SM + "host.example.net [192.0.2.1] (may be forged)", "192.0.2.1", "bob"),
    ("sm-not-forged-words", SM + "host.example.net [192.0.2.1] (maybe x)", None),
    ("sm-nomem", S + "sendmail[1]: 4B3A1aB1000001: AUTH failure (LOGIN): no memory available (-2) SASL(-2): x, user=bob, relay=[192.0.2.1]", None),
    ("sm-tryagain", S + "sendmail[1]: 4B3A1aB1000001: AUTH failure (DIGEST-MD5): transient failure (e.g., weak key) (-8) SASL(-8): x, relay=[192.0.2.1]", None),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_rows(row: tuple) -> None:
    _id, line, host, *rest = row
    check(line, host, *rest)


# --- RFC 5424 structured data: quoted values ---------------------------------------------------

R5424 = "warning: unknown[192.0.2.9]: SASL LOGIN authentication failed: x"


@pytest.mark.parametrize("sd", [
    '[x@1 a="b"]',
    '[x@1 a="b\\]c"]',                    # escaped as RFC 5424 asks
    '[x@1 a="]"]',                       # not escaped, as some senders write it
    '[x@1 a="q\\"]x"]',                  # an escaped quote, then a bracket inside the value
    '[x@1 a="b"][y@2 c="d e" f="[g]"]',
    '[origin ip="198.51.100.9"]',
])
def test_rfc5424_structured_data_values(sd: str) -> None:
    check(f"<22>1 2026-12-03T10:00:01.5+01:00 mail postfix/smtpd 811 - {sd} {R5424}", "192.0.2.9",
          when="2026-12-03T10:00:01")


def test_rfc5424_unclosed_quote_is_all_structured_data() -> None:
    """A value whose quote never closes runs to the end of the line: no message is left, so
    nothing the sender wrote inside it can be read as a failure."""
    line = '<22>1 2026-12-03T10:00:01Z mail postfix/smtpd 811 - [x@1 a="b] ' + R5424
    assert split_header(line, NOW)[1] == "mail postfix/smtpd[811]: "
    check(line, None)


@pytest.mark.parametrize("line, header", [
    # the relay put the whole RFC 3164 "TAG[PID]: " into MSG again
    ("<22>1 2026-12-03T10:00:01Z mail postfix 811 - - postfix/smtpd[811]: " + R5424,
     "mail postfix/smtpd[811]: "),
    ("<22>1 2026-12-03T10:00:01Z mail postfix - - - postfix/submission/smtpd[9]: " + R5424,
     "mail postfix/submission/smtpd[9]: "),
    ("<22>1 2026-12-03T10:00:01Z - postfix 811 - - postfix/smtpd[811]: " + R5424,
     "postfix/smtpd[811]: "),
])
def test_rfc5424_message_repeating_its_tag(line: str, header: str) -> None:
    assert split_header(line, NOW)[1] == header + R5424
    check(line, "192.0.2.9", when="2026-12-03T10:00:01")


def test_rfc5424_message_with_another_programs_tag_keeps_the_header_tag() -> None:
    line = "<22>1 2026-12-03T10:00:01Z mail postfix 811 - - other/smtpd[811]: " + R5424
    assert split_header(line, NOW)[1] == "mail postfix[811]: other/smtpd[811]: " + R5424
    check(line, None)


@pytest.mark.parametrize("line, when", [
    # "<PRI>" before a classic header, and alone before the tag (no time: now)
    ("<22>Dec  3 10:00:01 mail postfix/smtpd[811]: " + R5424, "2026-12-03T10:00:01"),
    ("<22>postfix/smtpd[811]: " + R5424, "2026-12-03T12:00:00"),
    # RFC 5424 without its <PRI>; RFC 6587 octet counting kept in front
    ("1 2026-12-03T10:00:03Z mail postfix/smtpd 811 - - " + R5424, "2026-12-03T10:00:03"),
    ("137 <22>1 2026-12-03T10:00:04Z mail postfix/smtpd 811 - - " + R5424, "2026-12-03T10:00:04"),
    ("112 <22>Dec  3 10:00:05 mail postfix/smtpd[811]: " + R5424, "2026-12-03T10:00:05"),
])
def test_syslog_framings(line: str, when: str) -> None:
    check(line, "192.0.2.9", when=when)


@pytest.mark.parametrize("line", [
    "1 not-a-time mail postfix/smtpd 811 - - " + R5424,  # no RFC 5424 header: left as it is
    "12 postfix/smtpd[811]: " + R5424,                   # a count without <PRI> is no framing
])
def test_lookalike_framings_are_not_taken_for_headers(line: str) -> None:
    assert split_header(line, NOW) == (None, line)


# --- kernel lines as dmesg and /dev/kmsg give them -------------------------------------------

GO = ("SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 "
      "SRC=203.0.113.5 DST=192.0.2.2 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=2 DF PROTO=TCP SPT=5000 "
      "DPT=25 WINDOW=29200 RES=0x00 SYN URGP=0 ")


@pytest.mark.parametrize("line", [
    f"4,1234,5678901234,-;{GO}",                          # /dev/kmsg record
    f"4,1234,5678901234,-,caller=T0;{GO}",                # ... with the caller id
    f"12,99,1000,c;{GO}",
    f"kern  :warn  : [ 1234.567890] {GO}",                 # dmesg -x
    f"kern  :warn  : [Thu Dec  3 10:00:01 2026] {GO}",    # dmesg -x -T
    f"kern  :warn  : {GO}",                               # dmesg -x -t
])
def test_kernel_dump_forms(line: str) -> None:
    check(line, "203.0.113.5")


def test_dmesg_decode_time() -> None:
    check(f"kern  :warn  : [Thu Dec  3 10:00:01 2026] {GO}", "203.0.113.5", when="2026-12-03T10:00:01")


def test_kmsg_record_is_no_message_text() -> None:
    t, rest = split_header(f"4,1234,5678901234,-;{GO}", NOW)
    assert t is not None and rest == GO


def test_many_decode_prefixes_are_cheap_and_stripped_once() -> None:
    line = "kern  :warn  : " * 4000 + GO
    t, rest = split_header(line, NOW)
    assert rest.startswith("kern  :warn  : ")
    check(line, None)


# --- dovecot: the failure reason comes before the client-chosen user name -------------------

DV = S + "dovecot: imap-login: "


@pytest.mark.parametrize("line,host", [
    (DV + "Disconnected (client didn't finish SASL auth, waited 0 secs): user=<(auth failed, 1 attempts): x>, method=LOGIN, rip=192.0.2.1, lip=192.0.2.2", None),
    (DV + "Login: user=<x (auth failed, 1 attempts): y>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, mpid=7, TLS", None),
    (DV + "Logged in: user=<x (tried to use disallowed plaintext auth): y>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", None),
    (DV + "Disconnected (no auth attempts in 0 secs): user=<(auth failed, 1 attempts) (auth_failed): x>, rip=192.0.2.1, lip=192.0.2.2", None),
    # the real thing with the same user names still counts
    (DV + "Disconnected (auth failed, 1 attempts in 2 secs): user=<(auth failed, 1 attempts): x>, method=LOGIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    (DV + "Login aborted: Connection closed: read(size=1003) failed: Connection reset by peer (auth failed, 2 attempts in 4 secs) (auth_failed): user=<a(b)c>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2", "192.0.2.1"),
    (DV + "Disconnected: Connection closed: SSL_read() failed: error:0A000126:SSL routines::unexpected eof while reading (auth failed, 1 attempts in 2 secs): user=<bob>, rip=192.0.2.1, lip=192.0.2.2, TLS", "192.0.2.1"),
])
def test_dovecot_user_name_cannot_make_a_failure(line: str, host: str | None) -> None:
    check(line, host)


def test_courier_plain_initial_response_is_never_a_user() -> None:
    """AUTH PLAIN's initial response is base64 of the user AND the password."""
    line = S + 'courieresmtpd: error,relay=::ffff:192.0.2.1,port=1,msg="535 Authentication failed.",cmd: AUTH PLAIN AGJvYgBzZWNyZXQ='
    check(line, "192.0.2.1", None)
    check(line.replace("AUTH PLAIN", "AUTH plain"), "192.0.2.1", None)
    check(line.replace("AUTH PLAIN AGJvYgBzZWNyZXQ=", "AUTH LOGIN bob@example.org"), "192.0.2.1", "bob@example.org")


@pytest.mark.parametrize("line,user", [
    (S + "dovecot: auth: passwd-file(?,192.0.2.1,<abc>): unknown user", None),
    (S + "dovecot: auth(?,192.0.2.1,sasl:plain)<abc>: Info: passwd-file: unknown user", None),
    (S + "dovecot: auth: passwd-file(?x,192.0.2.1): unknown user", "?x"),
])
def test_dovecot_question_mark_is_no_user(line: str, user: str | None) -> None:
    check(line, "192.0.2.1", user)


# --- a long line that ends with its address may have been cut inside it ----------------------

PAM = ("Dec  3 10:00:01 mail saslauthd[9]: pam_unix(smtp:auth): authentication failure; logname= "
       "uid=0 euid=0 tty= ruser={ruser} rhost=203.0.113.12{tail}")


@pytest.mark.parametrize("ruser, tail, host", [
    ("x" * 1000, "", None),                 # at a syslog size limit: maybe 203.0.113.12x, cut
    # a short tail may itself be the attacker's (dovecot passes the user as PAM's ruser): a
    # fake "rhost=... user=..." in ruser= with the cut right after it
    ("x" * 1000, "  user=bob", None),
    ("bob", "", "203.0.113.12"),            # an ordinary line of an unknown user
    ("x" * 700, "", "203.0.113.12"),        # long, but below every syslog limit
])
def test_address_ending_a_long_line_is_not_trusted(ruser: str, tail: str, host: str | None) -> None:
    check(PAM.format(ruser=ruser, tail=tail), host)
