"""The realistic maillog generator against the real ``logban test-filter``.

The generator knows which of its lines are failures and from which address; logban must find
exactly those on realistic traffic: every failure format read, no ordinary line counted.
The committed examples/maillog must be what the generator writes for its recorded parameters.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "maillog"
WINDOW = timedelta(minutes=20)
THRESHOLD = 3


def _load_generator() -> ModuleType:
    # bench/ is a directory of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("gen_maillog", REPO / "bench" / "gen_maillog.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_maillog"] = mod  # dataclasses look the module up while the file runs
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


def run_test_filter(log: Path, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one dict per failure, the summary) from ``logban test-filter --json``."""
    proc = subprocess.run(
        [sys.executable, "-m", "logban", "test-filter", "--json", "--now", now.isoformat(), str(log)],
        capture_output=True, text=True, check=True, cwd=REPO)
    failures, summary = [], None
    for line in proc.stdout.splitlines():
        obj = json.loads(line)
        if "summary" in obj:
            summary = obj["summary"]
        else:
            failures.append(obj)
    assert summary is not None, proc.stdout[-2000:]
    return failures, summary


def after(truth: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(truth["last"]) + timedelta(minutes=1)


@pytest.mark.parametrize("params", [
    {"lines": 5000, "seed": 1},  # the benchmark's mix, 2% failures from 500 addresses
    {"lines": 5000, "seed": 2, "fail_share": 0.12, "pool": 40, "typo_share": 0.01},
], ids=["default-mix", "heavy"])
def test_logban_finds_exactly_the_generated_failures(tmp_path: Path, params: dict[str, Any]) -> None:
    log = tmp_path / "maillog"
    truth = gen.generate(log, **params)
    assert truth["lines"] == params["lines"]
    assert sum(1 for _ in log.open("rb")) == params["lines"]

    failures, summary = run_test_filter(log, after(truth))

    assert summary["lines"] == truth["lines"]
    hosts = Counter(f["host"] for f in failures if f["host"] is not None)
    assert dict(hosts) == truth["hosts"]
    assert dict(Counter(f["filter"] for f in failures)) == truth["by_filter"]
    assert sum(1 for f in failures if f["host"] is None) == truth["without_address"]
    assert summary["matched"] == truth["failures"]


def test_generated_log_exercises_every_failure_kind(tmp_path: Path) -> None:
    truth = gen.generate(tmp_path / "maillog", lines=5000, seed=2, fail_share=0.12, pool=40,
                         typo_share=0.01)
    assert set(truth["by_filter"]) == {"postfix-sasl", "sendmail-auth", "saslauthd", "dovecot",
                                       "kernel-smtp"}
    assert any(":" in h for h in truth["attackers_seen"]), "no IPv6 attacker in the sample"
    assert truth["benign_failures"], "no legitimate user mistyped a password"


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ta = gen.generate(a, lines=3000, seed=5)
    tb = gen.generate(b, lines=3000, seed=5)
    gen.generate(c, lines=3000, seed=6)
    assert a.read_bytes() == b.read_bytes() and ta == tb
    assert a.read_bytes() != c.read_bytes()


def test_timestamps_are_classic_and_never_go_back(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    gen.generate(log, lines=3000, seed=3)
    fmt = "%Y %b %d %H:%M:%S"
    last = None
    for line in log.read_text().splitlines():
        t = datetime.strptime("2026 " + line[:15], fmt)  # "Dec  1 00:00:00"
        assert line[15:21] == " mail ", line
        assert last is None or t >= last, line
        last = t


def test_only_documentation_addresses(tmp_path: Path) -> None:
    import ipaddress
    import re

    log = tmp_path / "maillog"
    gen.generate(log, lines=3000, seed=4, pool=900)  # beyond the IPv4 ranges: IPv6 fills in
    docs = [ipaddress.ip_network(n) for n in
            ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
    text = log.read_text()
    for m in re.finditer(r"(?:rip=|lip=|SRC=|DST=|\[(?:IPv6:)?)([0-9a-fA-F:.]{7,})", text):
        try:
            a = ipaddress.ip_address(m[1])
        except ValueError:
            continue
        assert any(a in n for n in docs), m[0]


def _hosts_reaching_threshold(failures: list[dict[str, Any]]) -> set[str]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for f in failures:
        if f["host"] is not None:
            times[f["host"]].append(datetime.fromisoformat(f["time"]))
    hit = set()
    for host, ts in times.items():
        ts.sort()
        if any(ts[i + THRESHOLD - 1] - ts[i] < WINDOW for i in range(len(ts) - THRESHOLD + 1)):
            hit.add(host)
    return hit


def test_example_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "maillog"
    gen.write_example(out)
    assert out.read_bytes() == EXAMPLE.read_bytes(), (
        "examples/maillog drifted from the generator: run "
        "`python bench/gen_maillog.py --example examples/maillog` and commit it")
    assert EXAMPLE.stat().st_size < 300 * 1024


def test_example_has_attackers_and_near_misses(tmp_path: Path) -> None:
    truth = gen.write_example(tmp_path / "maillog")
    failures, summary = run_test_filter(EXAMPLE, after(truth))
    assert summary["lines"] == gen.EXAMPLE_PARAMS["lines"]
    assert dict(Counter(f["host"] for f in failures if f["host"])) == truth["hosts"]

    hit = _hosts_reaching_threshold(failures)
    attackers = set(truth["attackers_seen"])
    assert 3 <= len(hit) <= 8, hit
    assert hit <= attackers, f"a legitimate client reached the threshold: {hit - attackers}"
    assert any(":" in h for h in hit), "the example should show an IPv6 attacker"
    # Near misses: legitimate users who mistyped, and an attacker that stayed under it.
    assert truth["benign_failures"]
    assert attackers - hit
