#!/usr/bin/env bash
# Warden with rate limits counted in Redis vs Warden with no limits, in one
# run: throughput relative to no limits, CPU per message, and Redis calls
# per message.
#
#   contrib/bench/limits.sh [--warden PATH] [--messages N] [--rounds N]
#                           [--sessions N] [--store redis|redis-unix|memory]
#
# Two policies apply three limits to every message, with allowances far
# above the load (so nothing is refused and the cost measured is the
# counting itself):
#   mail:   messages per client IP, per sender and per sender domain, all
#           at MAIL: one checkpoint with limits, so one Redis call a message;
#   spread: connections per client IP (at connect), messages per client IP
#           (at MAIL) and recipients per sender domain (at RCPT): three
#           checkpoints with limits, so three Redis calls a message.
# smtp-source opens one connection per message. The order of the paths
# rotates from round to round, so none always runs first. Besides the
# totals it prints the median and range of each round's own ratio: on a
# shared VM a burst of steal time hits one round, and a ratio between two
# runs seconds apart is less exposed to it than one between totals.
#
# --store redis talks to Redis over TCP on loopback (the shape of several
# nodes sharing one Redis); redis-unix over its Unix socket (a Redis on the
# same host, `redis: unix:/path`); memory is the single-node store.
set -euo pipefail
cd "$(dirname "$0")/../.."

WARDEN_BIN=${WARDEN_BIN:-build/warden}
MESSAGES=6000
ROUNDS=6
SESSIONS=20
SIZE=4096
STORE=redis
usage() {
    echo "usage: $0 [--warden PATH] [--messages N] [--rounds N] [--sessions N] [--store redis|redis-unix|memory]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --store)    STORE=${2:?}; shift 2 ;;
        --warden)   WARDEN_BIN=${2:?}; shift 2 ;;
        --messages) MESSAGES=${2:?}; shift 2 ;;
        --rounds)   ROUNDS=${2:?}; shift 2 ;;
        --sessions) SESSIONS=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
case $STORE in redis|redis-unix|memory) ;; *) usage ;; esac
case $WARDEN_BIN in /*) ;; *) WARDEN_BIN=$PWD/$WARDEN_BIN ;; esac
PY=/usr/bin/python3
LIB=contrib/bench/benchlib.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-limits-bench.XXXXXX")
chmod 711 "$TMP" # Warden runs as nobody and opens the Redis socket in here
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

port() { "$PY" "$LIB" freeport; }

REDIS_PORT=$(port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --unixsocket "$TMP/redis.sock" --unixsocketperm 777 \
    --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=("$!")
REDIS_PID=$!
SINK_PORT=$(port)
/usr/sbin/smtp-sink -u nobody -m 4000 "127.0.0.1:$SINK_PORT" 4096 >"$TMP/sink.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$TMP/mail.yaml" <<EOF
limits:
  - {name: msgs-per-ip, key: client_ip, count: messages, rate: 10000000/1m}
  - {name: msgs-per-sender, key: sender, count: messages, rate: 10000000/1m}
  - {name: msgs-per-domain, key: sender_domain, count: messages, rate: 10000000/1m}
EOF
cat >"$TMP/spread.yaml" <<EOF
limits:
  - {name: conn-per-ip, key: client_ip, count: connections, rate: 10000000/1m}
  - {name: msgs-per-ip, key: client_ip, count: messages, rate: 10000000/1m}
  - {name: rcpts-per-domain, key: sender_domain, count: recipients, rate: 10000000/1m}
EOF

declare -A PORT_OF PID_OF
# start_warden NAME EXTRA_YAML (not in a $(...) subshell: the daemon must
# stay this script's child)
start_warden() {
    local name=$1 port pid
    port=$(port)
    cat >"$TMP/$name.conf" <<EOF
listen:
  - {name: bench, address: "127.0.0.1:$port"}
backend: {address: "127.0.0.1:$SINK_PORT", client_identity: none}
log: {level: warning}
dns: {resolve_client: false}
limits: {max_connections: 5000}
control_socket: none
user: nobody
$2
EOF
    "$WARDEN_BIN" -c "$TMP/$name.conf" >"$TMP/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! "$PY" "$LIB" wait-banner "$port" 10 "$pid" >/dev/null; then
        echo "warden ($name) did not start:" >&2
        cat "$TMP/$name.log" >&2
        exit 1
    fi
    PORT_OF[$name]=$port
    PID_OF[$name]=$pid
}

case $STORE in
    redis)      store_yaml="store: {type: redis, redis: \"127.0.0.1:$REDIS_PORT\"}" ;;
    redis-unix) store_yaml="store: {type: redis, redis: \"unix:$TMP/redis.sock\"}" ;;
    memory)     store_yaml="store: {type: memory}" ;;
esac
start_warden plain ""
start_warden mail "$store_yaml
policies: [$TMP/mail.yaml]"
start_warden spread "$store_yaml
policies: [$TMP/spread.yaml]"

TICK=$(getconf CLK_TCK)
# CPU time (user + system) process $1 has used so far, in microseconds
cpu_us() { awk -v t="$TICK" '{ printf "%.0f", ($14 + $15) * 1000000 / t }' "/proc/$1/stat"; }
# idle time of the whole machine so far (all CPUs), in microseconds
idle_us() { awk -v t="$TICK" '/^cpu / { printf "%.0f", ($5 + $6) * 1000000 / t; exit }' /proc/stat; }
# CPU time the whole machine has spent working so far (user, nice, system,
# irq, softirq; not idle, iowait or steal), in microseconds
busy_us() { awk -v t="$TICK" '/^cpu / { printf "%.0f", ($2 + $3 + $4 + $7 + $8) * 1000000 / t; exit }' /proc/stat; }
# redis_stat SECTION FIELD: one counter from INFO
redis_stat() {
    redis-cli -p "$REDIS_PORT" info "$1" | tr -d '\r' |
        awk -F'[:=,]' -v f="$2" '$1 == f { print ($2 == "calls") ? $3 : $2; exit }'
}
evalsha() { local n; n=$(redis_stat commandstats cmdstat_evalsha); echo "${n:-0}"; }
# socket reads the server made: fewer than calls when calls share a read
reads() { local n; n=$(redis_stat stats total_reads_processed); echo "${n:-0}"; }

PATHS=(plain mail spread)
declare -A SECS CPU RCPU IDLE BUSY CALLS READS ROUND_SECS
for p in "${PATHS[@]}"; do
    SECS[$p]=0 CPU[$p]=0 RCPU[$p]=0 IDLE[$p]=0 BUSY[$p]=0 CALLS[$p]=0 READS[$p]=0
done
per_round=$(( (MESSAGES + ROUNDS - 1) / ROUNDS ))
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < ${#PATHS[@]}; i++)); do
        p=${PATHS[$(( (i + r) % ${#PATHS[@]} ))]}
        w=${PID_OF[$p]}
        c0=$(cpu_us "$w") r0=$(cpu_us "$REDIS_PID") i0=$(idle_us) b0=$(busy_us)
        e0=$(evalsha) d0=$(reads)
        t0=$(date +%s.%N)
        timeout 300 /usr/sbin/smtp-source -s "$SESSIONS" -m "$per_round" -l "$SIZE" \
            -f sender@example.com -t rcpt@example.com "127.0.0.1:${PORT_OF[$p]}" \
            >"$TMP/source.out" 2>&1
        t1=$(date +%s.%N)
        CPU[$p]=$((CPU[$p] + $(cpu_us "$w") - c0))
        RCPU[$p]=$((RCPU[$p] + $(cpu_us "$REDIS_PID") - r0))
        IDLE[$p]=$((IDLE[$p] + $(idle_us) - i0))
        BUSY[$p]=$((BUSY[$p] + $(busy_us) - b0))
        CALLS[$p]=$((CALLS[$p] + $(evalsha) - e0))
        READS[$p]=$((READS[$p] + $(reads) - d0))
        SECS[$p]=$(awk -v s="${SECS[$p]}" -v a="$t0" -v b="$t1" 'BEGIN { print s + b - a }')
        ROUND_SECS[$p]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') "
    done
done

total=$((per_round * ROUNDS))
echo "Warden limits benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, store: $STORE"
echo "smtp-source -s $SESSIONS -l $SIZE, one message per connection," \
    "$total messages per path in $ROUNDS rounds"
printf '%-32s %8s %9s %10s %9s %6s\n' path msgs/s "vs plain" "warden us" "redis us" calls
for p in "${PATHS[@]}"; do
    case $p in
        plain)  label="no limits" ;;
        mail)   label="3 limits, 1 checkpoint (MAIL)" ;;
        spread) label="3 limits, 3 checkpoints" ;;
    esac
    awk -v l="$label" -v m="$total" -v s="${SECS[$p]}" -v s0="${SECS[plain]}" \
        -v c="${CPU[$p]}" -v rc="${RCPU[$p]}" -v e="${CALLS[$p]}" 'BEGIN {
        printf "%-32s %8.0f %9.2f %10.0f %9.0f %6.2f\n", l, m / s, s0 / s, c / m, rc / m, e / m }'
done
echo "(warden us, redis us: CPU time per message of the warden and redis-server"
echo " processes; calls: Redis EVALSHA calls per message)"
# The machine's CPU per message (every process: load generator, sink,
# Redis, Warden): when the machine is CPU-bound the rate is its inverse.
# Steal time is not in it, so it moves less from run to run than the rates.
for p in mail spread; do
    awk -v l="$p" -v m="$total" -v b0="${BUSY[plain]}" -v b="${BUSY[$p]}" 'BEGIN {
        printf "%s vs plain, machine CPU per message: %.0f vs %.0f us, ratio %.2f\n", l, b / m, b0 / m, b0 / b }'
done
# Each round's plain time over the path's time in the same round
for p in mail spread; do
    awk -v l="$p" -v a="${ROUND_SECS[plain]}" -v b="${ROUND_SECS[$p]}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) r[i] = x[i] / y[i]
        for (i = 2; i <= n; i++)          # insertion sort, n is small
            for (j = i; j > 1 && r[j - 1] > r[j]; j--) { t = r[j]; r[j] = r[j - 1]; r[j - 1] = t }
        med = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
        printf "%s vs plain, per round: median %.2f, range %.2f-%.2f over %d rounds\n", l, med, r[1], r[n], n }'
done
for p in "${PATHS[@]}"; do
    awk -v p="$p" -v n="$(nproc)" -v s="${SECS[$p]}" -v i="${IDLE[$p]}" \
        -v e="${CALLS[$p]}" -v d="${READS[$p]}" 'BEGIN {
        printf "%s: machine idle %.0f%% while sending", p, 100 * i / 1e6 / (s * n)
        if (e > 0 && d > 0) printf ", %.2f EVALSHA per Redis socket read", e / d
        printf "\n" }'
done
if [ "$STORE" != memory ]; then
    redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
        awk -F'[:=,]' '/^cmdstat_evalsha:/ { printf "Redis time per EVALSHA: %s us\n", $7 }'
fi
for p in mail spread; do
    grep -h . "$TMP/$p.log" | head -n 3 | sed "s/^/warden log ($p): /" || true
done
