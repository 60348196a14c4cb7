"""Command line: a thin layer over the library. Exit 0 on success, 2 on usage or input errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Sequence

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
    try:
        filters = load_filters(args.filter or None)
    except FilterError as e:
        raise UsageError(str(e))
    matcher = Matcher(filters)
    if args.journal is not None:
        from logban.sources.journal import journal_lines

        streams = [("journal", journal_lines(args.journal or None, args.since, filters))]
    else:
        if not args.logs:
            raise UsageError("name a log file to read (or - for standard input, or --journal)")
        streams = []
        for name in args.logs:
            if name == "-":
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
            size = _size(stream)
            if sys.stderr.isatty() and size > 16 * 1024 * 1024:
                progress = testfilter.Progress(size, sys.stderr)
        report = testfilter.run(matcher, stream, now, json_out, progress)
        if progress:
            progress.close()
        if args.json:
            sys.stdout.write(json.dumps({"summary": {"log": name, **report.summary()}}) + "\n")
        else:
            if len(streams) > 1:
                sys.stdout.write(f"== {name}\n")
            testfilter.print_human(report, sys.stdout)
    return 0


def _size(stream: object) -> int:
    try:
        return os.fstat(stream.fileno()).st_size  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="logban", description=__doc__)
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
    tf.set_defaults(func=cmd_test_filter)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        sys.stderr.write(f"logban: {e}\n")
        return 2
    except BrokenPipeError:
        return 0
