"""The RPM, built for real with packaging/build-rpm, inspected with rpm and run unpacked.

No mocks: rpmbuild builds the package (with the bundled dependencies fetched by pip), rpm
reads its metadata back, rpm2cpio | cpio unpacks it into a temporary root, and the packaged
/usr/bin/logban runs from there against the packaged configuration and filters.
systemd-analyze verifies the unit files where it is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require, require_tool

SPEC = REPO / "packaging" / "logban.spec"
UNITS = ("logban.service", "logban-sets.service")


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]


def build(tmp: Path, *rpmbuild_args: str) -> Path:
    require_tool("rpmbuild")
    require_tool("git")
    env = dict(os.environ, BUILD_DIR=str(tmp / "build"), DIST_DIR=str(tmp / "dist"),
               PYTHON=sys.executable)
    r = run([str(REPO / "packaging" / "build-rpm"), *rpmbuild_args], cwd=REPO, env=env)
    assert r.returncode == 0, f"build-rpm failed:\n{r.stdout}\n{r.stderr}"
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == tmp / "dist", r.stdout
    return path


def unpack(rpm: Path, root: Path) -> Path:
    require_tool("rpm2cpio")
    require_tool("cpio")
    root.mkdir()
    p = subprocess.run(f"rpm2cpio '{rpm}' | cpio -idm --quiet", shell=True, cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return root


def rpmq(*args: str) -> str:
    r = run(["rpm", *args])
    assert r.returncode == 0, r.stderr
    return r.stdout


def logban(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The packaged wrapper, on this machine's Python (the packaged default is the target
    distribution's interpreter), with the packaged filters found first."""
    e = dict(os.environ, LOGBAN_PYTHON=sys.executable,
             LOGBAN_FILTER_PATH=str(root / "usr/share/logban/filters"))
    e.pop("LOGBAN_CONFIG", None)
    e.update(env)
    return run([str(root / "usr/bin/logban"), *args], env=e, cwd=root)


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("rpm"))


@pytest.fixture(scope="module")
def root(rpm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(rpm, tmp_path_factory.mktemp("unpacked") / "root")


@pytest.fixture(scope="module")
def el9_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("rpm-el9"), "--define", "rhel 9", "--define", "dist .el9")


def spec_pins() -> dict[str, str]:
    return dict(re.findall(r"^%global\s+vendor_(\w+)\s+(\S+)", SPEC.read_text(), re.M))


# ---- metadata ----------------------------------------------------------------------------------

def test_rpm_is_noarch_and_named_after_the_project_version(rpm: Path) -> None:
    version = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    assert rpm.name == f"logban-{version[1]}-1.noarch.rpm"
    assert rpmq("-qp", "--qf", "%{ARCH} %{NAME} %{VERSION}", str(rpm)) == f"noarch logban {version[1]}"


def test_file_list(rpm: Path) -> None:
    files = set(rpmq("-qlp", str(rpm)).split())
    for f in ("/usr/bin/logban", "/etc/logban/logban.yaml", "/etc/logban/filters.d",
              "/etc/logban/filters.d/README", "/usr/lib/systemd/system/logban.service",
              "/usr/lib/systemd/system/logban-sets.service", "/var/lib/logban",
              "/usr/lib/logban/site/logban/cli.py", "/usr/lib/logban/site/yaml/__init__.py",
              "/usr/lib/logban/site/watchdog/observers/inotify.py",
              "/usr/lib/logban/site/pyroute2/ipset.py",
              "/usr/share/doc/logban/install.md"):
        assert f in files, f
    shipped = {p.name for p in (REPO / "filters").glob("*.yaml")}
    assert shipped and {f"/usr/share/logban/filters/{n}" for n in shipped} <= files
    # Compiled for the interpreter it runs on, since /usr is read-only for the service.
    assert any(re.fullmatch(r"/usr/lib/logban/site/logban/__pycache__/cli\.cpython-3\d+\.pyc", f)
               for f in files)
    # Never a unit called ipset.service (that is the ipset-service package's).
    assert not any(f.endswith("/ipset.service") for f in files)
    # No machine code in a noarch package (PyYAML's libyaml binding is left out).
    assert not any(f.endswith(".so") for f in files)


def test_modes_and_config_files(rpm: Path) -> None:
    assert rpmq("-qcp", str(rpm)).split() == ["/etc/logban/logban.yaml"]
    modes = {}
    for line in rpmq("-qlvp", str(rpm)).splitlines():
        fields = line.split()
        modes[fields[-1]] = fields[0]
    assert modes["/var/lib/logban"] == "drwxr-x---"
    assert modes["/usr/bin/logban"] == "-rwxr-xr-x"
    assert modes["/etc/logban/logban.yaml"] == "-rw-r--r--"
    # Bundled library files are not executables (brp-mangle-shebangs would reject them).
    assert all(m.startswith(("-rw-r--r--", "d")) for f, m in modes.items()
               if f.startswith("/usr/lib/logban/"))


def test_requirements_and_bundled_provides(rpm: Path) -> None:
    reqs = rpmq("-qRp", str(rpm)).splitlines()
    assert "python3 >= 3.11" in reqs
    assert "python3-systemd" in reqs       # the default configuration reads the journal
    assert "systemd" in reqs               # scriptlets
    assert not any(r.startswith(("python3dist(", "python3.11")) for r in reqs), reqs
    weak = rpmq("-qp", "--recommends", str(rpm)).split()
    assert weak[:1] == ["ipset"]
    provides = rpmq("-qp", "--provides", str(rpm)).splitlines()
    pins = spec_pins()
    assert set(pins) == {"pyyaml", "watchdog", "pyroute2"}
    for name, version in pins.items():
        assert f"bundled(python3dist({name})) = {version}" in provides


def test_scriptlets_preset_disable_and_restart(rpm: Path) -> None:
    scripts = rpmq("-qp", "--scripts", str(rpm))
    post = scripts.split("postinstall scriptlet")[1].split("preuninstall scriptlet")[0]
    assert re.search(r"systemctl --no-reload preset logban\.service logban-sets\.service", post)
    assert "$1 -eq 1" in post                              # first install only
    # bytecode for the interpreter the package runs on, whatever built it
    assert re.search(r"/usr/bin/python3(\.11)? -m compileall -q /usr/lib/logban/site", post)
    preun = scripts.split("preuninstall scriptlet")[1].split("postuninstall scriptlet")[0]
    assert re.search(r"systemctl --no-reload disable --now logban\.service logban-sets\.service", preun)
    assert "$1 -eq 0" in preun                             # erase, not upgrade
    assert "remove the fixed rule" in preun and "no firewall" in preun
    postun = scripts.split("postuninstall scriptlet")[1]
    assert re.search(r"systemctl try-restart logban\.service(?! logban-sets)", postun)
    assert "$1 -ge 1" in postun                            # upgrade only
    assert "try-restart logban-sets" not in postun
    assert "rm -rf /usr/lib/logban " in postun         # the bytecode %post compiled


# ---- the unpacked package runs ---------------------------------------------------------------

def test_packaged_check_accepts_packaged_config(root: Path) -> None:
    r = logban(root, "check", "-c", str(root / "etc/logban/logban.yaml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(
        "OK: 1 jail(s), 2 source(s), 9 filter(s): postfix-sasl, sendmail-auth, saslauthd, "
        "dovecot, pam, exim, courier, cyrus-imap, kernel-smtp")
    # The same file in the repository is the one packaged (EL10/Fedora variant: unchanged).
    assert (root / "etc/logban/logban.yaml").read_bytes() == \
        (REPO / "packaging/logban.yaml").read_bytes()


def test_packaged_check_reports_errors_with_file_and_line(root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "logban.yaml"
    bad.write_text((root / "etc/logban/logban.yaml").read_text().replace(
        "maxretry: 3", "maxretry: three"))
    r = logban(root, "check", "-c", str(bad))
    assert r.returncode == 1
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "maxretry:" in t)
    assert f"{bad}:{line}: jails.smtp-auth.maxretry: 'three' is not a whole number >= 1" in r.stderr


def test_packaged_test_filter_with_packaged_filters(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text(
        "Dec  3 10:00:01 mx1 postfix/smtpd[1201]: warning: unknown[192.0.2.21]: SASL LOGIN "
        "authentication failed: UGFzc3dvcmQ6\n"
        "Dec  3 10:00:02 mx1 postfix/submission/smtpd[1202]: warning: client.example.net"
        "[2001:db8::22]:41234: SASL PLAIN authentication failed: \n"
        "Dec  3 10:00:03 mx1 postfix/smtpd[1203]: connect from unknown[198.51.100.7]\n")
    r = logban(root, "test-filter", "--json", "--now", "2026-12-03T12:00:00", str(log))
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert out[:-1] == [
        {"line": 1, "filter": "postfix-sasl", "host": "192.0.2.21", "user": None,
         "time": "2026-12-03T10:00:01"},
        {"line": 2, "filter": "postfix-sasl", "host": "2001:db8::22", "user": None,
         "time": "2026-12-03T10:00:02"},
    ]
    summary = out[-1]["summary"]
    assert (summary["log"], summary["lines"], summary["matched"], summary["missed"]) == \
        (str(log), 3, 2, 1)
    assert summary["filters"]["postfix-sasl"]["top"] == [
        {"host": "192.0.2.21", "count": 1, "users": []},
        {"host": "2001:db8::22", "count": 1, "users": []}]
    assert set(summary["filters"]) == {p.stem for p in (REPO / "filters").glob("*.yaml")}


def test_wrapper_uses_the_bundled_pure_python_dependencies(root: Path) -> None:
    site = root / "usr/lib/logban/site"
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); "
            "import yaml, watchdog.observers.inotify_c, pyroute2, logban; "
            "print(json.dumps({m.__name__: m.__file__ for m in (yaml, watchdog, pyroute2, logban)}"
            " | {'libyaml': yaml.__with_libyaml__}))")
    r = run([sys.executable, "-I", "-c", code, str(site)])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got.pop("libyaml") is False
    for name, path in got.items():
        assert Path(path).is_relative_to(site), (name, path)
    # The interpreter baked in for this (non-EL9) build, and the EL9 one in the EL9 build.
    assert "${LOGBAN_PYTHON:-/usr/bin/python3}" in (root / "usr/bin/logban").read_text()


def test_wrapper_explains_a_missing_interpreter(root: Path) -> None:
    r = logban(root, "--version", LOGBAN_PYTHON="/nonexistent/python3.11")
    assert r.returncode == 2
    assert "the Python interpreter /nonexistent/python3.11 is missing" in r.stderr
    assert "LOGBAN_PYTHON" in r.stderr


def test_wrapper_ignores_modules_in_the_current_directory(root: Path, tmp_path: Path) -> None:
    # A root command must not import a stray module from where it was started, or from
    # PYTHONPATH: here one shadowing the standard library's argparse, which the CLI imports.
    (tmp_path / "argparse.py").write_text("raise SystemExit('imported the wrong argparse')\n")
    e = dict(os.environ, LOGBAN_PYTHON=sys.executable,
             LOGBAN_FILTER_PATH=str(root / "usr/share/logban/filters"),
             PYTHONPATH=str(tmp_path))
    r = run([str(root / "usr/bin/logban"), "check", "-c", str(root / "etc/logban/logban.yaml")],
            env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


# ---- the EL9 variant ------------------------------------------------------------------------

def test_el9_build_requires_python311_and_reads_maillog(el9_rpm: Path, tmp_path: Path) -> None:
    assert el9_rpm.name.endswith(".el9.noarch.rpm")
    reqs = rpmq("-qRp", str(el9_rpm)).splitlines()
    assert "python3.11" in reqs
    assert not any(r.startswith(("python3 ", "python3-systemd")) for r in reqs), reqs
    root = unpack(el9_rpm, tmp_path / "root")
    assert "${LOGBAN_PYTHON:-/usr/bin/python3.11}" in (root / "usr/bin/logban").read_text()
    conf = (root / "etc/logban/logban.yaml").read_text()
    assert "\n  - file: /var/log/maillog\n" in conf
    assert "\n  - kmsg: {}\n" in conf
    assert "\n  - journal:" not in conf
    r = logban(root, "check", "-c", str(root / "etc/logban/logban.yaml"))
    assert r.returncode == 0, r.stderr
    assert "OK: 1 jail(s), 2 source(s), 9 filter(s)" in r.stdout


# ---- the systemd units ------------------------------------------------------------------------

def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat; whitespace-separated lists are split)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in (REPO / "packaging" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).extend(value.split())
    return out


def test_sets_unit_runs_before_every_firewall() -> None:
    u = unit("logban-sets.service")
    firewalls = {"iptables.service", "ip6tables.service", "firewalld.service", "nftables.service"}
    assert u["Unit"]["DefaultDependencies"] == ["no"]
    assert firewalls | {"network-pre.target"} <= set(u["Unit"]["Before"])
    assert {"local-fs.target", "systemd-modules-load.service"} <= set(u["Unit"]["After"])
    assert u["Unit"]["Wants"] == ["network-pre.target"]
    assert u["Service"]["Type"] == ["oneshot"] and u["Service"]["RemainAfterExit"] == ["yes"]
    assert u["Service"]["ExecStart"] == ["/usr/bin/logban", "sets"]
    assert "ExecStop" not in u["Service"]        # stopping must never destroy the sets
    # Enabling it links it into the firewalls' start; Wanted (not Required) so a failure
    # here does not also stop the firewall from trying.
    assert firewalls | {"multi-user.target"} <= set(u["Install"]["WantedBy"])
    assert "RequiredBy" not in u["Install"]
    assert "PrivateNetwork" not in u["Service"]  # the sets live in the host's namespace


def test_daemon_unit() -> None:
    u = unit("logban.service")
    s = u["Service"]
    assert {"network.target", "logban-sets.service"} <= set(u["Unit"]["After"])
    assert u["Unit"]["Wants"] == ["logban-sets.service"]
    assert s["Type"] == ["notify"] and s["WatchdogSec"] == ["30"]
    assert s["ExecStart"] == ["/usr/bin/logban", "run"]
    assert s["ExecReload"] == ["/bin/kill", "-HUP", "$MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["StateDirectory"] == ["logban"] and s["RuntimeDirectory"] == ["logban"]
    assert s["RuntimeDirectoryMode"] == ["0700"] and s["StateDirectoryMode"] == ["0750"]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert set(s["CapabilityBoundingSet"]) == {"CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_SYSLOG"}
    assert "AF_NETLINK" in s["RestrictAddressFamilies"]
    # The kmsg source reads /dev/kmsg: these would hide it.
    assert "PrivateDevices" not in s and "ProtectKernelLogs" not in s
    assert s["DeviceAllow"] == ["/dev/kmsg", "r"]
    # The paths the unit makes writable are the ones the default configuration uses.
    conf = (REPO / "packaging/logban.yaml").read_text()
    assert "\nstate_dir: /var/lib/logban\n" in conf and "\nsocket: /run/logban/logban.sock\n" in conf


def test_systemd_analyze_verify(root: Path, tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    require(tool is not None, "systemd-analyze is not installed (Debian: apt-get install systemd)")
    assert tool is not None
    # Verify the packaged units with ExecStart= pointing at the unpacked wrapper, which
    # systemd-analyze checks for existence (the machine has no /usr/bin/logban).
    for name in UNITS:
        text = (root / "usr/lib/systemd/system" / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/bin/logban", str(root / "usr/bin/logban")))
    r = run([tool, "verify", *(str(tmp_path / n) for n in UNITS)], cwd=tmp_path)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "logban" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr
