"""Rule rendering: exact text, validation, agreement with actions/ipset.yaml, and loading
for real with iptables-restore / ip6tables-restore inside a network namespace; the kernel
matcher is also exercised with real connections over a veth pair."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import require_root, require_tool
from netns import in_netns, netns, netns_pair, run_in

from logban import rules
from logban.actions.ipset import KERNEL_MAX_TIMEOUT, TEMP_SUFFIX, IPSetAction
from logban.rules import fixed_rules, kernel_matcher_fragment, kernel_matcher_rules

BAN4 = ("-I INPUT -p tcp -m multiport --dports 25,465,587 -m set --match-set logban4 src "
        "-j REJECT --reject-with tcp-reset")


# -- text ------------------------------------------------------------------------------

def test_fixed_rules_text() -> None:
    r = fixed_rules("logban4", "logban6")
    assert set(r) == {"iptables", "ip6tables", "firewalld", "firewalld-xml"}
    lines = [l for l in r["iptables"].splitlines() if not l.startswith("#")]
    assert lines == ["*filter", BAN4, "COMMIT"]
    assert "--match-set logban6 src" in r["ip6tables"] and "logban4" not in r["ip6tables"]
    assert ("firewall-cmd --permanent --direct --add-rule ipv4 filter INPUT 0 -p tcp -m multiport "
            "--dports 25,465,587 -m set --match-set logban4 src -j REJECT --reject-with tcp-reset"
            ) in r["firewalld"].splitlines()
    assert "--add-rule ipv6 filter INPUT 0" in r["firewalld"]
    xml = r["firewalld-xml"]
    assert '<rule ipv="ipv6" table="filter" chain="INPUT" priority="0">-p tcp' in xml
    assert "--dports 2525 " in fixed_rules("a", "b", ports=(2525,))["iptables"]


def test_fixed_rules_validation() -> None:
    with pytest.raises(ValueError, match="not in 1..65535"):
        fixed_rules(ports=(0,))
    with pytest.raises(ValueError, match="ipset name"):
        fixed_rules(set4="has space")
    with pytest.raises(ValueError, match="at most 15"):
        fixed_rules(ports=range(1, 17))


def test_kernel_matcher_text() -> None:
    r = kernel_matcher_rules(own_networks=["192.0.2.0/24", "2001:db8::/32"])
    v4, v6 = r["iptables"], r["ip6tables"]
    assert ('-p tcp -m multiport --sports 25,587 -m string --algo kmp --to 120 --string '
            '"535 5.7.8 Error: authentication failed" -m recent --set --rdest --name '
            'LOGBAN_AUTHFAIL') in v4
    for n in (1, 2, 3):
        assert f'--log-prefix "SMTP_AUTH_FAIL: Strike {n}: "' in v4
    assert "--log-prefix \"SMTP_AUTH_FAIL: Strike 4" not in v4
    assert "-m recent --rcheck --name LOGBAN_AUTHFAIL --seconds 1200 --hitcount 3" in v4
    assert '--log-prefix "SMTP_AUTH_REJECTED: Go AWAY: "' in v4
    assert '--log-prefix "SMTP Brute Force Attempt: "' in v4
    assert "--seconds 60 --hitcount 6" in v4 and "REJECT --reject-with tcp-reset" in v4
    assert "-s 192.0.2.0/24 -j RETURN" in v4 and "-d 192.0.2.0/24 -j RETURN" in v4
    assert "2001:db8::/32" not in v4 and "-s 2001:db8::/32 -j RETURN" in v6
    assert "192.0.2.0/24" not in v6
    chains = {l.split()[0][1:] for l in v4.splitlines() if l.startswith(":")}
    assert chains and all(c.startswith("LOGBAN_") for c in chains)
    # every chain a rule jumps to is declared
    for line in v4.splitlines():
        for flag in (" -j ", " -g "):
            if flag in line:
                target = line.split(flag)[1].split()[0]
                assert target in chains or target in {"RETURN", "LOG", "REJECT"}
    assert "535 5.7.8 Error: Authentication failed here" in kernel_matcher_fragment(
        reply="535 5.7.8 Error: Authentication failed here")
    assert "--sports 2525 " in kernel_matcher_fragment(ports=(2525,))


def test_kernel_matcher_strike_count_is_configurable() -> None:
    text = kernel_matcher_fragment(strikes=5, strike_seconds=600)
    assert '"SMTP_AUTH_FAIL: Strike 5: "' in text
    assert "--seconds 600 --hitcount 5 -j LOGBAN_AUTH_REJECT" in text


def test_log_prefix_limits() -> None:
    assert rules.strike_log_prefix("SMTP_AUTH_FAIL: Strike", 3) == "SMTP_AUTH_FAIL: Strike 3: "
    with pytest.raises(ValueError, match="at most 25 characters"):
        kernel_matcher_rules(strike_prefix="S" * 26)
    kernel_matcher_rules(strike_prefix="S" * 25)  # "SSS... 3: " is exactly 29
    with pytest.raises(ValueError, match="at most 29"):
        kernel_matcher_rules(reject_prefix="R" * 30)
    # exactly 29 is allowed, without the trailing space that would not fit
    assert '--log-prefix "' + "R" * 29 + '"' in kernel_matcher_fragment(reject_prefix="R" * 29)
    with pytest.raises(ValueError, match="at most 29"):
        kernel_matcher_rules(bruteforce_prefix="B" * 40)
    with pytest.raises(ValueError, match="quotes"):
        kernel_matcher_rules(reject_prefix='say "hi"')
    with pytest.raises(ValueError, match="quotes"):
        kernel_matcher_rules(reply='535 "no"')
    with pytest.raises(ValueError, match="not a CIDR"):
        kernel_matcher_rules(own_networks=["192.0.2.0/33"])
    with pytest.raises(ValueError, match="does not fit"):
        kernel_matcher_rules(reply="5" * 100)


def test_action_description_matches_code() -> None:
    root = Path(__file__).resolve().parent.parent
    desc = yaml.safe_load((root / "actions" / "ipset.yaml").read_text())
    a = IPSetAction()
    sets = {s["option"]: s for s in desc["sets"]}
    assert sets["set4"]["default"] == a.set4 and sets["set6"]["default"] == a.set6
    assert (sets["set4"]["family"], sets["set6"]["family"]) == ("inet", "inet6")
    assert desc["options"]["maxelem"]["default"] == a.maxelem
    assert desc["options"]["hashsize"]["default"] == a.hashsize
    assert desc["timeouts"]["kernel_max"] == KERNEL_MAX_TIMEOUT
    assert desc["temporary_set_suffix"] == TEMP_SUFFIX
    fr = desc["fixed_rules"]
    ports = ",".join(str(p) for p in fr["ports"])
    r = fixed_rules(a.set4, a.set6, fr["ports"])
    assert fr["iptables"].format(ports=ports, set4=a.set4) in r["iptables"].splitlines()
    assert fr["ip6tables"].format(ports=ports, set6=a.set6) in r["ip6tables"].splitlines()
    for line in fr["firewalld"]:
        assert line.format(ports=ports, set4=a.set4, set6=a.set6) in r["firewalld"].splitlines()
    dry = yaml.safe_load((root / "actions" / "dry-run.yaml").read_text())
    assert dry["name"] == "dry-run" and dry["logger"] == "logban.action"


def test_render_adapters_for_the_cli() -> None:
    cfg = SimpleNamespace(
        jails={"smtp": SimpleNamespace(action="ban")},
        actions={"ban": {"type": "ipset", "set4": "mail4", "set6": "mail6"}},
        rules={"ports": [25, 587]},
        kernel_matcher={"own_networks": ["192.0.2.0/24"], "ports": [25]},
        filter_vars={"kernel-smtp": {"reject_prefix": "GO AWAY:"}})
    text = rules.render_fixed(cfg, "iptables")
    assert "--dports 25,587 -m set --match-set mail4 src" in text
    assert "--match-set mail6 src" in text
    assert "firewall-cmd" in rules.render_fixed(cfg, "firewalld")


# -- loading for real ------------------------------------------------------------------

@pytest.fixture
def ns() -> str:
    require_root()
    require_tool("ip")
    require_tool("iptables-restore")
    require_tool("ip6tables-restore")
    with netns("rules") as name:
        yield name


def _restore(ns: str, version: int, text: str, test_only: bool = False) -> None:
    cmd = "ip6tables-restore" if version == 6 else "iptables-restore"
    run_in(ns, cmd, *(["--test"] if test_only else []), "--noflush", input=text)


def test_kernel_matcher_loads(ns: str) -> None:
    r = kernel_matcher_rules(own_networks=["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"])
    for version, key, save in ((4, "iptables", "iptables-save"), (6, "ip6tables", "ip6tables-save")):
        _restore(ns, version, r[key], test_only=True)
        _restore(ns, version, r[key])
        saved = run_in(ns, save).stdout
        assert '--log-prefix "SMTP_AUTH_FAIL: Strike 2: "' in saved
        assert "-j LOGBAN_SMTP_IN" in saved and "-j LOGBAN_SMTP_OUT" in saved
        # reloading replaces the chains' contents instead of failing
        _restore(ns, version, r[key])


def test_fixed_rules_load(ns: str) -> None:
    require_tool("iptables-save")
    with in_netns(ns):
        action = IPSetAction()
        action.ensure_sets()  # xt_set refuses a rule naming a set that does not exist
    try:
        r = fixed_rules(action.set4, action.set6)
        # a typical EL ruleset first: the fragment must land before its ACCEPT and REJECT
        _restore(ns, 4, "*filter\n-A INPUT -p tcp --dport 25 -j ACCEPT\n-A INPUT -j REJECT\nCOMMIT\n")
        _restore(ns, 4, r["iptables"])
        _restore(ns, 6, r["ip6tables"])
        saved = [l for l in run_in(ns, "iptables-save").stdout.splitlines() if l.startswith("-A INPUT")]
        assert saved[0] == BAN4.replace("-I INPUT", "-A INPUT")
        assert len(saved) == 3
        assert "--match-set logban6 src" in run_in(ns, "ip6tables-save").stdout
        assert action.set_info("logban6").references == 1  # type: ignore[union-attr]
    finally:
        action.stop()


# -- the kernel matcher at work --------------------------------------------------------

REPLY = "535 5.7.8 Error: authentication failed"


class _FailingSmtp:
    """A listener that answers every connection with the auth-failure reply."""

    def __init__(self, ns: str, family: int, addr: str, port: int = 587) -> None:
        with in_netns(ns):
            self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    conn.sendall(f"{REPLY}\r\n".encode())
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def _attempt(ns: str, family: int, addr: str, port: int = 587) -> str:
    """'failed' (got the reply), or 'refused' (RST)."""
    with in_netns(ns):
        c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect((addr, port))
        data = b""
        while b"\n" not in data:
            chunk = c.recv(200)
            if not chunk:
                break
            data += chunk
        return "failed" if REPLY.encode() in data else f"odd reply {data!r}"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    finally:
        c.close()


@pytest.mark.parametrize("version", [4, 6])
def test_kernel_matcher_rejects_after_three_strikes(version: int) -> None:
    require_root()
    require_tool("iptables-restore")
    require_tool("ip6tables-restore")
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    with netns_pair() as (server, client):
        addr = server.addr4 if version == 4 else server.addr6
        _restore(server.name, version, kernel_matcher_fragment(version))
        srv = _FailingSmtp(server.name, family, addr)
        try:
            assert [_attempt(client.name, family, addr) for _ in range(2)] == ["failed"] * 2
            # the third reply is the third strike: the client's next packet on that same
            # connection (its ACK) may already be reset, racing with its read of the reply
            assert _attempt(client.name, family, addr) in ("failed", "reset")
            # three strikes within 20 minutes: the next connection is reset
            assert _attempt(client.name, family, addr) == "refused"
        finally:
            srv.close()


def test_kernel_matcher_spares_own_networks_and_limits_rate() -> None:
    require_root()
    require_tool("iptables-restore")
    with netns_pair() as (server, client):
        _restore(server.name, 4, kernel_matcher_fragment(4, own_networks=["192.0.2.0/30"]))
        srv = _FailingSmtp(server.name, socket.AF_INET, server.addr4)
        try:
            # the client is in an own network: neither strikes nor the rate limit apply
            assert [_attempt(client.name, socket.AF_INET, server.addr4)
                    for _ in range(8)] == ["failed"] * 8
        finally:
            srv.close()
    with netns_pair() as (server, client):
        # strikes out of reach: only the connection rate limit (6 in 60 s) can reject
        _restore(server.name, 4, kernel_matcher_fragment(4, reply="no such reply"))
        srv = _FailingSmtp(server.name, socket.AF_INET, server.addr4)
        try:
            results = [_attempt(client.name, socket.AF_INET, server.addr4) for _ in range(6)]
            assert results == ["failed"] * 5 + ["refused"]
        finally:
            srv.close()
