"""Bulk fill speed: logban's IPSetAction.start() vs `ipset restore` vs one `ipset add` per
entry, all inside a throwaway network namespace (root needed; the host is not touched).

    sudo .venv/bin/python bench/bulk_restore.py [--entries 100000] [--runs 3]

Prints a markdown table: median of the runs, entries per second, ratio to ipset restore.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from netns import in_netns, netns, run_in  # noqa: E402

from logban.actions.base import KernelBan  # noqa: E402
from logban.actions.ipset import IPSetAction, kernel_timeout  # noqa: E402

SET4, SET6 = "logban4", "logban6"


def generated_bans(n: int, now: float) -> list[KernelBan]:
    """Half IPv4 from 10.0.0.0/8, half IPv6 from 2001:db8::/32; expiries spread over hours."""
    bans = []
    for i in range(n // 2):
        bans.append(KernelBan(str(ipaddress.IPv4Address(0x0A000000 + 3 * i + 1)),
                              now + 3600 + i % 7200))
        bans.append(KernelBan(str(ipaddress.IPv6Address((0x20010DB8 << 96) + 5 * i + 1)),
                              now + 3600 + i % 7200))
    return bans


def restore_script(bans: list[KernelBan], now: float, maxelem: int, hashsize: int) -> str:
    lines = [f"create {SET4} hash:ip family inet hashsize {hashsize} maxelem {maxelem} timeout 0",
             f"create {SET6} hash:ip family inet6 hashsize {hashsize} maxelem {maxelem} timeout 0"]
    for b in bans:
        lines.append(f"add {SET6 if ':' in b.address else SET4} {b.address} "
                     f"timeout {kernel_timeout(b, now)}")
    return "\n".join(lines) + "\n"


def destroy_sets(ns: str) -> None:
    for name in (SET4, SET6, SET4 + "-tmp", SET6 + "-tmp"):
        run_in(ns, "ipset", "destroy", name, check=False)


def count_entries(ns: str) -> int:
    total = 0
    for name in (SET4, SET6):
        for line in run_in(ns, "ipset", "list", "-t", name).stdout.splitlines():
            if line.startswith("Number of entries:"):
                total += int(line.split(":")[1])
    return total


def median_time(runs: int, prepare: Callable[[], None], work: Callable[[], None],
                verify: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        prepare()
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
        verify()
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--per-process-sample", type=int, default=2000,
                   help="entries added with one `ipset add` each, extrapolated")
    common.add_results_argument(p)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("bench/bulk_restore.py needs root (network namespaces, ipset)\n")
        return 1
    n = args.entries
    maxelem, hashsize = max(65536, 1 << (n - 1).bit_length()), 1024
    now = time.time()
    bans = generated_bans(n, now)
    script = restore_script(bans, now, maxelem, hashsize)
    results: dict[str, tuple[float, int]] = {}

    with netns("bench") as ns:
        def expect(count: int) -> Callable[[], None]:
            def check() -> None:
                got = count_entries(ns)
                if got != count:
                    raise SystemExit(f"expected {count} entries, found {got}")
            return check

        with in_netns(ns):
            action = IPSetAction(SET4, SET6, maxelem=maxelem, hashsize=hashsize)
            action.status()  # opens the sockets in the namespace

        def fresh_empty_sets() -> None:
            destroy_sets(ns)
            action.ensure_sets()

        try:
            results["logban start() (netlink bulk + swap)"] = (median_time(
                args.runs, fresh_empty_sets, lambda: action.start(bans, now), expect(n)), n)
        finally:
            action.stop()

        results["ipset restore"] = (median_time(
            args.runs, lambda: destroy_sets(ns),
            lambda: run_in(ns, "ipset", "restore", input=script, timeout=600),
            expect(n)), n)

        sample = bans[:args.per_process_sample]
        sample_script = restore_script([], now, maxelem, hashsize)

        def one_process_each() -> None:
            for b in sample:
                run_in(ns, "ipset", "add", SET6 if ":" in b.address else SET4, b.address,
                       "timeout", str(kernel_timeout(b, now)))

        t = median_time(1, lambda: (destroy_sets(ns), run_in(ns, "ipset", "restore",
                                                             input=sample_script)),
                        one_process_each, expect(len(sample)))
        results[f"one `ipset add` per entry (from {len(sample)}, extrapolated)"] = (
            t * n / len(sample), n)
        destroy_sets(ns)

    base = results["ipset restore"][0]
    ours = results["logban start() (netlink bulk + swap)"][0]
    lines = [f"{n:,} saved bans ({n // 2:,} IPv4 + {n - n // 2:,} IPv6) into empty `hash:ip timeout` "
             f"sets (maxelem {maxelem:,}) in a network namespace of its own; median of {args.runs} runs "
             "(one run for the per-process row).", "",
             "| method | seconds | entries/s | ratio to ipset restore |",
             "|---|---:|---:|---:|"]
    for name, (secs, count) in results.items():
        lines.append(f"| {name} | {secs:.3f} | {count / secs:,.0f} | {secs / base:.2f}x |")
    met = "met" if ours <= 3 * base else "NOT met"
    lines += ["", f"**Target within 3x of `ipset restore`: {met}** ({ours / base:.2f}x).", "",
              "Machine:", "", common.machine_markdown(common.machine_info()), "",
              f"Reproduce: `.venv/bin/python bench/bulk_restore.py --entries {n} --runs {args.runs} "
              "--results bench/RESULTS.md` (root)"]
    body = "\n".join(lines)
    print(body)
    if args.results:
        common.write_section(args.results, "Bulk restore", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
