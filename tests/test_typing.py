"""The package stays strictly typed: mypy, configured in pyproject.toml, finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import REPO, require


def test_mypy_strict_finds_nothing() -> None:
    require(importlib.util.find_spec("mypy") is not None, "needs mypy (pip install -e '.[test]')")
    p = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "Success: no issues found" in p.stdout
