"""The host's own addresses, which are never banned."""

from __future__ import annotations

import logging

from logban.addr import canonical

log = logging.getLogger("logban")


def own_addresses() -> set[str]:
    """Every address configured on an interface of this network namespace."""
    try:
        from pyroute2 import IPRoute
    except ImportError:  # pragma: no cover - pyroute2 is a dependency
        return set()
    out: set[str] = set()
    try:
        with IPRoute() as ipr:
            for msg in ipr.get_addr():
                for key in ("IFA_ADDRESS", "IFA_LOCAL"):
                    v = msg.get_attr(key)
                    if v:
                        c = canonical(str(v))
                        if c:
                            out.add(c)
    except OSError as e:
        log.warning("could not list this host's addresses (%s); only the ignore list protects them", e)
    return out
