#!/usr/bin/python3
"""Postfix alone vs Postfix with Warden as its milter, in one run.

    contrib/bench/milter.py [--warden PATH] [--messages N] [--rounds N]
                            [--sessions N] [--size BYTES]

Three private Postfix instances (each its own queue, as root) relay to
their own smtp-sink:
  postfix         no milter
  milter          smtpd_milters = Warden (milter only, no policies)
  milter+limits   the same with three limits per message (memory store)
smtp-source sends N messages to each, one per connection, in rounds whose
order rotates. The figure is messages per second *at the sink*: from the
first connection until the sink has counted every message, so Postfix's
queue and delivery are in it, as an admin would see them.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "functional"))

import wardentest  # noqa: E402  (the tests' private Postfix and helpers)
from sinklib import Sink  # noqa: E402

SOURCE = "/usr/sbin/smtp-source"

LIMITS = """limits:
  - {name: msgs-per-ip, key: client_ip, count: messages, rate: 10000000/1m}
  - {name: msgs-per-sender, key: sender, count: messages, rate: 10000000/1m}
  - {name: rcpts-per-domain, key: rcpt_domain, count: recipients,
     rate: 10000000/1m}
"""


def start_warden(binary, tmp, name, policy):
    port = wardentest.free_port()
    pol = ""
    if policy:
        path = os.path.join(tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(policy)
        pol = "policies: [%s]\n" % path
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen: []\nmilter: {listen: \"inet:%d@127.0.0.1\"}\n"
                "log: {level: warning}\ncontrol_socket: none\n"
                "user: nobody\nspool_dir: /tmp\n%s" % (port, pol))
    log = open(os.path.join(tmp, name + ".log"), "wb")
    proc = subprocess.Popen([binary, "-c", conf], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wardentest.wait_for(lambda: wardentest.port_listening(port) or
                        proc.poll() is not None, message="warden milter")
    if proc.poll() is not None:
        sys.exit("warden (%s) did not start: see %s" % (name, log.name))
    return proc, port


def postfix_for(sink, milter_port):
    extra = {"default_process_limit": "100",
             "smtpd_client_connection_count_limit": "0",
             "smtpd_client_connection_rate_limit": "0",
             "smtp_destination_concurrency_limit": "20",
             "relay_domains": "example.com"}
    if milter_port:
        extra.update(smtpd_milters="inet:127.0.0.1:%d" % milter_port,
                     milter_protocol="6", milter_default_action="tempfail")
    return wardentest.PostfixInstance(sink, **extra)


def send(port, n, sessions, size):
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(n), "-l",
                    str(size), "-f", "sender@example.org",
                    "-t", "rcpt@example.com", "127.0.0.1:%d" % port],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", default=os.path.join(ROOT, "build", "warden"))
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("milter.py: private Postfix instances need root")
    tmp = tempfile.mkdtemp(prefix="warden-milter-bench-")
    os.chmod(tmp, 0o755)
    procs, pfs, sinks = [], [], {}
    try:
        paths = {}
        for name, policy, milter in (("postfix", None, False),
                                     ("milter", None, True),
                                     ("milter+limits", LIMITS, True)):
            sinks[name] = Sink(tmp, name.replace("+", "_"))
            mport = None
            if milter:
                proc, mport = start_warden(a.warden, tmp,
                                           name.replace("+", "_"), policy)
                procs.append(proc)
            pf = postfix_for(sinks[name], mport)
            pfs.append(pf)
            paths[name] = pf
        names = list(paths)
        per_round = max(1, a.messages // a.rounds)
        secs = dict.fromkeys(names, 0.0)
        for r in range(a.rounds):
            for i in range(len(names)):
                name = names[(i + r) % len(names)]
                sink = sinks[name]
                want = sink.count() + per_round
                t0 = time.monotonic()
                send(paths[name].port, per_round, a.sessions, a.size)
                wardentest.wait_for(lambda: sink.count() >= want,
                                    timeout=300, interval=0.05,
                                    message="%s: sink count" % name)
                secs[name] += time.monotonic() - t0
        total = per_round * a.rounds
        print("Warden milter benchmark: %s, %d CPUs"
              % (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                 os.cpu_count()))
        print("smtp-source -s %d -l %d -> Postfix -> smtp-sink, %d messages "
              "per path in %d rounds" % (a.sessions, a.size, total, a.rounds))
        print("%-16s %10s %12s" % ("path", "msgs/s", "vs postfix"))
        for name in names:
            print("%-16s %10.0f %12.2f" % (name, total / secs[name],
                                            secs["postfix"] / secs[name]))
        print("(msgs/s at the sink: from the first connection until the sink "
              "has every message)")
    finally:
        for pf in pfs:
            pf.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for s in sinks.values():
            s.stop()
        wardentest._rmtree(tmp)


if __name__ == "__main__":
    main()
