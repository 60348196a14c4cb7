"""``logban test-filter`` as a user runs it: the real command, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOW = "2026-12-03T12:00:00"
PF = "Dec  3 10:00:{s:02d} mx1 postfix/smtpd[{s}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "logban", "test-filter", *args],
                          input=stdin, capture_output=True, timeout=60)


def objects(out: bytes) -> list[dict]:
    return [json.loads(l) for l in out.decode().splitlines() if l.strip()]


def test_json_lines_carry_physical_line_numbers_and_summary(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes("\n".join([
        "Dec  3 10:00:00 mx1 postfix/qmgr[9]: 4AB: removed",
        PF.format(s=1, ip="192.0.2.10"),
        "Dec  3 10:00:02 mx1 saslauthd[7]: do_auth         : auth failure: [user=jdoe] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]",
        PF.format(s=3, ip="192.0.2.10"),
        "Dec  3 10:00:04 mx1 postfix/smtpd[4]: warning: unknown[192.0.2.11]: SASL LOGIN authentication failed: Connection lost to authentication server",
        "Dec  3 10:00:05 mx1 postfix/smtpd[5]: warning: something else authentication failed here",
    ]).encode() + b"\n")
    p = run("--json", "--now", NOW, str(log))
    assert p.returncode == 0, p.stderr
    objs = objects(p.stdout)
    fails = [o for o in objs if "summary" not in o]
    assert fails == [
        {"line": 2, "filter": "postfix-sasl", "host": "192.0.2.10", "user": None, "time": "2026-12-03T10:00:01"},
        {"line": 3, "filter": "saslauthd", "host": None, "user": "jdoe", "time": "2026-12-03T10:00:02"},
        {"line": 4, "filter": "postfix-sasl", "host": "192.0.2.10", "user": None, "time": "2026-12-03T10:00:03"},
    ]
    summary = objs[-1]["summary"]
    assert summary["lines"] == 6
    assert summary["matched"] == 3
    pf = summary["filters"]["postfix-sasl"]
    assert pf["failures"] == 2 and pf["near_misses"] == 1
    assert pf["top"] == [{"host": "192.0.2.10", "count": 2, "users": []}]
    assert pf["near_miss_samples"][0]["line"] == 6
    assert summary["filters"]["saslauthd"]["without_address"] == 1


def test_hostile_bytes_never_hide_the_next_line(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(
        PF.format(s=1, ip="192.0.2.20").encode() + b"\r\n"          # CRLF
        + b"\x00\xff\xfe garbage \x80 authentication failed \x00\n"  # NUL and invalid UTF-8
        + b"x" * (2 * 1024 * 1024) + b" authentication failed\n"      # 2 MiB line
        + PF.format(s=2, ip="192.0.2.21").encode() + b"\n"
        + PF.format(s=3, ip="192.0.2.22").encode())                   # no final newline
    p = run("--json", "--now", NOW, str(log))
    assert p.returncode == 0, p.stderr
    got = [(o["line"], o["host"]) for o in objects(p.stdout) if "host" in o]
    assert got == [(1, "192.0.2.20"), (4, "192.0.2.21"), (5, "192.0.2.22")]
    assert objects(p.stdout)[-1]["summary"]["too_long"] == 1


def test_stdin_and_filter_selection() -> None:
    data = (PF.format(s=1, ip="198.51.100.5") + "\n"
            + "Dec  3 10:00:02 mx1 kernel: SMTP_AUTH_REJECTED: Go AWAY: IN=eth0 OUT= SRC=203.0.113.5 DST=192.0.2.1 LEN=60 \n")
    p = run("--json", "--now", NOW, "--filter", "kernel-smtp", "-", stdin=data.encode())
    assert p.returncode == 0
    assert [o["host"] for o in objects(p.stdout) if "host" in o] == ["203.0.113.5"]


def test_unknown_filter_and_unreadable_file_exit_2(tmp_path: Path) -> None:
    p = run("--filter", "nope", str(tmp_path))
    assert p.returncode == 2
    assert b"unknown filter 'nope'" in p.stderr
    p = run(str(tmp_path / "missing.log"))
    assert p.returncode == 2
    assert p.stderr.decode().strip() == f"logban: cannot read {tmp_path / 'missing.log'}: No such file or directory"
    assert len(p.stderr.decode().strip().splitlines()) == 1


def test_human_report_names_offenders_users_and_near_misses(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    lines = [f"Dec  3 10:00:0{i} mx1 sendmail[1]: 4B3A1aB1: AUTH failure (LOGIN): authentication failure (-13) "
             f"SASL(-13): authentication failure: checkpass failed, user=user{i}, relay=[192.0.2.30]" for i in range(3)]
    lines.append("Dec  3 10:00:09 mx1 sendmail[1]: 4B3A1aB1: AUTH failure (LOGIN): a new wording we do not know")
    log.write_text("\n".join(lines) + "\n")
    p = run("--now", NOW, str(log))
    assert p.returncode == 0
    out = p.stdout.decode()
    assert "[sendmail-auth] 3 failures, 1 address, 1 near miss" in out
    assert "3  192.0.2.30  users: user0, user1, user2" in out
    assert "first 2026-12-03T10:00:00  last 2026-12-03T10:00:02" in out
    assert "line 4: Dec  3 10:00:09" in out
    assert "lines/s" in out


def test_attempts_across_logs_are_counted_once_and_saslauthd_users_attributed(tmp_path: Path) -> None:
    strike = ("Dec  3 10:00:{s:02d} mx1 kernel: SMTP_AUTH_FAIL: Strike {n}: IN= OUT=eth0 SRC=192.0.2.1 "
              "DST=203.0.113.7 LEN=73 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=25 DPT=6000 URGP=0 ")
    sasl = ("Dec  3 10:00:{s:02d} mx1 saslauthd[9]: do_auth         : auth failure: [user={u}] [service=smtp] "
            "[realm=] [mech=pam] [reason=PAM auth error]")
    smail = ("Dec  3 10:00:{s:02d} mx1 sendmail[8]: 4B3A1aB1: AUTH failure (LOGIN): authentication failure (-13) "
             "SASL(-13): authentication failure: checkpass failed, user={u}, relay=[203.0.113.7]")
    lines = [sasl.format(s=1, u="jdoe"), smail.format(s=1, u="jdoe"), strike.format(s=1, n=1),
             sasl.format(s=20, u="admin"), strike.format(s=20, n=2)]
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n")
    p = run("--json", "--now", NOW, str(log))
    summary = objects(p.stdout)[-1]["summary"]
    assert summary["attempts"] == {"counted": 2, "duplicates": 1, "top": [{"host": "203.0.113.7", "count": 2}]}
    assert summary["users_by_address"] == {"203.0.113.7": {"jdoe": 1, "admin": 1}}  # one per attempt
    human = run("--now", NOW, str(log)).stdout.decode()
    assert "2 counted, 1 duplicate line" in human
    assert "2  203.0.113.7  users: jdoe x1, admin x1" in human
