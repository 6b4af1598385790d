"""SPF at MAIL FROM, end to end, with a real DNS server on loopback: a fail
is refused as the policy says and nothing of the transaction reaches the
backend; a pass goes through tagged with Authentication-Results; the null
sender is checked as postmaster@HELO; with the DNS server stopped or
silent the answer is the policy's temperror reply, within a bounded time,
never a pass; and warden -t reports a bad spf section with file:line."""

import time

import pytest

from dnstest import DNSTestServer
from wardentest import SMTPClient, check_config

RECORDS = [
    ("pass.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
    ("fail.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"),
    ("soft.test", "TXT", "v=spf1 ~all"),
    ("helo.test", "TXT", "v=spf1 a -all"),
    ("helo.test", "A", "127.0.0.1"),
    ("void.test", "TXT", "v=spf1 a:x1.void.test a:x2.void.test "
                         "a:x3.void.test -all"),
    ("other.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
]

POLICY = """\
spf:
  fail: reject 550 5.7.23 "SPF says no"
  temperror: tempfail 451 4.7.24 "SPF temporary error, try again later"
  permerror: reject
"""


@pytest.fixture
def dns():
    d = DNSTestServer(RECORDS)
    yield d
    d.stop()


def spf_warden(warden_factory, backend, tmp_path, dns_address,
               policy=POLICY, timeout="1s"):
    pol = tmp_path / "spf.yaml"
    pol.write_text(policy)
    return warden_factory({"policies": [str(pol)],
                           "dns": {"servers": [dns_address],
                                   "timeout": timeout}}, backend)


def session(w, helo="client.test"):
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo(helo)
    return c


def mail_commands(capture):
    return [l for conn in capture.connections for l in conn.commands
            if l.upper().startswith((b"MAIL", b"RCPT", b"DATA"))]


def test_fail_is_rejected_and_never_relayed(warden_factory, capture,
                                            tmp_path, dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address)
    c = session(w)
    r = c.cmd("MAIL FROM:<mallory@fail.test>")
    assert r.raw == b"550 5.7.23 SPF says no\r\n"
    # the transaction goes no further: RCPT is refused, no MAIL reached
    # the backend, and the client may try another sender
    assert c.cmd("RCPT TO:<bob@example.com>").code == 503
    assert c.cmd("QUIT").code == 221
    assert mail_commands(capture) == []
    assert ("fail.test.", "TXT") in dns.zone.queries
    w.wait_log(r"spf=fail identity=mailfrom domain=<fail\.test> "
               r"client=\[127\.0\.0\.1\]")
    w.wait_log(r"reject: MAIL from \[127\.0\.0\.1\]: 550 5\.7\.23 SPF says "
               r"no; .*check=spf:fail")


def test_pass_is_relayed_with_authentication_results(warden_factory,
                                                     capture, tmp_path, dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address)
    c = session(w)
    c.sendmail("alice@pass.test", ["bob@example.com"],
               b"Subject: hi\r\n\r\nhello\r\n")
    c.cmd("QUIT")
    msg = capture.wait_messages(1)[0]
    assert msg.startswith(b"Authentication-Results: warden.test; spf=pass "
                          b"smtp.mailfrom=alice@pass.test\r\n"
                          b"Subject: hi\r\n")
    w.wait_log(r"spf=pass identity=mailfrom domain=<pass\.test>")
    w.wait_log(r"tx=1 .*from=<alice@pass\.test> .*check=- spf=pass "
               r"result=sent")


def test_other_results_only_tag_by_default(warden_factory, capture,
                                           tmp_path, dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address,
                   policy="spf:\n")
    c = session(w)
    c.sendmail("a@soft.test", ["bob@example.com"], b"Subject: 1\r\n\r\nx\r\n")
    c.sendmail("a@fail.test", ["bob@example.com"], b"Subject: 2\r\n\r\nx\r\n")
    c.sendmail("a@nospf.test", ["bob@example.com"],
               b"Subject: 3\r\n\r\nx\r\n")
    msgs = capture.wait_messages(3)
    assert msgs[0].startswith(b"Authentication-Results: warden.test; "
                              b"spf=softfail smtp.mailfrom=a@soft.test\r\n")
    assert msgs[1].startswith(b"Authentication-Results: warden.test; "
                              b"spf=fail smtp.mailfrom=a@fail.test\r\n")
    assert msgs[2].startswith(b"Authentication-Results: warden.test; "
                              b"spf=none smtp.mailfrom=a@nospf.test\r\n")


def test_null_sender_checks_the_helo_name(warden_factory, capture, tmp_path,
                                          dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address)
    c = session(w, helo="helo.test")
    c.sendmail("", ["bob@example.com"], b"Subject: bounce\r\n\r\nx\r\n")
    msg = capture.wait_messages(1)[0]
    assert msg.startswith(b"Authentication-Results: warden.test; spf=pass "
                          b"smtp.helo=helo.test\r\n")
    w.wait_log(r"spf=pass identity=helo domain=<helo\.test> .*"
               r"mailfrom=<postmaster@helo\.test>")


def test_void_lookup_limit_is_a_permerror(warden_factory, capture, tmp_path,
                                          dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address)
    c = session(w)
    r = c.cmd("MAIL FROM:<a@void.test>")
    assert r.raw == b"550 5.7.24 SPF validation error\r\n"
    w.wait_log(r'spf=permerror .* voids=3 .*reason="more than 2 void '
               r'lookups"')
    assert mail_commands(capture) == []


def test_dns_server_stopped_gives_temperror(warden_factory, capture,
                                            tmp_path, dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address)
    c = session(w)
    dns.stop()
    start = time.monotonic()
    r = c.cmd("MAIL FROM:<alice@pass.test>", timeout=15)
    assert r.raw == b"451 4.7.24 SPF temporary error, try again later\r\n"
    assert time.monotonic() - start < 5
    assert mail_commands(capture) == []
    w.wait_log(r'spf=temperror .*reason="DNS timeout or server failure"')


def test_silent_dns_server_times_out_to_temperror(warden_factory, capture,
                                                  tmp_path):
    silent = DNSTestServer(RECORDS, silent=True)
    try:
        w = spf_warden(warden_factory, capture, tmp_path, silent.address)
        c = session(w)
        start = time.monotonic()
        r = c.cmd("MAIL FROM:<alice@pass.test>", timeout=15)
        took = time.monotonic() - start
    finally:
        silent.stop()
    assert r.code == 451 and r.raw.startswith(b"451 4.7.24")
    # one query, dns.timeout 1s: the answer comes after it, not later
    assert 0.9 < took < 5
    # the session goes on: nothing was left waiting
    assert c.cmd("NOOP").code == 250
    assert mail_commands(capture) == []


def test_exempt_network_is_not_checked(warden_factory, capture, tmp_path,
                                       dns):
    w = spf_warden(warden_factory, capture, tmp_path, dns.address,
                   policy=POLICY + "  exempt:\n    networks: [127.0.0.0/8]\n")
    c = session(w)
    c.sendmail("mallory@fail.test", ["bob@example.com"],
               b"Subject: hi\r\n\r\nx\r\n")
    msg = capture.wait_messages(1)[0]
    assert not msg.startswith(b"Authentication-Results")
    assert dns.zone.queries == []


def test_no_spf_section_no_lookups(warden_factory, capture, dns):
    w = warden_factory({"dns": {"servers": [dns.address]}}, capture)
    c = session(w)
    c.sendmail("mallory@fail.test", ["bob@example.com"],
               b"Subject: hi\r\n\r\nx\r\n")
    assert not capture.wait_messages(1)[0].startswith(
        b"Authentication-Results")
    assert dns.zone.queries == []


def test_config_check_reports_bad_spf_section(tmp_path, warden_bin):
    pol = tmp_path / "spf.yaml"
    pol.write_text("spf:\n"
                   "  fail: refuse\n"
                   "  temperror: tempfail 550 5.7.1 wrong class\n"
                   "  pass: reject\n")
    rc, out = check_config({"policies": [str(pol)]}, bin_path=warden_bin)
    assert rc != 0
    assert "%s:2: spf.fail: \"refuse\": expected accept" % pol in out
    assert "%s:3: spf.temperror: \"550 5.7.1 wrong class\": a tempfail " \
           "needs a 4xx reply code" % pol in out
    assert "%s:4: spf.pass: a pass is never refused" % pol in out
