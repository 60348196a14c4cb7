"""The records that flow from sources through filters to the tracker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed login as a filter read it from one line."""

    filter: str
    host: str | None          # canonical address; None when the line names none (saslauthd)
    user: str | None
    time: datetime | None     # as the line wrote it (naive = local wall clock)
    ts: float                 # seconds since the epoch, for counting
    service: str | None = None  # smtp, imap, ... where the filter knows it (for correlation)


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A line that passed a filter's literal pre-check but matched none of its patterns."""

    filter: str
    text: str
