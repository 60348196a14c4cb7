"""Configuration: the documented keys, and errors that name FILE:LINE: key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logban.config import ConfigError, load_config
from logban.durations import format_duration, parse_duration

GOOD = """\
state_dir: state
socket: run/logban.sock
ignore: [127.0.0.0/8, "::1", 192.0.2.0/24]
sources:
  - file: /var/log/maillog
  - journal: {}
  - kmsg: {}
jails:
  smtp-auth:
    filters: [postfix-sasl, sendmail-auth, saslauthd, dovecot, pam, exim, courier, cyrus-imap, kernel-smtp]
    maxretry: 3
    findtime: 20m
    bantime: 1h
    action: ipset
actions:
  ipset: {set4: logban4, set6: logban6}
"""


def test_good_config(tmp_path: Path) -> None:
    p = tmp_path / "logban.yaml"
    p.write_text(GOOD)
    c = load_config(p)
    assert c.state_dir == tmp_path / "state"
    assert c.socket == tmp_path / "run" / "logban.sock"
    assert [s.kind for s in c.sources] == ["file", "journal", "kmsg"]
    j = c.jails["smtp-auth"]
    assert (j.maxretry, j.findtime, j.bantime, j.action) == (3, 1200.0, 3600.0, "ipset")
    assert c.actions["ipset"] == {"set4": "logban4", "set6": "logban6"}
    assert [str(n) for n in c.ignore] == ["127.0.0.0/8", "::1/128", "192.0.2.0/24"]


@pytest.mark.parametrize("edit,line,message", [
    (("findtime: 20m", "findtime: 20 minutes"), 12, "jails.smtp-auth.findtime: '20 minutes' is not a duration"),
    (("maxretry: 3", "maxretry: -1"), 11, "jails.smtp-auth.maxretry: -1 is not a whole number >= 1"),
    (('"::1", 192.0.2.0/24', '"::1", 192.0.2.300/24'), 3, "ignore[2]: '192.0.2.300/24' is not an address"),
    (("kernel-smtp]", "kernel-smtpx]"), 10, "jails.smtp-auth.filters[8]: unknown filter 'kernel-smtpx'"),
    (("action: ipset", "action: nft"), 14, "jails.smtp-auth.action: unknown action 'nft'"),
    (("  - kmsg: {}", "  - syslog: {}"), 7, "sources[2].syslog: unknown source kind"),
    (("state_dir: state", "state_dir: state\nbogus: 1"), 2, "bogus: unknown key"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, edit: tuple[str, str], line: int, message: str) -> None:
    p = tmp_path / "logban.yaml"
    p.write_text(GOOD.replace(*edit))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert any(x.startswith(f"{p}:{line}: {message}") for x in e.value.problems), e.value.problems


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "logban.yaml"
    p.write_text("jails:\n  a: [\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.problems[0].startswith(f"{p}:3: (syntax): not valid YAML")


def test_check_command_exit_codes_and_env(tmp_path: Path) -> None:
    p = tmp_path / "logban.yaml"
    p.write_text(GOOD)
    ok = subprocess.run([sys.executable, "-m", "logban", "check"], capture_output=True, text=True,
                        env={"LOGBAN_CONFIG": str(p), "PATH": "/usr/bin:/bin"})
    assert ok.returncode == 0, ok.stderr
    assert "1 jail(s), 3 source(s), 9 filter(s)" in ok.stdout
    p.write_text(GOOD.replace("bantime: 1h", "bantime: soon"))
    bad = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(p)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (f"{p}:13: jails.smtp-auth.bantime: 'soon' is not a duration: write seconds "
                                  "or a number with s, m, h, d or w (e.g. 20m, 1h, 1h30m)")


@pytest.mark.parametrize("text,seconds", [("90", 90), (90, 90), ("30s", 30), ("20m", 1200), ("1h30m", 5400),
                                          ("2d", 172800), ("1w", 604800), ("1.5h", 5400)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1x", "-5", "1h 2", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1])
def test_non_finite_or_negative_durations_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)
