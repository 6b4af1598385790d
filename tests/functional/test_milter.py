"""Warden as a milter behind a real Postfix (smtpd_milters): the same engine,
policies and store as the proxy, with verdicts given back as milter
replies. Postfix relays what it accepts to a capturing sink."""

import os
import signal
import smtplib
import time

import pytest

from redistest import RedisServer
from wardentest import (SMTPClient, dump_yaml, free_port, port_listening,
                        wait_for)


def milter_warden(warden_factory, tmp_path, policies=(), extra=None,
                  proxy=False, backend=None):
    """A Warden serving a milter on a free port (and no SMTP listener
    unless proxy is set). Returns (warden, milter_port)."""
    port = free_port()
    cfg = {"milter": {"listen": "inet:%d@127.0.0.1" % port},
           "policies": [str(p) for p in policies]}
    if not proxy:
        cfg["listen"] = []
    cfg.update(extra or {})
    w = warden_factory(cfg, backend)
    wait_for(lambda: port_listening(port) or not w.running(),
             message="milter port")
    assert w.running(), w.log()
    return w, port


def postfix_with_milter(postfix_factory, port, **kw):
    return postfix_factory(
        smtpd_milters="inet:127.0.0.1:%d" % port, milter_protocol="6",
        milter_default_action="tempfail", milter_connect_timeout="5s",
        milter_command_timeout="10s", **kw)


def policy(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(dump_yaml(doc))
    return p


def send(port, sender, rcpts, body=b"Subject: milter\r\n\r\nhello\r\n",
         source=None, ehlo="client.example"):
    """One transaction over a raw SMTP client; returns the replies' codes
    (MAIL, each RCPT, end of data) and the last reply."""
    c = SMTPClient()
    c.connect(port, source=source)
    greet = c.read_reply()
    codes = [greet.code]
    if greet.code != 220:
        c.close()
        return codes, greet
    c.cmd("EHLO " + ehlo)
    r = c.cmd("MAIL FROM:<%s>" % sender)
    codes.append(r.code)
    if r.code != 250:
        c.close()
        return codes, r
    ok = 0
    for rc in rcpts:
        r = c.cmd("RCPT TO:<%s>" % rc)
        codes.append(r.code)
        ok += r.code == 250
    if ok and codes[1] == 250:
        r = c.cmd("DATA")
        if r.code == 354:
            c.send(body + b".\r\n")
            r = c.read_reply()
        codes.append(r.code)
    try:
        c.cmd("QUIT")
    except Exception:
        pass
    c.close()
    return codes, r


def test_reject_by_policy_is_postfix_reply(warden_factory, postfix_factory,
                                           tmp_path):
    """A client refused by Warden's access policy at connect is refused by
    Postfix (554 greeting, Warden's reply in Postfix's log); another client
    passes and its message reaches the sink."""
    acc = policy(tmp_path, "access.yaml", {"access": [{
        "name": "blocked", "networks": ["127.0.0.66"], "action": "reject",
        "reply": "554 5.7.1 Blocked by Warden policy"}]})
    w, port = milter_warden(warden_factory, tmp_path, [acc])
    pf = postfix_with_milter(postfix_factory, port)
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       source=("127.0.0.66", 0))
    # at connect Postfix answers a milter's 5xx with its own 554 greeting
    # and logs the milter's reply
    assert codes == [554], (codes, last)
    # another client passes, and arrives at the sink
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       source=("127.0.0.67", 0))
    assert codes == [220, 250, 250, 250], (codes, last)
    msgs = pf.sink.wait_messages(1, timeout=30)
    assert len(msgs) == 1 and b"Subject: milter" in msgs[0]
    time.sleep(0.5)
    assert len(pf.sink.messages) == 1
    pf.wait_log(r"milter-reject: CONNECT from unknown\[127\.0\.0\.66\]: "
                r"554 5\.7\.1 Blocked by Warden policy")
    w.wait_log(r"session=\w+ reject: CONNECT from \[127\.0\.0\.66\]: 554 "
               r"5\.7\.1 Blocked by Warden policy; check=access")
    w.wait_log(r"tx=1 client=\[127\.0\.0\.67\]:\d+ helo=<client\.example> "
               r"tls=no auth=- from=<a@example\.org> to=<b@example\.com> "
               r"nrcpt=1 .*result=accepted queue_id=[0-9A-F]+")
    w.wait_log(r"disconnect client=\[127\.0\.0\.67\]:\d+ listener=milter "
               r"helo=<client\.example> .*transactions=1")


def test_rate_limit_tempfails_with_engine_text(warden_factory,
                                               postfix_factory, tmp_path):
    """A per-sender limit refuses the third MAIL with the limit's 4xx text;
    Postfix passes it to the client and the connection can go on."""
    lim = policy(tmp_path, "limits.yaml", {"limits": [{
        "name": "sender-burst", "key": "sender", "count": "messages",
        "rate": "2/1h",
        "reply": "451 4.7.1 Too much mail from this sender, try later"}]})
    w, port = milter_warden(warden_factory, tmp_path, [lim])
    pf = postfix_with_milter(postfix_factory, port)
    c = SMTPClient()
    c.connect(pf.port)
    c.expect(220)
    c.cmd("EHLO client.example", expect=250)
    results = []
    for i in range(3):
        r = c.cmd("MAIL FROM:<burst@example.org>")
        if r.code == 250:
            c.cmd("RCPT TO:<b%d@example.com>" % i, expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: burst %d\r\n\r\nx\r\n.\r\n" % i)
            r = c.read_reply()
        results.append(r)
    assert [r.code for r in results] == [250, 250, 451], results
    assert b"4.7.1 Too much mail from this sender" in results[2].raw
    # the same connection is reused by Postfix for the next transaction
    r = c.cmd("MAIL FROM:<other@example.org>")
    assert r.code == 250
    c.cmd("RCPT TO:<x@example.com>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: other\r\n\r\ny\r\n.\r\n")
    c.expect(250)
    c.cmd("QUIT")
    msgs = pf.sink.wait_messages(3, timeout=30)
    subjects = sorted(m.split(b"Subject: ")[1].split(b"\r\n")[0]
                      for m in msgs)
    assert subjects == [b"burst 0", b"burst 1", b"other"]
    w.wait_log(r"reject: MAIL from \[127\.0\.0\.1\]: 451 4\.7\.1 Too much "
               r"mail from this sender, try later; from=<burst@example\.org> "
               r"check=limit:sender-burst")


def test_reject_at_rcpt_and_end_of_message_counts(warden_factory,
                                                  postfix_factory, tmp_path):
    """A recipient-domain limit refuses at RCPT; the refused recipient is
    not in the transaction line, the accepted one is."""
    lim = policy(tmp_path, "limits.yaml", {"limits": [{
        "name": "one-per-domain", "key": "rcpt_domain", "action": "reject",
        "count": "recipients", "rate": "1/1h",
        "reply": "550 5.7.1 Recipient domain over its limit"}]})
    w, port = milter_warden(warden_factory, tmp_path, [lim])
    pf = postfix_with_milter(postfix_factory, port)
    codes, last = send(pf.port, "s@example.org",
                       ["one@example.com", "two@example.com",
                        "three@example.net"])
    assert codes == [220, 250, 250, 550, 250, 250], codes
    msgs = pf.sink.wait_messages(1, timeout=30)
    assert len(msgs) == 1
    w.wait_log(r"reject: RCPT from \[127\.0\.0\.1\]: 550 5\.7\.1 Recipient "
               r"domain over its limit; from=<s@example\.org> "
               r"to=<two@example\.com> check=limit:one-per-domain")
    w.wait_log(r"to=<one@example\.com>,<three@example\.net> nrcpt=2 "
               r"refused_rcpt=1 ")


def test_limit_shared_by_proxy_and_milter_in_redis(warden_factory,
                                                   postfix_factory,
                                                   capture, tmp_path):
    """One limit counted in a real Redis applies across both front ends:
    two messages through the proxy use up a 3/1h allowance, the milter
    path gets one more and then the limit's reply."""
    redis = RedisServer()
    try:
        lim = policy(tmp_path, "limits.yaml", {"limits": [{
            "name": "per-client", "key": "client_ip", "count": "messages",
            "rate": "3/1h",
            "reply": "450 4.7.1 Client over its hourly limit"}]})
        store = {"store": {"type": "redis",
                           "redis": "127.0.0.1:%d" % redis.port}}
        proxy = warden_factory({"policies": [str(lim)], **store}, capture)
        w, port = milter_warden(warden_factory, tmp_path, [lim],
                                extra=store)
        pf = postfix_with_milter(postfix_factory, port)
        got = []
        for i in range(2):
            codes, _ = send(proxy.port, "p@example.org", ["r@example.com"])
            got.append(codes[-1])
        for i in range(2):
            codes, last = send(pf.port, "m@example.org", ["r@example.com"])
            got.append(codes[1])
        assert got == [250, 250, 250, 450], got
        assert b"Client over its hourly limit" in last.raw
        assert len(pf.sink.wait_messages(1, timeout=30)) == 1
        assert len(capture.wait_messages(2)) == 2
    finally:
        redis.stop()


def test_message_reaches_engine_whole(warden_factory, postfix_factory,
                                      tmp_path):
    """Headers and body chunks are gathered into the message the engine
    sees at end of data: its size on the transaction line is the size of
    what Postfix sent (headers, blank line and a 200 KB body)."""
    w, port = milter_warden(warden_factory, tmp_path)
    pf = postfix_with_milter(postfix_factory, port)
    body = b"".join(b"line %06d of a long body\r\n" % i for i in range(8000))
    msg = (b"From: a@example.org\r\nTo: b@example.com\r\n"
           b"Subject: big\r\n\r\n" + body)
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail("a@example.org", ["b@example.com"], msg)
    got = pf.sink.wait_messages(1, timeout=30)[0]
    assert body in got
    m = w.wait_log(r"from=<a@example\.org> .* size=(\d+) .*result=accepted")
    size = int(m.group(1))
    # Postfix adds its own Received: header before the milter sees the
    # headers, so the engine saw at least the client's message
    assert size >= len(msg)


def test_milter_down_follows_default_action(warden_factory, postfix_factory,
                                            tmp_path):
    """With Warden stopped, Postfix applies milter_default_action
    (tempfail here): the client hears 451 and nothing is delivered."""
    w, port = milter_warden(warden_factory, tmp_path)
    pf = postfix_with_milter(postfix_factory, port)
    t0 = time.monotonic()
    assert w.stop() == 0
    # SIGTERM stops libmilter's listener too, without waiting for a timeout
    assert time.monotonic() - t0 < 5
    w.wait_log(r"stopped")
    codes, last = send(pf.port, "a@example.org", ["b@example.com"])
    assert codes[-1] // 100 == 4, (codes, last)
    time.sleep(0.5)
    assert pf.sink.messages == []


def test_reload_and_sighup_keep_the_milter(warden_factory, postfix_factory,
                                           tmp_path):
    """SIGHUP reloads policies for new milter connections; libmilter does
    not take the signal (the milter keeps serving)."""
    acc = policy(tmp_path, "access.yaml", {"access": [{
        "name": "blocked", "networks": ["127.0.0.70"], "action": "reject"}]})
    w, port = milter_warden(warden_factory, tmp_path, [acc])
    pf = postfix_with_milter(postfix_factory, port)
    codes, _ = send(pf.port, "a@example.org", ["b@example.com"],
                    source=("127.0.0.71", 0))
    assert codes[-1] == 250
    acc.write_text(dump_yaml({"access": [{
        "name": "blocked", "networks": ["127.0.0.71"], "action": "reject",
        "reply": "554 5.7.1 Now blocked"}]}))
    for _ in range(5):
        w.signal(signal.SIGHUP)
        time.sleep(0.05)
    w.wait_log(r"reload: ok")
    time.sleep(0.3)
    assert w.running()
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       source=("127.0.0.71", 0))
    assert codes == [554], (codes, last)
    pf.wait_log(r"milter-reject: CONNECT from unknown\[127\.0\.0\.71\]: "
                r"554 5\.7\.1 Now blocked")
    codes, _ = send(pf.port, "a@example.org", ["b@example.com"],
                    source=("127.0.0.70", 0))
    assert codes[-1] == 250


def test_milter_config_errors(tmp_path):
    """Bad milter sockets are file:line errors from warden -t."""
    import subprocess
    from wardentest import _warden_bin
    cfg = tmp_path / "w.yaml"
    cfg.write_text("listen: []\nmilter:\n  listen: \"inet:99999@127.0.0.1\"\n")
    r = subprocess.run([_warden_bin(), "-t", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "%s:3:" % cfg in r.stderr and "1-65535" in r.stderr, r.stderr
    cfg.write_text("listen: []\n")
    r = subprocess.run([_warden_bin(), "-t", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "or a milter" in r.stderr, r.stderr
    cfg.write_text("listen: []\nmilter: {listen: \"unix:/run/w.sock\"}\n")
    r = subprocess.run([_warden_bin(), "-t", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_content_scoring_through_milter(warden_factory, postfix_factory,
                                        tmp_path):
    """Scoring runs at end of message in milter mode too: a tagged message
    arrives at the sink with Warden's X-Spam-* fields inserted by Postfix
    (and a forged one deleted), a message over the reject threshold gets
    Warden's 550 from Postfix and never reaches the sink."""
    rules = tmp_path / "local.cf"
    rules.write_text("body LOCAL_TAG /tag me please/\nscore LOCAL_TAG 6\n"
                     "body LOCAL_BAD /reject me please/\nscore LOCAL_BAD 20\n")
    pol = tmp_path / "scoring.yaml"
    pol.write_text("scoring:\n  rules: [local.cf]\n  thresholds:\n"
                   "    - tag: 5\n      tempfail: 10\n      reject: 15\n"
                   "      reject_reply: \"550 5.7.1 Spam score too high\"\n")
    w, port = milter_warden(warden_factory, tmp_path, [pol])
    pf = postfix_with_milter(postfix_factory, port)
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       body=b"Subject: s\r\nX-Spam-Flag: YES\r\n\r\n"
                            b"please reject me please\r\n")
    assert codes[-1] == 550 and b"5.7.1 Spam score too high" in last.raw, \
        (codes, last)
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       body=b"Subject: t\r\nX-Spam-Flag: forged\r\n\r\n"
                            b"tag me please\r\n")
    assert codes[-1] == 250, (codes, last)
    msgs = pf.sink.wait_messages(1, timeout=30)
    assert len(msgs) == 1
    got = msgs[0]
    assert b"X-Spam-Flag: YES\r\n" in got and b"X-Spam-Score: 6.0" in got
    assert b"X-Spam-Flag: forged" not in got
    assert b"tag me please" in got
    time.sleep(0.5)
    assert len(pf.sink.messages) == 1
    w.wait_log(r"result=accepted queue_id=\w+")
    w.wait_log(r"check=- score=6\.0 result=accepted")
