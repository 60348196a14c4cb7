"""Filter definitions: YAML files in ``filters/``, compiled once.

A filter names the literal strings a line must hold before any pattern runs (the cheap
pre-check), an optional ``prefix`` shared by its patterns, the patterns with named groups
``host`` (written ``<HOST>``) and optionally ``user``, ``ignore`` patterns, the journald
matches it wants, and sample lines with the result each must give. Every pattern is anchored
at the start of the text after the line's timestamp (an optional syslog hostname is allowed
there), so attacker-chosen text later in the line can never move the address a filter takes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# An address as logs write it; canonical() validates it afterwards, so a hostname made of hex
# letters or a bad dotted quad is rejected there. Possessive: never backtracks.
HOST_RE = r"(?P<host>[0-9A-Fa-f:.]++)"
# The syslog hostname field, when the line has one.
_HOSTNAME = r"(?:[^\s:\[\]]++ )?"


# libyaml's loader when PyYAML was built with it: start-up is part of every test-filter run.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FilterError(Exception):
    """A filter file that cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True, slots=True)
class Sample:
    line: str
    host: str | None
    user: str | None
    lineno: int


@dataclass(slots=True)
class Filter:
    name: str
    description: str
    path: Path
    literals: tuple[str, ...]
    patterns: list[re.Pattern[str]]
    pattern_sources: list[str]
    ignore: list[re.Pattern[str]]
    journal: list[str]
    samples: list[Sample]
    service: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    # Index of the pattern each sample exercised, filled by the sample check.
    literal_bytes: tuple[bytes, ...] = ()

    def wants(self, line: str) -> bool:
        for lit in self.literals:
            if lit in line:
                return True
        return False


def default_filter_dirs() -> list[Path]:
    """Where shipped and local filters live, most specific first."""
    dirs: list[Path] = []
    env = os.environ.get("LOGBAN_FILTER_PATH")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path("/etc/logban/filters.d"))
    repo = Path(__file__).resolve().parent.parent / "filters"
    dirs.append(repo)
    dirs.append(Path(sys.prefix) / "share" / "logban" / "filters")
    dirs.append(Path("/usr/share/logban/filters"))
    return dirs


def _substitute(text: str, vars: dict[str, str], escape: bool) -> str:
    def repl(m: re.Match[str]) -> str:
        v = vars.get(m[1])
        if v is None:
            raise KeyError(m[1])
        return re.escape(v) if escape else v
    return re.sub(r"\$\{(\w+)\}", repl, text)


def atomic_possessives(pattern: str) -> str:
    """Rewrite possessive quantifiers on groups, ``(...)*+``, as atomic groups,
    ``(?>(...)*)``: the same language and the same linear-time guarantee, but Python before
    3.11.5 mis-matches the possessive form when the group repeats zero times (CPython
    gh-106052), so written this way every filter works on every Python 3.11."""
    out: list[str] = []
    opens: list[int] = []  # positions in ``out`` of the unclosed "("
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            # a "]" right after "[" or "[^" is a literal member
            j = i + 1
            if j < n and pattern[j] == "^":
                out.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                out.append("]")
                j += 1
            i = j
            continue
        if c == "(":
            opens.append(len(out))
            out.append(c)
            i += 1
            continue
        if c == ")" and opens:
            start = opens.pop()
            out.append(c)
            i += 1
            m = re.match(r"(\*|\+|\?|\{(?:\d+(?:,\d*)?|,\d*)\})\+", pattern[i:])  # "{}" is literal
            if m:
                group = "".join(out[start:])
                del out[start:]
                out.append(f"(?>{group}{m[1]})")
                i += m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _compile(path: Path, where: str, body: str) -> re.Pattern[str]:
    try:
        return re.compile(atomic_possessives(body))
    except re.error as e:
        raise FilterError(f"{path}: {where}: bad pattern: {e}") from None


def load_filter(path: Path, overrides: dict[str, str] | None = None) -> Filter:
    try:
        text = path.read_text(encoding="utf-8")
        doc = yaml.load(text, Loader=_Loader)
    except (OSError, UnicodeDecodeError) as e:
        raise FilterError(f"{path}: cannot read: {e}") from None
    except yaml.YAMLError as e:
        raise FilterError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise FilterError(f"{path}: a filter is a mapping with name, literals and patterns")
    name = doc.get("name") or path.stem
    vars = {str(k): str(v) for k, v in (doc.get("vars") or {}).items()}
    for k, v in (overrides or {}).items():
        if k not in vars:
            raise FilterError(f"{path}: filter {name} has no variable {k!r} (it has {sorted(vars)})")
        vars[k] = str(v)
    try:
        literals = tuple(_substitute(str(x), vars, False) for x in doc.get("literals") or [])
        prefix = _substitute(str(doc.get("prefix", "")), vars, True)
        sources = [_substitute(str(p), vars, True) for p in doc.get("patterns") or []]
        ignores = [_substitute(str(p), vars, True) for p in doc.get("ignore") or []]
    except KeyError as e:
        raise FilterError(f"{path}: unknown variable ${{{e.args[0]}}}") from None
    if not literals:
        raise FilterError(f"{path}: literals: at least one literal pre-check string is needed")
    if not sources:
        raise FilterError(f"{path}: patterns: at least one pattern is needed")
    patterns = []
    for i, src in enumerate(sources):
        body = _HOSTNAME + prefix + src.replace("<HOST>", HOST_RE)
        p = _compile(path, f"patterns[{i}]", body)
        if "host" not in p.groupindex and not doc.get("hostless", False):
            raise FilterError(f"{path}: patterns[{i}]: no <HOST> (set hostless: true for "
                              "filters whose lines carry no address)")
        patterns.append(p)
    ignore = [_compile(path, f"ignore[{i}]", _HOSTNAME + prefix + s) for i, s in enumerate(ignores)]
    samples = []
    for i, s in enumerate(doc.get("samples") or []):
        if not isinstance(s, dict) or "line" not in s:
            raise FilterError(f"{path}: samples[{i}]: each sample has line, host and optional user")
        samples.append(Sample(str(s["line"]), s.get("host"), s.get("user"), i))
    journal = [str(j) for j in doc.get("journal") or []]
    return Filter(name=name, description=str(doc.get("description", "")), path=path,
                  literals=literals, patterns=patterns, pattern_sources=sources, ignore=ignore,
                  journal=journal, samples=samples, service=doc.get("service"), vars=vars,
                  literal_bytes=tuple(x.encode() for x in literals))


def find_filter_files(dirs: list[Path] | None = None) -> dict[str, Path]:
    """Filter name -> file; a file in an earlier directory overrides a shipped one."""
    found: dict[str, Path] = {}
    for d in dirs or default_filter_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.yaml")):
            found.setdefault(p.stem, p)
    return found


def load_filters(names: list[str] | None = None, dirs: list[Path] | None = None,
                 overrides: dict[str, dict[str, str]] | None = None) -> list[Filter]:
    files = find_filter_files(dirs)
    if names is None:
        names = sorted(files)
    out = []
    for n in names:
        if n not in files:
            raise FilterError(f"unknown filter {n!r}; known filters: {', '.join(sorted(files))}")
        out.append(load_filter(files[n], (overrides or {}).get(n)))
    return out


def describe(doc_value: Any) -> str:
    return str(doc_value)
