"""Configuration: YAML, validated up front; every error names FILE:LINE: key and what is wrong.

Every subcommand finds the file the same way: ``-c CONFIG``, else ``$LOGBAN_CONFIG``, else
``/etc/logban/logban.yaml``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from logban.addr import IPNetwork, parse_network
from logban.durations import parse_duration

DEFAULT_PATH = "/etc/logban/logban.yaml"
ACTION_KINDS = ("ipset", "dry-run")


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SourceConfig:
    kind: str                 # "file", "journal" or "kmsg"
    path: str | None = None   # None: the system journal / /dev/kmsg
    start_at: str = "end"     # where to begin with no checkpoint


@dataclass(frozen=True)
class JailConfig:
    name: str
    filters: list[str]
    maxretry: int = 3
    findtime: float = 1200.0
    bantime: float = 3600.0
    bantime_factor: float = 2.0      # each repeat ban lasts this much longer ...
    bantime_max: float = 4 * 604800.0  # ... up to this ceiling
    action: str = "ipset"


@dataclass(frozen=True)
class Config:
    path: Path
    state_dir: Path = Path("/var/lib/logban")
    socket: Path = Path("/run/logban/logban.sock")
    ignore: list[IPNetwork] = field(default_factory=list)
    ignore_self: bool = True
    sources: list[SourceConfig] = field(default_factory=list)
    jails: dict[str, JailConfig] = field(default_factory=dict)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    filter_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    filter_dirs: list[Path] = field(default_factory=list)
    max_tracked: int = 1_000_000
    correlate_window: float = 2.0
    kernel_matcher: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    log_level: str = "info"
    warnings: list[str] = field(default_factory=list)

    def action_kind(self, name: str) -> str:
        return str(self.actions.get(name, {}).get("type", name))


def config_path(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("LOGBAN_CONFIG") or DEFAULT_PATH)


class _Lines:
    """Line numbers of the keys and values in a YAML document, by key path."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                self.lines[path + (key,)] = k.start_mark.line + 1
                self._walk(v, path + (key,))
                self.lines[path + (key,)] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, path + (i,))

    def at(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


class _Checker:
    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path, self.lines = path, lines
        self.problems: list[str] = []

    def bad(self, keypath: tuple[Any, ...], what: str) -> None:
        key = ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in keypath) or "(top)"
        key = key.replace(".[", "[")
        self.problems.append(f"{self.path}:{self.lines.at(keypath)}: {key}: {what}")

    def duration(self, keypath: tuple[Any, ...], value: Any, default: float) -> float:
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as e:
            self.bad(keypath, str(e))
            return default

    def integer(self, keypath: tuple[Any, ...], value: Any, default: int, minimum: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.bad(keypath, f"{value!r} is not a whole number >= {minimum}")
            return default
        return value

    def mapping(self, keypath: tuple[Any, ...], value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(keypath, "must be a mapping (key: value lines)")
            return {}
        return value

    def unknown(self, keypath: tuple[Any, ...], value: dict[str, Any], known: set[str]) -> None:
        for k in value:
            if k not in known:
                self.bad(keypath + (k,), f"unknown key (known: {', '.join(sorted(known))})")


TOP_KEYS = {"state_dir", "socket", "ignore", "ignore_self", "sources", "jails", "actions",
            "filter_vars", "filter_dirs", "max_tracked", "correlate_window", "kernel_matcher",
            "rules", "log_level"}
KERNEL_MATCHER_KEYS = {"ports", "reply", "own_networks", "strikes", "strike_seconds", "conn_hitcount",
                       "conn_seconds", "search_to"}
JAIL_KEYS = {"filters", "maxretry", "findtime", "bantime", "bantime_factor", "bantime_max", "action"}


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:  # a directory this user may not search: the daemon (root) may
        return True


def _duplicate_keys(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Keys given twice in one mapping (YAML loaders keep the last one without a word)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for k, v in node.value:
            key = getattr(k, "value", None)
            if isinstance(key, str) and key != "<<":  # merge keys may repeat
                if key in seen:
                    yield path + (key,), k.start_mark.line + 1
                seen.add(key)
            yield from _duplicate_keys(v, path + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield from _duplicate_keys(v, path + (f"[{i}]",))


def load_config(path: Path, check_filters: bool = True) -> Config:
    """Read and validate; raises ConfigError listing every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}:1: (file): cannot read: {e.strerror}; pass -c CONFIG or set "
                           "LOGBAN_CONFIG"]) from None
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{path}:{line}: (syntax): not valid YAML: "
                           f"{getattr(e, 'problem', None) or e}"]) from None
    c = _Checker(path, _Lines(node))
    for keypath, line in _duplicate_keys(node):
        key = ".".join(map(str, keypath)).replace(".[", "[")
        c.problems.append(f"{path}:{line}: {key}: given twice; the "
                          "later value would silently win, keep one")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError([f"{path}:1: (top): the configuration is a mapping of keys"])
    c.unknown((), doc, TOP_KEYS)

    ignore: list[IPNetwork] = []
    raw_ignore = doc.get("ignore") or []
    if not isinstance(raw_ignore, list):
        c.bad(("ignore",), "must be a list of addresses or networks")
        raw_ignore = []
    for i, v in enumerate(raw_ignore):
        try:
            ignore.append(parse_network(str(v)))
        except ValueError:
            c.bad(("ignore", i), f"{v!r} is not an address or network (e.g. 192.0.2.0/24, 2001:db8::/32)")

    sources: list[SourceConfig] = []
    warnings: list[str] = []
    raw_sources = doc.get("sources")
    if raw_sources is None:
        raw_sources = []
    if not isinstance(raw_sources, list):
        c.bad(("sources",), "must be a list such as '- file: /var/log/maillog'")
        raw_sources = []
    for i, s in enumerate(raw_sources):
        kp: tuple[str | int, ...] = ("sources", i)
        if not isinstance(s, dict) or len(s) != 1:
            c.bad(kp, "each source is one of '- file: PATH', '- journal: {}', '- kmsg: {}'")
            continue
        (kind, val), = s.items()
        if kind not in ("file", "journal", "kmsg"):
            c.bad(kp + (kind,), "unknown source kind (file, journal or kmsg)")
            continue
        if kind == "file" and isinstance(val, str):
            val = {"path": val}
        val = c.mapping(kp + (kind,), val)
        c.unknown(kp + (kind,), val, {"path", "start_at"})
        start_at = val.get("start_at", "end")
        if start_at not in ("end", "start"):
            c.bad(kp + (kind, "start_at"), "must be 'end' or 'start'")
        p = val.get("path")
        if kind == "file" and not p:
            c.bad(kp + (kind,), "a file source needs a path")
            continue
        if kind == "journal" and not _have_systemd():
            warnings.append(f"{path}:{c.lines.at(kp)}: sources[{i}].journal: needs systemd-python "
                            "(python3-systemd); this source is skipped, the others keep working")
        sources.append(SourceConfig(kind, str(p) if p else None, str(start_at)))

    actions: dict[str, dict[str, Any]] = {}
    for name, a in c.mapping(("actions",), doc.get("actions")).items():
        a = c.mapping(("actions", name), a)
        kind = a.get("type", name)
        if kind not in ACTION_KINDS:
            c.bad(("actions", name), f"unknown action type {kind!r} (known: {', '.join(ACTION_KINDS)})")
        if kind == "ipset":
            c.unknown(("actions", name), a, {"type", "set4", "set6", "maxelem", "hashsize"})
            for k in ("maxelem", "hashsize"):
                if k in a:
                    c.integer(("actions", name, k), a[k], 0, 1)
        actions[str(name)] = dict(a)
    for kind in ACTION_KINDS:
        actions.setdefault(kind, {})

    filter_vars: dict[str, dict[str, str]] = {}
    for fname, fv in c.mapping(("filter_vars",), doc.get("filter_vars")).items():
        filter_vars[str(fname)] = {str(k): str(v) for k, v in c.mapping(("filter_vars", fname), fv).items()}
    filter_dirs = [Path(str(d)) if Path(str(d)).is_absolute() else (path.parent / str(d)).resolve()
                   for d in (doc.get("filter_dirs") or [])]

    jails: dict[str, JailConfig] = {}
    raw_jails = c.mapping(("jails",), doc.get("jails"))
    if not raw_jails:
        c.bad(("jails",), "at least one jail is needed (see the README for an example)")
    known_filters: set[str] | None = None
    if check_filters:
        from logban.filters import find_filter_files
        known_filters = set(find_filter_files(filter_dirs + _default_dirs()))
        for fname in filter_vars:
            if fname not in known_filters:
                c.bad(("filter_vars", fname), f"no filter named {fname!r} (known: "
                                              f"{', '.join(sorted(known_filters))})")
    for name, j in raw_jails.items():
        kp = ("jails", name)
        j = c.mapping(kp, j)
        c.unknown(kp, j, JAIL_KEYS)
        fl = j.get("filters")
        if not isinstance(fl, list) or not fl:
            c.bad(kp + ("filters",), "a list of filter names is needed")
            fl = []
        for i, fn in enumerate(fl):
            if known_filters is not None and fn not in known_filters:
                c.bad(kp + ("filters", i), f"unknown filter {fn!r} (known: {', '.join(sorted(known_filters))})")
        action = str(j.get("action", "ipset"))
        if action not in actions:
            c.bad(kp + ("action",), f"unknown action {action!r} (defined: {', '.join(sorted(actions))})")
        factor = j.get("bantime_factor", 2.0)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            c.bad(kp + ("bantime_factor",), f"{factor!r} must be a number >= 1")
            factor = 2.0
        jail = JailConfig(
            name=str(name), filters=[str(f) for f in fl],
            maxretry=c.integer(kp + ("maxretry",), j.get("maxretry"), 3, 1),
            findtime=c.duration(kp + ("findtime",), j.get("findtime"), 1200.0),
            bantime=c.duration(kp + ("bantime",), j.get("bantime"), 3600.0),
            bantime_factor=float(factor),
            bantime_max=c.duration(kp + ("bantime_max",), j.get("bantime_max"), 4 * 604800.0),
            action=action)
        if jail.findtime <= 0:
            c.bad(kp + ("findtime",), "must be longer than 0")
        if "bantime_max" in j and 0 < jail.bantime_max < jail.bantime:
            warnings.append(f"{path}:{c.lines.at(kp + ('bantime_max',))}: jails.{name}.bantime_max: "
                            f"is shorter than bantime ({j.get('bantime')}): every ban lasts "
                            "bantime, repeat offenders get no longer ones")
        jails[str(name)] = jail

    _check_set_names(c, actions, [j.action for j in jails.values()])

    km = c.mapping(("kernel_matcher",), doc.get("kernel_matcher"))
    # The LOG prefixes are not here on purpose: they are the kernel-smtp filter's variables
    # (filter_vars), so the rules and the filter can never disagree.
    c.unknown(("kernel_matcher",), km, KERNEL_MATCHER_KEYS)
    for k in ("strikes", "strike_seconds", "conn_hitcount", "conn_seconds", "search_to"):
        if k in km:
            c.integer(("kernel_matcher", k), km[k], 0, 1)
    rules_opts = c.mapping(("rules",), doc.get("rules"))
    c.unknown(("rules",), rules_opts, {"ports"})

    level = str(doc.get("log_level", "info")).lower()
    if level not in ("debug", "info", "warning", "error"):
        c.bad(("log_level",), "must be debug, info, warning or error")
    ignore_self = doc.get("ignore_self", True)
    if not isinstance(ignore_self, bool):
        c.bad(("ignore_self",), "must be true or false")
        ignore_self = True
    max_tracked = c.integer(("max_tracked",), doc.get("max_tracked"), 1_000_000, 1)
    correlate_window = c.duration(("correlate_window",), doc.get("correlate_window"), 2.0)
    if c.problems:
        raise ConfigError(c.problems)

    def here(p: str) -> Path:
        # Relative paths are relative to the configuration file, so an example config works
        # from any working directory.
        q = Path(p)
        return q if q.is_absolute() else (path.parent / q).resolve()

    sources = [SourceConfig(s.kind, str(here(s.path)) if s.path and s.kind == "file" else s.path,
                            s.start_at) for s in sources]
    for i, s in enumerate(sources):
        if s.kind == "file" and s.path and not _is_dir(Path(s.path).parent):
            # Not an error: the directory may be made later (a log of a service not yet
            # installed), and logban follows the file once it appears. But a typo would be
            # followed forever in silence.
            warnings.append(f"{path}:{c.lines.at(('sources', i))}: sources[{i}].file: the "
                            f"directory of {s.path} does not exist (yet); logban waits for it")
    return Config(
        path=path,
        state_dir=(Path(":memory:") if str(doc.get("state_dir")) == ":memory:"
                   else here(str(doc.get("state_dir", "/var/lib/logban")))),
        socket=here(str(doc.get("socket", "/run/logban/logban.sock"))),
        ignore=ignore, ignore_self=ignore_self, sources=sources, jails=jails, actions=actions,
        filter_vars=filter_vars, filter_dirs=filter_dirs,
        max_tracked=max_tracked, correlate_window=correlate_window,
        kernel_matcher=km,
        rules=rules_opts,
        log_level=level, warnings=warnings)


# The kernel's IPSET_MAXNAMELEN is 32 with the NUL; the ipset action also makes NAME-tmp.
SET_NAME_MAX = 31 - len("-tmp")


def _check_set_names(c: _Checker, actions: dict[str, dict[str, Any]], used: list[str]) -> None:
    """The set names of the ipset actions the jails use: valid, and no set (or its NAME-tmp)
    shared between two of them. Each action makes its sets hold exactly its own jails' bans,
    so two actions on one set wipe each other's bans at every start."""
    owner: dict[str, str] = {}
    for name in dict.fromkeys(used):
        a = actions.get(name)
        if a is None or str(a.get("type", name)) != "ipset":
            continue
        for key, default in (("set4", "logban4"), ("set6", "logban6")):
            v = a.get(key, default)
            kp = ("actions", name, key)
            where = f"actions.{name}.{key}"
            if (not isinstance(v, str) or not v or len(v.encode()) > SET_NAME_MAX
                    or any(ch.isspace() for ch in v)):
                c.bad(kp, f"{v!r} must be a set name of 1 to {SET_NAME_MAX} bytes without blanks "
                          f"(the kernel allows 31 and logban also uses NAME-tmp)")
                continue
            for n in (v, v + "-tmp"):
                if n in owner:
                    c.bad(kp, f"set {v!r} clashes with {owner[n]}: each ipset action needs sets of "
                              "its own, or they remove each other's bans")
                    break
            else:
                owner[v] = owner[v + "-tmp"] = f"{where} ({v!r})"


def _have_systemd() -> bool:
    try:
        import systemd.journal  # noqa: F401
    except ImportError:
        return False
    return True


def _default_dirs() -> list[Path]:
    from logban.filters import default_filter_dirs
    return default_filter_dirs()
