#!/usr/bin/env bash
# Warden with rate limits counted in Redis vs Warden with no limits, in one
# run: throughput relative to no limits, and Redis commands per message.
#
#   contrib/bench/limits.sh [--warden PATH] [--messages N] [--rounds N]
#                           [--store redis|memory]
#
# Three limits apply to every message, with allowances far above the load
# (so nothing is refused and the cost measured is the counting itself):
# connections per client IP (counted at connect), messages per client IP
# (at MAIL) and recipients per sender domain (at RCPT). Each checkpoint
# with limits should cost one Redis round trip: three per message.
set -euo pipefail
cd "$(dirname "$0")/../.."

WARDEN_BIN=${WARDEN_BIN:-build/warden}
MESSAGES=6000
ROUNDS=3
SESSIONS=20
SIZE=4096
STORE=redis
while [ $# -gt 0 ]; do
    case $1 in
        --store)    STORE=${2:?}; shift 2 ;;
        --warden)   WARDEN_BIN=${2:?}; shift 2 ;;
        --messages) MESSAGES=${2:?}; shift 2 ;;
        --rounds)   ROUNDS=${2:?}; shift 2 ;;
        *) echo "usage: $0 [--warden PATH] [--messages N] [--rounds N]" >&2; exit 2 ;;
    esac
done
case $WARDEN_BIN in /*) ;; *) WARDEN_BIN=$PWD/$WARDEN_BIN ;; esac
PY=/usr/bin/python3
LIB=contrib/bench/benchlib.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-limits-bench.XXXXXX")
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
    --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=("$!")
SINK_PORT=$(port)
/usr/sbin/smtp-sink -u nobody -m 4000 "127.0.0.1:$SINK_PORT" 4096 >"$TMP/sink.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$TMP/policy.yaml" <<EOF
limits:
  - {name: conn-per-ip, key: client_ip, count: connections, rate: 10000000/1m}
  - {name: msgs-per-ip, key: client_ip, count: messages, rate: 10000000/1m}
  - {name: rcpts-per-domain, key: sender_domain, count: recipients, rate: 10000000/1m}
EOF

# start_warden NAME EXTRA_YAML: sets PORT to the port it listens on (not
# in a $(...) subshell: the daemon must stay this script's child)
start_warden() {
    local name=$1 port
    port=$(port)
    cat >"$TMP/$name.yaml" <<EOF
listen:
  - {name: bench, address: "127.0.0.1:$port"}
backend: {address: "127.0.0.1:$SINK_PORT", client_identity: none}
log: {level: warning}
dns: {resolve_client: false}
limits: {max_connections: 5000}
control_socket: none
$2
EOF
    "$WARDEN_BIN" -c "$TMP/$name.yaml" >"$TMP/$name.log" 2>&1 &
    PIDS+=("$!")
    if ! "$PY" "$LIB" wait-banner "$port" 10 "$!" >/dev/null; then
        echo "warden ($name) did not start:" >&2
        cat "$TMP/$name.log" >&2
        exit 1
    fi
    PORT=$port
}

start_warden plain ""
PLAIN_PORT=$PORT
store_yaml="store: {type: redis, redis: \"127.0.0.1:$REDIS_PORT\"}"
[ "$STORE" = memory ] && store_yaml="store: {type: memory}"
start_warden limits "$store_yaml
policies: [$TMP/policy.yaml]"
LIMITS_PORT=$PORT

declare -A SECS=([plain]=0 [limits]=0)
per_round=$(( (MESSAGES + ROUNDS - 1) / ROUNDS ))
evalsha() {
    redis-cli -p "$REDIS_PORT" info commandstats |
        awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3 }' | tr -d '\r'
}
before=$(evalsha); before=${before:-0}
limited=0
for ((r = 0; r < ROUNDS; r++)); do
    # alternate which path goes first, so neither always runs second
    order=(plain limits)
    [ $((r % 2)) = 1 ] && order=(limits plain)
    for path in "${order[@]}"; do
        p=PLAIN_PORT; [ "$path" = limits ] && p=LIMITS_PORT
        t0=$(date +%s.%N)
        timeout 300 /usr/sbin/smtp-source -s "$SESSIONS" -m "$per_round" -l "$SIZE" \
            -f sender@example.com -t rcpt@example.com "127.0.0.1:${!p}" >"$TMP/source.out" 2>&1
        t1=$(date +%s.%N)
        SECS[$path]=$(awk -v s="${SECS[$path]}" -v a="$t0" -v b="$t1" 'BEGIN { print s + b - a }')
        [ "$path" = limits ] && limited=$((limited + per_round))
    done
done
after=$(evalsha); after=${after:-0}

total=$((per_round * ROUNDS))
rate() { awk -v m="$total" -v s="$1" 'BEGIN { printf "%.0f", m / s }'; }
plain=$(rate "${SECS[plain]}")
withl=$(rate "${SECS[limits]}")
echo "Warden limits benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs"
echo "smtp-source -s $SESSIONS -l $SIZE, $total messages per path in $ROUNDS rounds"
printf '%-28s %8s msgs/s\n' "warden, no limits" "$plain"
printf '%-28s %8s msgs/s   (%s of no limits)\n' "warden, 3 limits ($STORE)" "$withl" \
    "$(awk -v a="$withl" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')"
[ "$STORE" = redis ] && awk -v e="$((after - before))" -v m="$limited" 'BEGIN {
    printf "Redis EVALSHA calls: %d for %d messages = %.2f per message (3 checkpoints with limits)\n", e, m, e / m }'
[ "$STORE" = redis ] && redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[:=,]' '/^cmdstat_evalsha:/ { printf "Redis time per EVALSHA: %s us\n", $7 }' | tr -d '\r'
grep -h . "$TMP/limits.log" | head -n 3 | sed 's/^/warden log: /' || true
