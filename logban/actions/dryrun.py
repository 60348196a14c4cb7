"""The dry-run action: logs what the ipset action would do and touches nothing.

It keeps an in-memory picture of what the kernel sets would hold, expiring entries the way
kernel timeouts would, so ``logban status`` shows meaningful numbers in a dry run.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from logban.actions.base import ActionError, KernelBan
from logban.actions.ipset import kernel_timeout


def _family(address: str) -> str:
    try:
        return "inet" if ipaddress.ip_address(address).version == 4 else "inet6"
    except ValueError:
        raise ActionError(f"{address!r} is not an IP address: nothing would be banned") \
            from None


class DryRunAction:
    name = "dry-run"

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger("logban.action")
        self._bans: dict[str, float | None] = {}   # address -> expires (None: permanent)
        self._counts = {"ban": 0, "unban": 0}

    def _expire(self, now: float) -> None:
        for address, expires in list(self._bans.items()):
            if expires is not None and expires <= now:
                del self._bans[address]

    def start(self, bans: list[KernelBan], now: float) -> None:
        self._bans = {}
        for b in bans:
            _family(b.address)
            self._bans[b.address] = b.expires
        self._expire(now)
        v4 = sum(1 for a in self._bans if _family(a) == "inet")
        self.log.info("dry run: would make the kernel sets hold %d bans (%d IPv4, %d IPv6)",
                      len(self._bans), v4, len(self._bans) - v4)

    def ban(self, ban: KernelBan, now: float) -> None:
        family = _family(ban.address)
        timeout = kernel_timeout(ban, now)
        self._bans[ban.address] = ban.expires
        self._counts["ban"] += 1
        self.log.info("dry run: would ban %s (%s) with kernel timeout %s", ban.address,
                      family, "0 (permanent)" if timeout == 0 else f"{timeout} s")

    def unban(self, address: str) -> None:
        _family(address)
        self._bans.pop(address, None)
        self._counts["unban"] += 1
        self.log.info("dry run: would unban %s", address)

    def check(self, bans: list[KernelBan], now: float) -> list[str]:
        self._expire(now)  # what kernel timeouts would have removed by now
        return []

    def status(self) -> dict[str, Any]:
        v4 = sum(1 for a in self._bans if _family(a) == "inet")
        return {"action": self.name, "dry_run": True,
                "entries": {"inet": v4, "inet6": len(self._bans) - v4},
                "bans": self._counts["ban"], "unbans": self._counts["unban"],
                "errors": 0, "recent_errors": []}

    def stop(self) -> None:
        self.log.info("dry run: stopped; %d bans would stay in the kernel", len(self._bans))

    def view(self) -> dict[str, float | None]:
        """What the kernel sets would hold: address -> expires."""
        return dict(self._bans)
