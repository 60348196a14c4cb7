"""``logban sets`` at boot: idempotent, and never leaves the firewall without its sets, even
when the configuration is broken."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import require_root
from daemonproc import write_config
from netns import netns, run_in


def sets_in(ns: str) -> list[str]:
    return sorted(run_in(ns, "ipset", "list", "-n").stdout.split())


def logban_sets(ns: str, cfg: Path):
    return run_in(ns, sys.executable, "-m", "logban", "sets", "-c", str(cfg), check=False)


@pytest.mark.parametrize("breakage,expected", [
    (None, ["logban4", "logban6"]),
    ("jails: {}\n", ["mail4", "mail6"]),                 # invalid, but its actions are readable
    (": : not yaml [\n", ["logban4", "logban6"]),        # unreadable: the default names
])
def test_sets_are_created_whatever_the_configuration(tmp_path: Path, breakage: str | None,
                                                     expected: list[str]) -> None:
    require_root()
    cfg = write_config(tmp_path, [{"file": str(tmp_path / "maillog")}])
    if breakage is not None:
        text = cfg.read_text().replace("set4: logban4", "set4: mail4").replace("set6: logban6", "set6: mail6")
        cfg.write_text(text.split("jails:")[0] + breakage if breakage.startswith("jails") else breakage)
    with netns("sets") as ns:
        p = logban_sets(ns, cfg)
        assert p.returncode == 0, p.stderr
        assert sets_in(ns) == expected
        assert "created: " in p.stdout
        if breakage is not None:
            assert "the configuration is broken; creating the sets anyway" in p.stderr
        again = logban_sets(ns, cfg)  # idempotent: nothing created the second time
        assert again.returncode == 0 and again.stdout.strip() == "sets ready"
        assert sets_in(ns) == expected
