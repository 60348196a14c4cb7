"""Every shipped filter's embedded samples give their stated result, and every pattern has one."""

from __future__ import annotations

from datetime import datetime

import pytest

from logban.filters import Filter, load_filters
from logban.matcher import Matcher

NOW = datetime(2026, 12, 3, 12, 0, 0)
FILTERS = load_filters()


def test_all_issue_filters_are_shipped() -> None:
    names = {f.name for f in FILTERS}
    assert {"postfix-sasl", "sendmail-auth", "saslauthd", "dovecot", "pam", "exim", "courier",
            "cyrus-imap", "kernel-smtp"} <= names


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.name)
def test_samples(flt: Filter) -> None:
    assert flt.samples, f"{flt.path}: no samples"
    m = Matcher([flt])
    for s in flt.samples:
        res = m.match_line(s.line, NOW)
        got = res.failure
        if s.host is None and s.user is None:
            assert got is None, f"{flt.path} samples[{s.lineno}] should not match: {got}"
            continue
        assert got is not None, f"{flt.path} samples[{s.lineno}] did not match: {s.line}"
        assert got.host == (str(s.host) if s.host is not None else None), s.line
        if s.user is not None:
            assert got.user == s.user, s.line


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.name)
def test_every_pattern_has_a_matching_sample(flt: Filter) -> None:
    used = set()
    m = Matcher([flt])
    for s in flt.samples:
        if s.host is None and s.user is None:
            continue
        res = m.match_line(s.line, NOW)
        assert res.failure is not None
        from logban.timestamps import split_header
        _, body = split_header(s.line, NOW)
        for i, p in enumerate(flt.patterns):
            if p.match(body):
                used.add(i)
                break
    missing = [flt.pattern_sources[i] for i in range(len(flt.patterns)) if i not in used]
    assert not missing, f"{flt.path}: patterns without a sample: {missing}"
