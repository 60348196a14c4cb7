"""Bulk add of entries to a kernel ipset over a raw NETLINK_NETFILTER socket.

pyroute2 sends one entry per message and waits for its ack (~5,000 entries/s); a restart
with 100,000 saved bans needs something like ``ipset restore``. This does what it does: one
IPSET_CMD_ADD message carries many entries in an IPSET_ATTR_ADT nest (up to the 64 KiB an
attribute length can express, ~2,000 IPv4 entries), acked once per message. Each entry
carries a line number, so when the kernel stops at a bad entry (set full, wrong family) its
error reply names that entry.

Only the messages this needs are built here; create/swap/destroy/list stay with pyroute2.
Layout (include/uapi/linux/netfilter/ipset/ip_set.h):

    nlmsghdr | nfgenmsg | PROTOCOL | SETNAME | LINENO | ADT{ DATA{ IP{IPADDR}, TIMEOUT,
                                                            LINENO }, DATA{...}, ... }
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10      # plain acks without an echo of the request we sent
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000

NFNL_SUBSYS_IPSET = 6
IPSET_CMD_ADD = 9
# command level attributes
IPSET_ATTR_PROTOCOL = 1
IPSET_ATTR_SETNAME = 2
IPSET_ATTR_DATA = 7
IPSET_ATTR_ADT = 8
IPSET_ATTR_LINENO = 9
# data level attributes
IPSET_ATTR_IP = 1
IPSET_ATTR_TIMEOUT = 6
IPSET_ATTR_IPADDR_IPV4 = 1
IPSET_ATTR_IPADDR_IPV6 = 2

IPSET_MAXNAMELEN = 32
IPSET_PROTOCOL_MIN = 6    # every kernel since 2.6.39 accepts it for ADD
IPSET_ERR_PROTOCOL = 4097
IPSET_ERR_EXIST = 4103
IPSET_ERR_TIMEOUT = 4107
IPSET_ERR_IPADDR_IPV4 = 4109
IPSET_ERR_IPADDR_IPV6 = 4110
IPSET_ERR_HASH_FULL = 4352  # IPSET_ERR_TYPE_SPECIFIC: first hash type error

MAX_NLA_LEN = 0xFFFF      # nla_len is 16 bits: the ADT nest cannot be larger

_ERRORS = {
    IPSET_ERR_PROTOCOL: "protocol error (an address of the wrong family for the set?)",
    errno.ENOENT: "the set does not exist",
    IPSET_ERR_HASH_FULL: "the set is full (maxelem reached)",
    IPSET_ERR_TIMEOUT: "the set was created without timeout support",
    IPSET_ERR_IPADDR_IPV4: "an IPv4 address was expected",
    IPSET_ERR_IPADDR_IPV6: "an IPv6 address was expected",
    IPSET_ERR_EXIST: "the entry already exists",
}


class BulkAddError(Exception):
    """The kernel refused an entry; entries before ``index`` in the batch are in the set,
    that one and the ones after it are not."""

    def __init__(self, setname: str, code: int, index: int | None, address: str | None):
        self.setname, self.code, self.index, self.address = setname, code, index, address
        what = _ERRORS.get(code) or (os.strerror(code) if code < 4096
                                     else f"ipset error {code}")
        where = f" at entry {index} ({address})" if index is not None else ""
        super().__init__(f"bulk add to set {setname!r} failed{where}: {what}")


@dataclass(frozen=True, slots=True)
class Entry:
    address: str
    timeout: int  # seconds; 0: never times out


def _nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _packed_entries(entries: Sequence[Entry], family: int, first_lineno: int) -> list[bytes]:
    """One IPSET_ATTR_DATA nest per entry; the line number is the entry's index + 1
    (0 would mean 'no line number' to the kernel)."""
    if family == socket.AF_INET:
        addr_len, addr_type = 4, IPSET_ATTR_IPADDR_IPV4
    elif family == socket.AF_INET6:
        addr_len, addr_type = 16, IPSET_ATTR_IPADDR_IPV6
    else:
        raise ValueError(f"family must be AF_INET or AF_INET6, not {family}")
    ip_nest = 4 + 4 + addr_len
    data_len = 4 + ip_nest + 8 + 8
    # constant headers packed once; per entry only the address, timeout and line number vary
    head = struct.pack("=HHHHHH", data_len, IPSET_ATTR_DATA | NLA_F_NESTED,
                       ip_nest, IPSET_ATTR_IP | NLA_F_NESTED,
                       4 + addr_len, addr_type | NLA_F_NET_BYTEORDER)
    timeout_head = struct.pack("=HH", 8, IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER)
    lineno_head = struct.pack("=HH", 8, IPSET_ATTR_LINENO)
    pton = socket.inet_pton
    order = sys.byteorder
    out = []
    for n, e in enumerate(entries, first_lineno):
        try:
            raw = pton(family, e.address)
        except OSError:
            raise ValueError(f"{e.address!r} is not an "
                             f"{'IPv4' if family == socket.AF_INET else 'IPv6'} address")
        out.append(b"".join((head, raw, timeout_head, e.timeout.to_bytes(4, "big"),
                             lineno_head, n.to_bytes(4, order))))
    return out


def _chunks(packed: list[bytes]) -> Iterator[tuple[int, int]]:
    """(start, end) index ranges whose entries fit in one ADT nest."""
    start, size = 0, 4
    for i, p in enumerate(packed):
        if size + len(p) > MAX_NLA_LEN:
            yield start, i
            start, size = i, 4
        size += len(p)
    if start < len(packed):
        yield start, len(packed)


class BulkSocket:
    """A NETLINK_NETFILTER socket in the network namespace current at construction."""

    def __init__(self, protocol: int = IPSET_PROTOCOL_MIN) -> None:
        self.protocol = protocol
        self._seq = 0
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            # an error reply to a batch echoes the whole ~64 KiB request
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def _message(self, setname: bytes, body: bytes, seq: int) -> bytes:
        attrs = b"".join((_nla(IPSET_ATTR_PROTOCOL, bytes((self.protocol,))),
                          _nla(IPSET_ATTR_SETNAME, setname + b"\0"),
                          # required with ADT; the kernel overwrites it in an error reply
                          _nla(IPSET_ATTR_LINENO, (0).to_bytes(4, sys.byteorder)),
                          struct.pack("=HH", 4 + len(body), IPSET_ATTR_ADT | NLA_F_NESTED),
                          body))
        nfgen = struct.pack("=BBH", socket.AF_INET, 0, 0)  # res_id is unused by ipset
        length = 16 + 4 + len(attrs)
        return struct.pack("=IHHII", length, (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_ADD,
                           NLM_F_REQUEST | NLM_F_ACK, seq, 0) + nfgen + attrs

    def add(self, setname: str, family: int, entries: Sequence[Entry]) -> int:
        """Add (or refresh the timeout of) every entry; returns how many were sent.

        Raises BulkAddError at the first entry the kernel refuses, ValueError for text that
        is no address of ``family``, OSError when the socket itself fails."""
        name = setname.encode()
        if not 0 < len(name) < IPSET_MAXNAMELEN:
            raise ValueError(f"ipset name {setname!r} must be 1 to 31 bytes")
        packed = _packed_entries(entries, family, 1)
        for start, end in _chunks(packed):
            self._seq += 1
            self._sock.send(self._message(name, b"".join(packed[start:end]), self._seq))
            code, lineno = self._ack(self._seq)
            if code:
                index = lineno - 1 if lineno and start < lineno <= end else None
                raise BulkAddError(setname, code, index,
                                   entries[index].address if index is not None else None)
        return len(packed)

    def _ack(self, seq: int) -> tuple[int, int | None]:
        """Wait for the ack of ``seq``: (error code, kernel line number of the bad entry)."""
        while True:
            data = self._sock.recv(1 << 18)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, rseq, _pid = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    raise OSError(errno.EPROTO, "malformed netlink reply from the kernel")
                if kind == NLMSG_ERROR and rseq == seq:
                    (error,) = struct.unpack_from("=i", data, offset + 16)
                    lineno = _echoed_lineno(data[offset + 20:offset + length]) if error else None
                    return -error, lineno
                offset += (length + 3) & ~3


def _echoed_lineno(echo: bytes) -> int | None:
    """The command-level LINENO in the request the kernel echoed back with its error: ipset
    writes the failing entry's line number there (call_ad in net/netfilter/ipset)."""
    if len(echo) < 20:
        return None
    (length,) = struct.unpack_from("=I", echo, 0)
    offset, end = 20, min(length, len(echo))
    while offset + 4 <= end:
        nla_len, nla_type = struct.unpack_from("=HH", echo, offset)
        if nla_len < 4:
            return None
        if nla_type & 0x3FFF == IPSET_ATTR_LINENO and nla_len >= 8:
            lineno: int = struct.unpack_from("=I", echo, offset + 4)[0]
            return lineno
        offset += (nla_len + 3) & ~3
    return None


def add_entries(setname: str, family: int, entries: Iterable[Entry],
                protocol: int = IPSET_PROTOCOL_MIN) -> int:
    """One-shot helper: open a socket in the current namespace, bulk add, close."""
    sock = BulkSocket(protocol)
    try:
        return sock.add(setname, family, list(entries))
    finally:
        sock.close()
