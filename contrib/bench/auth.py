#!/usr/bin/python3
"""Throughput with sender authentication on, against the plain relay.

    contrib/bench/auth.py [--warden PATH] [--messages N] [--rounds N]
                          [--sessions N] [--size BYTES]

Postfix's smtp-source sends one DKIM-signed message (dkimpy, rsa-sha256,
2048-bit key; about --size bytes) over and over, one per connection, to
smtp-sink through two Wardens, each with its own sink:
  relay       no policies: the relay alone
  spf+dkim    spf:, dkim: and dmarc: sections (tag only): SPF at MAIL
              FROM, DKIM verification and DMARC at end of data, one
              Authentication-Results field per message
DNS (the SPF record, the DKIM key, the DMARC record) is answered by a
dnslib server on loopback (tests/functional/dnstest.py); Warden caches
answers by TTL (60 s here), so after the first message the cost measured
is Warden's own: worker hand-offs, the message copy, RSA verification
(libopendkim/OpenSSL) and the header work, not DNS round trips.

Rounds rotate the order of the paths. The script checks that every
message of the spf+dkim path was verified (dkim=pass and dmarc=pass in
its log) before it prints the figures. Run as root or not (Warden keeps
its user when not root).
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "functional"))

import dkimtest  # noqa: E402  (dkimpy keys and signing)
import wardentest  # noqa: E402
from sinklib import Sink  # noqa: E402
from dnslib.server import DNSLogger  # noqa: E402
from dnstest import DNSTestServer  # noqa: E402

SOURCE = "/usr/sbin/smtp-source"
SINK = "/usr/sbin/smtp-sink"

POLICY = "spf: {}\ndkim: {}\ndmarc: {}\n"


def signed_message(key, size):
    """A signed message of about size bytes, LF lines (smtp-source -F adds
    the CRLF and the dot-stuffing)."""
    head = (b"From: Sender <sender@example.com>\r\nTo: rcpt@example.com\r\n"
            b"Subject: warden auth benchmark\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <bench@example.com>\r\n\r\n")
    line = b"x" * 78 + b"\r\n"
    body = b""
    while len(head) + len(body) + len(line) <= size:
        body += line
    msg = head + body
    return (key.sign(msg, "example.com") + msg).replace(b"\r\n", b"\n")


def start_warden(binary, tmp, name, sink, dns, policy):
    port = wardentest.free_port()
    pol = ""
    if policy:
        path = os.path.join(tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(policy)
        pol = "policies: [%s]\n" % path
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen: [{name: inbound, address: \"127.0.0.1:%d\"}]\n"
                "backend: {address: \"127.0.0.1:%d\", client_identity: none}\n"
                "hostname: bench.test\n"
                "dns: {resolve_client: false, servers: [\"%s\"], timeout: 2s}\n"
                "log: {level: info}\ncontrol_socket: none\n"
                "user: nobody\nspool_dir: /tmp\n%s"
                % (port, sink.port, dns.address, pol))
    log = os.path.join(tmp, name + ".log")
    with open(log, "wb") as lf:
        proc = subprocess.Popen([binary, "-c", conf], stdout=lf,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    wardentest.wait_for(lambda: wardentest.port_listening(port) or
                        proc.poll() is not None, message="warden " + name)
    if proc.poll() is not None:
        sys.exit("warden (%s) did not start: see %s" % (name, log))
    return proc, port, log


def send(port, n, sessions, path):
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(n), "-F", path,
                    "-f", "sender@example.com", "-t", "rcpt@example.com",
                    "127.0.0.1:%d" % port],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default=os.path.join(ROOT, "build", "warden"))
    ap.add_argument("--messages", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    for tool in (SOURCE, SINK, a.warden):
        if not os.access(tool, os.X_OK):
            sys.exit("missing %s" % tool)
    tmp = tempfile.mkdtemp(prefix="warden-auth-bench-")
    os.chmod(tmp, 0o755)
    key = dkimtest.Key.new_rsa("bench")
    dns = DNSTestServer(key.records("example.com") + [
        ("example.com", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")])
    # dnslib prints every query: keep the figures readable
    dns.server.server.logger = DNSLogger("-recv,-send,-request,-reply,"
                                         "-truncated,-data", prefix=False)
    msg_path = os.path.join(tmp, "signed.eml")
    with open(msg_path, "wb") as f:
        f.write(signed_message(key, a.size))
    procs, sinks, ports, logs = [], {}, {}, {}
    try:
        for name, policy in (("relay", None), ("spf+dkim", POLICY)):
            sinks[name] = Sink(tmp, name.replace("+", "_"))
            proc, ports[name], logs[name] = start_warden(
                a.warden, tmp, name.replace("+", "_"), sinks[name], dns,
                policy)
            procs.append(proc)
        names = list(ports)
        per_round = max(1, a.messages // a.rounds)
        secs = dict.fromkeys(names, 0.0)
        for r in range(a.rounds):
            for i in range(len(names)):
                name = names[(i + r) % len(names)]
                sink = sinks[name]
                want = sink.count() + per_round
                t0 = time.monotonic()
                send(ports[name], per_round, a.sessions, msg_path)
                wardentest.wait_for(lambda: sink.count() >= want,
                                    timeout=300, interval=0.05,
                                    message="%s: sink count" % name)
                secs[name] += time.monotonic() - t0
        total = per_round * a.rounds
        with open(logs["spf+dkim"], "rb") as f:
            log = f.read()
        verified = len(re.findall(rb"dkim=pass signatures=1 ", log))
        aligned = len(re.findall(rb"dmarc=pass ", log))
        spf = len(re.findall(rb"spf=pass ", log))
        print("Warden sender authentication benchmark: %s, %d CPUs"
              % (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                 os.cpu_count()))
        print("smtp-source -s %d -F <%d-byte DKIM-signed message> -> Warden "
              "-> smtp-sink, %d messages per path in %d rounds"
              % (a.sessions, os.path.getsize(msg_path), total, a.rounds))
        print("%-10s %10s %10s" % ("path", "msgs/s", "vs relay"))
        for name in names:
            print("%-10s %10.0f %10.2f" % (name, total / secs[name],
                                          secs["relay"] / secs[name]))
        print("spf+dkim: %d spf=pass, %d dkim=pass, %d dmarc=pass of %d "
              "messages" % (spf, verified, aligned, total))
        if verified != total or aligned != total:
            print("WARNING: not every message was verified")
            return 1
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for s in sinks.values():
            s.stop()
        dns.stop()
        wardentest._rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
