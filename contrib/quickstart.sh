#!/usr/bin/env bash
# Quickstart: install what is missing, build, start a private Postfix on
# 127.0.0.1:10025 as the backend, and run Warden in the foreground with its
# embedded defaults (listening on 127.0.0.1:2525, XCLIENT to the backend).
# Ctrl-C stops Warden and the test backend.
set -euo pipefail
cd "$(dirname "$0")/.."

contrib/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

contrib/postfix/local-backend.sh start

# Started as root, Warden binds its port and then runs as the account
# named by user: (default "warden"); it refuses to stay root.
if [ "$(id -u)" -eq 0 ] && ! id warden >/dev/null 2>&1; then
    useradd --system --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin warden
fi

cat <<MSG

Warden is starting on 127.0.0.1:2525 in front of Postfix on 127.0.0.1:10025.
Send a test message from another terminal:

    swaks --server 127.0.0.1:2525 --to test@example.com

Warden logs one line per connection and per transaction below; the message
lands in ${WARDEN_QS_DIR:-/var/tmp/warden-quickstart}/mail/inbox/new/.
Press Ctrl-C to stop.

MSG
build/warden &
warden=$!
stop() {
    kill "$warden" 2>/dev/null || true
    wait "$warden" 2>/dev/null || true
    contrib/postfix/local-backend.sh stop
}
trap stop EXIT
trap 'exit 0' INT TERM
wait "$warden"
