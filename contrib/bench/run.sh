#!/usr/bin/env bash
# contrib/bench/run.sh: Warden throughput and memory benchmark.
#
# Postfix's smtp-source drives smtp-sink over three paths, all in one run
# so that the ratios compare like with like on this machine's load:
#   direct        smtp-source -> smtp-sink
#   haproxy-tcp   smtp-source -> haproxy (mode tcp) -> smtp-sink
#   warden        smtp-source -> warden (no checks)  -> smtp-sink
# then measures Warden's resident memory per idle client connection.
#
# It prints figures and ratios; it judges nothing. Exit status: 0 when
# every measurement produced a figure, 1 when some path failed (the other
# figures are still printed), 2 on bad usage or missing tools.
#
# See contrib/bench/README.md for how to read the output.

set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3                 # Debian's interpreter (see NOTES)
LIB="$HERE/benchlib.py"

SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
HAPROXY=/usr/sbin/haproxy

# ---- options ---------------------------------------------------------------

MESSAGES=20000
SESSIONS=20
SIZES="4096 65536"
ROUNDS=3
WARDEN_BIN=${WARDEN_BIN:-$ROOT/build/warden}
RUN_TIMEOUT=300        # seconds, per smtp-source run
IDLE_CONNS=1000        # connections for the idle-memory measurement
SENDER=sender@example.com
RCPT=rcpt@example.com

usage() {
    cat <<EOF
usage: $0 [options]
  --messages N     messages per path and size (default $MESSAGES)
  --rounds N       split them into N rounds, rotating the order of the
                   paths each round (default $ROUNDS)
  --sessions N     parallel smtp-source sessions (default $SESSIONS)
  --sizes "A B"    message body sizes in bytes (default "$SIZES")
  --quick          smoke run: 2000 messages
  --warden PATH    Warden binary (default \$WARDEN_BIN or build/warden)
  --timeout S      limit per smtp-source run, seconds (default $RUN_TIMEOUT)
  --idle-conns N   idle connections for the RSS measurement (default $IDLE_CONNS)
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --messages)   MESSAGES=${2:?}; shift 2 ;;
        --rounds)     ROUNDS=${2:?}; shift 2 ;;
        --sessions)   SESSIONS=${2:?}; shift 2 ;;
        --sizes)      SIZES=${2:?}; shift 2 ;;
        --quick)      MESSAGES=2000; shift ;;
        --warden)     WARDEN_BIN=${2:?}; shift 2 ;;
        --timeout)    RUN_TIMEOUT=${2:?}; shift 2 ;;
        --idle-conns) IDLE_CONNS=${2:?}; shift 2 ;;
        -h|--help)    usage; exit 0 ;;
        *)            usage >&2; exit 2 ;;
    esac
done
for n in "$MESSAGES" "$ROUNDS" "$SESSIONS" "$RUN_TIMEOUT" "$IDLE_CONNS" $SIZES; do
    case $n in ''|*[!0-9]*) echo "not a number: '$n'" >&2; exit 2 ;; esac
done
# A relative --warden (or WARDEN_BIN) is relative to where we were started.
case $WARDEN_BIN in /*) ;; *) WARDEN_BIN=$PWD/$WARDEN_BIN ;; esac

for tool in "$PY" "$SMTP_SOURCE" "$SMTP_SINK" "$HAPROXY"; do
    [ -x "$tool" ] || { echo "missing $tool (apt-get install postfix haproxy)" >&2; exit 2; }
done

# ---- process bookkeeping ---------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-bench.XXXXXX")
PIDS=()

# True while PID is a running child of this script. Checking the parent
# (not just kill -0) matters: bash reaps a child that exits on its own, and
# its PID may then be reused by a process that is not ours.
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a st <<<"${st##*) }"
    [ "${st[0]}" != Z ] && [ "${st[1]}" = "$$" ]
}

# Collect the exit status of a child that ended (into REAP_STATUS) and
# forget its PID, so that cleanup never signals it.
reap() {
    local p keep=()
    wait "$1" 2>/dev/null
    REAP_STATUS=$?
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Stop one process we started: TERM, then KILL if it lingers (Warden may
# drain sessions on TERM; the benchmark does not want to wait for that).
stop_pid() {
    if alive "$1"; then
        kill -TERM "$1" 2>/dev/null
        for _ in $(seq 50); do
            alive "$1" || break
            sleep 0.1
        done
        alive "$1" && kill -KILL "$1" 2>/dev/null
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

freeport() { "$PY" "$LIB" freeport; }

# The last $2 lines of log file $1 on one line, for a FAILED message.
log_tail() {
    if [ -s "$1" ]; then tail -n "$2" "$1" | tr '\n' ' '; else echo "(empty)"; fi
}

# Wait until 127.0.0.1:$1 greets with 220 (a proxy greets only once it
# reached its backend, so this also proves the path works end to end).
# With a PID ($3), give up as soon as that process exits.
wait_ready() { "$PY" "$LIB" wait-banner "$1" "${2:-10}" ${3:+"$3"} 2>>"$TMP/ready.err"; }

# ---- servers ---------------------------------------------------------------

# smtp-sink: -c prints running counters (we read "mesg=N" to verify
# delivery); -m raises its limit on simultaneous connections from the
# default 256, which would queue the idle test's 1000 backend connections;
# the last argument is the listen backlog. It must drop root with -u.
# Each path gets its own sink: its counter then counts that path alone, and
# the thousands of TIME_WAIT sockets one path leaves on its sink's port do
# not slow down the next path's connections.
declare -A SINK_PORT
start_sink() {
    local name=$1 user=()
    SINK_PORT[$name]=$(freeport)
    [ "$(id -u)" = 0 ] && user=(-u nobody)
    "$SMTP_SINK" -c "${user[@]}" -m 4000 "127.0.0.1:${SINK_PORT[$name]}" 4096 \
        >"$TMP/sink.$name.out" 2>"$TMP/sink.$name.err" </dev/null &
    PIDS+=("$!")
    wait_ready "${SINK_PORT[$name]}" 10 "$!" ||
        { echo "smtp-sink did not start:" >&2; cat "$TMP/sink.$name.err" >&2; exit 1; }
}

# Messages smtp-sink $1 has received so far.
sink_count() { "$PY" "$LIB" sink-count "$TMP/sink.$1.out"; }

# haproxy as a pure TCP relay: the cheapest proxy possible, the yardstick.
# maxconn stays well below the open-file limit (2 fds per connection).
start_haproxy() {
    HAPROXY_PORT=$(freeport)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 8000
defaults
    mode tcp
    maxconn 8000
    timeout connect 10s
    timeout client 300s
    timeout server 300s
frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend sink
backend sink
    server sink 127.0.0.1:${SINK_PORT[haproxy-tcp]}
EOF
    "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 </dev/null &
    HAPROXY_PID=$!
    PIDS+=("$HAPROXY_PID")
    if ! wait_ready "$HAPROXY_PORT" 10 "$HAPROXY_PID"; then
        HAPROXY_FAIL="did not start: $(log_tail "$TMP/haproxy.log" 3)"
        return 1
    fi
}

# Warden with no checks, relaying to the sink. Sets WARDEN_PORT and
# WARDEN_PID, or WARDEN_FAIL (and returns 1) when it cannot be started.
start_warden() {
    WARDEN_FAIL=
    WARDEN_PID=
    if [ ! -x "$WARDEN_BIN" ]; then
        WARDEN_FAIL="no executable $WARDEN_BIN (cmake -B build && cmake --build build)"
        return 1
    fi
    WARDEN_PORT=$(freeport)
    local n=$((${WARDEN_STARTS:-0} + 1))
    WARDEN_STARTS=$n
    WARDEN_LOG=$TMP/warden.$n.log
    mkdir -p "$TMP/spool"
    # started as root, Warden runs as "user:" and spools as that user
    if [ "$(id -u)" -eq 0 ]; then
        chmod 711 "$TMP"
        chown nobody "$TMP/spool"
    fi
    cat >"$TMP/warden.yaml" <<EOF
user: nobody
listen:
  - name: bench
    address: 127.0.0.1:$WARDEN_PORT
backend:
  address: 127.0.0.1:${SINK_PORT[warden]}
  client_identity: none
log:
  level: warning
dns:
  resolve_client: false
limits:
  max_connections: 5000
EOF
    # TMPDIR: Warden spools large messages there; keep it in our temp dir.
    TMPDIR=$TMP/spool "$WARDEN_BIN" -c "$TMP/warden.yaml" \
        >"$WARDEN_LOG" 2>&1 </dev/null &
    WARDEN_PID=$!
    PIDS+=("$WARDEN_PID")
    if ! wait_ready "$WARDEN_PORT" 10 "$WARDEN_PID"; then
        local why="no 220 greeting within 10 s"
        if ! alive "$WARDEN_PID"; then
            reap "$WARDEN_PID"
            why="exited with status $REAP_STATUS"
        fi
        WARDEN_FAIL="$why; log: $(log_tail "$WARDEN_LOG" 3)"
        stop_pid "$WARDEN_PID"
        WARDEN_PID=
        return 1
    fi
}

# ---- one measurement -------------------------------------------------------

declare -A SECS RATE FAIL NOTE SENT ROUND_RATES

# run_source PATH SIZE PORT COUNT: send COUNT messages of SIZE bytes through
# 127.0.0.1:PORT, one message per connection (smtp-source's default), and
# add the seconds to that path's total, or record why it failed.
run_source() {
    local path=$1 size=$2 port=$3 count=$4 key="$1,$2"
    local out="$TMP/source.$path.$size.out" before after t0 t1 rc
    [ -n "${FAIL[$key]:-}" ] && return 1

    before=$(sink_count "$path")
    t0=$(date +%s.%N)
    # In the background and waited for, so that a TERM to this script is
    # handled at once (bash defers traps until a foreground child ends).
    timeout -k 5 "$RUN_TIMEOUT" "$SMTP_SOURCE" -s "$SESSIONS" -m "$count" \
        -l "$size" -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$out" 2>&1 </dev/null &
    PIDS+=("$!")
    reap "$!"
    rc=$REAP_STATUS
    t1=$(date +%s.%N)

    # smtp-source has its 250 for every message once it exits, so the sink
    # has counted them; allow a moment for its counter line to be written.
    for _ in $(seq 20); do
        after=$(sink_count "$path")
        [ $((after - before)) -ge "$count" ] && break
        sleep 0.1
    done

    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        FAIL[$key]="timed out after ${RUN_TIMEOUT}s ($((after - before)) delivered)"
    elif [ "$rc" != 0 ]; then
        FAIL[$key]="smtp-source exit $rc: $(head -n 2 "$out" | tr '\n' ' ')"
    elif [ $((after - before)) -ne "$count" ]; then
        FAIL[$key]="sink counted $((after - before)) of $count messages"
    fi
    if [ -n "${FAIL[$key]:-}" ]; then
        return 1
    fi
    # smtp-source prints nothing on success; keep any warning as a note.
    [ -s "$out" ] && NOTE[$key]="smtp-source said: $(head -n 1 "$out")"
    SECS[$key]=$(awk -v s="${SECS[$key]:-0}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", s + b - a }')
    SENT[$key]=$(( ${SENT[$key]:-0} + count ))
    RATE[$key]=$(awk -v s="${SECS[$key]}" -v m="${SENT[$key]}" 'BEGIN { printf "%.0f", m / s }')
    ROUND_RATES[$key]+=" $(awk -v a="$t0" -v b="$t1" -v m="$count" 'BEGIN { printf "%.0f", m / (b - a) }')"
}

# One path, one round (restarting a Warden that died, so that one failure
# does not hide the other figures).
run_path() {
    local path=$1 size=$2 count=$3
    case $path in
    direct) run_source direct "$size" "${SINK_PORT[direct]}" "$count" ;;
    haproxy-tcp)
        if [ -n "${HAPROXY_FAIL:-}" ]; then
            FAIL[haproxy-tcp,$size]="haproxy $HAPROXY_FAIL"
        else
            run_source haproxy-tcp "$size" "$HAPROXY_PORT" "$count"
        fi ;;
    warden)
        if [ -n "$WARDEN_PID" ] && ! alive "$WARDEN_PID"; then
            reap "$WARDEN_PID"
            NOTE[warden,$size]="warden had exited (status $REAP_STATUS) before a run; restarted it"
            start_warden
        fi
        if [ -z "$WARDEN_PID" ]; then
            FAIL[warden,$size]=$WARDEN_FAIL
        elif ! run_source warden "$size" "$WARDEN_PORT" "$count"; then
            if ! alive "$WARDEN_PID"; then
                reap "$WARDEN_PID"
                FAIL[warden,$size]+="; warden exited with status $REAP_STATUS; log: $(log_tail "$WARDEN_LOG" 2)"
            fi
        fi ;;
    esac
}

# ---- the runs --------------------------------------------------------------

size_label() {
    if [ $(($1 % 1024)) = 0 ]; then echo "$(($1 / 1024))KB"; else echo "${1}B"; fi
}

echo "Warden benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, $(uname -r)"
echo "smtp-source -s $SESSIONS -m $(( (MESSAGES + ROUNDS - 1) / ROUNDS )) -l SIZE -f $SENDER -t $RCPT (one message per connection), $ROUNDS rounds per path, path order rotated each round"
echo "warden: $WARDEN_BIN"
echo

for path in direct haproxy-tcp warden; do start_sink "$path"; done
start_haproxy || true
start_warden || true

# Each path's messages go in ROUNDS runs, and the order of the paths turns
# every round: what one run leaves behind (tens of thousands of sockets in
# TIME_WAIT, a warm or cold cache) must not always land on the same path.
PATHS=(direct haproxy-tcp warden)
for size in $SIZES; do
    echo "running $(size_label "$size") ..." >&2
    per_round=$(( (MESSAGES + ROUNDS - 1) / ROUNDS ))
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < 3; i++)); do
            run_path "${PATHS[$(( (i + r) % 3 ))]}" "$size" "$per_round"
        done
    done
done

# ---- idle memory -----------------------------------------------------------

# A fresh Warden, so that buffers grown by the throughput runs do not hide
# (or inflate) the per-connection cost. The sink takes the 1000 backend
# connections that Warden opens to relay each greeting.
IDLE_RESULT=
IDLE_FAIL=
if [ -n "$WARDEN_PID" ]; then
    stop_pid "$WARDEN_PID"
fi
if start_warden; then
    echo "idle connections ..." >&2
    if res=$("$PY" "$LIB" idle "$WARDEN_PID" "$WARDEN_PORT" "$IDLE_CONNS" 2>"$TMP/idle.err"); then
        IDLE_RESULT=$res
    else
        IDLE_FAIL="$(tr '\n' ' ' <"$TMP/idle.err")"
        alive "$WARDEN_PID" || IDLE_FAIL+="; warden exited; log: $(log_tail "$WARDEN_LOG" 2)"
    fi
else
    IDLE_FAIL=$WARDEN_FAIL
fi

# ---- report ----------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

status=0
printf '%-14s %5s %7s %9s %8s %10s %11s\n' path size msgs seconds msgs/s "vs direct" "vs haproxy"
for size in $SIZES; do
    for path in direct haproxy-tcp warden; do
        key="$path,$size"
        if [ -n "${FAIL[$key]:-}" ]; then
            printf '%-14s %5s %7s FAILED: %s\n' "$path" "$(size_label "$size")" "${SENT[$key]:-0}" "${FAIL[$key]}"
            status=1
            continue
        fi
        vd=-; vh=-
        [ -n "${RATE[direct,$size]:-}" ] && vd=$(ratio "${RATE[$key]}" "${RATE[direct,$size]}")
        [ "$path" != direct ] && [ -n "${RATE[haproxy-tcp,$size]:-}" ] &&
            vh=$(ratio "${RATE[$key]}" "${RATE[haproxy-tcp,$size]}")
        printf '%-14s %5s %7s %9s %8s %10s %11s   rounds:%s\n' "$path" "$(size_label "$size")" \
            "${SENT[$key]}" "${SECS[$key]}" "${RATE[$key]}" "$vd" "$vh" "${ROUND_RATES[$key]}"
    done
done
for key in "${!NOTE[@]}"; do echo "note ($key): ${NOTE[$key]}"; done
# Warden logs at "warning" here: anything it said is worth a look.
for log in "$TMP"/warden.*.log; do
    [ -s "$log" ] || continue
    echo "note: $(basename "$log") has $(wc -l <"$log") lines; first ones:"
    head -n 3 "$log" | sed 's/^/    /'
done
echo

if [ -n "$IDLE_RESULT" ]; then
    read -r before after alive <<<"$IDLE_RESULT"
    awk -v b="$before" -v a="$after" -v n="$IDLE_CONNS" -v alive="$alive" 'BEGIN {
        printf "warden idle RSS: before %.1f MB, after %d conns %.1f MB -> %.1f KB/conn", b/1024, n, a/1024, (a-b)/n
        if (alive != n) printf " (only %d of %d still open at the end)", alive, n
        printf "\n" }'
else
    echo "warden idle RSS: FAILED: $IDLE_FAIL"
    status=1
fi
# One line that says plainly whether Warden could be measured at all.
wfail=
for size in $SIZES; do
    [ -n "${FAIL[warden,$size]:-}" ] && wfail+=" $(size_label "$size"): ${FAIL[warden,$size]};"
done
[ -n "$IDLE_FAIL" ] && wfail+=" idle RSS: $IDLE_FAIL;"
[ -n "$wfail" ] && echo "warden: FAILED:${wfail%;}"
echo
echo "project targets: warden >= 0.90 x haproxy-tcp msgs/s (same run); <= 32 KB RSS per idle connection"
exit $status
