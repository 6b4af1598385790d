#!/usr/bin/env bash
# Warden with one worker thread vs two, in one run, against a direct
# baseline measured in the same run:
#
#   1. throughput, one message per connection: smtp-source -s 20 -l 4096
#      to smtp-sink directly, through Warden workers=1 and workers=2;
#   2. 2,000 concurrent connections (benchlib.py concurrent): all opened
#      and greeted first, then several transactions on every one of them at
#      once, against the same three paths; with Warden's VmRSS while they
#      are open and the latency of the end-of-data reply.
#
#   contrib/bench/workers.sh [--warden PATH] [--messages N] [--rounds N]
#                            [--conns N] [--per-conn N] [--timeout S]
#
# Each path has its own smtp-sink (so that its counter proves what that
# path delivered, and one path's TIME_WAIT sockets are not on the port the
# next one uses). The order of the paths rotates from round to round.
# It prints figures and ratios, no verdict. Exit status: 0 when every
# figure was measured, 1 when some measurement could not be made (a
# failed run leaves the other figures printed; a server that does not
# start stops the script at once), 2 on bad usage or missing tools.
# See contrib/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

WARDEN_BIN=${WARDEN_BIN:-build-rel/warden}
MESSAGES=12000       # throughput test: messages per path (all rounds)
ROUNDS=3
SESSIONS=20
SIZE=4096
CONNS=2000           # concurrent test: connections
PER_CONN=5           # concurrent test: messages per connection
RUN_TIMEOUT=120      # seconds, per smtp-source or concurrent run
usage() {
    cat >&2 <<EOF
usage: $0 [options]
  --warden PATH   Warden binary (default \$WARDEN_BIN or build-rel/warden)
  --messages N    throughput test: messages per path (default $MESSAGES)
  --rounds N      rounds per test, path order rotated (default $ROUNDS)
  --conns N       concurrent test: connections (default $CONNS)
  --per-conn N    concurrent test: messages per connection (default $PER_CONN)
  --timeout S     limit per run, seconds (default $RUN_TIMEOUT)
EOF
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --warden)   WARDEN_BIN=${2:?}; shift 2 ;;
        --messages) MESSAGES=${2:?}; shift 2 ;;
        --rounds)   ROUNDS=${2:?}; shift 2 ;;
        --conns)    CONNS=${2:?}; shift 2 ;;
        --per-conn) PER_CONN=${2:?}; shift 2 ;;
        --timeout)  RUN_TIMEOUT=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
for n in "$MESSAGES" "$ROUNDS" "$CONNS" "$PER_CONN" "$RUN_TIMEOUT"; do
    case $n in ''|*[!0-9]*|0) echo "not a positive number: '$n'" >&2; exit 2 ;; esac
done
case $WARDEN_BIN in /*) ;; *) WARDEN_BIN=$PWD/$WARDEN_BIN ;; esac
PY=/usr/bin/python3
LIB=contrib/bench/benchlib.py
SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
for tool in "$PY" "$SMTP_SOURCE" "$SMTP_SINK"; do
    [ -x "$tool" ] || { echo "missing $tool (apt-get install postfix python3)" >&2; exit 2; }
done
if [ ! -x "$WARDEN_BIN" ]; then
    echo "no executable $WARDEN_BIN; build it with:" >&2
    echo "  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel -j2" >&2
    exit 2
fi
# Warden needs two descriptors per connection, the client one each.
if [ $((CONNS * 2 + 100)) -gt "$(ulimit -n)" ]; then
    echo "--conns $CONNS needs more than 'ulimit -n' ($(ulimit -n)) descriptors" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-workers-bench.XXXXXX")
PIDS=()

# True while PID $1 is a running child of this script (a reaped child's
# PID may be reused by a process that is not ours).
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a st <<<"${st##*) }"
    [ "${st[0]}" != Z ] && [ "${st[1]}" = "$$" ]
}
# Wait for child $1 (status in REAP_STATUS) and forget its PID.
reap() {
    local p keep=()
    REAP_STATUS=0
    wait "$1" 2>/dev/null || REAP_STATUS=$?
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# Stop a process we started: TERM, then KILL if it lingers.
stop_pid() {
    if alive "$1"; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$1" || break
            sleep 0.1
        done
        if alive "$1"; then kill -KILL "$1" 2>/dev/null || true; fi
    fi
    reap "$1"
}
# shellcheck disable=SC2317  # called from the trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { "$PY" "$LIB" freeport; }
log_tail() { if [ -s "$1" ]; then tail -n "$2" "$1" | tr '\n' ' '; else echo "(empty)"; fi; }

TICK=$(getconf CLK_TCK)
# CPU time (user + system) of process $1 so far, in microseconds
cpu_us() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.0f", ($12 + $13) * 1000000 / t }' "/proc/$1/stat"; }
# CPU time of each thread of process $1 so far: "TID US" lines
threads_us() {
    local f
    for f in /proc/"$1"/task/*/stat; do
        awk -v t="$TICK" -v f="$f" '{ sub(/^.*\) /, ""); split(f, a, "/")
            printf "%s %.0f\n", a[5], ($12 + $13) * 1000000 / t }' "$f" 2>/dev/null || true
    done
}
# Add the CPU each thread used between snapshot $2 and now to T_THR[$1]
# (its threads' totals, largest first, comma-separated).
add_threads() {
    local p=$1 now delta
    now=$(threads_us "${PID_OF[$p]}")
    delta=$(awk 'NR == FNR { a[$1] = $2; next } ($1 in a) { print $2 - a[$1] }' \
        <(printf '%s\n' "$2") <(printf '%s\n' "$now") | sort -rn | paste -sd, -)
    T_THR[$p]=$(sum_lists "${T_THR[$p]:-}" "$delta")
}
# Element-wise sum of two comma-separated lists of numbers.
sum_lists() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, ","); m = split(b, y, ","); if (m > n) n = m
        for (i = 1; i <= n; i++) s = s (i > 1 ? "," : "") (x[i] + y[i]); print s }'
}
# idle time of the whole machine so far (all CPUs), in microseconds
idle_us() { awk -v t="$TICK" '/^cpu / { printf "%.0f", ($5 + $6) * 1000000 / t; exit }' /proc/stat; }

# ---- servers ---------------------------------------------------------------

PATHS=(direct w1 w2)
declare -A LABEL=([direct]="direct" [w1]="warden w=1" [w2]="warden w=2")
declare -A SINK_PORT SINK_PID PORT_OF PID_OF LOG_OF
WARDEN_STARTS=0

# smtp-sink: -c prints running counters ("mesg=N", to prove delivery);
# -m 4000 lets it serve the concurrent test's connections at once (the
# default 256 would leave the rest queued); 4096 is its listen backlog.
start_sink() {
    local name=$1 user=()
    SINK_PORT[$name]=$(port)
    [ "$(id -u)" = 0 ] && user=(-u nobody)
    "$SMTP_SINK" -c "${user[@]}" -m 4000 "127.0.0.1:${SINK_PORT[$name]}" 4096 \
        >"$TMP/sink.$name.out" 2>"$TMP/sink.$name.err" </dev/null &
    SINK_PID[$name]=$!
    PIDS+=("$!")
    if ! "$PY" "$LIB" wait-banner "${SINK_PORT[$name]}" 10 "$!" 2>>"$TMP/ready.err"; then
        echo "smtp-sink ($name) did not start: $(log_tail "$TMP/sink.$name.err" 3)" >&2
        exit 1
    fi
}
sink_count() { "$PY" "$LIB" sink-count "$TMP/sink.$1.out"; }

# start_warden w1|w2: a fresh Warden with workers 1 or 2, relaying to that
# path's sink (not in a $(...) subshell: it must stay this script's child).
start_warden() {
    local name=$1 port pid
    port=$(port)
    WARDEN_STARTS=$((WARDEN_STARTS + 1))
    LOG_OF[$name]=$TMP/warden.$name.$WARDEN_STARTS.log
    mkdir -p "$TMP/spool"
    # Started as root, Warden drops to "user:" once its sockets are bound,
    # and spools as that user: it must reach the spool directory.
    if [ "$(id -u)" = 0 ]; then
        chmod 711 "$TMP"
        chown nobody "$TMP/spool"
    fi
    cat >"$TMP/$name.yaml" <<EOF
user: nobody
listen:
  - {name: bench, address: "127.0.0.1:$port"}
backend: {address: "127.0.0.1:${SINK_PORT[$name]}", client_identity: none}
log: {level: warning}
dns: {resolve_client: false}
limits: {max_connections: 5000}
control_socket: none
workers: ${name#w}
EOF
    TMPDIR=$TMP/spool "$WARDEN_BIN" -c "$TMP/$name.yaml" >"${LOG_OF[$name]}" 2>&1 </dev/null &
    pid=$!
    PIDS+=("$pid")
    if ! "$PY" "$LIB" wait-banner "$port" 10 "$pid" 2>>"$TMP/ready.err"; then
        echo "warden ($name) did not start: $(log_tail "${LOG_OF[$name]}" 3)" >&2
        exit 1
    fi
    PORT_OF[$name]=$port
    PID_OF[$name]=$pid
}

# The process that takes the client connections on a path, and its port.
front_pid() { if [ "$1" = direct ]; then echo "${SINK_PID[direct]}"; else echo "${PID_OF[$1]}"; fi; }
front_port() { if [ "$1" = direct ]; then echo "${SINK_PORT[direct]}"; else echo "${PORT_OF[$1]}"; fi; }

declare -A FAIL NOTE
# A Warden that died is a failed measurement (and is restarted, so that the
# other figures can still be made).
check_warden() {
    local name=$1 why
    [ "$name" = direct ] && return 0
    alive "${PID_OF[$name]}" && return 0
    reap "${PID_OF[$name]}"
    why="warden $name exited (status $REAP_STATUS): $(log_tail "${LOG_OF[$name]}" 2)"
    FAIL[$2]+="${FAIL[$2]:+; }$why"
    start_warden "$name"
}

# ---- 1. throughput, one message per connection ------------------------------

declare -A T_SECS T_SENT T_WCPU T_SCPU T_IDLE T_ROUNDS T_THR C_THR C_MAX
for p in "${PATHS[@]}"; do
    T_SECS[$p]=0 T_SENT[$p]=0 T_WCPU[$p]=0 T_SCPU[$p]=0 T_IDLE[$p]=0 T_ROUNDS[$p]=
done

run_source() {
    local p=$1 count=$2 port pid sink before after t0 t1 c0 s0 i0 rc thr0='' out="$TMP/source.$1.out"
    port=$(front_port "$p")
    pid=$(front_pid "$p")
    sink=${SINK_PID[$p]}
    before=$(sink_count "$p")
    c0=$(cpu_us "$pid") s0=$(cpu_us "$sink") i0=$(idle_us)
    [ "$p" != direct ] && thr0=$(threads_us "$pid")
    t0=$(date +%s.%N)
    # In the background and waited for: a TERM to this script acts at once.
    timeout -k 5 "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$SESSIONS" -m "$count" -l "$SIZE" \
        -f sender@example.com -t rcpt@example.com "127.0.0.1:$port" >"$out" 2>&1 </dev/null &
    PIDS+=("$!")
    reap "$!"
    rc=$REAP_STATUS
    t1=$(date +%s.%N)
    # smtp-source has had every 250; give the sink's counter line a moment.
    for _ in $(seq 20); do
        after=$(sink_count "$p")
        [ $((after - before)) -ge "$count" ] && break
        sleep 0.1
    done
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        FAIL[T,$p]+="${FAIL[T,$p]:+; }timed out after ${RUN_TIMEOUT}s ($((after - before)) delivered)"
    elif [ "$rc" != 0 ]; then
        FAIL[T,$p]+="${FAIL[T,$p]:+; }smtp-source exit $rc: $(head -n 2 "$out" | tr '\n' ' ')"
    elif [ $((after - before)) -ne "$count" ]; then
        FAIL[T,$p]+="${FAIL[T,$p]:+; }sink counted $((after - before)) of $count messages"
    fi
    if [ -n "${FAIL[T,$p]:-}" ]; then
        check_warden "$p" "T,$p"
        return 0
    fi
    [ -s "$out" ] && NOTE[T,$p]="smtp-source said: $(head -n 1 "$out")"
    if [ "$p" != direct ]; then
        T_WCPU[$p]=$((T_WCPU[$p] + $(cpu_us "$pid") - c0))
        add_threads "$p" "$thr0"
    fi
    T_SCPU[$p]=$((T_SCPU[$p] + $(cpu_us "$sink") - s0))
    T_IDLE[$p]=$((T_IDLE[$p] + $(idle_us) - i0))
    T_SENT[$p]=$((T_SENT[$p] + count))
    T_SECS[$p]=$(awk -v s="${T_SECS[$p]}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", s + b - a }')
    T_ROUNDS[$p]+=" $(awk -v a="$t0" -v b="$t1" -v m="$count" 'BEGIN { printf "%.0f", m / (b - a) }')"
    check_warden "$p" "T,$p"
}

# ---- 2. concurrent connections ----------------------------------------------

declare -A C_CONNS C_ACC C_ERR C_SECS C_P50 C_P99 C_RAMP C_WCPU C_SCPU C_CCPU C_IDLE C_ROUNDS
declare -A RSS_AFTER RSS_BEFORE RSS_OPEN RSS_PEAK ERRS
for p in "${PATHS[@]}"; do
    C_CONNS[$p]='' C_ACC[$p]=0 C_ERR[$p]=0 C_SECS[$p]=0 C_P50[$p]='' C_P99[$p]='' C_RAMP[$p]=''
    C_WCPU[$p]=0 C_SCPU[$p]=0 C_CCPU[$p]=0 C_IDLE[$p]=0 C_ROUNDS[$p]=
    RSS_OPEN[$p]=0 RSS_PEAK[$p]=0
done

run_concurrent() {
    local p=$1 port pid sink pids rc line kv k out="$TMP/conc.$1.out" err="$TMP/conc.$1.err"
    local -A r=()
    port=$(front_port "$p")
    pid=$(front_pid "$p")
    sink=${SINK_PID[$p]}
    pids=$pid
    [ "$p" != direct ] && pids+=",$sink"
    "$PY" "$LIB" concurrent "$port" "$CONNS" "$PER_CONN" "$SIZE" "$RUN_TIMEOUT" "$pids" \
        >"$out" 2>"$err" </dev/null &
    PIDS+=("$!")
    reap "$!"
    rc=$REAP_STATUS
    line=$(tail -n 1 "$out")
    for kv in $line; do k=${kv%%=*}; r[$k]=${kv#*=}; done
    if [ "$rc" != 0 ] || [ -z "${r[accepted]:-}" ]; then
        FAIL[C,$p]+="${FAIL[C,$p]:+; }helper exit $rc: $(log_tail "$err" 3)"
        check_warden "$p" "C,$p"
        return 0
    fi
    # The commonest error reasons, summed over the rounds.
    while read -r n _ reason; do
        ERRS[$p,$reason]=$(( ${ERRS[$p,$reason]:-0} + n ))
    done < <(sed -n 's/^concurrent: //p' "$err")
    C_CONNS[$p]+=" ${r[conns]}"
    C_ACC[$p]=$((C_ACC[$p] + ${r[accepted]}))
    C_ERR[$p]=$((C_ERR[$p] + ${r[errors]}))
    C_SECS[$p]=$(awk -v s="${C_SECS[$p]}" -v e="${r[elapsed_s]}" 'BEGIN { printf "%.3f", s + e }')
    C_P50[$p]+=" ${r[p50_ms]}"
    C_P99[$p]+=" ${r[p99_ms]}"
    C_RAMP[$p]+=" ${r[ramp_s]}"
    # cpu_us: microseconds per accepted message of the front process, then
    # (Warden paths) of its sink; weighted back to totals here.
    C_WCPU[$p]=$((C_WCPU[$p] + ${r[cpu_us]%%,*} * ${r[accepted]}))
    [ "$p" != direct ] && C_SCPU[$p]=$((C_SCPU[$p] + ${r[cpu_us]#*,} * ${r[accepted]}))
    C_CCPU[$p]=$((C_CCPU[$p] + ${r[client_us]} * ${r[accepted]}))
    C_IDLE[$p]+=" ${r[idle_pct]}"
    C_ROUNDS[$p]+=" ${r[rate]}"
    # Memory with all connections open: from the first round, when the
    # process is fresh (later rounds start with what the earlier ones grew).
    if [ "${RSS_OPEN[$p]}" = 0 ]; then
        RSS_OPEN[$p]=${r[rss_open_kb]} RSS_BEFORE[$p]=${r[rss_before_kb]}
    fi
    C_MAX[$p]=$(awk -v a="${C_MAX[$p]:-0}" -v b="${r[max_ms]}" 'BEGIN { print (b > a) ? b : a }')
    if [ "$p" != direct ]; then
        C_THR[$p]=$(sum_lists "${C_THR[$p]:-}" "${r[threads_us]}")
    fi
    [ "${r[rss_peak_kb]}" -gt "${RSS_PEAK[$p]}" ] && RSS_PEAK[$p]=${r[rss_peak_kb]}
    RSS_AFTER[$p]=${r[rss_after_kb]}
    if [ "${r[fds_after]}" != "${r[fds_before]}" ]; then
        NOTE[C,$p]+="${NOTE[C,$p]:+; }open descriptors ${r[fds_before]} before a run, ${r[fds_after]} 1 s after it"
    fi
    check_warden "$p" "C,$p"
}

# ---- the runs ----------------------------------------------------------------

ncpu=$(nproc)
echo "Warden workers benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), nproc $ncpu, $(uname -r)"
echo "warden: $WARDEN_BIN"
echo
for p in "${PATHS[@]}"; do start_sink "$p"; done
start_warden w1
start_warden w2

per_round=$(( (MESSAGES + ROUNDS - 1) / ROUNDS ))
echo "throughput: $ROUNDS rounds of $per_round messages per path ..." >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < 3; i++)); do
        run_source "${PATHS[$(( (i + r) % 3 ))]}" "$per_round"
    done
done

# Fresh Wardens for the concurrent test: their memory figures then owe
# nothing to the throughput runs.
for p in w1 w2; do
    stop_pid "${PID_OF[$p]}"
    start_warden "$p"
    sleep 0.5
done
echo "concurrent: $ROUNDS rounds of $CONNS connections x $PER_CONN messages per path ..." >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < 3; i++)); do
        run_concurrent "${PATHS[$(( (i + r) % 3 ))]}"
    done
done

# ---- report ------------------------------------------------------------------

status=0
# median of the numbers in $1
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "1. Throughput, one message per connection: smtp-source -s $SESSIONS -l $SIZE,"
echo "   $((per_round * ROUNDS)) messages per path in $ROUNDS rounds (path order rotated)"
printf '%-11s %6s %8s %7s %9s %6s %10s %8s %6s  %s\n' path msgs seconds msgs/s "vs direct" "vs w=1" \
    "warden us" "sink us" "idle%" "rounds (msgs/s)"
for p in "${PATHS[@]}"; do
    if [ -n "${FAIL[T,$p]:-}" ] || [ "${T_SENT[$p]}" = 0 ]; then
        printf '%-11s FAILED: %s\n' "${LABEL[$p]}" "${FAIL[T,$p]:-no run}"
        status=1
        continue
    fi
    awk -v l="${LABEL[$p]}" -v p="$p" -v m="${T_SENT[$p]}" -v s="${T_SECS[$p]}" \
        -v md="${T_SENT[direct]}" -v sd="${T_SECS[direct]}" -v okd="${FAIL[T,direct]:-ok}" \
        -v m1="${T_SENT[w1]}" -v s1="${T_SECS[w1]}" -v ok1="${FAIL[T,w1]:-ok}" \
        -v wc="${T_WCPU[$p]}" -v sc="${T_SCPU[$p]}" -v i="${T_IDLE[$p]}" -v n="$ncpu" \
        -v rr="${T_ROUNDS[$p]}" 'BEGIN {
        rate = m / s
        vd = (okd == "ok" && md > 0) ? sprintf("%.2f", rate / (md / sd)) : "-"
        v1 = (p != "direct" && ok1 == "ok" && m1 > 0) ? sprintf("%.2f", rate / (m1 / s1)) : "-"
        w = (p == "direct") ? "-" : sprintf("%.0f", wc / m)
        printf "%-11s %6d %8.2f %7.0f %9s %6s %10s %8.0f %6.0f %s\n", l, m, s, rate, vd, v1, w, sc / m,
            100 * i / 1e6 / (s * n), rr }'
done
echo "   (warden us, sink us: CPU time per message of the Warden process, all its"
echo "    threads, and of that path's smtp-sink; idle%: whole machine while sending)"
echo

echo "2. $CONNS concurrent connections, all open and greeted first, then $PER_CONN messages on"
echo "   each at once (EHLO; MAIL, RCPT, DATA, $SIZE bytes, \".\"; QUIT; no pipelining),"
echo "   $ROUNDS rounds per path (order rotated); latency = end-of-data reply"
printf '%-11s %6s %8s %6s %7s %9s %6s %7s %7s %7s %6s %9s %7s %9s %6s  %s\n' path conns accepted errors \
    msgs/s "vs direct" "vs w=1" "p50 ms" "p99 ms" "max ms" "ramp s" "warden us" "sink us" "client us" \
    "idle%" "rounds (msgs/s)"
for p in "${PATHS[@]}"; do
    if [ -n "${FAIL[C,$p]:-}" ] || [ "${C_ACC[$p]}" = 0 ]; then
        printf '%-11s FAILED: %s\n' "${LABEL[$p]}" "${FAIL[C,$p]:-no run}"
        status=1
        continue
    fi
    if [ "$p" = direct ]; then
        # Direct: the front process is the sink itself.
        wcol=- scol=$((C_WCPU[$p] / C_ACC[$p]))
    else
        wcol=$((C_WCPU[$p] / C_ACC[$p])) scol=$((C_SCPU[$p] / C_ACC[$p]))
    fi
    awk -v l="${LABEL[$p]}" -v p="$p" -v conns="$(median "${C_CONNS[$p]}")" \
        -v a="${C_ACC[$p]}" -v e="${C_ERR[$p]}" -v s="${C_SECS[$p]}" \
        -v ad="${C_ACC[direct]}" -v sd="${C_SECS[direct]}" -v okd="${FAIL[C,direct]:-ok}" \
        -v a1="${C_ACC[w1]}" -v s1="${C_SECS[w1]}" -v ok1="${FAIL[C,w1]:-ok}" \
        -v p50="$(median "${C_P50[$p]}")" -v p99="$(median "${C_P99[$p]}")" \
        -v ramp="$(median "${C_RAMP[$p]}")" -v w="$wcol" -v sc="$scol" -v mx="${C_MAX[$p]}" \
        -v cc="$((C_CCPU[$p] / C_ACC[$p]))" -v idle="$(median "${C_IDLE[$p]}")" \
        -v rr="${C_ROUNDS[$p]}" 'BEGIN {
        rate = a / s
        vd = (okd == "ok" && ad > 0) ? sprintf("%.2f", rate / (ad / sd)) : "-"
        v1 = (p != "direct" && ok1 == "ok" && a1 > 0) ? sprintf("%.2f", rate / (a1 / s1)) : "-"
        printf "%-11s %6d %8d %6d %7.0f %9s %6s %7.1f %7.1f %7.1f %6.2f %9s %7s %9s %6.0f %s\n", l, conns, a, e,
            rate, vd, v1, p50, p99, mx, ramp, w, sc, cc, idle, rr }'
done
echo "   (conns: connections greeted with 220, median of the rounds; accepted: 250s after"
echo "    the dot, all rounds; p50/p99/ramp s/idle%: median of the rounds' figures;"
echo "    max ms: slowest end-of-data reply of all rounds; ramp s: time to open and"
echo "    greet all connections;"
echo "    msgs/s: accepted / time from the first EHLO to the last 250, all rounds;"
echo "    warden us, sink us, client us: CPU time per message over the transactions,"
echo "    client = the Python driver; on the direct path sink us is the sink that"
echo "    takes the client connections)"
echo
for p in w1 w2; do
    awk -v l="${LABEL[$p]}" -v i="${RSS_BEFORE[$p]:-0}" -v o="${RSS_OPEN[$p]}" -v k="${RSS_PEAK[$p]}" \
        -v z="${RSS_AFTER[$p]:-0}" \
        -v n="$(median "${C_CONNS[$p]}")" 'BEGIN {
        if (o == 0) { printf "%s VmRSS: not measured\n", l; exit }
        printf "%s VmRSS: %.1f MB fresh, %.1f MB with %d connections open (%.1f KB/conn),\n", l, i / 1024, o / 1024, n, (o - i) / n
        printf "%*s %.1f MB peak during the transactions, %.1f MB after the last round\n", length(l) + 7, "", k / 1024, z / 1024 }'
done
echo "   (fresh: a new process before the first round; open: 1 s after the first round's last"
echo "    greeting; peak: largest sample, every 0.25 s, over all rounds' transactions;"
echo "    after: 1 s after the last round's clients closed)"
# How the work spread over Warden's threads (SO_REUSEPORT spreads the
# connections; a worker that gets more of them does more of the work).
split_line() {
    awk -v l="$1" -v t="$2" 'BEGIN {
        n = split(t, x, ","); for (i = 1; i <= n; i++) s += x[i]
        if (n == 0 || s == 0) { printf "%s: not measured\n", l; exit }
        printf "%s:", l
        for (i = 1; i <= n; i++) printf " %.0f%%", 100 * x[i] / s
        printf " (%.2f s CPU)\n", s / 1e6 }'
}
echo
echo "Warden CPU per thread, share of the process (largest first):"
for p in w1 w2; do
    split_line "   ${LABEL[$p]}, throughput" "${T_THR[$p]:-}"
    split_line "   ${LABEL[$p]}, concurrent" "${C_THR[$p]:-}"
done

# Anything worth a look: errors, notes, and whatever Warden logged (level warning).
for p in "${PATHS[@]}"; do
    for key in "${!ERRS[@]}"; do
        [ "${key%%,*}" = "$p" ] || continue
        echo "note (${LABEL[$p]}, concurrent): ${ERRS[$key]} x ${key#*,}"
    done
    for t in T C; do
        [ -n "${NOTE[$t,$p]:-}" ] && echo "note (${LABEL[$p]}, $([ $t = T ] && echo throughput || echo concurrent)): ${NOTE[$t,$p]}"
    done
done
for log in "$TMP"/warden.*.log; do
    [ -s "$log" ] || continue
    echo "note: $(basename "$log") has $(wc -l <"$log") lines; first ones:"
    head -n 3 "$log" | sed 's/^/    /'
done
exit $status
