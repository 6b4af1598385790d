"""Fault injection under load: while client threads send numbered messages
through Warden to a real smtp-sink, the backend, Redis (limits store, fail
open) and the DNS server (client names) are killed and restarted, Warden
is reloaded with good and bad configs, and Warden itself is SIGKILLed.

At the end, per message token (see loadtest.check_invariants):
- every message a client was told 250 for is at the backend (no loss);
- no message a client was refused (4xx/5xx to MAIL, RCPT, DATA or the
  final dot) or that died before its content was sent is at the backend;
- every message at the backend is intact (body checksum, its own envelope).
A message whose connection was lost after its content went (or that got
"451 4.4.2 backend connection lost" after the dot) may or may not be
there: the client retries, and a duplicate is allowed; a loss is not.

Each test prints (pytest -s) and records (record_property "tally") a line
"TALLY <test>: sent=.. 250=.. delivered=.. refused=.. conn-lost=.. ...".
"""

import collections
import signal
import subprocess
import time

import pytest
from dnslib.server import DNSLogger, DNSServer

from dnstest import _Zone
from loadtest import (ACCEPTED, INDETERMINATE, LOST_AFTER, LOST_BEFORE,
                      REFUSED, LoadGenerator, Outcome, SmtpSink,
                      check_invariants, open_fds, tally, tally_line)
from redistest import RedisServer
from wardentest import dump_yaml, free_port, wait_for

WARM = 3.0        # seconds of load before the first fault
SETTLE = 3.0      # seconds of load after the last repair
# Descriptors Warden may open for good during a test (a resolver socket
# and a Redis connection per worker loop, a spool file); a leaked session
# leaves two per session, and the load makes hundreds.
FD_SLACK = 8


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.stop()


@pytest.fixture
def redis():
    r = RedisServer()
    yield r
    r.stop()


class RestartableDNS:
    """A dnslib server that can really go away (its socket closed, so
    queries get ICMP port unreachable) and come back on the same port."""

    def __init__(self, records):
        self.zone = _Zone(records, False)
        self.port = free_port()
        self.server = None
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.server = DNSServer(self.zone, port=self.port,
                                address="127.0.0.1",
                                logger=DNSLogger(logf=lambda *_: None))
        self.server.start_thread()

    def stop(self):
        if self.server:
            self.server.stop()
            self.server.server.server_close()
            self.server = None


def base_config(**over):
    cfg = {
        "log": {"level": "info"},
        "limits": {"spool_memory": "16k"},   # bigger messages hit the disk
        "timeouts": {"backend_connect": "2s", "backend_greeting": "5s",
                     "backend_reply": "5s", "data_done": "5s",
                     "command": "20s", "data": "20s"},
    }
    cfg.update(over)
    return cfg


def finish(name, gen, sink, warden, record_property, extra=None,
           base_fds=None):
    """Stop the load, print and record the tally, check the promise and,
    given Warden's descriptor count before the load, that every session's
    sockets were given back."""
    gen.stop()
    fds = None
    if base_fds is not None:
        # sessions close asynchronously: wait for the count to settle
        deadline = time.monotonic() + 10
        fds, since = open_fds(warden.pid), time.monotonic()
        while fds > base_fds + 2 and time.monotonic() < deadline and \
                not (fds <= base_fds + FD_SLACK and
                     time.monotonic() - since > 1.0):
            time.sleep(0.1)
            now = open_fds(warden.pid)
            if now != fds:
                fds, since = now, time.monotonic()
    complete, partial, corrupt = sink.deliveries()
    figures = tally(gen.outcomes, complete)
    more = dict(extra or {})
    more["partial-at-backend"] = len(partial)
    if fds is not None:
        more["fds-before-after"] = "%d/%d" % (base_fds, fds)
    more["sessions"] = dict(gen.sessions)
    more["refusals"] = dict(collections.Counter(
        "%s:%s" % (o.stage, o.reply[:9].decode("latin-1"))
        for o in gen.outcomes if o.status in (REFUSED, INDETERMINATE)))
    line = tally_line(name, figures, more)
    print("\n" + line)
    record_property("tally", line)
    assert not gen.errors, gen.errors
    assert not corrupt, corrupt[:5]
    violations = check_invariants(gen.outcomes, complete)
    assert not violations, "%d violations, first: %s\n%s" % (
        len(violations), violations[:10], warden.log()[-4000:])
    assert figures["250"] >= 20, line           # the load really ran
    assert warden.running(), warden.log()[-4000:]
    if fds is not None:
        assert fds <= base_fds + FD_SLACK, (fds, base_fds)
    return figures


def test_checker_catches_false_250_and_refused_delivery():
    """The invariant check itself can fail: a 250 with nothing at the
    backend, a refused message that arrived, and a message nobody sent
    are each reported; a lost-after-content duplicate is not."""
    def o(token, status):
        return Outcome(token, 0, status, "x", 250, b"", 0.0)
    outcomes = [o("a", ACCEPTED), o("b", REFUSED), o("c", LOST_BEFORE),
                o("d", LOST_AFTER), o("e", INDETERMINATE), o("f", ACCEPTED)]
    complete = {"b": 1, "c": 1, "d": 2, "e": 1, "f": 1, "zz": 1}
    bad = check_invariants(outcomes, complete)
    text = "\n".join(bad)
    assert len(bad) == 4, bad
    assert "250 but not at the backend: <a " in text
    assert "<b refused" in text and "<c lost_before_data" in text
    assert "never sent: zz" in text
    assert check_invariants(outcomes[3:5] + outcomes[5:], complete) == \
        ["at the backend but never sent: b",
         "at the backend but never sent: c",
         "at the backend but never sent: zz"]


def test_checker_catches_loss_and_damage_at_a_real_sink(sink):
    """End to end, without Warden: load straight into smtp-sink, then
    lose five stored messages and damage one. The dump parser and the
    check find exactly those six (a damaged copy is no delivery), as they
    would a Warden that said 250 for a message the backend never stored."""
    import os
    import random
    gen = LoadGenerator(sink.port, clients=2, tag="chk").start()
    time.sleep(1.0)
    gen.stop()
    complete, partial, corrupt = sink.deliveries()
    assert not check_invariants(gen.outcomes, complete)
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(sink.dump_dir)
                   for f in fs)
    assert len(files) >= 20 and not partial and not corrupt
    lost = random.sample(files, 6)
    tokens = set()
    for path in lost[:5]:
        with open(path) as f:
            tokens.add(f.read().split("X-Load-Token: ", 1)[1].split("\n")[0])
        os.unlink(path)
    with open(lost[5], "r+") as f:
        text = f.read()
        tokens.add(text.split("X-Load-Token: ", 1)[1].split("\n")[0])
        f.seek(0)
        f.write(text.replace(".leading dot", ".leading d0t", 1))
    complete, partial, corrupt = sink.deliveries()
    bad = check_invariants(gen.outcomes, complete)
    assert sorted(b.split("<")[1].split(" ")[0] for b in bad) == \
        sorted(tokens), bad
    assert all(b.startswith("250 but not at the backend") for b in bad)
    assert len(corrupt) == 1 and "body differs" in corrupt[0][1]


def test_backend_killed_and_restarted(warden_factory, sink, record_property):
    w = warden_factory(base_config(), sink)
    base_fds = open_fds(w.pid)
    gen = LoadGenerator(w.port, clients=6, tag="be",
                        sizes=(600, 2000, 6000, 40000, 300000)).start()
    time.sleep(WARM)
    downs = 0
    for _ in range(3):
        sink.kill()                      # mid-load: transactions in flight
        downs += 1
        time.sleep(1.0)
        sink.start()
        repaired = time.monotonic()
        time.sleep(2.0)
    time.sleep(SETTLE - 2.0)
    figures = finish("backend_killed", gen, sink, w, record_property,
                     {"backend-kills": downs}, base_fds)
    # the outage was seen (421 greetings while the sink was down) and
    # service came back after the last restart
    assert gen.sessions["greeting 421"] > 0, gen.sessions
    assert gen.accepted_after(repaired + 0.5) > 0
    assert figures["delivered"] >= figures["250"]


def test_backend_frozen_then_thawed(warden_factory, sink, record_property):
    """The backend stops answering (SIGSTOP) for longer than Warden's
    timeouts, then comes back (SIGCONT): transactions in flight get 451,
    never 250; a message the backend stores after Warden gave up on it is
    a duplicate the client will resend, which is allowed."""
    cfg = base_config()
    cfg["timeouts"] = dict(cfg["timeouts"], backend_connect="1s",
                           backend_greeting="1s", backend_reply="1s",
                           data_done="1s")
    w = warden_factory(cfg, sink)
    base_fds = open_fds(w.pid)
    gen = LoadGenerator(w.port, clients=6, tag="fz",
                        sizes=(600, 6000, 300000)).start()
    time.sleep(WARM)
    for _ in range(2):
        sink.proc.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        sink.proc.send_signal(signal.SIGCONT)
        thawed = time.monotonic()
        time.sleep(2.0)
    time.sleep(SETTLE - 2.0)
    figures = finish("backend_frozen", gen, sink, w, record_property,
                     base_fds=base_fds)
    assert figures["refused"] + figures["backend-lost-451"] > 0
    assert gen.accepted_after(thawed + 0.5) > 0
    w.wait_log(r"timeout", timeout=1)


LIMITS = [
    # 127.0.0.77: 15 messages a minute, then 451 at MAIL
    {"name": "fi-msgs", "key": "client_ip", "count": "messages",
     "rate": "15/1m", "networks": ["127.0.0.77/32"]},
    # 127.0.0.78: 60 KiB a minute, counted after the message: refused
    # at the final dot, after its content was sent
    {"name": "fi-bytes", "key": "client_ip", "count": "bytes",
     "rate": "60k/1m", "networks": ["127.0.0.78/32"]},
    # everybody: concurrent connections (node-tracked in Redis), never hit
    {"name": "fi-conc", "key": "client_ip", "count": "concurrent",
     "rate": 50},
]
LIMIT_SOURCES = ["127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74",
                 "127.0.0.77", "127.0.0.78"]


def limits_node(warden_factory, sink, redis, tmp_path, **over):
    pol = tmp_path / "limits.yaml"
    pol.write_text(dump_yaml({"limits": LIMITS}))
    cfg = base_config(policies=[str(pol)],
                      store={"type": "redis", "redis": redis.address,
                             "timeout": "250ms", "on_failure": "accept",
                             "node_ttl": "5s"}, **over)
    return warden_factory(cfg, sink)


def conc_slots_held(redis):
    """{key: {node: slots}} for every concurrency hash with slots > 0."""
    def cli(*args):
        return subprocess.run(["redis-cli", "-p", str(redis.port)] +
                              list(args), capture_output=True, text=True,
                              timeout=10).stdout.split()
    held = {}
    for key in cli("--scan", "--pattern", "warden:l:fi-conc:*"):
        kv = cli("HGETALL", key)
        fields = {k: int(v) for k, v in zip(kv[::2], kv[1::2]) if int(v)}
        if fields:
            held[key] = fields
    return held


def assert_no_slots_held(redis):
    """Every session is closed: no concurrency slot may stay taken (a
    leaked slot would lock its client out for good)."""
    deadline = time.monotonic() + 5
    while conc_slots_held(redis) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert conc_slots_held(redis) == {}


def refused_after(gen, t, client, stage=None):
    return [o for o in gen.outcomes if o.status == REFUSED and o.t > t and
            o.client == client and (stage is None or o.stage == stage)]


def test_redis_killed_and_restarted(warden_factory, sink, redis, tmp_path,
                                    record_property):
    w = limits_node(warden_factory, sink, redis, tmp_path)
    base_fds = open_fds(w.pid)
    gen = LoadGenerator(w.port, clients=6, sources=LIMIT_SOURCES,
                        tag="rd").start()
    time.sleep(WARM)
    redis.kill()
    killed = time.monotonic()
    time.sleep(2.5)
    redis.start()
    repaired = time.monotonic()
    time.sleep(SETTLE + 1.5)             # reconnect, then limits bite again
    figures = finish("redis_killed", gen, sink, w, record_property,
                     base_fds=base_fds)
    # every session is closed: no concurrency slot is left taken
    assert_no_slots_held(redis)
    w.wait_log(r"limits: the store did not answer; accepting", timeout=1)
    # the limits worked before the outage and again after it: refusals at
    # MAIL for .77 and after the dot (content sent) for .78
    assert refused_after(gen, 0, 4, "MAIL"), gen.by_status()
    assert refused_after(gen, 0, 5, "final reply")
    assert refused_after(gen, repaired, 4, "MAIL") or \
        refused_after(gen, repaired, 5, "final reply")
    # fail open: while Redis was down, the limited clients got through
    assert any(o.status == ACCEPTED and o.client == 4 and
               killed + 0.5 < o.t < repaired for o in gen.outcomes)
    assert figures["refused"] > 0


def test_dns_server_stopped_and_restarted(warden_factory, sink,
                                          record_property):
    sources = ["127.0.0.%d" % (81 + i) for i in range(6)]
    records = []
    for ip in sources:
        last = ip.rsplit(".", 1)[1]
        records += [("%s.0.0.127.in-addr.arpa" % last, "PTR",
                     "c%s.load.test." % last),
                    ("c%s.load.test" % last, "A", ip)]
    dns = RestartableDNS(records)
    try:
        w = warden_factory(base_config(
            backend={"client_identity": "xclient"},
            dns={"resolve_client": True, "servers": [dns.address],
                 "timeout": "1s"}), sink)
        base_fds = open_fds(w.pid)
        gen = LoadGenerator(w.port, clients=6, sources=sources,
                            tag="dn").start()
        time.sleep(WARM)
        before = len(dns.zone.queries)
        dns.stop()
        time.sleep(3.0)
        dns.start()
        restarted_queries = len(dns.zone.queries)
        repaired = time.monotonic()
        time.sleep(SETTLE)
        figures = finish("dns_restarted", gen, sink, w, record_property,
                         {"dns-queries": len(dns.zone.queries)}, base_fds)
    finally:
        dns.stop()
    assert before > 0                      # names were being looked up
    assert len(dns.zone.queries) > restarted_queries   # and are again
    assert gen.accepted_after(repaired + 0.5) > 0
    assert figures["refused"] == 0


def test_sighup_good_then_bad_config(warden_factory, sink, tmp_path,
                                     record_property):
    w = warden_factory(base_config(), sink)

    def ehlo_size():
        import smtplib
        with smtplib.SMTP("127.0.0.1", w.port, timeout=10) as s:
            s.ehlo("probe.test")
            return s.esmtp_features.get("size")

    assert ehlo_size() == "10240000"
    listen = w.config["listen"]             # dict reloads keep the port
    base_fds = open_fds(w.pid)
    gen = LoadGenerator(w.port, clients=6, tag="hup").start()
    time.sleep(WARM)
    reloads = 0
    for size in (5000000, 7000000, 6000000):
        cfg = base_config(listen=listen)
        cfg["limits"] = dict(cfg["limits"], max_message_size=size)
        m = w.reload(cfg)                   # a good config: taken
        assert m.group(1) == ": ok", w.log()[-3000:]
        # (each worker thread takes the new snapshot from its own loop)
        wait_for(lambda: all(ehlo_size() == str(size) for _ in range(4)), 5)
        good_text = open(w.config_path).read()
        m = w.reload(good_text + "limits_typo: 1\n")    # unknown key
        assert m.group(1) == " failed"
        m = w.reload(good_text + "log: [unclosed\n")    # not even YAML
        assert m.group(1) == " failed"
        reloads += 3
        assert w.running()
        for _ in range(4):                  # still the last good one
            assert ehlo_size() == str(size)
        time.sleep(0.7)
    # a burst of reloads, faster than they complete, good and bad mixed
    good = base_config(listen=listen)
    for i in range(20):
        if i % 2:
            w.write_config(good)
        else:
            w.write_config(open(w.config_path).read() + "bogus: 1\n")
        w.signal(signal.SIGHUP)
        time.sleep(0.01)
    w.write_config(good)
    w.reload()
    reloads += 21
    # the burst's last reloads finish after the match above: the good
    # file is read last whatever the order
    wait_for(lambda: all(ehlo_size() == "10240000" for _ in range(4)), 10)
    assert w.running()
    time.sleep(0.7)
    w.write_config(base_config(listen=listen))   # leave a good file
    figures = finish("sighup", gen, sink, w, record_property,
                     {"reloads": reloads}, base_fds)
    assert figures["conn-lost"] == 0 and figures["refused"] == 0
    assert figures["250"] == figures["sent"]


def test_warden_sigkilled_mid_load(warden_factory, sink, record_property):
    """Warden dies with sessions mid-transaction: clients see connection
    loss, never a 250 for a message that is not at the backend; restarted,
    it serves again."""
    w = warden_factory(base_config(), sink)
    base_fds = open_fds(w.pid)
    gen = LoadGenerator(w.port, clients=8, tag="wk",
                        sizes=(600, 6000, 40000, 200000)).start()
    time.sleep(WARM)
    kills = 0
    for _ in range(3):
        w.signal(signal.SIGKILL)
        w.proc.wait(10)
        kills += 1
        time.sleep(0.5)
        w.start()
        repaired = time.monotonic()
        time.sleep(2.0)
    time.sleep(SETTLE - 2.0)
    figures = finish("warden_sigkilled", gen, sink, w, record_property,
                     {"warden-kills": kills}, base_fds)
    lost = figures["conn-lost"] + gen.sessions["connect refused"] + \
        gen.sessions["lost before greeting"] + gen.sessions["lost before MAIL"]
    assert lost > 0, gen.sessions          # the kills hit clients
    assert gen.accepted_after(repaired + 0.5) > 0


def test_all_faults_in_one_run(warden_factory, sink, redis, tmp_path,
                               record_property):
    """Backend, Redis and DNS killed/stopped and restarted one after the
    other, with good and bad reloads in between, under one load."""
    sources = LIMIT_SOURCES
    records = []
    for ip in sources:
        last = ip.rsplit(".", 1)[1]
        records += [("%s.0.0.127.in-addr.arpa" % last, "PTR",
                     "c%s.load.test." % last),
                    ("c%s.load.test" % last, "A", ip)]
    dns = RestartableDNS(records)
    try:
        dns_conf = {"resolve_client": True, "servers": [dns.address],
                    "timeout": "1s"}
        w = limits_node(warden_factory, sink, redis, tmp_path,
                        backend={"client_identity": "xclient"}, dns=dns_conf)
        base_fds = open_fds(w.pid)
        gen = LoadGenerator(w.port, clients=6, sources=sources,
                            tag="all").start()
        time.sleep(WARM)
        sink.kill()
        time.sleep(1.0)
        sink.start()
        time.sleep(1.5)
        redis.kill()
        time.sleep(1.5)
        good = open(w.config_path).read()
        assert w.reload(good).group(1) == ": ok"
        redis.start()
        time.sleep(1.5)
        dns.stop()
        assert w.reload(good + "bogus: [\n").group(1) == " failed"
        time.sleep(2.0)
        dns.start()
        w.write_config(good)
        repaired = time.monotonic()
        time.sleep(SETTLE)
        figures = finish("all_faults", gen, sink, w, record_property,
                         base_fds=base_fds)
    finally:
        dns.stop()
    assert gen.accepted_after(repaired + 0.5) > 0
    assert figures["refused"] > 0
    assert_no_slots_held(redis)
