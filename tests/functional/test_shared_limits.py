"""Limits counted in a real Redis: several Warden nodes share one count,
a dead node's connections stop counting, and a Redis outage is handled
as configured (fail-open or fail-closed) and recovered from."""

import signal
import time

import pytest

from redistest import RedisServer
from wardentest import SMTPClient, dump_yaml


@pytest.fixture
def redis():
    r = RedisServer()
    yield r
    r.stop()


def node(warden_factory, backend, redis, tmp_path, limits, **store):
    pol = tmp_path / "limits.yaml"
    pol.write_text(dump_yaml({"limits": limits}))
    st = {"type": "redis", "timeout": "500ms",
          "redis": redis.unix_address if redis.socket_path
          else redis.address}
    st.update(store)
    return warden_factory({"policies": [str(pol)], "store": st}, backend)


def mail_attempt(port, source):
    c = SMTPClient()
    c.connect(port, source=(source, 0))
    c.expect(220)
    c.ehlo()
    code = c.cmd("MAIL FROM:<a@example.com>").code
    c.cmd("QUIT")
    return code


MSGS = [{"name": "shared", "key": "client_ip", "count": "messages",
         "rate": "5/1m"}]


def test_two_nodes_share_one_count(warden_factory, capture, redis, tmp_path):
    a = node(warden_factory, capture, redis, tmp_path, MSGS)
    b = node(warden_factory, capture, redis, tmp_path, MSGS)
    codes = [mail_attempt((a, b)[i % 2].port, "127.0.0.61")
             for i in range(12)]
    assert codes.count(250) == 5, codes
    assert codes.count(451) == 7
    # the counters live in Redis, under the configured prefix, with a TTL
    keys = redis.keys("warden:l:shared:*")
    assert keys, keys
    assert int(redis.command("PTTL", keys[0]).lstrip(":")) > 0


def test_concurrent_slots_across_nodes(warden_factory, capture, redis,
                                       tmp_path):
    conc = [{"name": "conc", "key": "client_ip", "count": "concurrent",
             "rate": 2}]
    a = node(warden_factory, capture, redis, tmp_path, conc)
    b = node(warden_factory, capture, redis, tmp_path, conc)
    held = []
    for w in (a, b):
        c = SMTPClient()
        c.connect(w.port, source=("127.0.0.62", 0))
        c.expect(220)
        held.append(c)
    c = SMTPClient()
    c.connect(b.port, source=("127.0.0.62", 0))
    assert c.read_reply().code == 421
    held[0].cmd("QUIT", expect=221)
    time.sleep(0.3)
    d = SMTPClient()
    d.connect(b.port, source=("127.0.0.62", 0))
    d.expect(220)


def test_dead_node_stops_counting(warden_factory, capture, redis, tmp_path):
    conc = [{"name": "conc", "key": "client_ip", "count": "concurrent",
             "rate": 1}]
    a = node(warden_factory, capture, redis, tmp_path, conc, node_ttl="3s")
    b = node(warden_factory, capture, redis, tmp_path, conc, node_ttl="3s")
    c = SMTPClient()
    c.connect(a.port, source=("127.0.0.63", 0))
    c.expect(220)
    a.signal(signal.SIGKILL)              # node A dies holding the slot
    d = SMTPClient()
    d.connect(b.port, source=("127.0.0.63", 0))
    assert d.read_reply().code == 421     # still counted for now
    time.sleep(4.5)                       # > node_ttl
    e = SMTPClient()
    e.connect(b.port, source=("127.0.0.63", 0))
    e.expect(220)


def test_redis_down_fail_open(warden_factory, capture, redis, tmp_path):
    w = node(warden_factory, capture, redis, tmp_path, MSGS)
    assert mail_attempt(w.port, "127.0.0.64") == 250
    redis.kill()
    for _ in range(8):                     # more than the limit: accepted
        assert mail_attempt(w.port, "127.0.0.64") == 250
    w.wait_log(r"limits: the store did not answer; accepting")
    assert len(__import__("re").findall(r"the store did not answer",
                                        w.log())) == 1   # once per outage
    redis.start()
    time.sleep(1.5)                        # reconnect
    codes = [mail_attempt(w.port, "127.0.0.64") for _ in range(7)]
    assert codes.count(250) == 5 and codes.count(451) == 2, codes


@pytest.fixture(params=["tcp", "unix"])
def any_redis(request):
    """Redis over TCP, or over its Unix socket (recreated on restart)."""
    r = RedisServer(unix_socket=request.param == "unix")
    yield r
    r.stop()


def test_redis_down_fail_closed(warden_factory, capture, any_redis,
                                tmp_path):
    redis = any_redis
    w = node(warden_factory, capture, redis, tmp_path, MSGS,
             on_failure="tempfail")
    redis.kill()
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.65", 0))
    c.expect(220)                          # no connect-time limits here
    c.ehlo()
    r = c.cmd("MAIL FROM:<a@example.com>")
    assert r.raw.startswith(b"451 4.3.0")
    redis.start()
    time.sleep(1.5)
    assert mail_attempt(w.port, "127.0.0.65") == 250


def test_slow_redis_does_not_stall_others(warden_factory, capture, redis,
                                          tmp_path):
    import subprocess
    import threading
    w = node(warden_factory, capture, redis, tmp_path, MSGS,
             timeout="300ms")
    # DEBUG SLEEP blocks Redis for 2 s: calls time out (fail-open) and
    # sessions without limits keep being served meanwhile
    out = {}
    t = threading.Thread(target=lambda: out.update(r=subprocess.run(
        ["redis-cli", "-p", str(redis.port), "DEBUG", "SLEEP", "2"],
        capture_output=True, text=True)))
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert mail_attempt(w.port, "127.0.0.66") == 250
    assert time.monotonic() - t0 < 1.5
    t.join()
    assert out["r"].stdout.strip() == "OK"      # Redis really was asleep
    w.wait_log(r"the store did not answer")
