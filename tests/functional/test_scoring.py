"""Content scoring end to end: a scoring section in a policy file with
SpamAssassin-style rule files. GTUBE is rejected before the backend sees
any of it; a tagged message reaches the backend with X-Spam-* headers and
otherwise byte for byte; thresholds per listener; forged X-Spam-* fields
removed; SIGHUP reloads the rules and a broken rule file keeps the old
ones; `warden -t` names a bad rule's file:line; `warden score` scores
files without SMTP."""

import os
import re
import subprocess
import time

import pytest

from redistest import RedisServer
from wardentest import SMTPClient, dot_stuff, check_config, wait_for

SRC = os.environ.get("WARDEN_SOURCE_DIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED_RULES = os.path.abspath(os.path.join(SRC, "rules"))
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

LOCAL_RULES = """\
# test rules
body     LOCAL_TAG      /tag me please/
score    LOCAL_TAG      6
describe LOCAL_TAG      a phrase worth tagging
body     LOCAL_TEMP     /defer me please/
score    LOCAL_TEMP     11
"""


def policy(tmp_path, rules_text=LOCAL_RULES, thresholds=None, extra="",
           shipped=False):
    """A scoring policy with a local rule file (after the shipped rules
    with shipped=True: their fitted scores change, so only GTUBE tests
    rely on them); returns (policy path, local rules path)."""
    local = tmp_path / "local.cf"
    local.write_text(rules_text)
    pol = tmp_path / "scoring.yaml"
    if thresholds is None:
        thresholds = ("    - tag: 5\n      tempfail: 10\n      reject: 15\n"
                      "      reject_reply: \"550 5.7.1 Spam score too high\"\n")
    rules = "[%s, local.cf]" % SHIPPED_RULES if shipped else "[local.cf]"
    pol.write_text("scoring:\n"
                   "  rules: %s\n"
                   "  exempt: {authenticated: true}\n"
                   "  thresholds:\n%s%s" % (rules, thresholds, extra))
    return pol, local


def start(warden_factory, backend, pol, **config):
    cfg = {"policies": [str(pol)]}
    cfg.update(config)
    return warden_factory(cfg, backend)


def message(body, headers=b""):
    return (b"From: Alice <alice@example.org>\r\n"
            b"To: bob@example.com\r\n"
            b"Subject: scoring test\r\n"
            b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            b"Message-Id: <t1@example.org>\r\n" + headers +
            b"\r\n" + body)


def send(port, msg, listener_source=None):
    c = SMTPClient(port)
    c.expect(220)
    c.ehlo()
    r = c.sendmail("alice@example.org", ["bob@example.com"], msg)
    c.cmd("QUIT")
    return r


def test_gtube_rejected(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path, shipped=True)
    w = start(warden_factory, capture, pol)
    r = send(w.port, message(b"This is the GTUBE:\r\n" + GTUBE + b"\r\n"))
    assert r.code == 550
    assert r.raw == b"550 5.7.1 Spam score too high\r\n"
    w.wait_log(r"score=\d{3,4}\.\d required=5\.0 action=reject "
               r"tests=\S*GTUBE")
    w.wait_log(r"check=score:\d{3,4}\.\d score=\d{3,4}\.\d result=refused")
    # the backend never got the message (no DATA, so no message bytes)
    assert capture.messages == []
    assert all(not cmd.upper().startswith(b"DATA")
               for conn in capture.connections for cmd in conn.commands)


def test_tagged_message_byte_exact(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path)
    w = start(warden_factory, capture, pol)
    body = (b"Hello Bob,\r\n"
            b".a line that starts with a dot\r\n"
            b"..and one with two\r\n"
            b"tag me please\r\n"
            b"8bit \xc3\xa9t\xc3\xa9 and trailing blanks   \r\n"
            b"\r\n"
            b"-- \r\n"
            b"Alice\r\n")
    msg = message(body)
    r = send(w.port, msg)
    assert r.code == 250
    got = capture.wait_messages(1)[0]
    lines = got.split(b"\r\n")
    assert lines[0] == b"X-Spam-Flag: YES"
    assert lines[1].startswith(b"X-Spam-Score: 6.")
    assert lines[2].startswith(b"X-Spam-Status: Yes, score=6.")
    assert b"required=5.0" in lines[2]
    assert b"LOCAL_TAG" in lines[2]
    added = b"\r\n".join(lines[:3]) + b"\r\n"
    # everything after the added fields is what the client sent
    assert got == added + dot_stuff(msg)
    w.wait_log(r"action=tag tests=\S*LOCAL_TAG")
    w.wait_log(r"tx=1 .* check=- score=6\.\d result=sent")


def test_clean_message_untouched(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path)
    w = start(warden_factory, capture, pol)
    msg = message(b"Shall we meet for lunch at noon?\r\n\r\nAlice\r\n")
    assert send(w.port, msg).code == 250
    assert capture.wait_messages(1)[0] == dot_stuff(msg)
    w.wait_log(r"action=accept")


def test_tempfail_threshold(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path)
    w = start(warden_factory, capture, pol)
    r = send(w.port, message(b"defer me please\r\n"))
    assert r.code == 451 and r.raw.startswith(b"451 4.7.1")
    assert capture.messages == []


def test_forged_headers_removed(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path)
    w = start(warden_factory, capture, pol)
    forged = (b"X-Spam-Flag: NO\r\n"
              b"X-Spam-Status: No, score=-100\r\n"
              b"  continued\r\n")
    msg = message(b"tag me please\r\n", headers=forged)
    assert send(w.port, msg).code == 250
    got = capture.wait_messages(1)[0]
    assert b"X-Spam-Flag: NO" not in got
    assert b"score=-100" not in got and b"continued" not in got
    assert got.count(b"X-Spam-Flag: YES") == 1
    # and below the tag threshold too: a forged verdict never passes
    msg = message(b"nothing to see\r\n", headers=forged)
    assert send(w.port, msg).code == 250
    got = capture.wait_messages(2)[1]
    assert b"X-Spam" not in got
    assert got == dot_stuff(message(b"nothing to see\r\n"))


def test_thresholds_per_listener(warden_factory, capture, tmp_path):
    pol, _ = policy(tmp_path, shipped=True, thresholds=(
        "    - listeners: [inbound]\n      tag: 5\n      reject: 15\n"
        "    - listeners: [relaxed]\n      tag: 5\n"))
    w = start(warden_factory, capture, pol,
              listen=[{"name": "inbound"}, {"name": "relaxed"},
                      {"name": "unscored"}])
    ports = [int(x["address"].rsplit(":", 1)[1]) for x in w.config["listen"]]
    gtube = message(GTUBE + b"\r\n")
    assert send(ports[0], gtube).code == 550
    # tag only on "relaxed": GTUBE goes through, tagged
    assert send(ports[1], gtube).code == 250
    got = capture.wait_messages(1)[0]
    assert got.startswith(b"X-Spam-Flag: YES\r\n")
    assert re.search(rb"tests=\S*GTUBE", got)
    # no entry for "unscored": not scored at all
    assert send(ports[2], gtube).code == 250
    assert capture.wait_messages(2)[1] == dot_stuff(gtube)


def near_policy(tmp_path, limits, scoring_extra=""):
    """A scoring policy where WARDEN_LIMIT_NEAR alone tags (6 > 5), with
    the limits given (YAML flow mappings, one per list item)."""
    return policy(tmp_path,
                  rules_text=LOCAL_RULES + "score WARDEN_LIMIT_NEAR 6\n",
                  extra=scoring_extra + "limits:\n" +
                  "".join("  - {%s}\n" % l for l in limits))[0]


LUNCH = message(b"Shall we meet for lunch at noon?\r\n")


@pytest.mark.parametrize("store, limit_near, first_tagged",
                         [("memory", None, 4), ("redis", "50%", 3)])
def test_limit_near_scores(warden_factory, capture, tmp_path, store,
                           limit_near, first_tagged):
    """A client that has used limit_near (80% by default) of an enforced
    limit scores WARDEN_LIMIT_NEAR. 5 messages an hour: the 4th is 80%
    of it, the 3rd 60%. A dry-run limit already spent by then does not
    count, and the 6th message is refused by the limit itself. Counted
    in memory, and in a real Redis (whose script reports what is left)."""
    pol = near_policy(
        tmp_path,
        ["name: five-an-hour, key: client_ip, count: messages, rate: 5/1h",
         "name: watch-only, key: sender, count: messages, rate: 1/1h,"
         " dry_run: true"],
        "  limit_near: \"%s\"\n" % limit_near if limit_near else "")
    redis = RedisServer() if store == "redis" else None
    try:
        check_limit_near(warden_factory, capture, pol,
                         {"type": "redis", "redis": redis.address}
                         if redis else {"type": "memory"}, first_tagged)
    finally:
        if redis:
            redis.stop()


def check_limit_near(warden_factory, capture, pol, store, first_tagged):
    w = start(warden_factory, capture, pol, store=store)
    msg = LUNCH
    for n in range(1, 6):
        assert send(w.port, msg).code == 250
        got = capture.wait_messages(n)[n - 1]
        if n < first_tagged:
            assert got == dot_stuff(msg), "message %d tagged" % n
        else:
            assert got.startswith(b"X-Spam-Flag: YES\r\n"), n
            status = re.search(rb"^X-Spam-Status: (.*)$", got, re.M)
            assert status and b"WARDEN_LIMIT_NEAR" in status.group(1), n
            assert got.endswith(dot_stuff(msg))
    w.wait_log(r"action=tag tests=WARDEN_LIMIT_NEAR")
    w.wait_log(r"dry-run: limit watch-only")
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    assert c.cmd("MAIL FROM:<alice@example.org>").code // 100 == 4
    c.cmd("QUIT")
    assert len(capture.messages) == 5


def test_limit_near_counts_failures(warden_factory, capture_factory,
                                    tmp_path):
    """Failure limits are only looked at (peeked) at MAIL and RCPT: 3 of
    5 failures is 60% and does not hit, the 4th makes 80% and does."""
    cap = capture_factory(replies={
        "RCPT": lambda conn, line: (b"550 5.1.1 no such user"
                                    if b"nobody" in line else None)})
    pol = near_policy(tmp_path, ["name: fails, key: client_ip,"
                                 " count: failures, rate: 5/1h"])
    w = start(warden_factory, cap, pol)
    msg = LUNCH
    for n, nobodies in enumerate([3, 1], 1):
        c = SMTPClient(w.port)
        c.expect(220)
        c.ehlo()
        c.cmd("MAIL FROM:<alice@example.org>", expect=250)
        for i in range(nobodies):
            c.cmd("RCPT TO:<nobody%d@example.com>" % i, expect=550)
        time.sleep(0.1)  # failures are counted after the reply
        c.cmd("RCPT TO:<bob@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        c.send(dot_stuff(msg) + b".\r\n")
        assert c.read_reply().code == 250
        c.cmd("QUIT")
        got = cap.wait_messages(n)[n - 1]
        tagged = re.search(rb"^X-Spam-Status: Yes.*WARDEN_LIMIT_NEAR", got,
                           re.M)
        assert bool(tagged) == (n == 2), (n, got[:300])


def test_limit_near_counts_concurrent_connections(warden_factory, capture,
                                                  tmp_path):
    """A concurrency limit counts at connect, for the whole session: the
    4th of 5 connections at once hits; once the others have closed, a new
    connection is 1 of 5 and does not."""
    pol = near_policy(tmp_path, ["name: five-at-once, key: client_ip,"
                                 " count: concurrent, rate: 5"])
    w = start(warden_factory, capture, pol)
    msg = LUNCH
    idle = []
    for _ in range(3):
        c = SMTPClient(w.port)
        c.expect(220)
        idle.append(c)
    assert send(w.port, msg).code == 250
    assert b"WARDEN_LIMIT_NEAR" in capture.wait_messages(1)[0]
    for c in idle:
        c.cmd("QUIT", expect=221)
        c.close()
    # the slots are given back before a session logs its disconnect
    wait_for(lambda: w.log().count(" disconnect client=") >= 4, 10)
    assert send(w.port, msg).code == 250
    assert capture.wait_messages(2)[1] == dot_stuff(msg)


def test_reload_rules_and_bad_file_keeps_old(warden_factory, capture,
                                             tmp_path):
    pol, local = policy(tmp_path, rules_text="body FIRST /first rule/\n")
    w = start(warden_factory, capture, pol, workers=2)
    msg = message(b"this hits the second rule\r\n")
    assert send(w.port, msg).code == 250

    local.write_text("body SECOND /second rule/\nscore SECOND 20\n")
    mark = w.log_mark()
    assert w.reload().group(1) == ": ok"
    for n in range(2):
        w.wait_log(r"worker %d: new configuration in use" % n, since=mark)
    assert send(w.port, msg).code == 550
    w.wait_log(r"action=reject tests=SECOND", since=mark)

    # a rule that does not compile: the reload fails with file:line, and
    # the rules in force stay
    local.write_text("body SECOND /second rule/\nscore SECOND 20\n"
                     "body BROKEN /unclosed (group/\n")
    mark = w.log_mark()
    assert w.reload().group(1) == " failed"
    w.wait_log(r"%s:3: body BROKEN: bad regex" % str(local), since=mark)
    assert send(w.port, msg).code == 550
    assert w.running()


def test_warden_t_reports_rule_errors(tmp_path):
    pol, local = policy(tmp_path,
                        rules_text="body OK /fine/\n"
                                   "meta BAD_META (OK &&\n"
                                   "body BAD_RE /a[b/\n"
                                   "header FOO eval:check_for_something()\n")
    rc, out = check_config({"policies": [str(pol)]})
    assert rc != 0
    assert "%s:2: meta BAD_META" % local in out
    assert "%s:3: body BAD_RE: bad regex" % local in out
    # a good file: ok, and the skipped eval line is summed up, not an error
    local.write_text("body OK /fine/\nheader FOO eval:check_for_something()\n")
    rc, out = check_config({"policies": [str(pol)]})
    assert rc == 0, out
    assert "configuration ok" in out
    assert "skipped 1 line: eval tests" in out
    assert "(first at %s:2)" % local in out


def test_score_command(warden_bin, tmp_path):
    spam = tmp_path / "gtube.eml"
    # an mbox "From " line and LF line ends, as mail stores keep messages
    spam.write_bytes(b"From someone Mon Jan  1 00:00:00 2024\n"
                     b"Subject: test\n\n" + GTUBE + b"\n")
    ham = tmp_path / "ham.eml"
    ham.write_bytes(b"From: Alice <alice@example.org>\nTo: bob@example.com\n"
                    b"Subject: hello\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
                    b"Message-Id: <h1@example.org>\n\nLunch?\n")
    r = subprocess.run([warden_bin, "score", "--rules", SHIPPED_RULES, "-v",
                        str(spam), str(ham)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert re.search(r"%s: score=\d{3,4}\.\d+ tests=\S*GTUBE" % re.escape(
        str(spam)), out)
    assert "GTUBE" in out and "Generic Test for Unsolicited Bulk Email" in out
    assert "messages=2 flagged=1 (50.0%)" in out
