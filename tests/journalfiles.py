"""Real journal files for tests: entries in journal export format, turned into a ``.journal``
file by ``systemd-journal-remote -o FILE -``. Running it again on the same file appends, just
as journald appends to the live journal, so a test can grow a journal under a running reader.

Usage::

    tool = require_tool("systemd-journal-remote")
    path = tmp_path / "mail.journal"
    write_journal(tool, path, [entry("warning: unknown[192.0.2.1]: SASL LOGIN ...", at=t)])
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

# A fixed boot and machine, so entries look like one host's; any 128-bit hex will do.
BOOT_ID = "5e1f0b2a9c8d4e7f8a6b3c2d1e0f9a8b"
MACHINE_ID = "0123456789abcdef0123456789abcdef"

FieldValue = str | bytes | int


def usec(t: datetime | int | float) -> int:
    """Microseconds since the epoch; a naive datetime is local time."""
    if isinstance(t, datetime):
        return int(t.timestamp()) * 1_000_000 + t.microsecond
    if isinstance(t, float):
        return round(t * 1_000_000)
    return t


def entry(message: str | bytes, *, at: datetime | int | float, ident: str | None = "postfix/smtpd",
          pid: int | None = 1201, transport: str = "syslog", hostname: str | None = "mx1",
          priority: int = 4, **extra: FieldValue) -> dict[str, FieldValue]:
    """One entry's fields, shaped like journald's for that transport. ``at`` is the realtime."""
    fields: dict[str, FieldValue] = {
        "__REALTIME_TIMESTAMP": usec(at),
        "__MONOTONIC_TIMESTAMP": usec(at) % 10**12,
        "_BOOT_ID": BOOT_ID,
        "_MACHINE_ID": MACHINE_ID,
        "PRIORITY": priority,
        "_TRANSPORT": transport,
        "MESSAGE": message,
    }
    if transport == "kernel":
        fields["SYSLOG_IDENTIFIER"] = "kernel"
        fields["SYSLOG_FACILITY"] = 0
    else:
        if ident is not None:
            fields["SYSLOG_IDENTIFIER"] = ident
        if pid is not None:
            fields["_PID"] = pid
            fields["SYSLOG_PID"] = pid
    if hostname is not None:
        fields["_HOSTNAME"] = hostname
    fields.update(extra)
    return fields


def _bytes(v: FieldValue) -> bytes:
    if isinstance(v, bytes):
        return v
    return str(v).encode()


def export_field(name: str, value: FieldValue) -> bytes:
    """``NAME=value\\n``, or the binary form (name, little-endian 64-bit length, data) for values
    a text line cannot carry: line breaks, other control bytes, or invalid UTF-8."""
    data = _bytes(value)
    text_ok = not any(b < 0x20 and b != 0x09 for b in data)
    if text_ok:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text_ok = False
    if text_ok:
        return name.encode() + b"=" + data + b"\n"
    return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"


def export(entries: Iterable[Mapping[str, FieldValue]]) -> bytes:
    """The journal export format: fields, and an empty line after each entry."""
    out = bytearray()
    for e in entries:
        for name, value in e.items():
            out += export_field(name, value)
        out += b"\n"
    return bytes(out)


def write_journal(tool: str, path: Path, entries: Iterable[Mapping[str, FieldValue]]) -> Path:
    """Write (or append) ``entries`` to the journal file ``path`` with systemd-journal-remote."""
    if not str(path).endswith(".journal"):
        raise ValueError(f"{path}: systemd-journal-remote writes only files named *.journal")
    data = export(entries)
    r = subprocess.run([tool, "--split-mode=none", "-o", str(path), "-"], input=data,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"systemd-journal-remote failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace').strip()}")
    return path


def local(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int = 0) -> datetime:
    """A naive local wall-clock time, as a text log would write it."""
    return datetime(y, mo, d, h, mi, s, us)


def utc(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=timezone.utc)
