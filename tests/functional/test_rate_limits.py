"""Connection and rate limits from policy files, counted in the embedded
memory store: each kind of count, keys, actions, dry runs, exemptions,
escalation and reload."""

import time

import pytest

from wardentest import SMTPClient, dump_yaml


def limited(warden_factory, backend, tmp_path, limits, extra=None):
    pol = tmp_path / "limits.yaml"
    pol.write_text(dump_yaml({"limits": limits}))
    cfg = {"policies": [str(pol)]}
    cfg.update(extra or {})
    return warden_factory(cfg, backend), pol


def session(w, source="127.0.0.1"):
    c = SMTPClient()
    c.connect(w.port, source=(source, 0))
    c.expect(220)
    c.ehlo()
    return c


def test_messages_per_ip(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "msgs", "key": "client_ip", "count": "messages",
        "rate": "3/1m",
        "reply": "451 4.7.1 Slow down, 3 messages a minute"}])
    c = session(w, "127.0.0.31")
    for _ in range(3):
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RSET", expect=250)
    r = c.cmd("MAIL FROM:<a@example.com>")
    assert r.raw == b"451 4.7.1 Slow down, 3 messages a minute\r\n"
    # another client has its own allowance
    d = session(w, "127.0.0.32")
    d.cmd("MAIL FROM:<a@example.com>", expect=250)
    w.wait_log(r"limit msgs \(messages, 3/1m\) exceeded: "
               r"key=l:msgs:ip=127\.0\.0\.31\|:60000")
    w.wait_log(r"reject: MAIL from \[127\.0\.0\.31\]: 451 4\.7\.1 .*"
               r"check=limit:msgs")
    assert sum(1 for x in capture.connections[0].commands
               if x.startswith(b"MAIL")) == 3


def test_concurrent_connections(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "conc", "key": "client_ip", "count": "concurrent",
        "rate": 2}])
    a, b = session(w, "127.0.0.41"), session(w, "127.0.0.41")
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.41", 0))
    r = c.read_reply()
    assert r.code == 421 and b"Too many connections" in r.raw
    c.wait_closed()
    a.cmd("QUIT", expect=221)
    a.wait_closed()
    time.sleep(0.3)                  # the slot comes back at close
    d = SMTPClient()
    d.connect(w.port, source=("127.0.0.41", 0))
    d.expect(220)


def test_connections_per_minute(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "rate", "key": "client_net", "count": "connections",
        "rate": "2/1m", "action": "tempfail",
        "reply": "421 4.7.0 Connection rate exceeded"}])
    for _ in range(2):
        session(w, "127.0.0.51").cmd("QUIT", expect=221)
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.52", 0))   # same /24
    assert c.read_reply().raw == b"421 4.7.0 Connection rate exceeded\r\n"
    c.wait_closed()
    assert len(capture.connections) == 2          # backend spared


def test_recipients_per_sender_domain(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "rcpts", "key": "sender_domain", "count": "recipients",
        "rate": "3/1h", "action": "reject",
        "reply": "550 5.7.1 Too many recipients for your domain"}])
    c = session(w)
    c.cmd("MAIL FROM:<a@Example.COM>", expect=250)
    for i in range(3):
        c.cmd("RCPT TO:<r%d@example.net>" % i, expect=250)
    assert c.cmd("RCPT TO:<r9@example.net>").raw.startswith(b"550 5.7.1")
    c.cmd("RSET", expect=250)
    c.cmd("MAIL FROM:<b@other.example>", expect=250)
    c.cmd("RCPT TO:<x@example.net>", expect=250)


def test_bytes_per_user(warden_factory, capture_factory, tmp_path):
    cap = capture_factory(auth_success_user="alice", auth_password="pw")
    w, _ = limited(warden_factory, cap, tmp_path, [{
        "name": "volume", "key": "user", "count": "bytes",
        "rate": "1k/1h", "burst": 1024,
        "reply": "451 4.7.1 Hourly volume exceeded"}])
    c = session(w)
    c.cmd("AUTH PLAIN AGFsaWNlAHB3", expect=235)
    body = b"Subject: v\r\n\r\n" + b"x" * 600 + b"\r\n"
    assert c.sendmail("alice@example.com", "b@example.net", body).code == 250
    r = c.sendmail("alice@example.com", "b@example.net", body)
    assert r.raw == b"451 4.7.1 Hourly volume exceeded\r\n"
    assert len(cap.wait_messages(1)) == 1      # the second never went on


def test_failures_per_ip(warden_factory, capture_factory, tmp_path):
    cap = capture_factory(replies={
        "RCPT": lambda conn, line: (b"550 5.1.1 no such user"
                                    if b"nobody" in line else None)})
    w, _ = limited(warden_factory, cap, tmp_path, [{
        "name": "fails", "key": "client_ip", "count": "failures",
        "rate": "2/1h"}])
    c = session(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<nobody1@example.net>", expect=550)
    c.cmd("RCPT TO:<nobody2@example.net>", expect=550)
    time.sleep(0.1)
    r = c.cmd("RCPT TO:<real@example.net>")
    assert r.raw.startswith(b"451 4.7.1")
    assert not any(b"real@" in x for x in cap.connections[0].commands)


def test_dry_run_only_logs(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "watch", "key": "client_ip", "count": "messages",
        "rate": "1/1h", "dry_run": True}])
    c = session(w)
    for _ in range(3):
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RSET", expect=250)
    w.wait_log(r"dry-run: limit watch \(messages, 1/1h\) exceeded: .*"
               r"\(not enforced\)")


def test_exempt_network(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "tight", "key": "client_ip", "count": "messages",
        "rate": "1/1h", "exempt": {"networks": ["127.0.0.77/32"]}}])
    c = session(w, "127.0.0.77")
    for _ in range(3):
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RSET", expect=250)
    d = session(w, "127.0.0.78")
    d.cmd("MAIL FROM:<a@example.com>", expect=250)
    d.cmd("RSET", expect=250)
    assert d.cmd("MAIL FROM:<a@example.com>").code == 451


def test_escalation(warden_factory, capture, tmp_path):
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "esc", "key": "client_ip", "count": "messages",
        "rate": "1/1h",
        "escalate": {"after": 2, "within": "10m",
                     "reply": "554 5.7.1 Stop hammering"}}])
    c = session(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RSET", expect=250)
    codes = []
    for _ in range(4):
        codes.append(c.cmd("MAIL FROM:<a@example.com>").code)
    assert codes == [451, 451, 554, 554]


def test_scope_listener_and_auth(warden_factory, capture_factory, tmp_path):
    cap = capture_factory(auth_success_user="bob", auth_password="pw")
    w, _ = limited(warden_factory, cap, tmp_path, [{
        "name": "users", "key": "user", "count": "messages",
        "rate": "1/1h", "authenticated": True}])
    anon = session(w)
    for _ in range(2):
        anon.cmd("MAIL FROM:<a@example.com>", expect=250)
        anon.cmd("RSET", expect=250)
    c = session(w)
    c.cmd("AUTH PLAIN AGJvYgBwdw==", expect=235)
    c.cmd("MAIL FROM:<bob@example.com>", expect=250)
    c.cmd("RSET", expect=250)
    assert c.cmd("MAIL FROM:<bob@example.com>").code == 451


def test_reload_limits(warden_factory, capture, tmp_path):
    w, pol = limited(warden_factory, capture, tmp_path, [{
        "name": "a", "key": "client_ip", "count": "messages",
        "rate": "100/1h"}])
    c = session(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RSET", expect=250)
    pol.write_text(dump_yaml({"limits": [{
        "name": "a", "key": "client_ip", "count": "messages",
        "rate": "1/1h"}]}))
    assert w.reload().group(1) == ": ok"
    d = session(w, "127.0.0.98")     # a client the old rule never saw
    d.cmd("MAIL FROM:<a@example.com>", expect=250)
    d.cmd("RSET", expect=250)
    assert d.cmd("MAIL FROM:<a@example.com>").code == 451
    pol.write_text("limits:\n  - name: a\n    key: client_ip\n"
                   "    count: messages\n    rate: 1/fortnight\n")
    assert w.reload().group(1) == " failed"
    w.wait_log(r"%s:5: .*rate" % str(pol))
    e = session(w, "127.0.0.99")
    e.cmd("MAIL FROM:<a@example.com>", expect=250)
    e.cmd("RSET", expect=250)
    assert e.cmd("MAIL FROM:<a@example.com>").code == 451   # old rules


def test_limits_validated_by_warden_t(warden_bin, tmp_path):
    import subprocess
    pol = tmp_path / "bad.yaml"
    pol.write_text("limits:\n"
                   "  - name: x\n"
                   "    key: client_ip\n"
                   "    count: messages\n"
                   "    rate: 10/1m\n"
                   "  - name: x\n"                      # 6: duplicate
                   "    key: sender\n"                  # 7: not at connect
                   "    count: concurrent\n"
                   "    rate: 5\n"
                   "  - name: y\n"
                   "    key: client_ip\n"
                   "    count: messages\n"
                   "    rate: 10/1m\n"
                   "    networks: [192.0.2.300/24]\n")  # 14: bad CIDR
    cfg = tmp_path / "w.yaml"
    cfg.write_text("policies: [%s]\n" % pol)
    r = subprocess.run([warden_bin, "-t", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for line in (6, 7, 14):
        assert "%s:%d: " % (pol, line) in out, out


@pytest.mark.parametrize("key,first,second,other", [
    ("helo", {"helo": "bot.example"}, {"helo": "BOT.example"},
     {"helo": "human.example"}),
    ("sender", {"sender": "a@example.com"}, {"sender": "A@Example.com"},
     {"sender": "b@example.com"}),
    ("rcpt_domain", {"rcpt": "x@dest.example"}, {"rcpt": "y@DEST.example"},
     {"rcpt": "x@elsewhere.example"}),
])
def test_each_key(warden_factory, capture, tmp_path, key, first, second,
                  other):
    count = "recipients" if key == "rcpt_domain" else "messages"
    w, _ = limited(warden_factory, capture, tmp_path, [{
        "name": "k", "key": key, "count": count, "rate": "1/1h"}])

    def attempt(helo="h.example", sender="s@example.com",
                rcpt="r@example.net"):
        c = SMTPClient()
        c.connect(w.port)
        c.expect(220)
        c.cmd("EHLO " + helo, expect=250)
        code = c.cmd("MAIL FROM:<%s>" % sender).code
        if code == 250:
            code = c.cmd("RCPT TO:<%s>" % rcpt).code
        c.cmd("QUIT")
        return code

    assert attempt(**first) == 250
    assert attempt(**second) == 451          # same key, case ignored
    assert attempt(**other) == 250           # a different key
