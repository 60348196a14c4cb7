"""Firewall rules as text: the fixed rules that reject banned addresses, and the optional
in-kernel SMTP AUTH matcher whose LOG lines the kernel-smtp filter reads.

Pure functions: they render strings and do no I/O. logban never loads firewall rules
itself; the administrator loads these once (``iptables-restore --noflush``, firewalld, or
the distribution's rules file), and logban only changes set contents.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_BAN_PORTS = (25, 465, 587)
DEFAULT_MATCHER_PORTS = (25, 587)
DEFAULT_REPLY = "535 5.7.8 Error: authentication failed"
DEFAULT_STRIKE_PREFIX = "SMTP_AUTH_FAIL: Strike"
DEFAULT_REJECT_PREFIX = "SMTP_AUTH_REJECTED: Go AWAY:"
DEFAULT_BRUTEFORCE_PREFIX = "SMTP Brute Force Attempt:"
LOG_PREFIX_MAX = 29     # xt_LOG keeps 30 bytes including the NUL
STRING_MAX = 128        # XT_STRING_MAX_PATTERN_SIZE
MULTIPORT_MAX = 15      # XT_MULTI_PORTS

# chain and recent-list names of the kernel matcher
CHAIN_OUT = "LOGBAN_SMTP_OUT"        # server replies: count auth failures per client
CHAIN_STRIKE = "LOGBAN_STRIKE"       # which strike this is, for the LOG prefix
CHAIN_IN = "LOGBAN_SMTP_IN"          # client packets: reject after too many strikes
CHAIN_REJECT = "LOGBAN_AUTH_REJECT"
CHAIN_RATE = "LOGBAN_SMTP_RATE"      # new connections: rate limit per client
CHAIN_BRUTE = "LOGBAN_BRUTEFORCE"
RECENT_FAIL = "LOGBAN_AUTHFAIL"
RECENT_CONN = "LOGBAN_SMTPCONN"


# -- validation -------------------------------------------------------------------------

def _ports(ports: Iterable[int], what: str) -> str:
    ps = list(dict.fromkeys(int(p) for p in ports))
    if not ps:
        raise ValueError(f"{what}: at least one port is needed")
    bad = [p for p in ps if not 0 < p < 65536]
    if bad:
        raise ValueError(f"{what}: {bad} not in 1..65535")
    if len(ps) > MULTIPORT_MAX:
        raise ValueError(f"{what}: the multiport match takes at most {MULTIPORT_MAX} ports, "
                         f"got {len(ps)}")
    return ",".join(str(p) for p in ps)


def _quotable(text: str, what: str) -> str:
    """Text that goes between double quotes in an iptables-restore line."""
    if any(c in text for c in '"\\') or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{what} {text!r}: quotes, backslashes and control characters "
                         "cannot be written in an iptables-restore file")
    if not text.isascii():
        raise ValueError(f"{what} {text!r}: only ASCII is allowed")
    return text


def _log_prefix(prefix: str, what: str) -> str:
    """The --log-prefix value: the prefix plus a space before the kernel's IN=..., if it
    fits in the kernel's 29 characters."""
    _quotable(prefix, what)
    if not prefix.strip():
        raise ValueError(f"{what}: the LOG prefix must not be empty")
    if len(prefix) > LOG_PREFIX_MAX:
        raise ValueError(f"{what} {prefix!r} is {len(prefix)} characters; the kernel LOG "
                         f"target allows at most {LOG_PREFIX_MAX}")
    return prefix if len(prefix) == LOG_PREFIX_MAX or prefix.endswith(" ") else prefix + " "


def strike_log_prefix(strike_prefix: str, n: int) -> str:
    """The LOG prefix of strike ``n``: "SMTP_AUTH_FAIL: Strike 2: "."""
    text = f"{strike_prefix} {n}: "
    _quotable(strike_prefix, "strike_prefix")
    if len(text) > LOG_PREFIX_MAX:
        room = LOG_PREFIX_MAX - len(f" {n}: ")
        raise ValueError(f"strike_prefix {strike_prefix!r} is too long: with the strike number "
                         f"the LOG prefix {text!r} has {len(text)} characters, the kernel allows "
                         f"{LOG_PREFIX_MAX}; use at most {room} characters")
    return text


def _networks(cidrs: Iterable[str], version: int) -> list[str]:
    out = []
    for c in cidrs:
        try:
            net = ipaddress.ip_network(str(c).strip(), strict=False)
        except ValueError as e:
            raise ValueError(f"own network {c!r} is not a CIDR: {e}") from None
        if net.version == version:
            out.append(str(net))
    return out


def _set_name(name: str, what: str) -> str:
    if not name or len(name.encode()) > 31 or any(c.isspace() or c in "\"'\\" for c in name):
        raise ValueError(f"{what} {name!r}: an ipset name is 1 to 31 characters without blanks "
                         "or quotes")
    return name


# -- the fixed rules --------------------------------------------------------------------

def ban_rule_args(set_name: str, ports: Sequence[int] = DEFAULT_BAN_PORTS) -> str:
    """The match and target of the fixed rule, without chain: the same for iptables,
    ip6tables and firewalld."""
    return (f"-p tcp -m multiport --dports {_ports(ports, 'ports')} "
            f"-m set --match-set {_set_name(set_name, 'set')} src "
            "-j REJECT --reject-with tcp-reset")


def ban_restore_fragment(set_name: str, ports: Sequence[int] = DEFAULT_BAN_PORTS,
                         command: str = "iptables") -> str:
    """iptables-restore (or ip6tables-restore) input with the one fixed rule."""
    return "\n".join((
        f"# logban: reject banned addresses (ipset {set_name}) on the SMTP ports.",
        f"# The set must exist first (`logban sets`). Load once with: {command}-restore --noflush",
        "*filter",
        # -I: first in INPUT, before any ACCEPT of the mail ports or a final REJECT, wherever
        # the admin pastes it; a banned client is cut even on an open connection.
        f"-I INPUT {ban_rule_args(set_name, ports)}",
        "COMMIT",
        ""))


def firewalld_commands(set4: str, set6: str, ports: Sequence[int] = DEFAULT_BAN_PORTS) -> str:
    """firewall-cmd lines adding the fixed rules as permanent direct rules."""
    return "\n".join((
        "# logban: the sets must exist before firewalld loads these (`logban sets` at boot)",
        f"firewall-cmd --permanent --direct --add-rule ipv4 filter INPUT 0 "
        f"{ban_rule_args(set4, ports)}",
        f"firewall-cmd --permanent --direct --add-rule ipv6 filter INPUT 0 "
        f"{ban_rule_args(set6, ports)}",
        "firewall-cmd --reload",
        ""))


def firewalld_direct_xml(set4: str, set6: str, ports: Sequence[int] = DEFAULT_BAN_PORTS) -> str:
    """/etc/firewalld/direct.xml content with the fixed rules (merge it into an existing
    file by hand)."""
    return "\n".join((
        '<?xml version="1.0" encoding="utf-8"?>',
        "<direct>",
        "  <!-- logban: reject banned addresses on the SMTP ports -->",
        f'  <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">'
        f"{ban_rule_args(set4, ports)}</rule>",
        f'  <rule ipv="ipv6" table="filter" chain="INPUT" priority="0">'
        f"{ban_rule_args(set6, ports)}</rule>",
        "</direct>",
        ""))


def fixed_rules(set4: str = "logban4", set6: str = "logban6",
                ports: Sequence[int] = DEFAULT_BAN_PORTS) -> dict[str, str]:
    """Every form of the fixed rules, by key: "iptables", "ip6tables" (restore fragments),
    "firewalld" (firewall-cmd lines), "firewalld-xml" (direct.xml)."""
    return {
        "iptables": ban_restore_fragment(set4, ports, "iptables"),
        "ip6tables": ban_restore_fragment(set6, ports, "ip6tables"),
        "firewalld": firewalld_commands(set4, set6, ports),
        "firewalld-xml": firewalld_direct_xml(set4, set6, ports),
    }


# -- the in-kernel SMTP AUTH matcher ----------------------------------------------------

def kernel_matcher_fragment(
    version: int = 4,
    ports: Sequence[int] = DEFAULT_MATCHER_PORTS,
    reply: str = DEFAULT_REPLY,
    own_networks: Iterable[str] = (),
    strike_prefix: str = DEFAULT_STRIKE_PREFIX,
    reject_prefix: str = DEFAULT_REJECT_PREFIX,
    bruteforce_prefix: str = DEFAULT_BRUTEFORCE_PREFIX,
    strikes: int = 3,
    strike_seconds: int = 1200,
    conn_hitcount: int = 6,
    conn_seconds: int = 60,
    search_to: int = 120,
) -> str:
    """iptables-restore (version 4) or ip6tables-restore (version 6) input for the matcher.

    OUTPUT: a server reply carrying ``reply`` records the client (``--rdest``) in the
    recent list and logs "<strike_prefix> N: " with the client as DST=, N being how many
    failures it had within ``strike_seconds`` (capped at ``strikes``).
    INPUT: a client with ``strikes`` failures within ``strike_seconds`` is logged with
    ``reject_prefix`` (client as SRC=) and reset; a client opening more than
    ``conn_hitcount`` - 1 connections within ``conn_seconds`` is logged with
    ``bruteforce_prefix`` and reset. Own networks return early on both sides.
    """
    if version not in (4, 6):
        raise ValueError(f"version must be 4 or 6, not {version}")
    port_list = _ports(ports, "ports")
    _quotable(reply, "reply")
    if not reply or len(reply) > STRING_MAX:
        raise ValueError(f"reply must be 1 to {STRING_MAX} characters (the string match "
                         f"limit), got {len(reply)}")
    # the reply must end within the searched bytes, which include the IP and TCP headers
    # (20 or 40, plus 20 to 32 with TCP options): IPv6 needs 20 more than IPv4
    to = search_to + (20 if version == 6 else 0)
    headers = (40 if version == 6 else 20) + 32
    if headers + len(reply) > to:
        raise ValueError(f"reply of {len(reply)} characters does not fit in the first {to} "
                         f"bytes searched after {headers} bytes of headers; raise search_to")
    for what, n, lo in (("strikes", strikes, 1), ("strike_seconds", strike_seconds, 1),
                        ("conn_hitcount", conn_hitcount, 1), ("conn_seconds", conn_seconds, 1)):
        if int(n) < lo:
            raise ValueError(f"{what} must be at least {lo}, not {n}")
    if strikes > 20 or conn_hitcount > 20:
        # xt_recent remembers ip_pkt_list_tot (default 20) hits per address
        raise ValueError("strikes and conn_hitcount must be at most 20 (the recent match "
                         "remembers 20 hits per address unless ip_pkt_list_tot is raised)")
    reject = _log_prefix(reject_prefix, "reject_prefix")
    brute = _log_prefix(bruteforce_prefix, "bruteforce_prefix")
    strike_prefixes = [strike_log_prefix(strike_prefix, n) for n in range(1, strikes + 1)]
    nets = _networks(own_networks, version)
    strike_chains = [f"{CHAIN_STRIKE}_{n}" for n in range(1, strikes + 1)]

    lines = [
        f"# logban kernel SMTP AUTH matcher (IPv{version}). Load once with: "
        f"{'ip6tables' if version == 6 else 'iptables'}-restore --noflush",
        "# Load it once: reloading flushes the LOGBAN_ chains but inserts the INPUT/OUTPUT jumps",
        "# again, and a doubled jump would count every failure twice.",
        "*filter",
        *(f":{c} - [0:0]" for c in (CHAIN_OUT, CHAIN_STRIKE, *strike_chains, CHAIN_IN,
                                    CHAIN_REJECT, CHAIN_RATE, CHAIN_BRUTE)),
        f"-I OUTPUT -p tcp -m multiport --sports {port_list} -j {CHAIN_OUT}",
        f"-I INPUT -p tcp -m multiport --dports {port_list} -j {CHAIN_IN}",
        # OUTPUT side: the offender is the destination
        *(f"-A {CHAIN_OUT} -d {n} -j RETURN" for n in nets),
        f"-A {CHAIN_OUT} -p tcp -m multiport --sports {port_list} "
        f'-m string --algo kmp --to {to} --string "{reply}" '
        f"-m recent --set --rdest --name {RECENT_FAIL} -j {CHAIN_STRIKE}",
    ]
    # Highest strike first; -g (goto) so that after the LOG chain returns, control goes
    # back to CHAIN_OUT and the lower strike rules are not also tried.
    for n in range(strikes, 1, -1):
        lines.append(f"-A {CHAIN_STRIKE} -m recent --rcheck --rdest --name {RECENT_FAIL} "
                     f"--seconds {strike_seconds} --hitcount {n} -g {strike_chains[n - 1]}")
    lines.append(f"-A {CHAIN_STRIKE} -g {strike_chains[0]}")
    for chain, prefix in zip(strike_chains, strike_prefixes):
        lines.append(f'-A {chain} -j LOG --log-prefix "{prefix}"')
    lines += [
        # INPUT side: the offender is the source
        *(f"-A {CHAIN_IN} -s {n} -j RETURN" for n in nets),
        f"-A {CHAIN_IN} -m recent --rcheck --name {RECENT_FAIL} --seconds {strike_seconds} "
        f"--hitcount {strikes} -j {CHAIN_REJECT}",
        f"-A {CHAIN_IN} -p tcp --syn -j {CHAIN_RATE}",
        f'-A {CHAIN_REJECT} -j LOG --log-prefix "{reject}"',
        f"-A {CHAIN_REJECT} -p tcp -j REJECT --reject-with tcp-reset",
        f"-A {CHAIN_RATE} -m recent --set --name {RECENT_CONN}",
        f"-A {CHAIN_RATE} -m recent --rcheck --name {RECENT_CONN} --seconds {conn_seconds} "
        f"--hitcount {conn_hitcount} -j {CHAIN_BRUTE}",
        f'-A {CHAIN_BRUTE} -j LOG --log-prefix "{brute}"',
        f"-A {CHAIN_BRUTE} -p tcp -j REJECT --reject-with tcp-reset",
        "COMMIT",
        "",
    ]
    return "\n".join(lines)


def kernel_matcher_rules(
    ports: Sequence[int] = DEFAULT_MATCHER_PORTS,
    reply: str = DEFAULT_REPLY,
    own_networks: Iterable[str] = (),
    strike_prefix: str = DEFAULT_STRIKE_PREFIX,
    reject_prefix: str = DEFAULT_REJECT_PREFIX,
    bruteforce_prefix: str = DEFAULT_BRUTEFORCE_PREFIX,
    **options: Any,
) -> dict[str, str]:
    """The matcher for both families: {"iptables": ..., "ip6tables": ...}. ``options`` are
    the tuning knobs of kernel_matcher_fragment (strikes, strike_seconds, conn_hitcount,
    conn_seconds, search_to). Own networks go to the family they belong to."""
    nets = list(own_networks)
    common = dict(ports=ports, reply=reply, own_networks=nets, strike_prefix=strike_prefix,
                  reject_prefix=reject_prefix, bruteforce_prefix=bruteforce_prefix, **options)
    return {"iptables": kernel_matcher_fragment(4, **common),
            "ip6tables": kernel_matcher_fragment(6, **common)}


# -- adapters for `logban rules` --------------------------------------------------------

def _ipset_actions(cfg: Any) -> list[tuple[str, str]]:
    """(set4, set6) of every ipset action the jails use (the defaults if none)."""
    names = list(dict.fromkeys(j.action for j in getattr(cfg, "jails", {}).values()))
    out = []
    for name in names:
        opts: Mapping[str, Any] = cfg.actions.get(name, {})
        if str(opts.get("type", name)) == "ipset":
            out.append((str(opts.get("set4", "logban4")), str(opts.get("set6", "logban6"))))
    return list(dict.fromkeys(out)) or [("logban4", "logban6")]


def render_fixed(cfg: Any, fmt: str = "iptables") -> str:
    """`logban rules`: the fixed rules for the configured sets; ``fmt`` "iptables" gives
    both restore fragments, "firewalld" the firewall-cmd lines. ``cfg.rules`` may set
    "ports"."""
    ports = tuple((getattr(cfg, "rules", None) or {}).get("ports", DEFAULT_BAN_PORTS))
    parts = []
    for set4, set6 in _ipset_actions(cfg):
        r = fixed_rules(set4, set6, ports)
        if fmt == "firewalld":
            parts.append(r["firewalld"])
        elif fmt == "firewalld-xml":
            parts.append(r["firewalld-xml"])
        elif fmt == "iptables":
            parts.append(f"{r['iptables']}\n{r['ip6tables']}")
        else:
            raise ValueError(f"unknown format {fmt!r} (iptables, firewalld, firewalld-xml)")
    return "\n".join(parts).rstrip("\n")
