"""Admin tools: `warden limits show|reset WHO` and `warden policy test
WHO`, against the memory store (through the daemon's control socket) and
against Redis (read directly)."""

import subprocess

import pytest

from redistest import RedisServer
from wardentest import SMTPClient, dump_yaml

LIMITS = [{"name": "per-ip", "key": "client_ip", "count": "messages",
           "rate": "3/1h"},
          {"name": "per-user", "key": "user", "count": "messages",
           "rate": "10/1d"}]


def admin(w, *words):
    r = subprocess.run([w.bin, "-c", w.config_path] + list(words),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def send_mails(w, source, n):
    c = SMTPClient()
    c.connect(w.port, source=(source, 0))
    c.expect(220)
    c.ehlo()
    codes = []
    for _ in range(n):
        codes.append(c.cmd("MAIL FROM:<a@example.com>").code)
        c.cmd("RSET")
    return codes


@pytest.fixture(params=["memory", "redis", "redis-unix"])
def store(request):
    if request.param == "memory":
        yield {"type": "memory"}
        return
    # redis-unix: the daemon counts, and the admin tools read, through
    # Redis's Unix socket
    r = RedisServer(unix_socket=request.param == "redis-unix")
    yield {"type": "redis",
           "redis": r.unix_address if r.socket_path else r.address}
    r.stop()


def warden_with_limits(warden_factory, capture, tmp_path, store,
                       access=None):
    pol = tmp_path / "limits.yaml"
    doc = {"limits": LIMITS}
    if access:
        doc["access"] = access
    pol.write_text(dump_yaml(doc))
    return warden_factory({"policies": [str(pol)], "store": store}, capture)


def test_show_and_reset(warden_factory, capture, tmp_path, store):
    w = warden_with_limits(warden_factory, capture, tmp_path, store)
    assert send_mails(w, "127.0.0.71", 2) == [250, 250]
    rc, out = admin(w, "limits", "show", "ip=127.0.0.71")
    assert rc == 0, out
    assert "limit per-ip (messages) key l:per-ip:ip=127.0.0.71|" in out
    assert "3/1h: 1 allowed now; full allowance again in" in out
    assert "per-user" not in out          # needs a user to be identified
    assert send_mails(w, "127.0.0.71", 2) == [250, 451]
    rc, out = admin(w, "limits", "stats")    # counts of this daemon
    assert rc == 0 and "per-ip refused=1 dry_run=0" in out, out
    rc, out = admin(w, "limits", "reset", "ip=127.0.0.71")
    assert rc == 0 and "3/1h: reset" in out, out
    assert send_mails(w, "127.0.0.71", 1) == [250]   # unblocked
    rc, out = admin(w, "limits", "show", "ip=127.0.0.72")
    assert "3/1h: unused, 3 allowed now" in out


def test_policy_test(warden_factory, capture, tmp_path, store):
    w = warden_with_limits(warden_factory, capture, tmp_path, store,
                           access=[{"networks": ["192.0.2.0/24"],
                                    "action": "reject"}])
    rc, out = admin(w, "policy", "test", "ip=127.0.0.73",
                    "sender=a@example.com", "rcpt=b@example.net")
    assert rc == 0 and "verdict: accepted" in out, out
    assert "MAIL: limit per-ip (messages) key" in out
    send_mails(w, "127.0.0.73", 3)
    rc, out = admin(w, "policy", "test", "ip=127.0.0.73")
    assert rc == 1
    assert "MAIL: refused by limit per-ip: 451 4.7.1" in out, out
    assert "verdict: refused" in out
    rc, out = admin(w, "policy", "test", "ip=192.0.2.5")
    assert "connect: access rule" in out and "554" in out, out
    # nothing was counted by the test itself
    rc, out = admin(w, "limits", "show", "ip=127.0.0.74")
    assert "unused" in out


def test_policy_test_limit_near(warden_factory, capture, tmp_path, store):
    """`policy test` says when the request it simulates would leave a
    client near an enforced limit, so that scoring's WARDEN_LIMIT_NEAR
    hits: from the 4th of 5 messages (80%, the default limit_near); not
    for a dry-run limit, nor for a session scoring exempts."""
    (tmp_path / "local.cf").write_text("body LOCAL_X /xyzzy/\n")
    pol = tmp_path / "near.yaml"
    pol.write_text(
        "scoring:\n  rules: [local.cf]\n  exempt: {authenticated: true}\n"
        "limits:\n"
        "  - {name: five, key: client_ip, count: messages, rate: 5/1h}\n"
        "  - {name: watch, key: client_ip, count: recipients, rate: 1/1h,"
        " dry_run: true}\n")
    w = warden_factory({"policies": [str(pol)], "store": store}, capture)
    near = "near its threshold: 80% used with this request; " \
           "WARDEN_LIMIT_NEAR hits (scoring limit_near 80%)"
    send_mails(w, "127.0.0.75", 2)
    rc, out = admin(w, "policy", "test", "ip=127.0.0.75", "rcpt=b@example.net")
    assert rc == 0 and "5/1h: 3 allowed now" in out, out
    assert "near its threshold" not in out      # the 3rd: 60%
    send_mails(w, "127.0.0.75", 1)
    rc, out = admin(w, "policy", "test", "ip=127.0.0.75", "rcpt=b@example.net")
    assert rc == 0 and out.count(near) == 1, out    # the 4th; not "watch"
    assert out.index(near) > out.index("limit five (messages)")
    assert out.index(near) < out.index("limit watch (recipients")
    rc, out = admin(w, "policy", "test", "ip=127.0.0.75", "user=alice")
    assert rc == 0 and "limit five" in out and near not in out, out


def test_bad_who(warden_factory, capture, tmp_path):
    w = warden_with_limits(warden_factory, capture, tmp_path,
                           {"type": "memory"})
    rc, out = admin(w, "limits", "show", "colour=blue")
    assert rc != 0 and "unknown" in out
    rc, out = admin(w, "limits", "show", "ip=not-an-ip")
    assert rc != 0 and "not an IP address" in out
