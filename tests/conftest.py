"""Shared fixtures. Tests that need root or a kernel feature call ``require``: it skips with the
reason, except when LOGBAN_REQUIRE_ALL=1 (set by CI), where a missing feature is a failure."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("LOGBAN_REQUIRE_ALL") == "1":
        pytest.fail(f"LOGBAN_REQUIRE_ALL=1 but a requirement is missing: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces, ipset, iptables)")


def require_tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}", f"/usr/lib/systemd/{name}",
                     f"/lib/systemd/{name}") if os.access(p, os.X_OK)), None)
    require(path is not None, f"needs the {name} program")
    assert path is not None
    return path


@pytest.fixture
def repo() -> Path:
    return REPO
