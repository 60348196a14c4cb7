"""One line in, the failure it must give out: the check the variant sweeps share.

All filters run as ``logban test-filter`` runs them, at a fixed "now".
"""

from __future__ import annotations

from datetime import datetime

from logban.filters import load_filters
from logban.matcher import Matcher
from logban.timestamps import iso

NOW = datetime(2026, 12, 3, 12, 0, 0)
MATCHER = Matcher(load_filters())
ANY = object()  # "any user" / "any time": the row does not pin it


def check(line: str, host: str | None, user: object = ANY, when: str | None = None,
          now: datetime = NOW) -> None:
    """``host`` None: the line must give no failure with an address. Otherwise it must give
    ``host`` (canonical text), and ``user`` and the wall-clock ``when`` where given."""
    res = MATCHER.match_line(line, now)
    got = res.failure
    if host is None:
        assert got is None or got.host is None, f"{line!r} gave {got}"
        return
    assert got is not None, f"no match ({res.near_miss}): {line!r}"
    assert got.host == host, line
    if user is not ANY:
        assert got.user == user, line
    if when is not None:
        assert iso(got.time)[:19] == when, line
