#!/usr/bin/env bash
# Build Warden's fuzz targets with clang + libFuzzer + ASan + UBSan and run
# each for a bounded time, starting from its seed corpus.
#
#   contrib/fuzz.sh [--seconds N] [--runs N] [--seed N] [--keep DIR]
#                   [TARGET...]
#
#   --seconds N  time per target (default 60)
#   --runs N     stop a target after N executions instead (with --seconds
#                as an upper bound)
#   --seed N     libFuzzer's random seed (default: a new one each run).
#                CI passes a fixed seed; the run is still bounded by time,
#                so another machine explores a little more or less, and a
#                failure is reproduced from the input it prints, not by
#                running the command again. Exploring with fresh seeds is
#                the long runs' job.
#   --keep DIR   keep the corpus each target grew in DIR/TARGET (for
#                contrib/fuzz-coverage.sh); default: a scratch directory
#   TARGET       names like "datascan" (default: every tests/fuzz/fuzz_*.c)
#
# Prints one line per target: executions, coverage (edges), corpus size.
# A crash, leak or sanitizer report fails the run; the input is copied to
# tests/fuzz/corpus/TARGET/ so that it stays in the regression corpus
# (ctest runs that corpus on every build: fuzz.TARGET). Exit status: 0 when
# every target ran clean, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER=60
RUNS=
SEED=
KEEP=
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER=${2:?}; shift 2 ;;
        --runs)    RUNS=${2:?}; shift 2 ;;
        --seed)    SEED=${2:?}; shift 2 ;;
        --keep)    KEEP=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

contrib/install-deps.sh >/dev/null
CC=clang cmake -S . -B build-fuzz -DWARDEN_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=${f##*/fuzz_}
        targets+=("${t%.c}")
    done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/warden-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=0
printf '%-14s %12s %8s %8s  %s\n' target execs cov corpus result
for t in "${targets[@]}"; do
    bin=build-fuzz/tests/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "$t: no $bin or no $seeds" >&2
        failed=1
        continue
    fi
    # new inputs go to a scratch corpus; the seeds in the repo stay as they are
    mkdir -p "$WORK/$t/corpus" "$WORK/$t/artifacts"
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP/$t"
        rm -rf "$WORK/$t/corpus"
        ln -s "$(cd "$KEEP/$t" && pwd)" "$WORK/$t/corpus"
    fi
    args=(-max_total_time="$SECONDS_PER" -print_final_stats=1
          -artifact_prefix="$WORK/$t/artifacts/" -timeout=10 -rss_limit_mb=2048)
    [ -n "$RUNS" ] && args+=(-runs="$RUNS")
    [ -n "$SEED" ] && args+=(-seed="$SEED")
    [ -f tests/fuzz/$t.dict ] && args+=(-dict=tests/fuzz/$t.dict)
    log=$WORK/$t/log
    if "$bin" "${args[@]}" "$WORK/$t/corpus" "$seeds" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed=1
    fi
    # a target that dies before its first status line has no figures
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1 || true)
    cov=$( (grep -oE 'cov: [0-9]+' "$log" || true) | tail -1 | awk '{ print $2 }')
    size=$(find -L "$WORK/$t/corpus" "$seeds" -type f | wc -l)
    printf '%-14s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "$size" "$result"
    if [ "$result" != ok ]; then
        (grep -E "ERROR|SUMMARY|check failed|runtime error|^  (script|session):" \
            "$log" || tail -n 5 "$log") | head -8 | sed 's/^/    /'
        for a in "$WORK/$t/artifacts"/*; do
            [ -f "$a" ] || continue
            cp "$a" "$seeds/" && echo "    input saved: $seeds/${a##*/}"
            # a CI machine's files are gone after the run: its log keeps
            # the input, to reproduce with  base64 -d > crash; fuzz_T crash
            if [ "$(stat -c %s "$a")" -le 16384 ]; then
                echo "    input (base64):"
                base64 -w 76 "$a" | sed 's/^/      /'
            fi
        done
    fi
done
echo "fuzz: $([ $failed = 0 ] && echo "all targets clean" || echo "FAILURES (see above)")"
exit $failed
