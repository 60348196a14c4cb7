"""Network namespace helpers for real-kernel tests.

Everything a test does to the kernel (sets, firewall rules, addresses, sockets) happens in
namespaces made here, so the host's own firewall, sets and sysctls are never touched. Names
start with ``logban-test-`` so a leftover from a killed run is easy to spot and remove
(``ip netns list | grep logban-test-``).

    with netns_pair() as (server, client):      # veth between them, both addresses up
        with in_netns(server.name):
            action = IPSetAction()             # pyroute2 sockets bind to ``server``
        run_in(server.name, "iptables-restore", "--noflush", input=text)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import netns as _pyroute2_netns

PREFIX = "logban-test-"
NETNS_DIR = "/run/netns"

# Documentation ranges (RFC 5737 / RFC 3849): never routed, so a mistake cannot reach a
# real host even if a test escaped its namespace.
SERVER4, CLIENT4, PREFIX4 = "192.0.2.1", "192.0.2.2", 24
SERVER6, CLIENT6, PREFIX6 = "2001:db8::1", "2001:db8::2", 64


def _run(argv: list[str], input: str | None = None, check: bool = True,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with exit code {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def new_name(tag: str = "") -> str:
    """A fresh namespace name; random so parallel test runs never collide."""
    return f"{PREFIX}{tag + '-' if tag else ''}{secrets.token_hex(4)}"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def create(name: str) -> None:
    """Create a namespace with ``lo`` up (the kernel makes it down in a new namespace)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"test namespace names must start with {PREFIX!r}, got {name!r}")
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
    except BaseException:
        delete(name)
        raise


def delete(name: str) -> None:
    """Remove a namespace; missing is fine. Only ever removes our own ``logban-test-`` ones.

    Sets, rules, veths and sockets that live only in it go with it (once no process or open
    socket keeps it alive)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to delete namespace {name!r}: not a logban test namespace")
    if exists(name):
        _run(["ip", "netns", "delete", name], check=False)


def run_in(name: str, *argv: str, input: str | None = None, check: bool = True,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a program inside the namespace (``ip netns exec``); raises with its stderr on
    failure unless ``check`` is False."""
    return _run(["ip", "netns", "exec", name, *argv], input=input, check=check,
                timeout=timeout)


@contextlib.contextmanager
def netns(tag: str = "") -> Iterator[str]:
    """A throwaway namespace, deleted on exit whatever happens."""
    name = new_name(tag)
    create(name)
    try:
        yield name
    finally:
        delete(name)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move this thread into the namespace for the block, and back after.

    pyroute2 sockets (``IPSet()``, ``IPRoute()``) and plain sockets opened inside the block
    stay bound to the namespace after the block ends. setns() changes only the calling
    thread, so do not hand the block's work to other threads.
    """
    if not exists(name):
        # pyroute2's setns would silently create a missing namespace (O_CREAT)
        raise FileNotFoundError(f"network namespace {name!r} does not exist")
    _pyroute2_netns.pushns(name)
    try:
        yield
    finally:
        _pyroute2_netns.popns()


@dataclass(frozen=True)
class Endpoint:
    name: str       # namespace
    ifname: str     # its end of the veth
    addr4: str
    addr6: str


def connect(a: str, b: str, addrs_a: tuple[str, str] = (SERVER4, SERVER6),
            addrs_b: tuple[str, str] = (CLIENT4, CLIENT6)) -> tuple[Endpoint, Endpoint]:
    """A veth pair between namespaces ``a`` and ``b``, each end with an IPv4 /24 and an
    IPv6 /64 (``nodad``: usable at once instead of after duplicate address detection)."""
    suffix = secrets.token_hex(3)
    if_a, if_b = f"lbA{suffix}", f"lbB{suffix}"
    # create the pair inside ``a`` so nothing ever appears in the host namespace
    run_in(a, "ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", b)
    ends = (Endpoint(a, if_a, *addrs_a), Endpoint(b, if_b, *addrs_b))
    for end in ends:
        run_in(end.name, "ip", "addr", "add", f"{end.addr4}/{PREFIX4}", "dev", end.ifname)
        run_in(end.name, "ip", "-6", "addr", "add", f"{end.addr6}/{PREFIX6}", "dev",
               end.ifname, "nodad")
        run_in(end.name, "ip", "link", "set", end.ifname, "up")
    return ends


@contextlib.contextmanager
def netns_pair() -> Iterator[tuple[Endpoint, Endpoint]]:
    """Two throwaway namespaces (server, client) joined by a veth pair; removed on exit."""
    with netns("srv") as a, netns("cli") as b:
        yield connect(a, b)



def set_members(ns: str, name: str) -> dict[str, int]:
    """Entries (address -> timeout left) of an ipset in namespace ``ns``, read back through
    pyroute2 the way logban writes them."""
    from logban.actions.ipset import IPSetAction
    with in_netns(ns):
        a = IPSetAction()
        a.set_info(name)  # opens the netlink sockets inside the namespace
    try:
        return a.kernel_entries(name)
    finally:
        a.stop()
