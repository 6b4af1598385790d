#!/usr/bin/env bash
# Line and branch coverage of each fuzz target's corpus over the code it
# fuzzes (clang source-based coverage), e.g. after a long run:
#
#   contrib/fuzz.sh --seconds 3600 --runs 10000000 --keep /var/tmp/fuzz
#   contrib/fuzz-coverage.sh --corpus /var/tmp/fuzz [TARGET...]
#
# Every input of tests/fuzz/corpus/TARGET (and DIR/TARGET with --corpus)
# runs once through an instrumented build of the target (build-cov/); the
# report lists the files that target is meant to reach.
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS=
while [ $# -gt 0 ]; do
    case $1 in
        --corpus) CORPUS=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

# the sources each target exists to exercise (reported by base name)
declare -A FILES=(
    [authhdr]="proxy/fromaddr.c proxy/orgdomain.c proxy/dmarc.c"
    [config]="proxy/config.c proxy/yamldoc.c proxy/netaddr.c"
    [datascan]="proxy/datascan.c"
    [dnsq]="proxy/dnsq_msg.c"
    [msgview]="proxy/msgview.c proxy/htmltext.c proxy/uris.c"
    [policy]="proxy/policy.c proxy/policy_auth.c proxy/policy_score.c proxy/limit_rules.c proxy/yamldoc.c"
    [proxyproto]="proxy/proxyproto.c"
    [rules]="proxy/rules_load.c proxy/rules_regex.c proxy/rules_meta.c proxy/rules_replace.c"
    [sasl]="proxy/sasl.c proxy/xclient.c"
    [session]="proxy/session.c proxy/session_cmd.c proxy/session_data.c proxy/smtp_cmd.c proxy/ehlo.c"
    [smtp_cmd]="proxy/smtp_cmd.c"
    [smtp_reply]="proxy/smtp_reply.c proxy/ehlo.c"
    [spf_record]="proxy/spf_syntax.c"
)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=${f##*/fuzz_}
        targets+=("${t%.c}")
    done
fi

flags="-fprofile-instr-generate -fcoverage-mapping"
CC=clang cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build build-cov -j"$(nproc)" \
    --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/warden-fuzzcov.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
for t in "${targets[@]}"; do
    bin=build-cov/tests/fuzz_$t
    dirs=(tests/fuzz/corpus/"$t")
    [ -n "$CORPUS" ] && [ -d "$CORPUS/$t" ] && dirs+=("$CORPUS/$t")
    inputs=$(find -L "${dirs[@]}" -type f | wc -l)
    # one process per 500 inputs: a profile per process, merged below
    find -L "${dirs[@]}" -type f -print0 |
        LLVM_PROFILE_FILE="$WORK/$t.%p.profraw" xargs -0 -n 500 "$bin" \
            >/dev/null 2>&1 || true
    llvm-profdata merge -sparse -o "$WORK/$t.profdata" "$WORK/$t".*.profraw
    echo "== $t: $inputs inputs"
    # shellcheck disable=SC2086
    # columns: name, regions (3), functions (3), lines (3), branches (3)
    llvm-cov report "$bin" -instr-profile="$WORK/$t.profdata" ${FILES[$t]:-} |
        awk '$1 ~ /\.c$/ || $1 == "TOTAL" {
            f = $1; sub(/^.*\//, "", f)
            printf "  %-24s lines %6s of %5d   branches %6s of %5d\n",
                   f, $10, $8, $13, $11 }'
done
