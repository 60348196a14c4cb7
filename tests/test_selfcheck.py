"""Filters prove themselves at load, and group possessives are rewritten as atomic groups so
they behave on every Python 3.11 (before 3.11.5 the possessive form mis-matches)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from logban.filters import atomic_possessives


@pytest.mark.parametrize("src,want", [
    (r"(?:a\()*+b", r"(?>(?:a\()*)b"),
    (r"x(?:,(?:s|m)){0,3}+\)", r"x(?>(?:,(?:s|m)){0,3})\)"),
    (r"[)(]*+(?:q)++", r"[)(]*+(?>(?:q)+)"),
    (r"\(a\)*+", r"\(a\)*+"),            # an escaped paren is one character: left alone
    (r"[^]()]*+(b)?+", r"[^]()]*+(?>(b)?)"),
    (r"(?:a|b)*", r"(?:a|b)*"),
])
def test_rewrite(src: str, want: str) -> None:
    assert atomic_possessives(src) == want


@pytest.mark.parametrize("src,text", [
    (r"(?:a\()*+b", "b"), (r"(?:a\()*+b", "a(a(b"), (r"x(?:,(?:s|m)){0,3}+\)", "x,s,m)"),
])
def test_rewritten_patterns_match_the_same(src: str, text: str) -> None:
    assert re.fullmatch(atomic_possessives(src), text)
    assert not re.fullmatch(atomic_possessives(src), text + "z")


def test_a_filter_that_fails_its_own_samples_is_refused(tmp_path: Path) -> None:
    fdir = tmp_path / "filters"
    fdir.mkdir()
    (fdir / "broken.yaml").write_text(
        "name: broken\nliterals: [oops]\npatterns:\n  - 'oops from \\[<HOST>\\]'\n"
        "samples:\n  - line: 'Dec  3 10:00:00 mx1 oops from [192.0.2.1]'\n    host: 192.0.2.9\n")
    cfg = tmp_path / "logban.yaml"
    cfg.write_text(f"filter_dirs: [{fdir}]\nsources: []\njails:\n  j: {{filters: [broken], action: dry-run}}\n")
    p = subprocess.run([sys.executable, "-m", "logban", "check", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert "filters do not match their own samples" in p.stderr
    assert "broken.yaml: samples[0]: expected 192.0.2.9, got 192.0.2.1" in p.stderr
    tf = subprocess.run([sys.executable, "-m", "logban", "test-filter", "--filter", "broken", "-"],
                        input="", capture_output=True, text=True, timeout=30,
                        env={"LOGBAN_FILTER_PATH": str(fdir), "PATH": "/usr/bin:/bin"})
    assert tf.returncode == 2 and "samples[0]" in tf.stderr
