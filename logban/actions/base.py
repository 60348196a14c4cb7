"""The interface every ban action implements, in the style of sshuttle's firewall methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ActionError(Exception):
    """An action failed; the message says what failed and what logban does about it."""


class SetFullError(ActionError):
    """The kernel set has reached maxelem: the ban did not reach the kernel."""


@dataclass(frozen=True, slots=True)
class KernelBan:
    address: str             # canonical text form (IPv4-mapped IPv6 already reported as IPv4)
    expires: float | None    # seconds since the epoch; None: permanent


class Action(Protocol):
    name: str

    def start(self, bans: list[KernelBan], now: float) -> None:
        """Create what is missing and make the kernel hold exactly ``bans`` (bulk, fast)."""

    def ban(self, ban: KernelBan, now: float) -> None:
        """Add one address with the remaining time as its kernel timeout."""

    def unban(self, address: str) -> None:
        """Remove one address; removing one that is not there is no error."""

    def check(self, bans: list[KernelBan], now: float) -> list[str]:
        """Periodic health check: repair what was broken from outside (a destroyed set is
        recreated and refilled from ``bans``); return the problems that remain, as sentences."""

    def status(self) -> dict[str, Any]:
        """Counters for ``logban status`` (entries per set, errors)."""

    def stop(self) -> None:
        """Release sockets. Bans stay in the kernel: they outlive the daemon by design."""
