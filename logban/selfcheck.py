"""Every filter proves itself at load: its embedded samples must give their stated results.

A filter that cannot match its own samples here would silently miss attacks. That happens
with a broken local filter, and with Python's regex engine before 3.11.5, whose possessive
quantifiers on groups fail to match (CPython gh-106052; EL9 shipped 3.11.2 for a while).
"""

from __future__ import annotations

import sys
from datetime import datetime

from logban.addr import canonical
from logban.filters import Filter, FilterError
from logban.matcher import Matcher

NOW = datetime(2026, 12, 3, 12, 0, 0)


def sample_problems(filters: list[Filter]) -> list[str]:
    """One sentence per sample that does not give its stated result."""
    out = []
    for f in filters:
        m = Matcher([f])
        for s in f.samples:
            res = m.match_line(s.line, NOW).failure
            want = None if s.host is None else (canonical(str(s.host)) or str(s.host))
            got = None if res is None else res.host
            if s.host is None and s.user is None:
                ok = res is None
            else:
                ok = res is not None and got == want and (s.user is None or res.user == s.user)
            if not ok:
                def show(host: str | None, user: str | None, matched: bool) -> str:
                    if not matched:
                        return "no match"
                    return (host or "no address") + (f" (user {user})" if user else "")
                out.append(f"{f.path}: samples[{s.lineno}]: expected "
                           f"{show(want, s.user, not (s.host is None and s.user is None))}, got "
                           f"{show(got, res.user if res else None, res is not None)}")
    return out


def require_samples(filters: list[Filter]) -> None:
    """Raise FilterError naming the broken samples (and the likely cause) if any fails."""
    problems = sample_problems(filters)
    if not problems:
        return
    hint = ""
    if sys.version_info < (3, 11, 5):
        hint = (f"; this Python ({sys.version.split()[0]}) has a regex bug fixed in 3.11.5: "
                "run logban with Python 3.11.5 or newer")
    raise FilterError("filters do not match their own samples, refusing to run with them"
                      f"{hint}:\n  " + "\n  ".join(problems))
