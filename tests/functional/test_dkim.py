"""DKIM verification at end of data, end to end: messages signed by dkimpy
(the independent implementation), keys served by a real DNS server on
loopback. Every signature's result is in the one Authentication-Results
field (dkim=pass header.d= header.s= header.a= header.b=): rsa-sha256 and
ed25519-sha256, relaxed and simple canonicalization, l=, several
signatures; a tampered body or header is a fail; no key is permerror; a
stopped DNS server is temperror (never a pass), answered as the policy
says; the work is bounded (max_signatures, max_message_size)."""

import re
import time

import pytest

from dkimtest import Key, authres, header_fields
from dnstest import DNSTestServer
from wardentest import SMTPClient, check_config

MSG = (b"From: Alice <alice@example.com>\r\n"
       b"To: Bob <bob@example.net>\r\n"
       b"Subject: DKIM test\r\n"
       b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <dkim-test-1@example.com>\r\n"
       b"\r\n"
       b"Hello Bob.\r\n"
       b".A line that starts with a dot (dot-stuffed on the wire).\r\n"
       b"\r\n"
       b"Bye.\r\n")

RSA = Key.dkimpy_rsa("test")
ED = Key.dkimpy_ed25519("ed")
OTHER = Key.new_rsa("s2048")

RECORDS = (RSA.records("example.com") + ED.records("example.com") +
           OTHER.records("example.org") +
           [("revoked._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=")])

POLICY = """\
dkim:
  fail: reject 550 5.7.20 "DKIM says no"
  temperror: tempfail 451 4.7.20 "DKIM key lookup failed, try later"
"""


@pytest.fixture(scope="module")
def dns():
    d = DNSTestServer(RECORDS)
    yield d
    d.stop()


def dkim_warden(warden_factory, backend, tmp_path, dns_address,
                policy=POLICY, timeout="1s"):
    pol = tmp_path / "dkim.yaml"
    pol.write_text(policy)
    return warden_factory({"policies": [str(pol)],
                           "dns": {"servers": [dns_address],
                                   "timeout": timeout}}, backend)


def send(w, message):
    """Send message; return the final Reply."""
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo("client.test")
    r = c.sendmail("alice@example.com", ["bob@example.net"], message)
    c.cmd("QUIT")
    return r


def dkim_results(ar):
    """[(result, {prop: value})] for each dkim= in an A-R value."""
    out = []
    for part in ar.split(";")[1:]:
        part = part.strip()
        m = re.match(r"dkim=(\w+)(?: \([^)]*\))?(.*)", part)
        if m:
            props = dict(re.findall(r'([\w.]+)=("[^"]*"|\S+)', m.group(2)))
            props = {k: v.strip('"') for k, v in props.items()}
            out.append((m.group(1), props))
    return out


def b_tag(sig):
    """b= of a DKIM-Signature field, whitespace removed."""
    v = re.search(rb"\bb=([^;]*)", sig.replace(b"\r\n", b"")).group(1)
    return re.sub(rb"\s", b"", v).decode()


def relayed(w, capture, message):
    r = send(w, message)
    assert r.code == 250, r
    return capture.wait_messages(1)[-1]


@pytest.mark.parametrize("canon", [(b"relaxed", b"simple"),
                                   (b"simple", b"simple"),
                                   (b"relaxed", b"relaxed"),
                                   (b"simple", b"relaxed")])
def test_rsa_pass_every_canonicalization(warden_factory, capture, tmp_path,
                                         dns, canon):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sig = RSA.sign(MSG, "example.com", canon=canon)
    msg = relayed(w, capture, sig + MSG)
    ar = authres(msg)
    assert ar.startswith("warden.test; dkim=pass ")
    [(res, props)] = dkim_results(ar)
    assert res == "pass"
    assert props["header.d"] == "example.com"
    assert props["header.s"] == "test"
    assert props["header.a"] == "rsa-sha256"
    assert props["header.b"] == b_tag(sig)[:8]
    w.wait_log(r"dkim=pass signatures=1 sig1=pass d=<example\.com> "
               r"s=<test> a=rsa-sha256")


def test_ed25519_pass(warden_factory, capture, tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sig = ED.sign(MSG, "example.com")
    msg = relayed(w, capture, sig + MSG)
    [(res, props)] = dkim_results(authres(msg))
    assert (res, props["header.a"], props["header.s"]) == \
        ("pass", "ed25519-sha256", "ed")


def test_rfc8463_example_signatures(warden_factory, capture, tmp_path):
    """RFC 8463's own example: one message signed by rsa-sha256 and by
    ed25519-sha256 (dkimpy's rfc6376.signed.msg), keys as published."""
    zone = [("brisbane._domainkey.football.example.com", "TXT",
             "v=DKIM1; k=ed25519; "
             "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
            ("test._domainkey.football.example.com", "TXT",
             "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkH"
             "lOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/"
             "byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hs"
             "tT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB")]
    d = DNSTestServer([(n, t, [v[i:i + 255] for i in range(0, len(v), 255)])
                       for n, t, v in zone])
    try:
        from dkimtest import _read
        raw = _read("rfc6376.signed.msg").replace(b"\r\n", b"\n") \
                                         .replace(b"\n", b"\r\n")
        w = dkim_warden(warden_factory, capture, tmp_path, d.address)
        msg = relayed(w, capture, raw)
        res = dkim_results(authres(msg))
        assert sorted((r, p["header.a"]) for r, p in res) == \
            [("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]
    finally:
        d.stop()


def test_body_length_tag(warden_factory, capture, tmp_path, dns):
    """l= signs part of the body: text added after it keeps the pass."""
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sig = RSA.sign(MSG, "example.com", length=True)
    assert b"l=" in sig
    msg = relayed(w, capture, sig + MSG + b"Appended by a mailing list.\r\n")
    [(res, _)] = dkim_results(authres(msg))
    assert res == "pass"


def test_several_signatures_each_reported(warden_factory, capture, tmp_path,
                                          dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    m = MSG
    for key, dom in ((RSA, "example.com"), (ED, "example.com"),
                     (OTHER, "example.org")):
        m = key.sign(m, dom) + m
    msg = relayed(w, capture, m)
    res = dkim_results(authres(msg))
    assert [(r, p["header.d"], p["header.s"]) for r, p in res] == [
        ("pass", "example.org", "s2048"), ("pass", "example.com", "ed"),
        ("pass", "example.com", "test")]
    w.wait_log(r"dkim=pass signatures=3 ")


def test_tampered_body_fails_and_is_rejected(warden_factory, capture,
                                             tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sig = RSA.sign(MSG, "example.com")
    r = send(w, sig + MSG.replace(b"Hello Bob.", b"Hello Eve."))
    assert r.raw == b"550 5.7.20 DKIM says no\r\n"
    assert capture.messages == []
    w.wait_log(r'dkim=fail signatures=1 sig1=fail d=<example\.com> '
               r's=<test> a=rsa-sha256 reason="body hash mismatch"')
    w.wait_log(r"reject: END-OF-MESSAGE from \[127\.0\.0\.1\]: 550 5\.7\.20 "
               r".*check=dkim:fail")


def test_tampered_header_fails(warden_factory, capture, tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address,
                    policy="dkim:\n")   # tag only
    sig = ED.sign(MSG, "example.com")
    msg = relayed(w, capture,
                  sig + MSG.replace(b"Subject: DKIM test",
                                    b"Subject: DKIM test, changed"))
    [(res, props)] = dkim_results(authres(msg))
    assert res == "fail" and props["header.a"] == "ed25519-sha256"
    assert "signature verification failed" in authres(msg)


def test_one_good_one_tampered(warden_factory, capture, tmp_path, dns):
    """A signature that fails next to one that passes: the message
    passes (RFC 6376 6.1), each signature reported as it is."""
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    good = OTHER.sign(MSG, "example.org", headers=[b"from", b"to"])
    bad = RSA.sign(MSG, "example.com")
    m = MSG.replace(b"Subject: DKIM test", b"Subject: changed")
    msg = relayed(w, capture, bad + good + m)
    assert [r for r, _ in dkim_results(authres(msg))] == ["fail", "pass"]


def test_rsa_sha1_is_policy(warden_factory, capture, tmp_path, dns):
    """RFC 8301: rsa-sha1 verifies but is not acceptable."""
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sha1 = Key(b"rsa-sha1", "test", RSA.private, RSA.record)
    msg = relayed(w, capture, sha1.sign(MSG, "example.com") + MSG)
    [(res, props)] = dkim_results(authres(msg))
    assert (res, props["header.a"]) == ("policy", "rsa-sha1")


def test_unsigned_is_none(warden_factory, capture, tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    msg = relayed(w, capture, MSG)
    assert authres(msg) == "warden.test; dkim=none"
    w.wait_log(r"dkim=none signatures=0 ")


def test_no_key_is_permerror(warden_factory, capture, tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    sig = Key.new_rsa("missing", bits=1024).sign(MSG, "example.com")
    msg = relayed(w, capture, sig + MSG)
    [(res, props)] = dkim_results(authres(msg))
    assert res == "permerror" and props["header.s"] == "missing"
    assert "(no key for signature)" in authres(msg)


def test_revoked_key_is_permerror(warden_factory, capture, tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    k = Key.dkimpy_rsa("revoked")
    msg = relayed(w, capture, k.sign(MSG, "example.com") + MSG)
    [(res, _)] = dkim_results(authres(msg))
    assert res == "permerror"


def test_dns_stopped_is_temperror(warden_factory, capture, tmp_path):
    d = DNSTestServer(RECORDS)
    w = dkim_warden(warden_factory, capture, tmp_path, d.address)
    d.stop()
    sig = RSA.sign(MSG, "example.com")
    start = time.monotonic()
    r = send(w, sig + MSG)
    assert r.raw == b"451 4.7.20 DKIM key lookup failed, try later\r\n"
    assert time.monotonic() - start < 8
    assert capture.messages == []
    w.wait_log(r'dkim=temperror signatures=1 sig1=temperror d=<example\.com>'
               r' .*reason="key lookup failed"')


def test_dns_silent_temperror_tagged_when_accepted(warden_factory, capture,
                                                   tmp_path):
    silent = DNSTestServer(RECORDS, silent=True)
    try:
        w = dkim_warden(warden_factory, capture, tmp_path, silent.address,
                        policy="dkim:\n")
        msg = relayed(w, capture, RSA.sign(MSG, "example.com") + MSG)
        [(res, _)] = dkim_results(authres(msg))
        assert res == "temperror"       # never a pass
    finally:
        silent.stop()


def test_max_signatures_bounds_the_work(warden_factory, capture, tmp_path,
                                        dns):
    """Seven signatures, two checked: the From:-domain one first (DMARC
    needs it) even though it is last in the header."""
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address,
                    policy="dkim:\n  max_signatures: 2\n")
    m = RSA.sign(MSG, "example.com")
    for i in range(6):
        m = OTHER.sign(MSG, "example.org") + m
    msg = relayed(w, capture, m + MSG)
    res = dkim_results(authres(msg))
    assert len(res) == 7
    checked = [(r, p["header.d"]) for r, p in res if r == "pass"]
    assert sorted(checked) == [("pass", "example.com"),
                               ("pass", "example.org")]
    assert authres(msg).count("not checked: too many signatures") == 5
    assert len([q for q in dns.zone.queries
                if q[0].endswith("._domainkey.example.org.")]) >= 1


def test_message_over_max_size_is_not_verified(warden_factory, capture,
                                               tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address,
                    policy="dkim:\n  max_message_size: 2k\n")
    big = MSG + (b"z" * 70 + b"\r\n") * 40
    msg = relayed(w, capture, RSA.sign(big, "example.com") + big)
    assert authres(msg) == ("warden.test; dkim=neutral "
                            "(message too large to verify)")


def test_bdat_message_is_verified(warden_factory, capture, tmp_path, dns):
    """BDAT content is not dot-stuffed: the same message passes."""
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    data = RSA.sign(MSG, "example.com") + MSG
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo("client.test")
    c.cmd("MAIL FROM:<alice@example.com>", expect=250)
    c.cmd("RCPT TO:<bob@example.net>", expect=250)
    c.send(b"BDAT %d LAST\r\n" % len(data) + data)
    assert c.read_reply().code == 250
    msg = capture.wait_messages(1)[0]
    [(res, _)] = dkim_results(authres(msg))
    assert res == "pass"


def test_forged_authentication_results_removed(warden_factory, capture,
                                               tmp_path, dns):
    w = dkim_warden(warden_factory, capture, tmp_path, dns.address)
    forged = (b"Authentication-Results: warden.test; dkim=pass "
              b"header.d=bank.example\r\n"
              b"Authentication-Results: mx.elsewhere.example; spf=pass\r\n")
    msg = relayed(w, capture, forged + MSG)
    fields = header_fields(msg, "Authentication-Results")
    assert fields == ["warden.test; dkim=none",
                      "mx.elsewhere.example; spf=pass"]


def test_config_check_reports_bad_dkim_section(tmp_path):
    pol = tmp_path / "bad.yaml"
    pol.write_text("dkim:\n"
                   "  fail: bounce\n"
                   "  pass: reject\n"
                   "  temperror: tempfail 550 5.7.1 wrong class\n"
                   "  max_signatures: 40\n")
    rc, out = check_config({"policies": [str(pol)]})
    assert rc != 0
    assert "%s:2: dkim.fail: \"bounce\": expected accept" % pol in out
    assert "%s:3: dkim.pass: a pass is never refused" % pol in out
    assert "%s:4: dkim.temperror:" % pol in out
    assert "%s:5: dkim.max_signatures:" % pol in out
