#!/usr/bin/env bash
# The suite N times back to back (as `make test` runs it) with a CPU hog on every core beside it:
# it must be green every time.
#
#   tests/flakecheck.sh                  # 5 runs of the whole suite (`make unit`'s pytest -q)
#   tests/flakecheck.sh 3 tests/unit tests/e2e/test_cli.py   # 3 runs of what you name
#   HOGS=0 tests/flakecheck.sh 2         # no hog (HOGS defaults to the number of cores)
#   WORKERS=0 tests/flakecheck.sh 1      # in one process (WORKERS defaults to make test's 2)
#
# Each run's output goes to a log of its own (the path is printed); exit 0 only if all were green.
# The hogs are this script's own children, stopped when it ends, however it ends.
set -u
cd "$(dirname "$0")/.."

runs=${1:-5}
shift $(($# > 0 ? 1 : 0))
hogs=${HOGS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
workers=${WORKERS:-2}
pytest=.venv/bin/pytest
[ -x "$pytest" ] || pytest="python3 -m pytest"
logs=$(mktemp -d "${TMPDIR:-/tmp}/flakecheck.XXXXXX")

hog_pids=()
stop_hogs() {
    for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null; done
    hog_pids=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$hogs"); do
    python3 -c 'while True: pass' &
    hog_pids+=($!)
done

echo "flakecheck: $runs run(s) of pytest -q -n $workers ${*:-(whole suite)} beside $hogs CPU hog(s); logs in $logs"
greens=0
for n in $(seq "$runs"); do
    started=$(date +%s)
    if [ $# -eq 0 ] && [ "$workers" != 0 ]; then  # as `make test`: the fuzz in a process of its own
        run=( sh -c "$pytest -q -n $workers --dist loadfile && $pytest -q tests/e2e/test_fuzz.py" )
    else
        run=( $pytest -q -n "$workers" --dist loadfile "$@" )
    fi
    if "${run[@]}" >"$logs/run-$n.log" 2>&1; then
        greens=$((greens + 1))
        verdict=green
    else
        verdict="RED (see $logs/run-$n.log)"
    fi
    echo "run $n/$runs: $verdict, $(($(date +%s) - started)) s, $(tail -n 1 "$logs/run-$n.log")"
done
echo "flakecheck: $greens/$runs green"
[ "$greens" -eq "$runs" ]
