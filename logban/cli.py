"""Command line: a thin layer over the library. Exit 0 on success, 2 on usage or input errors."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from logban.config import Config

from logban import __version__
from logban.filters import FilterError, load_filters
from logban.matcher import Matcher


class UsageError(Exception):
    """A problem the user fixes on the command line; printed as one sentence, exit 2."""


def _parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now()
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now {text!r} is not an ISO 8601 time such as 2026-12-03T12:00:00")
    if t.tzinfo is not None:
        t = t.astimezone().replace(tzinfo=None)
    return t


def cmd_test_filter(args: argparse.Namespace) -> int:
    from logban import testfilter

    now = _parse_now(args.now)
    from logban.selfcheck import require_samples

    try:
        filters = load_filters(args.filter or None)
        require_samples(filters)
    except FilterError as e:
        raise UsageError(str(e))
    matcher = Matcher(filters)
    if args.journal is not None:
        from logban.sources.journal import journal_lines

        try:
            streams: list[tuple[str, testfilter.ByteReader]] = [
                ("journal", journal_lines(args.journal or None, args.since, filters))]
        except ImportError:
            raise UsageError("--journal needs systemd-python (python3-systemd): dnf install "
                             "python3-systemd, or pip install 'logban[journal]'")
        except ValueError as e:  # a bad --since or journal path
            raise UsageError(str(e))
    else:
        if args.since is not None:
            raise UsageError("--since picks where to start in the journal (--journal); a file "
                             "is read whole: cut it first, e.g. with sed -n '/^Dec  3 10:/,$p'")
        if not args.logs:
            raise UsageError("name a log file to read (or - for standard input, or --journal)")
        streams = []
        for name in args.logs:
            if name == "-":
                if sys.stdin is None:
                    raise UsageError("standard input is closed; give a file name instead of -")
                streams.append((name, sys.stdin.buffer))
                continue
            try:
                streams.append((name, open(name, "rb")))
            except OSError as e:
                raise UsageError(f"cannot read {name}: {e.strerror}")
    json_out = sys.stdout if args.json else None
    for name, stream in streams:
        progress = None
        if not args.json or sys.stderr.isatty():
            size = testfilter.regular_file(stream)[0]
            if sys.stderr.isatty() and size > 16 * 1024 * 1024:
                progress = testfilter.Progress(size, sys.stderr)
        try:
            report = testfilter.run(matcher, stream, now, json_out, progress, workers=args.jobs)
        except OSError as e:  # EIO from a failing disk, a file that cannot be read after open
            raise UsageError(f"reading {name} failed: {e.strerror or e}")
        if progress:
            progress.close()
        if args.json:
            sys.stdout.write(json.dumps({"summary": {"log": name, **report.summary()}}) + "\n")
        else:
            if len(streams) > 1:
                sys.stdout.write(f"== {name}\n")
            testfilter.print_human(report, sys.stdout)
    return 0


def _load(args: argparse.Namespace) -> "Config":
    from logban.config import ConfigError, config_path, load_config

    try:
        return load_config(config_path(args.config))
    except ConfigError as e:
        for p in e.problems:
            sys.stderr.write(p + "\n")
        raise SystemExit(1)


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="logban: %(levelname)s %(message)s", stream=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from logban.daemon import jail_filters

    try:
        filters = jail_filters(cfg)
    except FilterError as e:
        sys.stderr.write(f"{cfg.path}:1: jails: {e}\n")
        return 1
    for w in cfg.warnings:
        sys.stderr.write(f"warning: {w}\n")
    print(f"{cfg.path}: OK: {len(cfg.jails)} jail(s), {len(cfg.sources)} source(s), "
          f"{len(filters)} filter(s): {', '.join(f.name for f in filters)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args)
    _setup_logging("debug" if args.verbose else cfg.log_level)
    for w in cfg.warnings:
        logging.getLogger("logban").warning("%s", w)
    from logban.daemon import Daemon
    from logban.state import StateError

    try:
        d = Daemon(cfg, once=args.once)
        rc = d.run()
    except FilterError as e:
        sys.stderr.write(f"{cfg.path}:1: jails: {e}\n")
        return 1
    except StateError as e:
        sys.stderr.write(f"logban: {e}\n")
        return 1
    if args.once:
        bans = list(d.bans.values())
        dry = all(cfg.action_kind(j.action) == "dry-run" for j in cfg.jails.values())
        print(f"{len(bans)} ban(s) " + ("the dry run would make (nothing was banned):" if dry else "active:"))
        for b in sorted(bans, key=lambda b: b.created):
            print(f"  {b.address:<40} jail={b.jail} failures={b.failures} filter={b.filter}")
    return rc


def _ask(args: argparse.Namespace, body: dict[str, object]) -> dict[str, Any]:
    from logban.config import ConfigError, config_path, load_config
    from logban.control import ControlError, ask

    path = config_path(args.config)
    try:
        sock = load_config(path, check_filters=False).socket
    except ConfigError as e:
        # The running daemon keeps its old configuration when the file on disk is broken
        # (a refused reload); it must still be reachable to say so.
        for p in e.problems:
            sys.stderr.write(f"warning: {p}\n")
        sock = _socket_anyway(path)
    try:
        reply = ask(sock, body)
    except ControlError as e:
        raise UsageError(str(e))
    if not reply.get("ok"):
        sys.stderr.write(f"logban: {reply.get('error')}\n")
        raise SystemExit(1)
    return reply


def cmd_status(args: argparse.Namespace) -> int:
    r = _ask(args, {"cmd": "status"})
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"up {r['uptime']}s, {r['failures_seen']} failures seen, {r['ignored']} ignored")
    for name, j in r["jails"].items():
        _show(f"jail {name}", j)
    for sid, src in r["sources"].items():
        _show(f"source {sid}", src)
    for name, a in r["actions"].items():
        _show(f"action {name}", a)
    users = r.get("users") or {}
    if users:
        print("users tried, by address:")
        for addr, us in list(users.items())[-20:]:
            print(f"  {addr}: " + ", ".join(f"{u} x{n}" for u, n in us.items()))
    for w in r.get("warnings") or []:
        print(f"WARNING: {w}")
    for p in r["problems"]:
        print(f"PROBLEM: {p}")
    return 0


_ONE = {"sets": "set"}  # a nested entry's name, singular


def _show(label: str, d: dict[str, Any], indent: str = "") -> None:
    """One status entry: its plain values on one line, nested ones (an action's sets, recent
    errors) on lines of their own below it; empty values left out."""
    plain = [f"{k.replace('_', ' ')} {v}" for k, v in d.items()
             if not isinstance(v, (dict, list)) and v is not None]
    print(f"{indent}{label}: " + ", ".join(plain))
    for k, v in d.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, dict):
                    _show(f"{_ONE.get(k, k)} {k2}", v2, indent + "  ")
                else:
                    print(f"{indent}  {k.replace('_', ' ')} {k2}: {v2}")
        elif isinstance(v, list) and v:
            print(f"{indent}  {k.replace('_', ' ')}:")
            for x in v[-10:]:
                print(f"{indent}    {x}")
            if len(v) > 10:
                print(f"{indent}    (the last 10 of {len(v)}; all with --json)")


def cmd_list(args: argparse.Namespace) -> int:
    r = _ask(args, {"cmd": "list"})
    if args.json:
        print(json.dumps(r["bans"], indent=2))
        return 0
    from logban.durations import format_duration

    for b in r["bans"]:
        rem = "permanent" if b["remaining"] is None else format_duration(b["remaining"])
        print(f"{b['address']:<40} {b['jail']:<12} {rem:>10} failures={b['failures']} filter={b['filter']}")
    return 0


def cmd_ban(args: argparse.Namespace) -> int:
    r = _ask(args, {"cmd": "ban", "address": args.address, "jail": args.jail,
                    "duration": args.duration, "force": args.force})
    from logban.durations import format_duration

    until = "permanently" if r.get("expires") is None else \
        f"for {format_duration(r['expires'] - time.time())}"
    print(f"banned {r['address']} in jail {r['jail']} {until}")
    old = r.get("replaced")
    if old:
        left = "permanent" if old["expires"] is None else \
            f"{format_duration(max(0.0, old['expires'] - time.time()))} left"
        print(f"  (this replaces its ban of {old['failures']} failures by {old['filter']}, {left})")
    return 0


def cmd_unban(args: argparse.Namespace) -> int:
    r = _ask(args, {"cmd": "unban", "address": args.address, "jail": args.jail})
    print(f"unbanned {r['address']} from {', '.join(r['jails'])}")
    return 0


def cmd_sets(args: argparse.Namespace) -> int:
    """Create the ipsets at boot, before the firewall rules that name them are loaded.

    A broken configuration must not leave the server without a firewall (iptables-restore
    rejects a whole ruleset that names a missing set), so then the sets are still made, from
    the file's ipset actions if they can be read, else with the default names.
    """
    from logban.actions.base import ActionError
    from logban.actions.ipset import IPSetAction
    from logban.config import ConfigError, config_path, load_config

    path = config_path(args.config)
    try:
        cfg = load_config(path, check_filters=False)
        specs = [cfg.actions[n] for n in dict.fromkeys(j.action for j in cfg.jails.values())
                 if cfg.action_kind(n) == "ipset"]
    except ConfigError as e:
        for p in e.problems:
            sys.stderr.write(f"warning: {p}\n")
        specs = _ipset_specs_anyway(path)
        sys.stderr.write("logban: the configuration is broken; creating the sets anyway so the "
                         "firewall rules that name them can load. Fix it and run 'logban check'.\n")
    made: list[str] = []
    for spec in specs:
        opts = {k: spec[k] for k in ("set4", "set6", "maxelem", "hashsize") if k in spec}
        a = IPSetAction(**opts)
        try:
            made += a.ensure_sets()
        except ActionError as e:
            sys.stderr.write(f"logban: {e}\n")
            return 1
        finally:
            a.stop()
    print("sets ready" + (f" (created: {', '.join(made)})" if made else "")
          + ("" if specs else ": none, no ipset action is configured"))
    return 0


def _socket_anyway(path: Path) -> Path:
    """The control socket named by a configuration that failed validation, best effort."""
    import re

    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        sock = doc.get("socket") if isinstance(doc, dict) else None
    except Exception:
        m = None
        try:
            m = re.search(r"^socket:[ \t]*[\"']?([^\"'#\s]+)", path.read_text(errors="replace"), re.M)
        except OSError:
            pass
        sock = m.group(1) if m else None
    if not isinstance(sock, str) or not sock:
        return Path("/run/logban/logban.sock")
    return Path(sock) if Path(sock).is_absolute() else (path.parent / sock).resolve()


def _ipset_specs_anyway(path: Path) -> list[dict[str, object]]:
    """The ipset actions of a configuration that failed validation, best effort."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        actions = doc.get("actions") or {}
        specs = [dict(v) for k, v in actions.items()
                 if isinstance(v, dict) and v.get("type", k) == "ipset"]
        specs = [{k: v for k, v in s.items() if (k in ("set4", "set6") and isinstance(v, str))
                  or (k in ("maxelem", "hashsize") and isinstance(v, int))} for s in specs]
    except Exception:
        specs = []
    return specs or [{}]


def cmd_rules(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from logban import rules

    if args.kernel_matcher and args.format != "iptables":
        raise UsageError("the kernel matcher exists only as iptables-restore input (leave out --format)")
    try:
        text = kernel_matcher_text(cfg) if args.kernel_matcher else rules.render_fixed(cfg, args.format)
    except ValueError as e:
        raise UsageError(f"{cfg.path}: {e}")
    print(text)
    return 0


def kernel_matcher_text(cfg: "Config") -> str:
    """The in-kernel matcher for both families. Its LOG prefixes are the kernel-smtp filter's
    own variables (with this configuration's filter_vars), so the filter reads exactly what the
    rules make the kernel write."""
    from logban import rules
    from logban.filters import load_filters

    flt = load_filters(["kernel-smtp"], overrides=cfg.filter_vars)[0]
    km = dict(cfg.kernel_matcher)
    if km.get("own_networks") is None:
        km["own_networks"] = [str(n) for n in cfg.ignore if not n.is_loopback]
    if "ports" in km:
        km["ports"] = tuple(int(p) for p in km["ports"])
    r = rules.kernel_matcher_rules(strike_prefix=flt.vars["strike_prefix"],
                                   reject_prefix=flt.vars["reject_prefix"],
                                   bruteforce_prefix=flt.vars["bruteforce_prefix"], **km)
    return f"{r['iptables']}\n{r['ip6tables']}".rstrip("\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="logban", description="Ban SMTP AUTH attackers into a kernel ipset.")
    p.add_argument("--version", action="version", version=f"logban {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    tf = sub.add_parser("test-filter", help="run the filters over a log and report failures")
    tf.add_argument("logs", nargs="*", metavar="LOG", help="log file, or - for standard input")
    tf.add_argument("--filter", action="append", metavar="NAME", help="only this filter (repeatable)")
    tf.add_argument("--now", metavar="ISO8601", help="the time 'now' is, for year inference")
    tf.add_argument("--json", action="store_true", help="one JSON object per failure, then a summary")
    tf.add_argument("--journal", nargs="?", const="", default=None, metavar="PATH",
                    help="read the systemd journal (or a journal directory or file)")
    tf.add_argument("--since", metavar="TIME", help="with --journal: start at this time")
    tf.add_argument("--jobs", type=int, metavar="N",
                    help="processes for a big file (default: one per core; 1: no split)")
    tf.set_defaults(func=cmd_test_filter)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("-c", "--config", metavar="CONFIG",
                        help="configuration file (default: $LOGBAN_CONFIG, else /etc/logban/logban.yaml)")
        return sp

    r = with_config(sub.add_parser("run", help="run the daemon in the foreground"))
    r.add_argument("--once", action="store_true",
                   help="read the sources to their current end, print the bans, and stop")
    r.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    r.set_defaults(func=cmd_run)
    with_config(sub.add_parser("check", help="validate the configuration")).set_defaults(func=cmd_check)
    st = with_config(sub.add_parser("status", help="what the daemon is doing"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    ls = with_config(sub.add_parser("list", help="active bans"))
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    b = with_config(sub.add_parser("ban", help="ban an address by hand"))
    b.add_argument("address")
    b.add_argument("--jail")
    b.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 1h, 2d; 0 = permanent")
    b.add_argument("--force", action="store_true", help="ban even an ignored or own address")
    b.set_defaults(func=cmd_ban)
    u = with_config(sub.add_parser("unban", help="lift a ban"))
    u.add_argument("address")
    u.add_argument("--jail")
    u.set_defaults(func=cmd_unban)
    with_config(sub.add_parser("sets", help="create the kernel ipsets (idempotent; for boot)")
                ).set_defaults(func=cmd_sets)
    ru = with_config(sub.add_parser("rules", help="print the fixed firewall rules"))
    ru.add_argument("--kernel-matcher", action="store_true",
                    help="print the in-kernel SMTP AUTH matcher ruleset instead")
    ru.add_argument("--format", choices=["iptables", "firewalld", "firewalld-xml"], default="iptables",
                    help="iptables-restore fragments, firewall-cmd lines, or direct.xml")
    ru.set_defaults(func=cmd_rules)
    return p


# Options whose value may start with "-" (--since -1h, --for -5m is refused with a reason
# rather than with argparse's "expected one argument").
_DASH_VALUES = ("--since", "--for", "--now")


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--":  # what follows is positional, whatever it looks like
            out.append(a)
            out.extend(it)
            break
        if a in _DASH_VALUES:
            v = next(it, None)
            if v is not None and v.startswith("-") and v != "--":
                out.append(f"{a}={v}")
                continue
            out.append(a)
            if v is not None:
                out.append(v)
            continue
        out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except UsageError as e:
        sys.stderr.write(f"logban: {e}\n")
        return 2
    except BrokenPipeError:
        return 0
