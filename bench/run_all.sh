#!/usr/bin/env bash
# Run every benchmark and collect their sections in bench/RESULTS.md.
#
#   bench/run_all.sh                    # every benchmark
#   bench/run_all.sh parse_throughput   # only the ones named (with or without .py)
#
# A benchmark is any bench/*.py that declares a --results option (see common.add_results_argument):
# it is run as `python bench/NAME.py [its arguments] --results bench/RESULTS.md` and replaces only
# its own "## ..." section. To add one, drop the script in bench/; if it needs arguments other than
# its defaults, add them to ARGS below. Environment: PYTHON (default .venv/bin/python), RESULTS.
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
RESULTS=${RESULTS:-bench/RESULTS.md}

# Per-script arguments. Add a line per benchmark that needs more than its defaults.
declare -A ARGS=(
    [parse_throughput.py]="--lines 1000000 --runs 3"
    [steady_state.py]="--runs 3"
)
# Helpers that are no benchmark even if they mention --results.
SKIP=" common.py gen_maillog.py "

is_bench() {
    case "$SKIP" in *" $(basename "$1") "*) return 1 ;; esac
    grep -Eq "add_results_argument\(|['\"]--results['\"]" "$1"
}

scripts=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        f="bench/${name%.py}.py"
        [ -f "$f" ] || { echo "run_all: no such benchmark: $f" >&2; exit 2; }
        scripts+=("$f")
    done
else
    for f in bench/*.py; do
        is_bench "$f" && scripts+=("$f")
    done
fi
[ ${#scripts[@]} -gt 0 ] || { echo "run_all: no benchmarks found in bench/" >&2; exit 2; }

failed=()
for f in "${scripts[@]}"; do
    name=$(basename "$f")
    # shellcheck disable=SC2086  # ARGS values are word lists on purpose
    echo "== $name ${ARGS[$name]:-}" >&2
    if ! "$PY" "$f" ${ARGS[$name]:-} --results "$RESULTS"; then
        failed+=("$name")
        echo "run_all: $name failed" >&2
    fi
done

echo "run_all: ${#scripts[@]} benchmark(s), results in $RESULTS" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "run_all: failed: ${failed[*]}" >&2
    exit 1
fi
