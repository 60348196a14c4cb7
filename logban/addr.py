"""Address parsing: one canonical text form for every way a log writes an address."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=65536)
def canonical(text: str) -> str | None:
    """The canonical form of a client address as written in a log, or None if it is none.

    Accepts bare and bracketed forms, an ``IPv6:`` prefix (sendmail), a fully expanded IPv6
    (the kernel), and reports IPv4-mapped IPv6 as IPv4. A hostname is never an address, and
    neither is one no TCP client can connect from (see ``_never_a_client``): a log line naming
    one is garbled or forged, and the kernel set refuses it.
    """
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    if t[:5].lower() == "ipv6:":
        t = t[5:]
    if not t or len(t) > 45:
        return None
    try:
        a = ipaddress.ip_address(t)
    except ValueError:
        return None
    if a.version == 6:
        if a.scope_id:  # a zone index names a local link, never a remote client
            return None
        mapped = a.ipv4_mapped
        if mapped is not None:
            a = mapped
    if _never_a_client(a):
        return None
    return str(a)


_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def _never_a_client(a: IPAddress) -> bool:
    """Unspecified (0.0.0.0/8, ::), limited broadcast and multicast addresses are never the
    source of a TCP connection. ipset refuses 0.0.0.0 and ::, so a ban of one would fail
    at every refill of the set."""
    if a.is_multicast or a.is_unspecified:
        return True
    if a.version == 4:
        return a == _BROADCAST or a in _THIS_NETWORK
    return False


def why_not_a_client(text: str) -> str:
    """For a manual ban or unban that ``canonical`` refused: what is wrong with ``text``."""
    try:
        ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return f"{text!r} is not an IP address"
    return (f"{text!r} is an address no client connects from (unspecified, broadcast, "
            "multicast or with a zone index), so it cannot be banned")


def parse_address(text: str) -> IPAddress | None:
    c = canonical(text)
    return None if c is None else ipaddress.ip_address(c)


def parse_network(text: str) -> IPNetwork:
    """A CIDR or single address as a network; raises ValueError with the text."""
    t = text.strip()
    net = ipaddress.ip_network(t, strict=False)
    if net.version == 6 and net.prefixlen >= 96:
        first = net.network_address.ipv4_mapped
        if first is not None:  # ::ffff:a.b.c.d/120 means the IPv4 net it maps
            return ipaddress.ip_network(f"{first}/{net.prefixlen - 96}", strict=False)
    return net


class AddressSet:
    """Networks that must never be banned: membership for canonical address strings."""

    def __init__(self, networks: list[IPNetwork] | None = None) -> None:
        self._nets4: list[ipaddress.IPv4Network] = []
        self._nets6: list[ipaddress.IPv6Network] = []
        for n in networks or []:
            self.add(n)

    def add(self, net: IPNetwork) -> None:
        (self._nets4 if net.version == 4 else self._nets6).append(net)  # type: ignore[arg-type]

    @property
    def networks(self) -> list[IPNetwork]:
        return [*self._nets4, *self._nets6]

    def __contains__(self, address: str) -> bool:
        a = parse_address(address)
        if a is None:
            return False
        nets = self._nets4 if a.version == 4 else self._nets6
        return any(a in n for n in nets)
